"""The seed README's visualisation examples, run unchanged against the served sample store.

Only the environment differs: GEOTESSERA_BASE_URL points at the loopback endpoint,
XDG_CACHE_HOME and the working directory are temporary, and BROWSER=true stands in for a
browser (`serve --open`). The seed downloads London into ./london_tiffs; London is not in
the sample store, so Cambridge is downloaded under that name: the visual commands that
follow are the seed's, character for character.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import rasterio

from geotessera.sample.serve import SampleServer
from support.signals import default_sigint

EXE = str(Path(sys.executable).with_name("geotessera"))

SEED_COVERAGE = [
    "geotessera coverage --output coverage_map.png",
    "geotessera coverage --country uk",
    "geotessera coverage --year 2024 --output coverage_2024.png",
    "geotessera coverage --year 2024 --tile-color blue --tile-alpha 0.3",
]
SEED_VISUALIZE = [
    "geotessera visualize ./london_tiffs pca_mosaic.tif",
    "geotessera visualize ./london_tiffs pca_balanced.tif --balance histogram",
]

SEED_PYTHON = """
from geotessera import GeoTessera
gt = GeoTessera()

from geotessera.visualization import (
    create_rgb_mosaic,
    visualize_global_coverage
)
from geotessera.web import (
    create_coverage_summary_map,
    geotiff_to_web_tiles
)

# Create an RGB mosaic from multiple GeoTIFF files
create_rgb_mosaic(
    geotiff_paths=["tile1.tif", "tile2.tif"],
    output_path="mosaic.tif",
    bands=(0, 1, 2)  # RGB bands
)

# Generate web tiles for interactive maps
geotiff_to_web_tiles(
    geotiff_path="mosaic.tif",
    output_dir="./web_tiles",
    zoom_levels=(8, 15)
)

# Create a global coverage visualization
visualize_global_coverage(
    tessera_client=gt,
    output_path="global_coverage.png",
    year=2024,  # Or None for all years
    width_pixels=2000,
    tile_color="red",
    tile_alpha=0.6
)
create_coverage_summary_map(["tile1.tif", "tile2.tif"], "summary.html")
"""


@pytest.fixture(scope="module")
def work(s3_endpoint: SampleServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("seed_visual")
    env = {
        **os.environ,
        "GEOTESSERA_BASE_URL": s3_endpoint.base_url,
        "XDG_CACHE_HOME": str(root / "xdg"),
        "BROWSER": "true",
    }
    _sh("geotessera download --bbox 0.0,52.0,0.2,52.2 --year 2024 --output ./london_tiffs", root, env)
    return root, env


def _sh(cmd: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = cmd.split()
    r = subprocess.run([EXE, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{cmd}: {r.stderr}"
    return r


@pytest.mark.parametrize("cmd", SEED_COVERAGE)
def test_seed_coverage_commands(work: tuple[Path, dict[str, str]], cmd: str) -> None:
    root, env = work
    _sh(cmd, root, env)
    png = root / (cmd.split("--output ")[1].split()[0] if "--output" in cmd else "tessera_coverage.png")
    with rasterio.open(png) as ds:
        assert ds.width == 2000
    assert (root / "coverage.json").is_file() and (root / "coverage.html").is_file()
    assert not (root / "globe.html").exists()  # only a directory output gets the seed's globe.html


def test_seed_visualize_webmap_and_serve(work: tuple[Path, dict[str, str]]) -> None:
    root, env = work
    for cmd in SEED_VISUALIZE:
        _sh(cmd, root, env)
    for name in ("pca_mosaic", "pca_balanced"):
        assert (root / f"{name}.tif").is_file() and (root / f"{name}.png").is_file()

    # geotessera webmap pca_mosaic.tif --serve  (serves until Ctrl-C)
    proc = subprocess.Popen(
        [EXE, "webmap", "pca_mosaic.tif", "--serve", "--port", "0"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stderr is not None
        line = next(raw for raw in proc.stderr if raw.startswith("serving"))
        url = line.split(" at ")[1].split(" ")[0]
        assert b"leaflet/leaflet.js" in urllib.request.urlopen(url, timeout=10).read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list((root / "pca_mosaic_web" / "tiles").rglob("*.png"))

    # geotessera serve ./london_web --open
    shutil.copytree(root / "pca_mosaic_web", root / "london_web")
    proc = subprocess.Popen(
        [EXE, "serve", "./london_web", "--open"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if "already in use" in line:  # port 8000 is the seed's default; another process may hold it
            pytest.skip("port 8000 is taken on this machine")
        url = line.split(" at ")[1].split(" ")[0]
        assert url == "http://127.0.0.1:8000/index.html"
        assert b"leaflet" in urllib.request.urlopen(url, timeout=10).read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_seed_python_visual_examples(work: tuple[Path, dict[str, str]]) -> None:
    root, env = work
    tiffs = sorted((root / "london_tiffs").rglob("*_2024.tiff"))
    assert len(tiffs) == 4
    py = root / "py"
    py.mkdir()
    shutil.copy(tiffs[0], py / "tile1.tif")
    shutil.copy(tiffs[1], py / "tile2.tif")
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SEED_PYTHON)],
        cwd=py,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    with rasterio.open(py / "mosaic.tif") as ds:
        assert ds.count == 4 and ds.crs.to_epsg() == 3857
    assert {p.name for p in (py / "web_tiles").iterdir()} >= {"8", "15"}
    assert (py / "global_coverage.png").is_file() and (py / "summary.html").is_file()
