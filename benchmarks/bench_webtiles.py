"""Web tiles per second: zooms 8-14 of the PCA mosaic of 16 real-size tiles.

The mosaic (``create_pca_mosaic`` of the 4 x 4 tiles of ``bench_visualize``'s cached store:
about 1,800 x 2,900 pixels at 16 m in EPSG:3857, with overviews) is made once in each
worker's setup. Cases:

- baseline, "serial window reads": what one writes by hand with rasterio, one thread: for
  every tile, a boundless window read of the tile's bounds at 256 x 256 from the (Web
  Mercator) mosaic (GDAL picks the overview), skipped when empty, encoded as PNG by GDAL;
- "ours": ``render_web_tiles`` (rio-tiler ``Reader.tile`` on as many threads as cores),
  tiles written atomically.

Both write the same tile set to an emptied directory on every repeat. The summary gives
tiles per second.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_visualize import _setup
from benchmarks.harness import Case, CaseResult

ZOOMS = (8, 14)
PARAMETERS = {"zooms": list(ZOOMS), "tiles_in_mosaic": 16, "workers": os.cpu_count()}


@dataclass
class _State:
    work: Path
    mosaic: Path

    @property
    def out(self) -> Path:
        return self.work / "tiles"

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _make() -> _State:
    from geotessera.visualization import create_pca_mosaic

    vis = _setup(16)
    work = Path(tempfile.mkdtemp(prefix="gt-bench-web-"))
    mosaic = Path(create_pca_mosaic(vis.tiles, work / "mosaic.tif"))
    vis.close()
    return _State(work, mosaic)


def _reset(state: _State) -> None:
    shutil.rmtree(state.out, ignore_errors=True)


def _ours(state: _State) -> dict[str, float]:
    from geotessera.web import render_web_tiles

    report = render_web_tiles(state.mosaic, state.out, ZOOMS, force=True)
    return {"tiles": float(report.written), "empty": float(report.empty)}


def _serial(state: _State) -> dict[str, float]:
    import morecantile
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.io import MemoryFile
    from rasterio.windows import from_bounds

    from geotessera.web import check_rgb_mosaic

    tms = morecantile.tms.get("WebMercatorQuad")
    info = check_rgb_mosaic(state.mosaic)
    written = 0
    with rasterio.open(state.mosaic) as vrt:  # already Web Mercator: window reads, boundless at the edges
        w, s, e, n = info.bounds  # every tile of the mosaic's bounds, as the published client cuts
        for t in tms.tiles(w, s, e, n, list(range(ZOOMS[0], ZOOMS[1] + 1)), truncate=True):
            b = tms.xy_bounds(t)
            win = from_bounds(b.left, b.bottom, b.right, b.top, vrt.transform)
            data = vrt.read(
                window=win,
                out_shape=(vrt.count, 256, 256),
                boundless=True,
                fill_value=0,
                resampling=Resampling.nearest,
            )
            if not data[3].any():
                continue
            with MemoryFile() as mem:
                with mem.open(driver="PNG", width=256, height=256, count=4, dtype="uint8") as png:
                    png.write(data)
                blob = mem.read()
            dest = state.out / str(t.z) / str(t.x) / f"{t.y}.png"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob)
            written += 1
    return {"tiles": float(written)}


def cases() -> list[Case]:
    """A serial rasterio loop (baseline) and render_web_tiles."""
    return [
        Case(
            "serial window reads",
            _serial,
            setup=_make,
            reset=_reset,
            teardown=_State.close,
            baseline=True,
            repeats=2,
            description="rasterio window read + GDAL PNG per tile, one thread",
        ),
        Case(
            "ours (render_web_tiles)",
            _ours,
            setup=_make,
            reset=_reset,
            teardown=_State.close,
            repeats=3,
            description="rio-tiler Reader.tile on a thread per core",
        ),
    ]


def summary(results: dict[str, CaseResult]) -> list[str]:
    """Tiles per second of each case."""
    lines = []
    for name, r in results.items():
        n = r.metrics.get("tiles", float("nan"))
        lines.append(f"{name}: {n:.0f} tiles in {r.median_s:.2f} s = {n / r.median_s:.0f} tiles/s")
    return lines
