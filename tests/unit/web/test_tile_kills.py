"""Web tiles cut from a mosaic and killed at each moment: a rerun gives the tiles of the mosaic it is given.

A rerun keeps the tiles already cut (thousands at high zooms) when they came from the same
mosaic, which ``tiles.json`` records. A run killed (or interrupted) before it records its mosaic
must not leave tiles a rerun takes for the new mosaic's: the mosaic may have been drawn again in
between (``visualize`` with other bands, same file name). Each moment (``support.killpoints``)
is the moment of a SIGKILL, in turn; the mosaic is then replaced and the rerun must give the
tiles a clean run of the new mosaic gives.
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

ZOOMS = (8, 10)


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


@pytest.mark.parametrize("start", ["empty", "tiles of another mosaic"])
def test_tiles_killed_at_each_moment_then_cut_from_a_new_mosaic(start: str, tmp_path: Path) -> None:
    mosaic, out, scratch = tmp_path / "mosaic.tif", tmp_path / "tiles", tmp_path / "scratch"
    _mosaic(mosaic, 200)
    cut(str(mosaic), str(tmp_path / "first"))
    _mosaic(mosaic, 100)
    reference = tmp_path / "reference"
    cut(str(mosaic), str(reference))
    want = _tiles(reference)
    assert want and want != _tiles(tmp_path / "first")

    def begin() -> None:
        shutil.rmtree(out, ignore_errors=True)
        if start != "empty":
            shutil.copytree(tmp_path / "first", out)
        _mosaic(mosaic, 200)

    begin()
    moments = count_moments(Call(f"{__name__}:cut", (str(mosaic), str(out))), scratch).moments
    assert moments >= 2 * len(want)  # every tile, before and after its rename
    for at in range(1, moments + 1):
        begin()
        run = run_killed_at(Call(f"{__name__}:cut", (str(mosaic), str(out))), at, scratch)
        assert run.killed, f"moment {at} never came: {run.log}"
        _mosaic(mosaic, 100)
        cut(str(mosaic), str(out))
        got = _tiles(out)
        stale = sorted(k for k in want if got.get(k) != want[k])
        assert stale == [], f"killed at moment {at} of {moments}, {run.moment}: tiles of the old mosaic"
