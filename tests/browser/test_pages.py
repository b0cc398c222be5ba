"""The generated pages in a real browser: Debian's chromium, headless, driven by playwright.

Each page is served by `geotessera serve` (a subprocess, port 0) and loaded; the test waits
for its images, takes a screenshot and checks where map pixels are drawn: inside the data
extent and not outside. No request may leave the loopback server (the pages work offline).
Screenshots are written under the test's temporary directory, and also copied into
``$GEOTESSERA_SCREENSHOTS`` when that is set, for people to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from playwright.sync_api import Page, sync_playwright

from geotessera.cli import cli
from geotessera.visualization import create_pca_mosaic

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1000, "height": 700}


def _run(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


class Served:
    """`geotessera serve DIR --port 0 --no-open` in a subprocess; ``url`` is its base URL."""

    def __init__(self, directory: Path) -> None:
        exe = Path(sys.executable).with_name("geotessera")
        self.proc = subprocess.Popen(
            [str(exe), "serve", str(directory), "--port", "0", "--no-open"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        self.url = line.split(" at ")[1].split(" ")[0].rsplit("/", 1)[0] + "/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _load(browser: object, directory: Path, page_name: str, shot: Path) -> tuple[Page, np.ndarray, list[str]]:
    served = Served(directory)
    try:
        page = browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
        requests: list[str] = []
        errors: list[str] = []  # uncaught script errors, from the start (a listener added later misses them)
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(served.url + page_name)
        page.wait_for_function("document.body.dataset.tilesLoaded === '1'", timeout=30_000)
        page.wait_for_timeout(300)  # let the last tiles fade in
        assert not errors, f"script errors on {page_name}: {errors}"
        page.screenshot(path=str(shot))
        keep = os.environ.get("GEOTESSERA_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
        outside = [u for u in requests if not u.startswith(served.url) and not u.startswith("data:")]
        assert not outside, f"requests left the local server: {outside[:5]}"
        with rasterio.open(shot) as img:
            pixels = img.read()[:3].transpose(1, 2, 0).astype(int)
        return page, pixels, requests
    finally:
        served.stop()


def _controls(page: Page) -> np.ndarray:
    """(H, W) True over Leaflet's controls (zoom, panel, scale, attribution)."""
    boxes = page.evaluate(
        "Array.from(document.querySelectorAll('.leaflet-control')).map(e => {"
        " const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
    )
    mask = np.zeros((VIEWPORT["height"], VIEWPORT["width"]), bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, int(y0) - 4) : int(y1) + 4, max(0, int(x0) - 4) : int(x1) + 4] = True
    return mask


def _extent_px(page: Page) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the page's data bounds in screen pixels."""
    x0, y0, x1, y1 = page.evaluate(
        "(() => { const m = window.geotessera.map, b = window.geotessera.bounds;"
        " const a = m.latLngToContainerPoint(b.getNorthWest());"
        " const c = m.latLngToContainerPoint(b.getSouthEast());"
        " return [a.x, a.y, c.x, c.y]; })()"
    )
    return round(x0), round(y0), round(x1), round(y1)


@pytest.fixture(scope="module")
def webmap_dir(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("webmap")
    tiles = sorted(
        p
        for p in (tiny_store / "v1" / "global_0.1_degree_representation" / "2024").glob("grid_0.*_52.*/*.npy")
        if not p.name.endswith("_scales.npy")
    )
    assert len(tiles) == 12
    mosaic = create_pca_mosaic(tiles, work / "pca_mosaic.tif")
    region = work / "region.geojson"
    region.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [[[0.1, 52.1], [0.3, 52.1], [0.3, 52.2], [0.1, 52.2], [0.1, 52.1]]],
            }
        )
    )
    _run(
        "webmap",
        mosaic,
        "-o",
        str(work / "web"),
        "--min-zoom",
        "8",
        "--max-zoom",
        "14",
        "--region-file",
        str(region),
    )
    return work / "web"


def test_the_viewer_draws_the_mosaic_inside_its_extent_only(browser: object, webmap_dir: Path) -> None:
    page, px, requests = _load(browser, webmap_dir, "index.html", webmap_dir.parent / "viewer.png")
    assert any("/tiles/" in u for u in requests) and any(u.endswith("leaflet/leaflet.js") for u in requests)
    left, top, right, bottom = _extent_px(page)
    assert right - left > 200 and bottom - top > 200, "the mosaic should fill a good part of the view"
    background = px[5, VIEWPORT["width"] // 2]
    assert np.abs(background - [244, 244, 242]).max() <= 2
    differs = np.abs(px - background).max(axis=2) > 12
    controls = _controls(page)
    inner = np.zeros_like(differs)
    inner[top + 6 : bottom - 6, left + 6 : right - 6] = True
    outer = np.ones_like(differs)
    outer[max(0, top - 6) : bottom + 6, max(0, left - 6) : right + 6] = False
    assert differs[inner & ~controls].mean() > 0.8, "the tiles must cover the mosaic extent"
    assert differs[outer & ~controls].mean() < 0.002, "nothing may be drawn outside the mosaic extent"
    # the opacity slider fades the tiles out
    page.evaluate(
        "(() => { const s = document.getElementById('opacity'); s.value = 0;"
        " s.dispatchEvent(new Event('input')); })()"
    )
    page.wait_for_timeout(300)
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.leaflet-tile-pane .leaflet-layer')).opacity")
        == "0"
    )


@pytest.fixture(scope="module")
def coverage_dir(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("coverage")
    _run(
        "coverage",
        "--registry-dir",
        str(tiny_store / "v1"),
        "--bbox",
        "-0.5,51.8,0.9,52.6",
        "--year",
        "2024",
        "--tile-alpha",
        "0.9",
        "-o",
        str(work / "cov"),
        "--width",
        "1000",
    )
    return work / "cov"


def test_the_coverage_page_draws_tiles_where_they_exist(browser: object, coverage_dir: Path) -> None:
    page, px, requests = _load(
        browser, coverage_dir, "coverage.html", coverage_dir.parent / "coverage_page.png"
    )
    assert any(u.endswith("coverage_cells.png") for u in requests)

    def at(lon: float, lat: float) -> np.ndarray:
        p = page.evaluate(
            f"(() => {{ const q = window.geotessera.map.latLngToContainerPoint([{lat}, {lon}]);"
            " return [q.x, q.y]; })()"
        )
        return px[round(p[1]), round(p[0])]

    def red(c: np.ndarray) -> bool:
        return bool(c[0] > c[1] + 60 and c[0] > c[2] + 60)

    controls = _controls(page)
    covered = [(0.05 + 0.1 * i, 52.05 + 0.1 * j) for i in range(4) for j in range(3)]
    assert all(red(at(lon, lat)) for lon, lat in covered), "every tile of 2024 is drawn at its place"
    for lon, lat in [(-0.3, 52.4), (0.7, 52.45), (-0.2, 51.9), (0.6, 51.95), (0.25, 52.45)]:
        assert not red(at(lon, lat)), f"no tile at {lon}, {lat}"
    left, top, right, bottom = _extent_px(page)
    reds = np.array(
        [[red(px[r, c]) for c in range(0, VIEWPORT["width"], 4)] for r in range(0, VIEWPORT["height"], 4)]
    )
    rows, cols = np.nonzero(reds & ~controls[::4, ::4])
    assert rows.size > 50
    assert (cols * 4 >= left - 2).all() and (cols * 4 <= right + 2).all()
    assert (rows * 4 >= top - 2).all() and (rows * 4 <= bottom + 2).all()
    # outside the image the page is blank
    outside = np.ones(controls.shape, bool)
    outside[max(0, top - 3) : bottom + 3, max(0, left - 3) : right + 3] = False
    blank = np.abs(px - [255, 255, 255]).max(axis=2) <= 2
    assert blank[outside & ~controls].mean() > 0.995


@pytest.fixture(scope="module")
def store_web_dir(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``webmap STORE`` with its default zooms, on a store whose data is spread over continents
    (the sample's edge tiles: Cambridge, 6 E / 45 N, the southern hemisphere)."""
    work = tmp_path_factory.mktemp("store_web")
    store = work / "v1.zarr"
    _run("zarr", "build", str(tiny_store), str(store), "--dataset-version", "v1", "--preview", "2024")
    _run("webmap", str(store), "-o", str(work / "web"))
    return work / "web"


def test_a_spread_store_opens_on_its_data_outlined(browser: object, store_web_dir: Path) -> None:
    errors: list[str] = []
    page, px, requests = _load(
        browser, store_web_dir, "index.html", store_web_dir.parent / "store_viewer.png"
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert any("/tiles/" in u and u.endswith(".png") for u in requests), "the page opens on tiles"
    boxes = page.evaluate(
        "(() => { const m = window.geotessera.map, f = window.geotessera.footprint;"
        " if (!f || !m.hasLayer(f)) return [];"
        " return f.getLayers().map(r => { const b = r.getBounds();"
        " const a = m.latLngToContainerPoint(b.getNorthWest());"
        " const c = m.latLngToContainerPoint(b.getSouthEast());"
        " return [a.x, a.y, c.x, c.y]; }); })()"
    )
    assert len(boxes) >= 3, "every far-apart piece of data is outlined"

    def blue(c: np.ndarray) -> bool:  # the outline colour, #1f78b4
        return bool(abs(int(c[0]) - 31) < 40 and abs(int(c[1]) - 120) < 40 and int(c[2]) > 140)

    for x0, y0, x1, y1 in boxes:  # each outline is drawn where its box is
        r0, r1 = max(0, round(y0) - 2), min(VIEWPORT["height"], round(y1) + 3)
        c0, c1 = max(0, round(x0) - 2), min(VIEWPORT["width"], round(x1) + 3)
        assert any(blue(px[r, c]) for r in range(r0, r1) for c in range(c0, c1)), (x0, y0, x1, y1)
    # zoomed in on the data, the outlines give way to the tiles alone
    cfg_max = page.evaluate("window.geotessera.map.getMinZoom()") + 2
    page.evaluate(f"window.geotessera.map.setZoom({cfg_max + 1}, {{animate: false}})")
    page.wait_for_timeout(200)
    assert not page.evaluate("window.geotessera.map.hasLayer(window.geotessera.footprint)")
    assert not errors
