"""The project README: every Python block runs, in order, in one fresh directory, against the served
sample store (only GEOTESSERA_BASE_URL and the cache differ; the directory holds the label files
the analysis example names: ``labels.gpkg``, 50 ground-truth pixels per class, and
``forest.geojson``, one forest point); its install section installs this project; its
quick-start region is one the sample store covers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest

from geotessera.datasets import DatasetId
from geotessera.sample.serve import SampleServer
from geotessera.store import build_zarr
from support.analysis import labelled_points

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.fixture(scope="module")
def served_with_zarr(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleServer]:
    """The sample store with a v1 Zarr store at ``zarr/v1.zarr``, as the demo serves one, on its own
    endpoint (the session's is shared: a test listing it must find the sample store alone)."""
    out = tmp_path_factory.mktemp("readme_zarr") / "v1.zarr"
    build_zarr(tiny_store, out, dataset=DatasetId(), years=[2024], zones=[31])
    server = SampleServer(tiny_store, bucket="readme-zarr")
    try:
        server.start()
        server.upload_tree(out, "zarr/v1.zarr")
        yield server
    finally:
        server.stop()


CHECKS = """
import numpy as np
assert embedding.ndim == 3 and embedding.shape[2] == 128
assert len(tiles) == 4, tiles                                  # the quick-start box is covered
assert len(files) == 4, files
assert X.shape == (2, 128) and not np.isnan(X).all(axis=1).any()  # both points covered
assert emb11.shape[2] == 128
assert report["accuracy"] >= 0.9, report["accuracy"]           # the analysis example
print("README OK")
"""


def _label_files(work: Path, store: Path) -> list[str]:
    """``labels.gpkg`` and ``forest.geojson``, the files the analysis example reads."""
    pts, names = labelled_points(store, 2024, 50, seed=2)
    gdf = gpd.GeoDataFrame({"landcover": names}, geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=4326)
    gdf.to_file(work / "labels.gpkg")
    gdf[gdf["landcover"] == "forest"].iloc[:1].to_file(work / "forest.geojson")
    return ["labels.gpkg", "forest.geojson"]


ANALYSIS_OUTPUTS = [
    "tiles",
    "landcover.tif",
    "landcover.tif.classes.json",
    "similar.tif",
    "similar_mask.tif",
    "similar_polygons.geojson",
    "similar_top.parquet",
    "change.tif",
    "change.json",
    "clusters.tif",
    "clusters_centroids.json",
]
VISUAL_OUTPUTS = ["coverage.png", "pca.tif", "pca.png", "web_tiles"]


def test_every_python_block_runs_in_order_in_one_fresh_directory(
    served_with_zarr: SampleServer, tiny_store: Path, tmp_path: Path
) -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 4  # quick start, a second dataset, Zarr, analysis
    work = tmp_path / "fresh"
    work.mkdir()
    inputs = _label_files(work, tiny_store)
    env = {
        **os.environ,
        "GEOTESSERA_BASE_URL": served_with_zarr.base_url,
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "PYTHONWARNINGS": "error::UserWarning",  # no warning either: every region is covered
    }
    env.pop("GEOTESSERA_CACHE_DIR", None)
    code = "\n".join(blocks) + CHECKS
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.rstrip().endswith("README OK")
    # where the README says tiles go: v1 here, v1.1 in its own subdirectory, exports under ./output
    assert (work / "global_0.1_degree_representation" / "2024" / "grid_0.15_52.05").is_dir()
    assert (work / "tessera-v1.1-cambridge" / "global_0.1_degree_representation").is_dir()
    assert len(list((work / "output").rglob("*_2024.tiff"))) == 4
    assert sorted(p.name for p in work.iterdir()) == sorted(
        [
            "global_0.1_degree_representation",
            "global_0.1_degree_tiff_all",
            "output",
            "tessera-v1.1-cambridge",
            "tessera_metadata.json",
            *inputs,
            *ANALYSIS_OUTPUTS,
            *VISUAL_OUTPUTS,
        ]
    )
    assert list((work / "tiles").rglob("*_scales.npy"))  # the analysis client's embeddings_dir


def test_the_install_section_installs_this_project() -> None:
    install = _section("Install")
    assert "`pip install geotessera` installs a different" in " ".join(install.split())
    commands = [
        ln.split("#")[0].strip() for b in _blocks("bash") for ln in b.splitlines() if "pip install" in ln
    ]
    commands = [c for c in commands if c.startswith("pip install") and c in install]
    assert commands, "no pip install command in the Install section"
    for c in commands:
        target = c.removeprefix("pip install").strip().strip("'\"")
        local = target.startswith((".", "dist/")) or "dist/geotessera-" in target
        assert local, f"{c!r} would install from the package index"
    assert "pip wheel --no-deps -w dist ." in install and "git clone" in install


def test_the_quick_start_region_is_one_the_sample_store_covers() -> None:
    from geotessera.sample.build import DEFAULT_BBOX

    quick = _section("Quick start (Python)")
    min_lon, min_lat, max_lon, max_lat = DEFAULT_BBOX
    boxes = re.findall(r"bbox = \(([^)]*)\)", quick)
    points = re.findall(r"\((-?\d+\.\d+), (-?\d+\.\d+)\)", quick.split("sample_embeddings_at_points", 1)[1])
    assert boxes and points
    for box in boxes:
        a, b, c, d = map(float, box.split(","))
        assert min_lon <= a < c <= max_lon and min_lat <= b < d <= max_lat, box
    for lon, lat in points[:2]:
        assert min_lon <= float(lon) <= max_lon and min_lat <= float(lat) <= max_lat
    assert "sample store" in quick and f"{min_lon} to {max_lon} E, {min_lat} to {max_lat} N" in quick
