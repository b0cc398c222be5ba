"""The seed README's Python examples run unchanged against the served sample store.

Only the environment differs: GEOTESSERA_BASE_URL points at the loopback endpoint, and
the working directory is a temporary one. The London box of the seed is outside the sample
store (so those calls return nothing, without error); the same code on the Cambridge box
returns real tiles.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from geotessera.sample.serve import SampleServer

SEED_EXAMPLE = """
import numpy as np
from geotessera import GeoTessera

# Initialize the client
gt = GeoTessera()

# Method 1: Fetch a single tile
embedding, crs, transform = gt.fetch_embedding(lon=0.15, lat=52.05, year=2024)
print(f"Shape: {embedding.shape}")
print(f"CRS: {crs}")

# Method 2: Fetch all tiles in a bounding box
bbox = BBOX  # (min_lon, min_lat, max_lon, max_lat)
tiles_to_fetch = gt.registry.load_blocks_for_region(bounds=bbox, year=2024)
embeddings = gt.fetch_embeddings(tiles_to_fetch)

for year, tile_lon, tile_lat, embedding_array, crs, transform in embeddings:
    print(f"Tile ({tile_lat}, {tile_lon}): {embedding_array.shape}")

files = gt.export_embedding_geotiffs(
    tiles_to_fetch=tiles_to_fetch,
    output_dir="./output",
    bands=None,
    compress="lzw"
)
print(f"Created {len(files)} GeoTIFF files")

files = gt.export_embedding_geotiffs(
    tiles_to_fetch=tiles_to_fetch,
    output_dir="./rgb_output",
    bands=[0, 1, 2]
)

embeddings = gt.fetch_embeddings(tiles_to_fetch)
for year, tile_lon, tile_lat, embedding, crs, transform in embeddings:
    mean_values = np.mean(embedding, axis=(0, 1))
    std_values = np.std(embedding, axis=(0, 1))
    center_pixel = embedding[embedding.shape[0]//2, embedding.shape[1]//2, :]

gt = GeoTessera(dataset_version="v1.1", dataset_variant="cambridge")
print("v1.1 years", gt.registry.available_years())
"""


def _run(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _env(server: SampleServer, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "GEOTESSERA_BASE_URL": server.base_url, "XDG_CACHE_HOME": str(tmp_path / "xdg")}


def test_seed_example_runs_unchanged_on_the_london_box(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    r = _run(SEED_EXAMPLE.replace("BBOX", "(-0.2, 51.4, 0.1, 51.6)"), tmp_path, _env(s3_endpoint, tmp_path))
    assert r.returncode == 0, r.stderr
    assert "Shape: (115, 74, 128)" in r.stdout and "CRS: EPSG:32631" in r.stdout
    assert "Created 0 GeoTIFF files" in r.stdout  # London is not in the sample store
    assert "v1.1 years [2023, 2024]" in r.stdout


def test_seed_example_on_the_sample_region(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    r = _run(SEED_EXAMPLE.replace("BBOX", "(0.0, 52.0, 0.2, 52.2)"), tmp_path, _env(s3_endpoint, tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Tile (52.") == 4 and "Created 4 GeoTIFF files" in r.stdout
    assert len(list((tmp_path / "rgb_output").rglob("*.tiff"))) == 4 + 4  # 4 exports + 4 landmasks
    # the manifest was cached under XDG_CACHE_HOME, never the tiles
    cache = tmp_path / "xdg" / "geotessera"
    assert list(cache.rglob("manifest.parquet")) and not list(cache.rglob("*.npy"))


def test_registry_sources_of_the_seed(s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path) -> None:
    code = f"""
    from geotessera import GeoTessera
    gt = GeoTessera(registry_path={str(tiny_store / "v1" / "manifest.parquet")!r})
    print(gt.registry.available_years())
    gt = GeoTessera(registry_dir={str(tiny_store / "v1")!r})
    print(len(gt.registry.load_blocks_for_region(bounds=(0.0, 52.0, 0.4, 52.3), year=2024)))
    gt = GeoTessera(cache_dir={str(tmp_path / "cache")!r})
    print(gt.registry.tile_counts_by_year())
    """
    r = _run(code, tmp_path, _env(s3_endpoint, tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[2023, 2024]", "12", "{2023: 15, 2024: 16}"]
