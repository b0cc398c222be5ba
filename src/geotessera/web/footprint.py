"""Where a mosaic holds data, and the web tiles that cover only that.

A mosaic of a spread-out region (a Zarr store's preview of several continents, two far-apart
study areas) is mostly transparent: enumerating every tile of its bounding box at zoom 15 means
millions of empty tiles. Instead the mosaic's data mask (alpha, or nodata) is read strip by
strip and reduced to cells of :data:`CELL_PX` x :data:`CELL_PX` pixels; a web tile is cut only
if it meets a cell holding data. Memory: one strip of the mask, and one bit per cell.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import InvalidInputError

#: Side of the cells (mosaic pixels) the data mask is reduced to.
CELL_PX = 64
#: Mask rows read at once (a multiple of :data:`CELL_PX`).
STRIP_ROWS = 1024
_MAX_LAT = 85.0511287798066


def data_cells(mosaic: str | os.PathLike[str], *, cell_px: int = CELL_PX) -> npt.NDArray[np.float64]:
    """Bounds (min_lon, min_lat, max_lon, max_lat), degrees, of the mosaic's cells holding data.

    Returns an (N, 4) array; a cell is ``cell_px`` x ``cell_px`` pixels (fewer at the right and
    bottom edges). A mosaic without a mask (no alpha, no nodata) is all data.
    """
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(mosaic) as ds:
        rows = max(cell_px, STRIP_ROWS // cell_px * cell_px)
        n_cy, n_cx = -(-ds.height // cell_px), -(-ds.width // cell_px)
        has = np.zeros((n_cy, n_cx), dtype=bool)
        for r0 in range(0, ds.height, rows):
            h = min(rows, ds.height - r0)
            mask = ds.dataset_mask(window=Window(0, r0, ds.width, h)) > 0
            pad = np.zeros((-(-h // cell_px) * cell_px, n_cx * cell_px), dtype=bool)
            pad[:h, : ds.width] = mask
            cells = pad.reshape(pad.shape[0] // cell_px, cell_px, n_cx, cell_px).any(axis=(1, 3))
            has[r0 // cell_px : r0 // cell_px + cells.shape[0]] = cells
        cy, cx = np.nonzero(has)
        boxes = [
            _cell_boxes(ds, cy[i : i + _BATCH], cx[i : i + _BATCH], cell_px)
            for i in range(0, cy.size, _BATCH)
        ]
    return np.concatenate(boxes) if boxes else np.empty((0, 4), dtype=np.float64)


_BATCH = 65_536
"""Cells placed on the map at once (memory: a few MB of coordinates per batch)."""


def _cell_boxes(ds: Any, cy: npt.NDArray[Any], cx: npt.NDArray[Any], cell_px: int) -> npt.NDArray[np.float64]:
    """Lon/lat boxes of cells (rows ``cy``, columns ``cx``) of the open mosaic ``ds``; a cell
    across the 180th meridian gives two boxes, one each side."""
    t = ds.transform
    col0, col1 = cx * cell_px, np.minimum((cx + 1) * cell_px, ds.width)
    row0, row1 = cy * cell_px, np.minimum((cy + 1) * cell_px, ds.height)
    # nine points of each cell (corners, edge midpoints, centre) in longitude/latitude: in
    # EPSG:4326 or 3857 the corners bound the cell; elsewhere its edges may bow a little
    fr = np.array([0.0, 0.5, 1.0])
    cols = (col0[:, None] + (col1 - col0)[:, None] * np.tile(fr, 3)[None, :]).astype(np.float64)
    rws = (row0[:, None] + (row1 - row0)[:, None] * np.repeat(fr, 3)[None, :]).astype(np.float64)
    xs = t.c + cols * t.a + rws * t.b
    ys = t.f + cols * t.d + rws * t.e
    lon, lat = _to_lonlat(ds.crs, xs.ravel(), ys.ravel())
    lon, lat = lon.reshape(-1, 9), lat.reshape(-1, 9)
    if ds.crs.to_epsg() != 4326:  # (a mosaic in degrees has them continuous already)
        # longitudes unwrapped about each cell's centre: one across the 180th meridian spans 179
        # to 181 degrees, say, where its raw values (-179 and 179) would span the whole world
        centre = lon[:, 4:5]
        lon = centre + (lon - centre + 180.0) % 360.0 - 180.0
    eps = 1e-9
    out = np.stack(
        [lon.min(axis=1) - eps, lat.min(axis=1) - eps, lon.max(axis=1) + eps, lat.max(axis=1) + eps], axis=1
    )
    for pole in (90.0, -90.0):  # a cell holding a pole meets every longitude up to it
        hit = _cell_at(ds, cy, cx, cell_px, pole)
        out[hit, 0], out[hit, 2] = -180.0, 180.0
        out[hit, 3 if pole > 0 else 1] = pole
    west, east = out[:, 0] < -180.0, out[:, 2] > 180.0  # the part past the meridian, wrapped
    out = np.concatenate([out, out[west] + [360.0, 0.0, 360.0, 0.0], out[east] - [360.0, 0.0, 360.0, 0.0]])
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], -180.0, 180.0)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], -_MAX_LAT, _MAX_LAT)
    return out[out[:, 0] < out[:, 2]]


def _cell_at(
    ds: Any, cy: npt.NDArray[Any], cx: npt.NDArray[Any], cell_px: int, lat: float
) -> npt.NDArray[np.bool_]:
    """Which of the cells holds the pole at latitude ``lat`` (none, where it has no place in the
    mosaic's CRS)."""
    from pyproj import Transformer

    if ds.crs.to_epsg() == 4326:
        return np.zeros(cy.shape, dtype=bool)
    with np.errstate(all="ignore"):
        x, y = Transformer.from_crs("EPSG:4326", ds.crs.to_wkt(), always_xy=True).transform(0.0, lat)
        col, row = ~ds.transform * (x, y)
    if not (np.isfinite(col) and np.isfinite(row) and 0 <= col < ds.width and 0 <= row < ds.height):
        return np.zeros(cy.shape, dtype=bool)
    return (cy == math.floor(row) // cell_px) & (cx == math.floor(col) // cell_px)


def _to_lonlat(crs: Any, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> tuple[Any, Any]:
    from pyproj import Transformer

    if crs.to_epsg() == 4326:
        return x, y
    tr = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def tiles_over(cells: npt.NDArray[np.float64], zooms: tuple[int, int], max_tiles: int) -> list[Any]:
    """The Web Mercator tiles (morecantile ``Tile``) meeting any of ``cells`` (see
    :func:`data_cells`) at every zoom of ``zooms`` (inclusive), ordered by zoom, then x, then y.

    Raises :class:`InvalidInputError` when there would be more than ``max_tiles``.
    """
    morecantile = require("morecantile", "viz")
    out: list[Any] = []
    if len(cells) == 0:
        return out
    w, s, e, n = (cells[:, i] for i in range(4))
    for z in range(zooms[0], zooms[1] + 1):
        side = 2**z
        # each cell's range of tiles; at low zooms many cells share one, so count distinct ranges
        ranges = np.unique(
            np.stack([_tile_x(w, side), _tile_x(e, side), _tile_y(n, side), _tile_y(s, side)], 1), axis=0
        )
        x0, x1, y0, y1 = (ranges[:, i] for i in range(4))  # north is the smaller y
        nx, ny = x1 - x0 + 1, y1 - y0 + 1
        counts = nx * ny
        room = max_tiles - len(out)
        if int(counts.max()) > room:  # one range alone: its tiles are all distinct
            raise _too_many(zooms, z, max_tiles)
        keys = np.empty(0, dtype=np.int64)
        ends = np.cumsum(counts)
        start = 0
        while start < len(ranges):  # expanded a batch of ranges at a time, so memory stays bounded
            stop = int(np.searchsorted(ends, ends[start] - counts[start] + _EXPAND, side="right"))
            stop = max(stop, start + 1)
            c, off = counts[start:stop], np.arange(int(counts[start:stop].sum()))
            cell = np.repeat(np.arange(start, stop), c)
            off -= np.repeat(np.cumsum(c) - c, c)
            xs = x0[cell] + off % nx[cell]
            ys = y0[cell] + off // nx[cell]
            keys = np.union1d(keys, xs.astype(np.int64) * side + ys)
            if keys.size > room:
                raise _too_many(zooms, z, max_tiles)
            start = stop
        out.extend(morecantile.Tile(int(k // side), int(k % side), z) for k in keys)
    return out


_EXPAND = 1 << 20
"""Tiles listed at once before their union is taken."""


def _tile_x(lon: npt.NDArray[np.float64], side: int) -> npt.NDArray[np.int64]:
    x = np.floor((lon + 180.0) / 360.0 * side)
    return np.clip(x, 0, side - 1).astype(np.int64)


def _tile_y(lat: npt.NDArray[np.float64], side: int) -> npt.NDArray[np.int64]:
    phi = np.radians(np.clip(lat, -_MAX_LAT, _MAX_LAT))
    y = np.floor((1.0 - np.arcsinh(np.tan(phi)) / math.pi) / 2.0 * side)
    return np.clip(y, 0, side - 1).astype(np.int64)


def _too_many(zooms: tuple[int, int], z: int, max_tiles: int) -> InvalidInputError:
    return InvalidInputError(
        f"zooms {zooms[0]}-{zooms[1]} would make more than {max_tiles:,} tiles for this mosaic; "
        f"lower --max-zoom (zoom {z} passes the limit)"
    )


def merge_cells(
    cells: npt.NDArray[np.float64], max_boxes: int = 2000
) -> list[tuple[float, float, float, float]]:
    """Fewer, larger boxes covering ``cells`` (see :func:`data_cells`): runs of touching cells
    in a row joined, then rows of equal extent stacked. ``[]`` if more than ``max_boxes`` remain
    (data that dense is visible on its own)."""
    tol = 1e-6
    rows: dict[tuple[float, float], list[list[float]]] = {}
    for w, s, e, n in sorted(cells.tolist(), key=lambda c: (c[1], c[0])):
        row = rows.setdefault((round(s, 6), round(n, 6)), [])
        if row and w - row[-1][2] <= tol:
            row[-1][2] = max(row[-1][2], e)
        else:
            row.append([w, s, e, n])
    stacked: dict[tuple[float, float], list[list[float]]] = {}
    for box in sorted((b for r in rows.values() for b in r), key=lambda b: (b[0], b[2], b[1])):
        column = stacked.setdefault((round(box[0], 6), round(box[2], 6)), [])
        if column and box[1] - column[-1][3] <= tol:
            column[-1][3] = max(column[-1][3], box[3])
        else:
            column.append(box)
    boxes = [(b[0], b[1], b[2], b[3]) for c in stacked.values() for b in c]
    return boxes if len(boxes) <= max_boxes else []


def native_zoom(pixel_deg: float) -> int:
    """The lowest zoom whose tiles (256 pixels) are at least as fine as ``pixel_deg`` degrees
    (at the equator): zooming further in only magnifies the mosaic's pixels."""
    return max(0, min(24, math.ceil(math.log2(360.0 / (256.0 * pixel_deg)))))


def fit_zoom(bounds: tuple[float, float, float, float], viewport_px: int = 1024) -> int:
    """The highest zoom at which ``bounds`` (degrees) fit in ``viewport_px`` x ``viewport_px``."""
    w, s, e, n = bounds
    span_x = max(e - w, 1e-9) / 360.0
    ys = _merc_y(np.array([n, s]))
    span_y = max(float(ys[1] - ys[0]), 1e-9)
    tiles = viewport_px / 256.0
    return max(0, min(24, math.floor(math.log2(tiles / max(span_x, span_y)))))


def _merc_y(lat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    phi = np.radians(np.clip(lat, -_MAX_LAT, _MAX_LAT))
    return np.asarray((1.0 - np.arcsinh(np.tan(phi)) / math.pi) / 2.0, dtype=np.float64)
