"""XYZ web tiles (256 x 256 PNG, Web Mercator) cut from an RGB mosaic, in parallel, in-process.

Tiles are read with rio-tiler (``Reader.tile``: a warped read through the mosaic's
overviews) on a thread pool, one reader per thread; GDAL releases the GIL, so the work
spreads over the cores. Pixels without data are transparent; only tiles that meet the mosaic's
data are cut (:mod:`.footprint`), and one that still holds no data is not written (the viewer
shows nothing there). Each PNG is written atomically, so an interrupted run leaves only whole
tiles (a rerun removes a killed run's temporaries); a rerun keeps them unless ``force`` (or the
mosaic has changed since, which ``tiles.json`` records before the first tile is cut: a rebuild
for another mosaic that was interrupted is done again whole, and tiles without a record are
cut again).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import InvalidInputError, OutputError
from ..files import remove_stale_temps_under, write_atomic
from ..progress import ItemDone, ItemSkipped, PlanReady, ProgressSink, emit
from .footprint import data_cells, merge_cells, tiles_over

log = logging.getLogger(__name__)

META_FILE = "tiles.json"
#: The seed's web tile zooms (``--min-zoom`` / ``--max-zoom``).
DEFAULT_ZOOMS = (8, 15)
#: Refuse tile sets larger than this (a typo in --max-zoom can ask for billions of tiles).
MAX_TILES = 2_000_000


@dataclass(frozen=True)
class MosaicInfo:
    """A mosaic's ``bounds`` (min_lon, min_lat, max_lon, max_lat) and fingerprint (path, size, mtime)."""

    path: Path
    bounds: tuple[float, float, float, float]
    fingerprint: dict[str, Any]


def check_rgb_mosaic(path: str | os.PathLike[str]) -> MosaicInfo:
    """Open a mosaic and check it is 8-bit RGB or RGBA with a CRS (InvalidInputError otherwise)."""
    import rasterio
    from rasterio.warp import transform_bounds

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    try:
        with rasterio.open(p) as ds:
            count, dtype, crs = ds.count, ds.dtypes[0], ds.crs
            if crs is None:
                raise InvalidInputError(f"{p} has no CRS: it cannot be placed on a map")
            w, s, e, n = transform_bounds(crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidInputError(f"{p} is not a readable raster ({' '.join(str(exc).split())})") from None
    if count not in (3, 4) or dtype != "uint8":
        raise InvalidInputError(
            f"{p} has {count} band(s) of {dtype}; a web map needs an 8-bit RGB or RGBA mosaic "
            "(make one with `geotessera visualize`)"
        )
    st = p.stat()
    fingerprint = {"mosaic": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return MosaicInfo(p, (max(w, -180.0), max(s, -85.06), min(e, 180.0), min(n, 85.06)), fingerprint)


def check_zooms(zoom_levels: Sequence[int]) -> tuple[int, int]:
    """Validate ``(min_zoom, max_zoom)``: whole numbers, 0 <= min <= max <= 24."""
    try:
        lo, hi = (int(z) for z in zoom_levels)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"zoom levels must be two whole numbers (min, max), got {zoom_levels!r}"
        ) from None
    if not 0 <= lo <= hi <= 24:
        raise InvalidInputError(f"zoom levels must satisfy 0 <= min <= max <= 24, got min {lo}, max {hi}")
    return lo, hi


@dataclass
class TileReport:
    """Outcome of :func:`render_web_tiles`: tiles ``written``, ``kept`` (already there) and ``empty``;
    ``footprint``: boxes (min_lon, min_lat, max_lon, max_lat) around the mosaic's data, when asked (``[]``
    when there would be more than 2000)."""

    written: int = 0
    kept: int = 0
    empty: int = 0
    zooms: tuple[int, int] = (0, 0)
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    footprint: list[tuple[float, float, float, float]] = field(default_factory=list)


def render_web_tiles(
    mosaic: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    zoom_levels: Sequence[int] = (8, 15),
    *,
    force: bool = False,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    footprint: bool = False,
) -> TileReport:
    """Cut ``output_dir/{z}/{x}/{y}.png`` from an RGB(A) mosaic on ``workers`` threads (default: cores).

    ``footprint``: also give, in the report, boxes around the mosaic's data (for a page to
    outline them).
    """
    require("rio_tiler", "viz")
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    info = check_rgb_mosaic(mosaic)
    zooms = check_zooms(zoom_levels)
    cells = data_cells(info.path)
    tiles = tiles_over(cells, zooms, MAX_TILES)  # only where the mosaic has data
    out = Path(output_dir)
    meta_path = out / META_FILE
    force = force or _tiles_may_be_stale(out, meta_path, info.fingerprint)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc}") from exc
    remove_stale_temps_under(out)  # tiles a killed run was writing (one walk, not a listing per tile)
    meta = {
        "source": info.fingerprint,
        "zooms": list(zooms),
        "bounds": list(info.bounds),
        "format": "xyz-png-256",
    }
    # recorded before the first tile, so that a rerun after an interruption knows where the
    # tiles there come from; ``rewrite``: they replace another mosaic's, which some still are
    _write_meta(meta_path, {**meta, "complete": False, "rewrite": force})
    report = TileReport(zooms=zooms, bounds=info.bounds, footprint=merge_cells(cells) if footprint else [])
    emit(progress, PlanReady(len(tiles), 0, "tiles"))
    lock = threading.Lock()
    queue = iter(tiles)

    def one(reader: Any, t: Any) -> str:
        key = f"{t.z}/{t.x}/{t.y}"
        dest = out / str(t.z) / str(t.x) / f"{t.y}.png"
        if dest.exists() and not force:
            return "kept"
        try:
            img = reader.tile(t.x, t.y, t.z, tilesize=256)
        except TileOutsideBounds:
            return "empty"
        if not img.mask.any():
            dest.unlink(missing_ok=True)
            return "empty"
        data = img.render(img_format="PNG", add_mask=True, ZLEVEL=2)  # zlib level 2: a third of the time of 6
        write_atomic(dest, data, fsync=False, clean=False)  # thousands of tiles: no listing each
        emit(progress, ItemDone(key, len(data)))
        return "written"

    def worker() -> None:
        # one reader per thread, opened and closed in that thread (rasterio's GDAL env is per thread)
        with Reader(str(info.path)) as reader:
            while True:
                with lock:
                    t = next(queue, None)
                if t is None:
                    return
                outcome = one(reader, t)
                with lock:
                    setattr(report, outcome, getattr(report, outcome) + 1)
                if outcome != "written":
                    emit(progress, ItemSkipped(f"{t.z}/{t.x}/{t.y}", outcome))

    n_workers = min(workers or os.cpu_count() or 1, max(1, len(tiles)))
    try:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for f in [pool.submit(worker) for _ in range(n_workers)]:
                f.result()
    except OSError as exc:
        raise OutputError(f"cannot write tiles into {out}: {exc}") from exc
    _write_meta(meta_path, {**meta, "complete": True})
    return report


def _tiles_may_be_stale(out: Path, meta_path: Path, fingerprint: dict[str, Any]) -> bool:
    """True when tiles in ``out`` may have been cut from another mosaic than ``fingerprint``'s:
    every tile is then cut again."""
    try:
        old = json.loads(meta_path.read_text())
    except FileNotFoundError:  # tiles without a record (another program's, an older version's)
        return any(out.glob("[0-9]*/[0-9]*/*.png"))
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or old.get("source") != fingerprint:
        log.warning("the tiles in %s were made from another mosaic (or an older one); rebuilding them", out)
        return True
    return bool(old.get("rewrite")) and not old.get("complete", True)  # an interrupted rebuild


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(meta, indent=2).encode(), fsync=False)


def geotiff_to_web_tiles(
    geotiff_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    zoom_levels: Sequence[int] = (8, 15),
    use_gdal_raster: bool = False,
    *,
    force: bool = False,
    workers: int | None = None,
    progress: ProgressSink | None = None,
) -> str:
    """XYZ PNG tiles ``output_dir/{z}/{x}/{y}.png`` of an 8-bit RGB(A) GeoTIFF (published name).

    ``use_gdal_raster`` is accepted for compatibility and has no effect: no GDAL
    command-line tool is used. Returns ``output_dir`` as a string.
    """
    del use_gdal_raster
    render_web_tiles(geotiff_path, output_dir, zoom_levels, force=force, workers=workers, progress=progress)
    return str(output_dir)
