"""Web tiles cut from a mosaic and killed at each moment: a rerun gives the tiles of the mosaic it is given.

A rerun keeps the tiles already cut (thousands at high zooms) when they came from the same
mosaic, which ``tiles.json`` records. Whenever a run is killed (or interrupted), the rerun must
tell the tiles of its mosaic from others: tiles of another mosaic the killed run was replacing,
or tiles the killed run cut from a mosaic drawn again since (``visualize`` with other bands,
same file name). Each moment (``support.killpoints``) is the moment of a SIGKILL, in turn; the
rerun must give the tiles a clean run of its mosaic gives.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_bounds

from support.killpoints import Call, count_moments, run_killed_at

pytest.importorskip("rio_tiler")

ZOOMS = (8, 9)


def _mosaic(path: Path, shade: int) -> Path:
    """An RGBA mosaic of the sample store's region (EPSG:4326) in one ``shade`` of red."""
    h, w = 150, 200
    rgba = np.zeros((4, h, w), dtype=np.uint8)
    rgba[0], rgba[1] = shade, np.arange(w, dtype=np.uint8)[None, :]
    rgba[3, :, : w - 20] = 255  # its east edge has no data
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 4, "dtype": "uint8", "crs": "EPSG:4326"}
    tmp = path.with_name(f"new-{path.name}")
    with rasterio.open(tmp, "w", transform=from_bounds(0.0, 52.0, 0.4, 52.3, w, h), **profile) as ds:
        ds.write(rgba)
    tmp.replace(path)  # drawn again under the same name, as `visualize` does
    return path


def cut(mosaic: str, out: str) -> None:
    """Cut the web tiles of ``mosaic`` into ``out`` (the run the test kills)."""
    from geotessera.web import render_web_tiles

    render_web_tiles(mosaic, out, ZOOMS, workers=1)


def _tiles(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.png")}


@pytest.mark.parametrize("rerun", ["same mosaic", "mosaic drawn again"])
@pytest.mark.parametrize("start", ["empty", "tiles of another mosaic"])
def test_tiles_killed_at_each_moment_then_cut_again(start: str, rerun: str, tmp_path: Path) -> None:
    """``start``: the directory the killed run cuts into; ``rerun``: the mosaic the rerun is
    given, the killed run's or one drawn again since (same name, other pixels)."""
    mosaic, out, scratch = tmp_path / "mosaic.tif", tmp_path / "tiles", tmp_path / "scratch"
    shades = {"before": 50, "killed": 200, "rerun": 200 if rerun == "same mosaic" else 100}
    tiles = {}
    for name in ("before", "rerun"):
        cut(str(_mosaic(mosaic, shades[name])), str(tmp_path / name))
        tiles[name] = _tiles(tmp_path / name)
    assert tiles["before"] and tiles["before"] != tiles["rerun"]

    def begin() -> Call:
        shutil.rmtree(out, ignore_errors=True)
        if start != "empty":
            shutil.copytree(tmp_path / "before", out)
        return Call(f"{__name__}:cut", (str(_mosaic(mosaic, shades["killed"])), str(out)))

    moments = count_moments(begin(), scratch).moments
    assert moments >= 2 * len(tiles["rerun"])  # every tile, before and after its rename
    for at in range(1, moments + 1):
        run = run_killed_at(begin(), at, scratch)
        assert run.killed, f"moment {at} never came: {run.log}"
        if rerun != "same mosaic":
            _mosaic(mosaic, shades["rerun"])
        cut(str(mosaic), str(out))
        got = _tiles(out)
        where = f"killed at moment {at} of {moments}, {run.moment}"
        stale = sorted(k for k in tiles["rerun"] if got.get(k) != tiles["rerun"][k])
        assert stale == [], f"{where}: tiles of another mosaic"
        assert sorted(out.rglob("*.part")) == [], f"{where}: temporaries left"
