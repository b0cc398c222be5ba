"""Reading one window of an output grid, (h, w, 128) float32, on whatever process runs the task.

An output grid (:class:`~geotessera.analysis.grids.OutputGrid`) lies in one UTM CRS on the
lattice of its tiles. A pixel takes the value of the tile owning the 0.1-degree cell under
its centre, when that cell is one of the grid's cells and the centre lies inside the
area's shape; every other pixel is NaN. Two readers, both small picklable values, so a
dask task carries them to any worker:

- :class:`TileWindows`: the tiles' ``.npy`` files, memory-mapped (only the window is read);
- :class:`ZarrWindows`: a geoemb Zarr store, opened by its URL once per process through
  the public ``GeoTesseraZarr.open_zone`` (zone grids are 326NN; a 327NN output grid is the
  same lattice shifted by 10,000 km).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from pyproj import Transformer

from ..grid import PixelGrid, points_to_keys
from ..tiles import dequantize_embedding, load_tile_arrays

N_BANDS = 128
SOUTH_OFFSET_M = 10_000_000.0
OWNER_STEP = 16


def pack_cells(ix: npt.ArrayLike, iy: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """One int64 per cell index pair (ix, iy), as used to mark the cells a window may show."""
    return np.asarray(iy, dtype=np.int64) * 4096 + (np.asarray(ix, dtype=np.int64) + 2048)


@lru_cache(maxsize=64)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


@dataclass(frozen=True)
class Window:
    """A window of an output grid: its CRS, the transform of its top-left pixel, (h, w), the
    cells it may show (packed, see :func:`pack_cells`) and the clipped shape (lon/lat WKB;
    None: no clipping)."""

    epsg: int
    transform: Affine
    shape: tuple[int, int]
    cells: tuple[int, ...]
    shape_wkb: bytes | None = None

    def _lonlat(
        self, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Lon/lat (len(rows), len(cols)) of the pixel centres at ``rows`` x ``cols``."""
        t = self.transform
        xx, yy = np.meshgrid(t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e)
        lon, lat = _to_lonlat(self.epsg).transform(xx, yy)
        return np.clip(np.asarray(lon), -180.0, 180.0), np.clip(np.asarray(lat), -90.0, 90.0)

    def owners(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """(h, w) packed owner cell of each pixel centre, and whether the pixel is shown.

        Owners are projected exactly on a lattice of every ``OWNER_STEP``-th pixel; a
        lattice square whose four corners share a cell lies in it (cell edges are
        straight to well under a millimetre at this scale), so only squares crossed by
        a cell edge are projected pixel by pixel.
        """
        h, w = self.shape
        rs = np.unique(np.r_[np.arange(0, h, OWNER_STEP), h - 1]).astype(np.int64)
        cs = np.unique(np.r_[np.arange(0, w, OWNER_STEP), w - 1]).astype(np.int64)
        owner = np.empty((h, w), dtype=np.int64)
        if self.shape_wkb is not None or len(rs) < 2 or len(cs) < 2:
            lon, lat = self._lonlat(np.arange(h), np.arange(w))
            owner[:] = _cell_keys(lon, lat)
        else:
            coarse = _cell_keys(*self._lonlat(rs, cs))
            same = (coarse[:-1, :-1] == coarse[1:, :-1]) & (coarse[:-1, :-1] == coarse[:-1, 1:])
            same &= coarse[:-1, :-1] == coarse[1:, 1:]
            a_of = np.clip(np.searchsorted(rs, np.arange(h), side="right") - 1, 0, len(rs) - 2)
            b_of = np.clip(np.searchsorted(cs, np.arange(w), side="right") - 1, 0, len(cs) - 2)
            owner[:] = coarse[a_of[:, None], b_of[None, :]]
            for a, b in zip(*np.nonzero(~same), strict=True):
                r0, r1, c0, c1 = rs[a], rs[a + 1] + 1, cs[b], cs[b + 1] + 1
                owner[r0:r1, c0:c1] = _cell_keys(*self._lonlat(np.arange(r0, r1), np.arange(c0, c1)))
        shown = np.zeros((h, w), dtype=bool)
        for key in self.cells:
            shown |= owner == key
        if self.shape_wkb is not None and shown.any():
            geom = shapely.from_wkb(self.shape_wkb)
            rr, cc = np.nonzero(shown)
            t = self.transform
            lon, lat = _to_lonlat(self.epsg).transform(t.c + (cc + 0.5) * t.a, t.f + (rr + 0.5) * t.e)
            shown[rr, cc] = shapely.contains_xy(geom, np.asarray(lon), np.asarray(lat))
        return owner, shown


def _cell_keys(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Packed cell of each lon/lat point (any shape)."""
    lon_i, lat_i = points_to_keys(lon.ravel(), lat.ravel())
    keys = pack_cells((lon_i.astype(np.int64) - 5) // 10, (lat_i.astype(np.int64) - 5) // 10)
    return keys.reshape(lon.shape)


class WindowSource:
    """Reads windows; subclasses are frozen dataclasses (picklable, cheap to tokenise)."""

    def read(self, window: Window) -> npt.NDArray[np.float32]:
        """(h, w, 128) float32 of ``window``; NaN where nothing is shown or there is no data."""
        raise NotImplementedError

    def restrict(self, grid: PixelGrid) -> WindowSource:
        """The reader reduced to what can fall inside ``grid`` (a block's pixel grid)."""
        return self


@dataclass(frozen=True)
class TilePiece:
    """One tile: cell indices, its ``.npy`` paths and its pixel grid."""

    ix: int
    iy: int
    embedding: str
    scales: str
    grid: PixelGrid


def _offset(inner: Affine, outer: Affine) -> tuple[int, int]:
    """(row, col) of ``inner``'s top-left pixel in ``outer`` (same lattice)."""
    return round((outer.f - inner.f) / outer.a), round((inner.c - outer.c) / outer.a)


@dataclass(frozen=True)
class TileWindows(WindowSource):
    """Windows assembled from memory-mapped tiles (see the module docstring)."""

    pieces: tuple[TilePiece, ...]

    def restrict(self, grid: PixelGrid) -> TileWindows:
        keep = []
        for p in self.pieces:
            r, c = _offset(p.grid.transform, grid.transform)
            if r < grid.height and c < grid.width and r + p.grid.height > 0 and c + p.grid.width > 0:
                keep.append(p)
        return TileWindows(tuple(keep))

    def read(self, window: Window) -> npt.NDArray[np.float32]:
        h, w = window.shape
        out = np.full((h, w, N_BANDS), np.nan, dtype=np.float32)
        owner, shown = window.owners()
        for p in self.pieces:
            if p.grid.epsg != window.epsg:
                continue
            r, c = _offset(p.grid.transform, window.transform)
            r0, r1 = max(r, 0), min(r + p.grid.height, h)
            c0, c1 = max(c, 0), min(c + p.grid.width, w)
            if r0 >= r1 or c0 >= c1:
                continue
            mask = shown[r0:r1, c0:c1] & (owner[r0:r1, c0:c1] == pack_cells(p.ix, p.iy))
            if not mask.any():
                continue
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            a0, a1 = r0 + int(rows[0]), r0 + int(rows[-1]) + 1
            b0, b1 = c0 + int(cols[0]), c0 + int(cols[-1]) + 1
            arrays = load_tile_arrays(p.embedding, p.scales)
            q = arrays.quantized[a0 - r : a1 - r, b0 - c : b1 - c]
            s = arrays.scales[a0 - r : a1 - r, b0 - c : b1 - c]
            vals = dequantize_embedding(q, s, threads=1, name=p.embedding)
            m = mask[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0]
            out[a0:a1, b0:b1][m] = vals[m]
        return out


_open_lock = threading.Lock()


@lru_cache(maxsize=8)
def _open_store(url: str) -> Any:
    from ..store import GeoTesseraZarr

    return GeoTesseraZarr(url)


@lru_cache(maxsize=32)
def _open_zone(url: str, zone: int) -> tuple[Any, Any, Affine, list[int]]:
    """(embeddings dask array (T, 128, H, W), scales (T, H, W), zone transform, years) of a zone."""
    ds = _open_store(url).open_zone(zone=zone)
    x = np.asarray(ds["x"].values[:2], dtype=np.float64)
    y = np.asarray(ds["y"].values[:2], dtype=np.float64)
    res = float(x[1] - x[0]) if len(x) > 1 else float(y[0] - y[1])
    transform = Affine(res, 0.0, float(x[0]) - res / 2, 0.0, -res, float(y[0]) + res / 2)
    years = [int(v) for v in np.asarray(ds["time"].values)]
    return ds["embeddings"].data, ds["scales"].data, transform, years


@dataclass(frozen=True)
class ZarrWindows(WindowSource):
    """Windows read from zone ``zone`` of the store at ``url`` for ``year`` (see the module docstring)."""

    url: str
    zone: int
    year: int

    def read(self, window: Window) -> npt.NDArray[np.float32]:
        h, w = window.shape
        out = np.full((h, w, N_BANDS), np.nan, dtype=np.float32)
        _, shown = window.owners()
        if not shown.any():
            return out
        with _open_lock:  # one open per process, even when several tasks start together
            emb, scl, zt, years = _open_zone(self.url, self.zone)
        if self.year not in years:
            return out
        t = years.index(self.year)
        shift = SOUTH_OFFSET_M if window.epsg == 32700 + self.zone else 0.0
        top = Affine(
            window.transform.a, 0.0, window.transform.c, 0.0, window.transform.e, window.transform.f - shift
        )
        r, c = _offset(top, zt)
        zh, zw = scl.shape[1:]
        rows, cols = np.flatnonzero(shown.any(axis=1)), np.flatnonzero(shown.any(axis=0))
        a0, a1 = max(r + int(rows[0]), 0), min(r + int(rows[-1]) + 1, zh)
        b0, b1 = max(c + int(cols[0]), 0), min(c + int(cols[-1]) + 1, zw)
        if a0 >= a1 or b0 >= b1:
            return out
        q = np.asarray(emb[t, :, a0:a1, b0:b1].compute(scheduler="synchronous"))
        s = np.asarray(scl[t, a0:a1, b0:b1].compute(scheduler="synchronous"), dtype=np.float32)
        vals = dequantize_embedding(
            np.ascontiguousarray(q.transpose(1, 2, 0)), s, threads=1, name=f"{self.url} zone {self.zone}"
        )
        sub = out[a0 - r : a1 - r, b0 - c : b1 - c]
        m = shown[a0 - r : a1 - r, b0 - c : b1 - c]
        sub[m] = vals[m]
        return out


def block_grid(epsg: int, transform: Affine, r0: int, r1: int, c0: int, c1: int) -> PixelGrid:
    """The pixel grid of rows r0:r1, cols c0:c1 of a grid with ``transform``."""
    return PixelGrid(epsg, transform @ Affine.translation(c0, r0), (r1 - r0, c1 - c0))


def lattice_floor(value: float, res: float) -> float:
    """``value`` snapped down to a multiple of ``res`` (with a tolerance for float noise)."""
    return math.floor(value / res + 1e-9) * res
