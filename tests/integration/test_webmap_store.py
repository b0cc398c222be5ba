"""``geotessera webmap STORE`` on a store whose data is spread over continents.

The sample store's edge tiles put data near Cambridge, at 6 E / 45 N and in the southern
hemisphere, so its extent is tens of degrees wide and almost empty. With the seed's zooms (8-15)
over that extent the map would need millions of tiles (refused), and the page, fitted to the
extent, would open at a zoom with no tiles. Now a store's default zooms come from its data and
only tiles meeting data are cut.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from geotessera.cli import cli
from geotessera.sample.build import build_store
from geotessera.web.footprint import fit_zoom

pytest.importorskip("rio_tiler")


@pytest.fixture(scope="module")
def spread_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spread")
    build_store(
        root / "sample", bbox=(0.0, 52.0, 0.2, 52.1), years=(2024,), versions=("v1",), pixel_size_m=100.0
    )
    store = root / "v1.zarr"
    args = ["zarr", "build", str(root / "sample"), str(store), "--preview", "2024", "--workers", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return store


def test_default_zooms_show_all_the_data_and_cut_only_tiles_near_it(
    spread_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "web"
    result = CliRunner().invoke(cli, ["webmap", str(spread_store), "-o", str(out)])
    assert result.exit_code == 0, result.output
    m = re.search(r"(\d+) tiles written, (\d+) kept, (\d+) without data \(zoom (\d+)-(\d+)\)", result.output)
    assert m, result.output
    written, empty, lo, hi = int(m[1]), int(m[3]), int(m[4]), int(m[5])
    with rasterio.open(out / "preview.tif") as ds:
        from rasterio.warp import transform_bounds

        bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        pixel_deg = ds.transform.a
    assert bounds[2] - bounds[0] > 20 or bounds[3] - bounds[1] > 20  # spread over continents
    assert lo <= fit_zoom(bounds)  # the page, fitted to the data, opens on tiles
    assert 256 * pixel_deg * 2**hi >= 360 / 4  # no zoom magnifies the preview's pixels 4 times
    pngs = sorted((out / "tiles").rglob("*.png"))
    assert len(pngs) == written and {int(p.parts[-3]) for p in pngs} == set(range(lo, hi + 1))
    assert written < 500 and empty <= written  # only near the data
    meta = json.loads((out / "tiles" / "tiles.json").read_text())
    assert meta["zooms"] == [lo, hi]
    page = (out / "index.html").read_text()
    config = json.loads(page.split("const CONFIG = ", 1)[1].split(";\n", 1)[0])
    assert (config["min_zoom"], config["max_zoom"]) == (lo, hi)


def test_given_zooms_are_kept_and_too_many_tiles_still_refused(spread_store: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["webmap", str(spread_store), "-o", str(tmp_path / "a"), "--min-zoom", "5", "--max-zoom", "6"]
    )
    assert result.exit_code == 0, result.output
    assert "(zoom 5-6)" in result.output
    bad = CliRunner().invoke(
        cli, ["webmap", str(spread_store), "-o", str(tmp_path / "b"), "--initial-zoom", "20"]
    )
    assert bad.exit_code == 2 and "--initial-zoom" in bad.output and "Traceback" not in bad.output


def test_bad_zooms_and_output_are_said_before_the_preview_is_made(spread_store: Path, tmp_path: Path) -> None:
    """Each bad option is named as given (not as a filled-in default), and an output directory
    that cannot be written is one error line, before any preview or tile is written."""
    runner = CliRunner()
    for args, code, words in [
        (["--max-zoom", "30"], 2, "'--max-zoom': 30 is not in the range 0<=x<=24"),
        (["--initial-zoom", "40"], 2, "'--initial-zoom': 40 is not in the range 0<=x<=26"),
        (["-o", "/proc/geotessera-no/web"], 1, "cannot write in output directory /proc/geotessera-no/web"),
    ]:
        out = tmp_path / "web"
        result = runner.invoke(cli, ["webmap", str(spread_store), "-o", str(out), *args])
        assert result.exit_code == code, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.output, result.output
        assert "min 0" not in result.output
        assert not out.exists()
