"""visualize, webmap, serve, coverage: bad input is one `error:` line and exit 2; the happy paths work."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

from geotessera.cli import cli
from support.signals import default_sigint

CAMBRIDGE = "0.0,52.0,0.4,52.3"


def _invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


def _one_error(code: int, out: str, err: str, needle: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


def _raster(path: Path, count: int, dtype: str = "uint8") -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=count,
        dtype=dtype,
        crs="EPSG:3857",
        transform=from_origin(0, 6_800_000, 100, 100),
    ) as ds:
        ds.write(np.full((count, 64, 64), 100, dtype=dtype))
    return path


@pytest.fixture
def rgb(tmp_path: Path) -> Path:
    return _raster(tmp_path / "rgb.tif", 3)


@pytest.fixture
def taken_port() -> object:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def test_visualize_bad_inputs(tmp_path: Path) -> None:
    _one_error(*_invoke("visualize", str(tmp_path / "missing"), str(tmp_path / "o.tif")), "does not exist")
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    _one_error(*_invoke("visualize", str(txt), str(tmp_path / "o.tif")), "not a GeoTIFF or .npy")
    _one_error(*_invoke("visualize", str(tmp_path), str(tmp_path / "o.tif")), "no GeoTIFF or .npy")
    lm = _raster(tmp_path / "landmask.tif", 1)
    _one_error(*_invoke("visualize", str(lm), str(tmp_path / "o.tif")), "not embeddings")
    emb = _raster(tmp_path / "emb.tif", 8, "float32")
    _one_error(
        *_invoke("visualize", str(emb), str(tmp_path / "o.tif"), "--crs", "EPSG:999999"), "unknown CRS"
    )
    _one_error(
        *_invoke("visualize", str(emb), str(tmp_path / "o.tif"), "--n-components", "9"), "n_components"
    )
    _one_error(*_invoke("visualize", str(emb), str(tmp_path / "o.tif"), "--balance", "loud"), "--balance")
    _one_error(
        *_invoke(
            "visualize",
            str(emb),
            str(tmp_path / "o.tif"),
            "--percentile-low",
            "90",
            "--percentile-high",
            "10",
        ),
        "--percentile-low",
    )


def test_visualize_draws_a_float_geotiff(tmp_path: Path) -> None:
    path = tmp_path / "emb.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=8,
        dtype="float32",
        crs="EPSG:32631",
        transform=from_origin(300_000, 5_770_000, 10, 10),
    ) as ds:
        ds.write(rng.normal(size=(8, 64, 64)).astype("float32"))
    code, _, err = _invoke("visualize", str(path), str(tmp_path / "o.tif"), "--balance", "percentile")
    assert code == 0, err
    assert (tmp_path / "o.tif").is_file() and (tmp_path / "o.png").is_file()


def test_webmap_bad_inputs(tmp_path: Path, rgb: Path, taken_port: int) -> None:
    one = _raster(tmp_path / "one.tif", 1)
    _one_error(*_invoke("webmap", str(one)), "1 band(s)")
    _one_error(*_invoke("webmap", str(_raster(tmp_path / "f.tif", 3, "float32"))), "8-bit RGB")
    _one_error(*_invoke("webmap", str(tmp_path / "none.tif")), "does not exist")
    txt = tmp_path / "x.tif"
    txt.write_text("not a tiff")
    _one_error(*_invoke("webmap", str(txt)), "not a readable raster")
    _one_error(*_invoke("webmap", str(rgb), "--min-zoom", "12", "--max-zoom", "8"), "zoom")
    _one_error(
        *_invoke("webmap", str(rgb), "--max-zoom", "30"), "'--max-zoom': 30 is not in the range 0<=x<=24"
    )
    _one_error(*_invoke("webmap", str(rgb), "--min-zoom", "-1"), "'--min-zoom': -1 is not in the range")
    _one_error(*_invoke("webmap", str(rgb), "--max-zoom", "24"), "--max-zoom")  # millions of tiles
    _one_error(*_invoke("webmap", str(rgb), "--initial-zoom", "3"), "--initial-zoom")
    _one_error(*_invoke("webmap", str(rgb), "--serve", "--port", str(taken_port)), "already in use")
    _one_error(*_invoke("webmap", str(rgb), "--port", "70000"), "--port")
    assert not (tmp_path / "rgb_web" / "tiles").exists()  # nothing was cut before the port error


def test_webmap_writes_tiles_and_a_viewer(tmp_path: Path, rgb: Path) -> None:
    code, out, err = _invoke("webmap", str(rgb), "--min-zoom", "10", "--max-zoom", "12")
    assert code == 0, err
    web = tmp_path / "rgb_web"
    pngs = list((web / "tiles").rglob("*.png"))
    assert pngs and {p.relative_to(web / "tiles").parts[0] for p in pngs} == {"10", "11", "12"}
    page = (web / "index.html").read_text()
    assert "leaflet/leaflet.js" in page and "http" not in page.split("<script>")[-1].split("CONFIG")[0]
    assert (web / "leaflet" / "leaflet.js").is_file() and (
        web / "leaflet" / "images" / "layers.png"
    ).is_file()
    mtimes = {p: p.stat().st_mtime_ns for p in pngs}
    code, out, _ = _invoke("webmap", str(rgb), "--min-zoom", "10", "--max-zoom", "12")
    assert code == 0 and f"0 tiles written, {len(pngs)} kept" in out
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())
    code, out, _ = _invoke("webmap", str(rgb), "--min-zoom", "10", "--max-zoom", "12", "--force")
    assert code == 0 and f"{len(pngs)} tiles written" in out


def test_serve_bad_inputs(tmp_path: Path, taken_port: int) -> None:
    _one_error(*_invoke("serve", str(tmp_path), "--no-open", "--port", str(taken_port)), "already in use")
    _one_error(*_invoke("serve", str(tmp_path), "--no-open", "--port", "-3"), "--port")
    _one_error(*_invoke("serve", str(tmp_path / "missing"), "--no-open"), "does not exist")
    _one_error(*_invoke("serve", str(tmp_path), "--no-open", "--html", "../x.html"), "--html")


def test_serve_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>hello</p>")
    exe = Path(sys.executable).with_name("geotessera")
    proc = subprocess.Popen(
        [str(exe), "serve", str(tmp_path), "--port", "0", "--no-open"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BROWSER": "true"},
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split(" at ")[1].split(" ")[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/index.html")
        assert urllib.request.urlopen(url, timeout=10).read() == b"<p>hello</p>"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_coverage_bad_inputs(tiny_store: Path, tmp_path: Path) -> None:
    reg = ["--registry-dir", str(tiny_store / "v1"), "-o", str(tmp_path / "c.png")]
    _one_error(*_invoke("coverage", *reg, "--tile-color", "reddish"), "unknown colour")
    _one_error(*_invoke("coverage", *reg, "--tile-alpha", "1.5"), "alpha")
    _one_error(*_invoke("coverage", *reg, "--width", "-5"), "width")
    _one_error(*_invoke("coverage", *reg, "--tile-size", "0"), "tile size")
    _one_error(*_invoke("coverage", *reg, "--bbox", "1,2,3"), "--bbox")
    _one_error(*_invoke("coverage", *reg, "--bbox", CAMBRIDGE, "--tile", "0.1,52.1"), "at most one")
    _one_error(*_invoke("coverage", *reg, "--year", "2019"), "2019")
    _one_error(*_invoke("coverage", *reg, "--bbox", "100,10,101,11"), "no tiles")
    _one_error(
        *_invoke("coverage", "--registry-dir", str(tiny_store / "v1"), "-o", str(tmp_path / "c.jpg")),
        "--output",
    )


def test_coverage_of_a_region_writes_png_json_and_html(tiny_store: Path, tmp_path: Path) -> None:
    code, out, err = _invoke(
        "coverage",
        "--registry-dir",
        str(tiny_store / "v1"),
        "--bbox",
        CAMBRIDGE,
        "-o",
        str(tmp_path / "out"),
        "--width",
        "800",
    )
    assert code == 0, err
    assert "12 of 12 cells covered (100%)" in out  # 2024
    assert "11 of 12 cells covered (92%)" in out  # 2023 lacks grid_0.35_52.25
    doc = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert doc["tiles_per_year"]["v1/vultr"] == {"2023": 11, "2024": 12}
    assert [layer["locations"] for layer in doc["layers"]] == [11, 1, 0]
    assert doc["region"]["cells"] == 12
    with rasterio.open(tmp_path / "out" / "tessera_coverage.png") as png:
        assert png.width == 800
    html = (tmp_path / "out" / "coverage.html").read_text()
    assert "coverage_cells.png" in html and (tmp_path / "out" / "leaflet" / "leaflet.css").is_file()
    # the seed: a directory also receives globe.html (the same page)
    assert (tmp_path / "out" / "globe.html").read_text() == html and "globe.html" in out


def test_coverage_by_source(tiny_store: Path, tmp_path: Path) -> None:
    code, _, err = _invoke(
        "coverage",
        "--by-source",
        "--base-url",
        str(tiny_store),
        "--cache-dir",
        str(tmp_path / "c"),
        "--bbox",
        CAMBRIDGE,
        "-o",
        str(tmp_path / "src.png"),
        "--width",
        "600",
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "coverage.json").read_text())
    assert doc["datasets"] == ["v1/vultr", "v1.1/cambridge"]
    assert len(doc["layers"]) == 2 and doc["layers"][0]["colour"] != doc["layers"][1]["colour"]
    code, _, err = _invoke(
        "coverage",
        "--by-source",
        "--dataset-version",
        "v1.1",
        "--base-url",
        str(tiny_store),
        "--cache-dir",
        str(tmp_path / "c"),
        "--bbox",
        CAMBRIDGE,
        "-o",
        str(tmp_path / "v11.png"),
        "--width",
        "600",
    )
    assert code == 0, err
    assert json.loads((tmp_path / "coverage.json").read_text())["datasets"] == ["v1.1/cambridge"]


def _run(*args: str) -> tuple[int, str, str]:
    """The command as a user runs it (a child process: GDAL writes to file descriptor 2 directly)."""
    exe = Path(sys.executable).with_name("geotessera")
    p = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def test_no_library_noise_before_the_error_line(tmp_path: Path) -> None:
    emb = _raster(tmp_path / "emb.tif", 8, "float32")
    # PROJ's own "ERROR 1: ..." line must not precede ours
    _one_error(*_run("visualize", str(emb), str(tmp_path / "o.tif"), "--crs", "EPSG:999999"), "unknown CRS")
    png = tmp_path / "plain.png"
    with rasterio.open(png, "w", driver="PNG", width=8, height=8, count=3, dtype="uint8") as ds:
        ds.write(np.zeros((3, 8, 8), "uint8"))
    # rasterio's NotGeoreferencedWarning must not precede ours
    _one_error(*_run("webmap", str(png), "-o", str(tmp_path / "web")), "no CRS")


def test_visualize_input_that_is_not_a_raster_is_bad_input(tmp_path: Path) -> None:
    fake = tmp_path / "tile.tif"
    fake.write_text("not a tiff")
    _one_error(*_invoke("visualize", str(fake), str(tmp_path / "o.tif")), "not a readable GeoTIFF")


def test_visualize_output_must_be_a_geotiff(tmp_path: Path) -> None:
    emb = _raster(tmp_path / "emb.tif", 8, "float32")
    # the mosaic and its quick-look would both be o.png, one replacing the other
    _one_error(*_invoke("visualize", str(emb), str(tmp_path / "o.png")), ".tif")
    assert not (tmp_path / "o.png").exists()


def test_webmap_checks_the_region_file_before_cutting_tiles(tmp_path: Path, rgb: Path) -> None:
    bad = tmp_path / "region.geojson"
    bad.write_text("not geojson")
    web = tmp_path / "web"
    _one_error(*_invoke("webmap", str(rgb), "-o", str(web), "--region-file", str(bad)), "region.geojson")
    assert not (web / "tiles").exists()
