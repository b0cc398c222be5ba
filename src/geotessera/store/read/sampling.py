"""Embeddings at lon/lat points: which zone and pixel each point reads (the lookup rules).

- **Zone**: the UTM zone of the point's 0.1-degree tile (``floor((lon + 180) / 6) + 1``).
- **Pixel**: the one containing the point (``floor`` of its grid coordinates); a point up to
  one pixel beyond the grid edge snaps to the edge pixel, anything farther is ``outside``.
- **Seams** (``cross_zone``): a point within :data:`SEAM_DEG` of its zone's west (east) edge
  whose own zone has no data there (nodata or outside) is read from the western (eastern)
  neighbour too, wrapping 60 <-> 1. A water answer of the owning zone stands.
- **Repair** (``search_px`` = r > 0): a point whose pixel was never written (the fill value,
  +inf, or NaN in stores declaring NaN as nodata) takes the nearest valid pixel of the
  (2r + 1)^2 window around it (Euclidean in pixels; ties to the northernmost, then the
  westernmost), in its own zone first, then in a seam neighbour. Water is never searched
  past, nor an implausible scale.
- **Precedence** across zones: valid, then water, then nodata, then outside.

Everything is vectorised per zone: each inner chunk is read once (:mod:`.points`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

from ...grid import points_to_keys, utm_zones
from .chunk_reader import ChunkReader
from .points import ZoneLookup, gather_into, scales_at
from .zones import NODATA, OUTSIDE, VALID, Zone, classify, unwritten

SEAM_DEG = 0.1
"""Points this close (degrees) to their zone's edge may be served by the neighbouring zone."""


@lru_cache(maxsize=64)
def transformer(src: str, dst: str) -> Transformer:
    """A cached always-xy transformer between two CRSs given as user input strings."""
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def own_zones(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """(N,) UTM zone of each point's tile (the zone that owns it)."""
    lon_i, _ = points_to_keys(lon, lat)
    return utm_zones(lon_i / 100)


def seam_neighbours(
    lon: npt.NDArray[np.float64], own: npt.NDArray[np.int64]
) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]]:
    """[(indices of points near a seam, their neighbour zone)]: west side first, then east."""
    off = lon - ((own - 1) * 6 - 180)  # degrees east of the own zone's west edge
    out = []
    for delta, near in ((-1, off < SEAM_DEG), (1, off > 6 - SEAM_DEG)):
        idx = np.flatnonzero(near)
        out.append((idx, (own[idx] + delta - 1) % 60 + 1))  # 0 -> 60, 61 -> 1
    return out


def zone_pixels(
    zone: Zone, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """(rows, cols, inside) of points on a zone grid: the pixel containing each point, clipped
    to the grid; ``inside`` False for points more than one pixel beyond it (or not finite)."""
    info = zone.info
    x, y = transformer("EPSG:4326", f"EPSG:{info.epsg}").transform(lon, lat)
    with np.errstate(invalid="ignore"):
        fc = (np.asarray(x, dtype=np.float64) - info.x0) / info.res
        fr = (info.y0 - np.asarray(y, dtype=np.float64)) / info.res
    h, w = info.shape
    ok = np.isfinite(fc) & np.isfinite(fr)
    col = np.floor(np.where(ok, fc, -9)).astype(np.int64)
    row = np.floor(np.where(ok, fr, -9)).astype(np.int64)
    inside = ok & (row >= -1) & (row <= h) & (col >= -1) & (col <= w) & (h > 0) & (w > 0)
    return np.clip(row, 0, max(h - 1, 0)), np.clip(col, 0, max(w - 1, 0)), inside


def window_offsets(radius: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """(row offsets (K,), col offsets (K,), index of the centre) of a (2r + 1)^2 search window,
    in row-major order (north first, then west)."""
    d = np.arange(-radius, radius + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    return dr, dc, int(np.flatnonzero((dr == 0) & (dc == 0))[0])


def nearest_valid(
    valid: npt.NDArray[np.bool_], dr: npt.NDArray[np.int64], dc: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """(found (M,), k (M,)): for each row of ``valid`` (M, K) over the window offsets, whether a
    valid pixel exists and the nearest one's index (Euclidean; ties: the first in row-major
    order, i.e. north, then west)."""
    big = np.iinfo(np.int64).max
    cost = np.where(valid, dr * dr + dc * dc, big)
    best = np.argmin(cost, axis=1)  # the first minimum
    return cost[np.arange(len(cost)), best] < big, best


class PointSampler:
    """One sampling run: points, their values (N, B), statuses and where they came from."""

    def __init__(
        self,
        zone: ZoneLookup,
        reader: ChunkReader,
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        n_bands: int,
    ) -> None:
        self.zone, self.reader = zone, reader
        self.lon, self.lat = lon, lat
        self.n_bands = n_bands
        self.own = own_zones(lon, lat)
        self.n_bad = 0

    def _zones(
        self, zone_of: npt.NDArray[np.int64], idx: npt.NDArray[np.intp], year: int
    ) -> list[tuple[Zone, npt.NDArray[np.intp]]]:
        """[(zone, its points)] for points ``idx`` whose zones are ``zone_of`` (zones holding ``year``)."""
        out = []
        for z in np.unique(zone_of).tolist():
            zz = self.zone(int(z))
            sel = idx[zone_of == z]
            if zz is not None and year in zz.years and len(sel):
                out.append((zz, sel))
        return out

    def exact(
        self,
        zone_of: npt.NDArray[np.int64],
        idx: npt.NDArray[np.intp],
        year: int,
        out: npt.NDArray[np.float32],
        status: npt.NDArray[np.uint8],
        holes: npt.NDArray[np.bool_],
        *,
        own: bool,
    ) -> None:
        """Read the pixel under each point ``idx`` in zone ``zone_of`` (aligned with ``idx``).

        ``own``: the zones are the points' own, so a zone holding the year (or another year)
        turns "outside" into "nodata" even where it has no pixel.
        """
        for z in np.unique(zone_of).tolist():
            zz = self.zone(int(z))
            sel = idx[zone_of == z]
            if zz is None or len(sel) == 0:
                continue
            if year not in zz.years:
                if own:
                    status[sel] = np.minimum(status[sel], NODATA)
                continue
            row, col, inside = zone_pixels(zz, self.lon[sel], self.lat[sel])
            sel, row, col = sel[inside], row[inside], col[inside]
            self.n_bad += gather_into(
                self.reader, zz, zz.years.index(year), row, col, out, sel, status, holes
            )

    def search(
        self,
        zone_of: npt.NDArray[np.int64],
        idx: npt.NDArray[np.intp],
        year: int,
        radius: int,
        out: npt.NDArray[np.float32],
        status: npt.NDArray[np.uint8],
        holes: npt.NDArray[np.bool_],
    ) -> None:
        """Repair points ``idx`` whose pixel in zone ``zone_of`` was never written: the nearest
        valid pixel within ``radius`` pixels (ties: north first, then west)."""
        dr, dc, centre = window_offsets(radius)
        for zz, sel in self._zones(zone_of, idx, year):
            row, col, inside = zone_pixels(zz, self.lon[sel], self.lat[sel])
            sel, row, col = sel[inside], row[inside], col[inside]
            if len(sel) == 0:
                continue
            h, w = zz.info.shape
            t = zz.years.index(year)
            wr, wc = row[:, None] + dr, col[:, None] + dc  # (M, K)
            ingrid = (wr >= 0) & (wr < h) & (wc >= 0) & (wc < w)
            s = np.full(wr.shape, np.nan, dtype=np.float32)
            s[ingrid] = scales_at(self.reader, zz, t, wr[ingrid], wc[ingrid])
            st, _ = classify(s, zz.scale_nodata)
            hole = unwritten(s[:, centre], zz.scale_nodata) & ingrid[:, centre]
            found, best = nearest_valid((st == VALID) & ingrid, dr, dc)
            found &= hole
            if found.any():
                k = best[found]
                self.n_bad += gather_into(
                    self.reader,
                    zz,
                    t,
                    wr[found, k],
                    wc[found, k],
                    out,
                    sel[found],
                    status,
                    holes,
                )


def sample(
    zone: ZoneLookup,
    reader: ChunkReader,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    years: Sequence[int],
    *,
    n_bands: int = 128,
    cross_zone: bool = True,
    search_px: int = 0,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], int]:
    """Values (Y, N, B) float32 (NaN where not valid), statuses (Y, N) uint8 and the count of
    implausible scales at points ``lon``, ``lat`` (N,) degrees, for each of ``years``.

    ``zone(z)`` is the readable zone ``z`` (None when the store has none), reading ``n_bands``
    bands. See the module docstring for ``cross_zone`` and ``search_px``.
    """
    ps = PointSampler(zone, reader, lon, lat, n_bands)
    n = len(lon)
    out = np.full((len(years), n, n_bands), np.nan, dtype=np.float32)
    status = np.full((len(years), n), OUTSIDE, dtype=np.uint8)
    everyone = np.arange(n)
    for yi, y in enumerate(years):
        o, st = out[yi], status[yi]
        holes = np.zeros(n, dtype=bool)
        ps.exact(ps.own, everyone, y, o, st, holes, own=True)
        seams = seam_neighbours(lon, ps.own) if cross_zone else []
        for near, other in seams:
            retry = st[near] >= NODATA
            ps.exact(other[retry], near[retry], y, o, st, holes, own=False)
        if search_px > 0:
            todo = np.flatnonzero((st == NODATA) & holes)
            if len(todo):
                ps.search(ps.own[todo], todo, y, search_px, o, st, holes)
            for near, other in seams:
                retry = (st[near] == NODATA) & holes[near]
                if retry.any():
                    ps.search(other[retry], near[retry], y, search_px, o, st, holes)
    return out, status, ps.n_bad
