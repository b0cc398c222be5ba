"""The tiles a Zarr build writes: their pixel grids on the zone grid, and which pixels are theirs.

Landmask GeoTIFFs give each tile's grid (when absent the grid is derived from the cell and
the tile's shape). Grids are expressed in the zone's northern CRS (EPSG:326NN): a 327NN
tile's northings get :data:`~geotessera.grid.SOUTH_OFFSET_M` subtracted, so one zone is one
continuous grid. :func:`cell_mask` says which pixel centres lie in a tile's own cell. Where
the tiles come from is :mod:`.sources`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import Transformer

from ...errors import CorruptDataError
from ...grid import SOUTH_OFFSET_M, Cell, PixelGrid, utm_zone
from ...tiles import read_landmask_grid, read_npy_header
from .sources import TileFiles

log = logging.getLogger(__name__)

#: Pixel sizes tried when a tile has no landmask and its size must be inferred (metres).
CANDIDATE_PIXEL_SIZES_M = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 120.0, 200.0, 250.0)
_EDGE_SAMPLES = 512


@dataclass(frozen=True)
class TileInput:
    """One (tile, year) to write: its files and its grid in the zone's northern CRS (EPSG:326NN)."""

    cell: Cell
    year: int
    embedding_path: Path
    scales_path: Path
    grid: PixelGrid  # epsg 326NN; transform of the top-left corner; shape (H, W)

    @property
    def zone(self) -> int:
        """UTM zone of the tile centre."""
        return utm_zone(self.cell.lon)

    @property
    def key(self) -> str:
        """``{year}/{tile name}``, used in receipts and progress events."""
        return f"{self.year}/{self.cell.name}"


def _grid_from_shape(cell: Cell, shape: tuple[int, int], name: str) -> PixelGrid:
    for p in CANDIDATE_PIXEL_SIZES_M:
        g = PixelGrid.from_cell(cell, p)
        if g.shape == shape:
            return g
    raise CorruptDataError(f"{name}: shape {shape} matches no pixel size and there is no landmask")


def northern(grid: PixelGrid) -> PixelGrid:
    """The same grid in EPSG:326NN (a 327NN grid's northings shifted by -10,000,000 m)."""
    if grid.epsg // 100 == 327:
        t = grid.transform
        return PixelGrid(grid.epsg - 100, Affine(t.a, t.b, t.c, t.d, t.e, t.f - SOUTH_OFFSET_M), grid.shape)
    if grid.epsg // 100 != 326:
        raise CorruptDataError(f"tile grid CRS EPSG:{grid.epsg} is not a UTM zone")
    return grid


def tile_inputs(files: list[TileFiles]) -> list[TileInput]:
    """The tiles of a build with their grids in the zone's northern CRS, ordered by (year, lat, lon).

    A tile's grid is its landmask's when there is one, else derived from the cell and the
    embedding's shape; a shape or CRS that contradicts the tile is :class:`CorruptDataError`.
    """
    tiles: list[TileInput] = []
    for f in sorted(files, key=lambda f: (f.year, f.cell.iy, f.cell.ix)):
        _, shape, _ = read_npy_header(f.embedding)
        lm = f.landmask
        if lm.is_file():
            grid = read_landmask_grid(lm)
        else:
            grid = _grid_from_shape(f.cell, (shape[0], shape[1]), str(f.embedding))
        if grid.shape != tuple(shape[:2]):
            raise CorruptDataError(
                f"{f.embedding}: shape {shape[:2]} differs from its landmask grid {grid.shape}"
            )
        grid = northern(grid)
        if grid.epsg % 100 != utm_zone(f.cell.lon):
            raise CorruptDataError(f"{lm}: CRS EPSG:{grid.epsg} is not the zone of the tile centre")
        tiles.append(TileInput(f.cell, f.year, f.embedding, f.scales, grid))
    return tiles


@lru_cache(maxsize=4096)
def _cell_edges(cell: Cell, epsg: int) -> tuple[npt.NDArray[np.float64], ...]:
    """Densified cell edges in the zone CRS: (west x(y), east x(y), south y(x), north y(x)) samples."""
    b = cell.bounds
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    lats = np.linspace(b.min_lat, b.max_lat, _EDGE_SAMPLES)
    lons = np.linspace(b.min_lon, b.max_lon, _EDGE_SAMPLES)
    wx, wy = tr.transform(np.full_like(lats, b.min_lon), lats)
    ex, ey = tr.transform(np.full_like(lats, b.max_lon), lats)
    sx, sy = tr.transform(lons, np.full_like(lons, b.min_lat))
    nx, ny = tr.transform(lons, np.full_like(lons, b.max_lat))
    return tuple(np.asarray(a, dtype=np.float64) for a in (wy, wx, ey, ex, sx, sy, nx, ny))


def _interp(
    v: npt.NDArray[np.float64], xp: npt.NDArray[np.float64], fp: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    order = np.argsort(xp)
    xs, fs = xp[order], fp[order]
    # linear extrapolation beyond the samples keeps pixels just outside the cell's corners correct
    out = np.interp(v, xs, fs)
    lo, hi = v < xs[0], v > xs[-1]
    if lo.any():
        out[lo] = fs[0] + (v[lo] - xs[0]) * (fs[1] - fs[0]) / (xs[1] - xs[0])
    if hi.any():
        out[hi] = fs[-1] + (v[hi] - xs[-1]) * (fs[-1] - fs[-2]) / (xs[-1] - xs[-2])
    return out


def seam_sides(cell: Cell) -> tuple[bool, bool]:
    """(west, east): whether the cell's west / east edge is its UTM zone's boundary."""
    zone = utm_zone(cell.lon)
    return utm_zone(cell.lon - 0.1) != zone or cell.ix == -1800, utm_zone(
        cell.lon + 0.1
    ) != zone or cell.ix == 1799


def cell_mask(
    cell: Cell,
    epsg: int,
    xs: npt.NDArray[np.float64],
    ys: npt.NDArray[np.float64],
    *,
    halo: bool = False,
) -> npt.NDArray[np.bool_]:
    """(len(ys), len(xs)) bool: pixel centres (x, y in EPSG ``epsg``, metres) inside the half-open cell.

    The cell's meridian edges are sampled as x(y) and its parallel edges as y(x)
    (512 samples each; interpolation error is far below a millimetre), so two
    neighbouring tiles compute the very same shared edge: every pixel centre
    belongs to exactly one cell. With ``halo``, an edge that is the zone's seam is
    open: the tile also keeps its pixels beyond the seam (no tile of this zone owns
    them), so a point near the seam finds data in either zone's grid.
    """
    wy, wx, ey, ex, sx, sy, nx, ny = _cell_edges(cell, epsg)
    x_west = _interp(ys, wy, wx)[:, None]
    x_east = _interp(ys, ey, ex)[:, None]
    y_south = _interp(xs, sx, sy)[None, :]
    y_north = _interp(xs, nx, ny)[None, :]
    x = xs[None, :]
    y = ys[:, None]
    mask: npt.NDArray[np.bool_] = (y >= y_south) & (y < y_north)
    open_west, open_east = seam_sides(cell) if halo else (False, False)
    if not open_west:
        mask &= x >= x_west
    if not open_east:
        mask &= x < x_east
    return mask


def pixel_size_of(tiles: list[TileInput]) -> float:
    """The common pixel size (m) of ``tiles``; mixed sizes are an error."""
    sizes = {t.grid.res for t in tiles}
    if len(sizes) != 1:
        raise CorruptDataError(f"tiles have different pixel sizes {sorted(sizes)}; one store needs one")
    p = sizes.pop()
    if not (math.isfinite(p) and p > 0):
        raise CorruptDataError(f"invalid pixel size {p}")
    return p
