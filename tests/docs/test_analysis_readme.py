"""The README's analysis example runs unchanged against the served sample store.

Only the environment differs: GEOTESSERA_BASE_URL points at the loopback endpoint and the
working directory (a temporary one) holds ``labels.gpkg`` (50 ground-truth pixels per class)
and ``forest.geojson`` (one forest point), the files the example names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import rasterio

from geotessera.sample.serve import SampleServer
from support.analysis import labelled_points

README = Path(__file__).resolve().parents[2] / "README.md"


def _analysis_block() -> str:
    text = README.read_text()
    section = text[text.index("## Analysis:") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_readme_analysis_example_runs(s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path) -> None:
    pts, names = labelled_points(tiny_store, 2024, 50, seed=2)
    gdf = gpd.GeoDataFrame({"landcover": names}, geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=4326)
    gdf.to_file(tmp_path / "labels.gpkg")
    gdf[gdf["landcover"] == "forest"].iloc[:1].to_file(tmp_path / "forest.geojson")
    env = {**os.environ, "GEOTESSERA_BASE_URL": s3_endpoint.base_url, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    r = subprocess.run(
        [sys.executable, "-c", _analysis_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    accuracy = float(r.stdout.split("spatial CV accuracy")[1].split()[0])
    assert accuracy >= 0.9
    for name in (
        "landcover.tif",
        "similar.tif",
        "similar_mask.tif",
        "change.tif",
        "change.json",
        "clusters.tif",
    ):
        assert (tmp_path / name).is_file(), name
    with rasterio.open(tmp_path / "landcover.tif") as ds:
        assert ds.crs.to_epsg() == 32631 and ds.colormap(1)
    assert list((tmp_path / "tiles").rglob("*.npy"))  # fetched into embeddings_dir
