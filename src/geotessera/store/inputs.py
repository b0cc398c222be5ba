"""The tiles a Zarr build reads: discovery in a local bucket-layout mirror, pixel grids, cell masks.

A build source is a directory in the seed bucket layout (``formats.md`` §3):
``{vpath}/manifest.parquet`` lists the tiles (when absent the embedding
directory is scanned), landmask GeoTIFFs give each tile's grid (when absent the
grid is derived from the cell and the tile's shape). Grids are expressed in the
zone's northern CRS (EPSG:326NN): a 327NN tile's northings get 10,000,000 m
subtracted, so one zone is one continuous grid.
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

from ..datasets import DatasetId
from ..errors import CorruptDataError, NotCoveredError
from ..grid import Cell, PixelGrid, utm_zone
from ..layouts import S3_LAYOUT
from ..tiles import read_landmask_grid, read_npy_header

log = logging.getLogger(__name__)

SOUTH_OFFSET_M = 10_000_000.0
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


def _manifest_rows(root: Path, ds: DatasetId, years: set[int] | None) -> list[tuple[int, Cell]] | None:
    path = root / S3_LAYOUT.manifest_key(ds)
    if not path.is_file():
        return None
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for bad files
        raise CorruptDataError(f"{path}: cannot read manifest ({exc})") from exc
    names = set(table.column_names)
    if "variant" in names:
        table = table.filter(pc.equal(table.column("variant"), ds.variant))
    if "version" in names:
        versions = [DatasetId.parse(v, ds.variant).version for v in table.column("version").to_pylist()]
        table = table.filter(pa_mask([v == ds.version for v in versions]))
    if "year" not in names:
        raise CorruptDataError(f"{path}: manifest lacks the 'year' column")
    if "lon_i" in names and "lat_i" in names:
        lon_i = table.column("lon_i").to_numpy().astype(np.int64)
        lat_i = table.column("lat_i").to_numpy().astype(np.int64)
    elif "lon" in names and "lat" in names:
        lon_i = np.round(table.column("lon").to_numpy() * 100).astype(np.int64)
        lat_i = np.round(table.column("lat").to_numpy() * 100).astype(np.int64)
    else:
        raise CorruptDataError(f"{path}: manifest lacks lon/lat (or lon_i/lat_i) columns")
    out = []
    for y, lo, la in zip(table.column("year").to_pylist(), lon_i.tolist(), lat_i.tolist(), strict=True):
        if years is None or int(y) in years:
            out.append((int(y), Cell.from_key(lo, la)))
    return out


def pa_mask(values: list[bool]) -> object:
    """A pyarrow boolean array (helper for table filters)."""
    import pyarrow as pa

    return pa.array(values, type=pa.bool_())


def _scan_rows(root: Path, ds: DatasetId, years: set[int] | None) -> list[tuple[int, Cell]]:
    base = root / ds.vpath / ds.emb_dir
    out: list[tuple[int, Cell]] = []
    if not base.is_dir():
        return out
    for ydir in sorted(base.iterdir()):
        if not (ydir.is_dir() and ydir.name.isdigit()) or (years is not None and int(ydir.name) not in years):
            continue
        for tdir in sorted(ydir.glob("grid_*")):
            out.append((int(ydir.name), Cell.from_name(tdir.name)))
    return out


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


def discover_tiles(
    root: Path, ds: DatasetId, *, years: set[int] | None = None, zones: set[int] | None = None
) -> list[TileInput]:
    """The tiles of ``ds`` under a local mirror ``root`` (bucket layout), filtered by years and zones."""
    rows = _manifest_rows(root, ds, years)
    if rows is None:
        rows = _scan_rows(root, ds, years)
    tiles: list[TileInput] = []
    for year, cell in sorted(set(rows), key=lambda r: (r[0], r[1].iy, r[1].ix)):
        if zones is not None and utm_zone(cell.lon) not in zones:
            continue
        emb = root / S3_LAYOUT.embedding_key(ds, year, cell)
        scl = root / S3_LAYOUT.scales_key(ds, year, cell)
        if not (emb.is_file() and scl.is_file()):
            log.warning("skipping %s/%s: embedding or scales file missing under %s", year, cell.name, root)
            continue
        _, shape, _ = read_npy_header(emb)
        lm = root / S3_LAYOUT.landmask_key(ds, cell)
        grid = (
            read_landmask_grid(lm) if lm.is_file() else _grid_from_shape(cell, (shape[0], shape[1]), str(emb))
        )
        if grid.shape != tuple(shape[:2]):
            raise CorruptDataError(f"{emb}: shape {shape[:2]} differs from its landmask grid {grid.shape}")
        grid = northern(grid)
        if grid.epsg % 100 != utm_zone(cell.lon):
            raise CorruptDataError(f"{lm}: CRS EPSG:{grid.epsg} is not the zone of the tile centre")
        tiles.append(TileInput(cell, year, emb, scl, grid))
    if not tiles:
        raise NotCoveredError(f"no tiles of dataset {ds} found under {root} for the requested years/zones")
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
