"""Regions: an output grid for a lon/lat box, filled strip by strip from one or more zones.

The output grid defaults to the UTM zone of the box centre (EPSG:326NN north,
327NN south) at the store's pixel size, snapped to that lattice, so the centre
zone is copied window by window with no resampling. Other zones (a box across
a seam) are resampled onto it by nearest neighbour: each output pixel centre is
projected into the zone's CRS and takes the pixel containing it. Zones hold
only pixels of their own cells, so the merge has no gap and no double cover.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS, Transformer

from ...errors import InvalidInputError, ScaleWarning
from ...grid import SOUTH_OFFSET_M, as_bbox, cells_in_bbox, points_to_keys, utm_epsg, utm_zone, utm_zones
from .chunk_reader import ChunkReader
from .points import ZoneLookup, gather_into
from .windows import read_window
from .zones import NODATA, OUTSIDE, Zone

_DENSIFY = 21
STRIP_ROWS = 256


class _StripFields(NamedTuple):
    data: npt.NDArray[np.float32]
    transform: Affine
    crs: CRS


class Strip(_StripFields):
    """A row strip of a region: ``(data (h, W, B) float32, transform, crs)``, as the published
    reader yields it, plus ``row``, the strip's first row in the region (``strip.row``)."""

    row: int

    def __new__(cls, row: int, data: npt.NDArray[np.float32], transform: Affine, crs: CRS) -> Strip:
        self = super().__new__(cls, data, transform, crs)
        self.row = row
        return self

    def __repr__(self) -> str:
        return f"Strip(row={self.row}, data={self.data.shape}, crs={self.crs.to_string()!r})"


def region_grid(
    bbox: Any, gsd: float, target_crs: Any = None, resolution: float | None = None
) -> tuple[CRS, Affine, tuple[int, int], list[int]]:
    """(crs, transform, (H, W), zones) of the output grid covering ``bbox`` (lon/lat degrees)."""
    b = as_bbox(bbox)
    if b.min_lon == b.max_lon or b.min_lat == b.max_lat:
        raise InvalidInputError(f"bbox {tuple(b)} is empty (zero width or height); give a box with area")
    lon_c, lat_c = (b.min_lon + b.max_lon) / 2, (b.min_lat + b.max_lat) / 2
    if target_crs is None:
        crs = CRS.from_epsg(utm_epsg(lon_c, lat_c))
    else:
        try:
            crs = CRS.from_user_input(target_crs)
        except Exception as exc:  # pyproj raises CRSError
            raise InvalidInputError(f"target_crs {target_crs!r} is not a CRS pyproj understands") from exc
    if resolution is None:
        if not crs.is_projected:
            raise InvalidInputError("a geographic target_crs needs an explicit resolution (in degrees)")
        resolution = gsd
    res = float(resolution)
    if not (math.isfinite(res) and res > 0):
        raise InvalidInputError(f"resolution must be a positive number, got {resolution!r}")
    t = np.linspace(0.0, 1.0, _DENSIFY)
    lons = np.concatenate(
        [b.min_lon + t * (b.max_lon - b.min_lon)] * 2
        + [np.full_like(t, b.min_lon), np.full_like(t, b.max_lon)]
    )
    lats = np.concatenate(
        [np.full_like(t, b.min_lat), np.full_like(t, b.max_lat)]
        + [b.min_lat + t * (b.max_lat - b.min_lat)] * 2
    )
    xs, ys = Transformer.from_crs(4326, crs, always_xy=True).transform(lons, lats)
    x0 = math.floor(float(np.min(xs)) / res + 1e-9) * res
    y0 = math.ceil(float(np.max(ys)) / res - 1e-9) * res
    w = max(1, math.ceil((float(np.max(xs)) - x0) / res - 1e-9))
    h = max(1, math.ceil((y0 - float(np.min(ys))) / res - 1e-9))
    zones = sorted({utm_zone(c.lon) for c in cells_in_bbox(b)}, key=lambda z: (z != utm_zone(lon_c), z))
    return crs, Affine(res, 0.0, x0, 0.0, -res, y0), (h, w), zones


def _aligned(
    epsg: int | None, transform: Affine, zone_epsg: int, zx0: float, zy0: float, zres: float
) -> tuple[int, int] | None:
    """(row offset, col offset) of the output grid in the zone grid when they share a lattice, else None."""
    if epsg == zone_epsg:
        shift = 0.0
    elif epsg == zone_epsg + 100:
        shift = -SOUTH_OFFSET_M
    else:
        return None
    if not math.isclose(transform.a, zres, rel_tol=1e-9):
        return None
    dc = (transform.c - zx0) / zres
    dr = (zy0 - (transform.f + shift)) / zres
    if abs(dc - round(dc)) > 1e-6 or abs(dr - round(dr)) > 1e-6:
        return None
    return round(dr), round(dc)


def _owners(crs: CRS, transform: Affine, r0: int, r1: int, w: int) -> np.ndarray:
    """(r1 - r0, w) UTM zone of the cell holding each output pixel centre."""
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(r0, r1) + 0.5)
    px, py = transform @ (cols.ravel(), rows.ravel())
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(px, py)
    lon_i, _ = points_to_keys(np.clip(lon, -180, 180), np.clip(lat, -90, 90))
    return utm_zones(lon_i / 100).reshape(r1 - r0, w)


def _boundaries(h: int, strip_rows: int | None, first_row: int, chunk_rows: int) -> list[int]:
    """Strip start rows for strips of at most ``strip_rows`` rows (None: one strip).

    Cuts fall on the zone's chunk rows (``first_row`` is the zone row of output row 0), so no
    row of inner chunks is decoded twice: strips are whole multiples of the chunk height, the
    first one shorter when the region does not start on a chunk row. A ``strip_rows`` below
    one chunk row is honoured (its chunks are then decoded once per strip that needs them).
    """
    if strip_rows is None or strip_rows >= h:
        return [0]
    if strip_rows < chunk_rows:
        return list(range(0, h, max(1, strip_rows)))
    step = strip_rows - strip_rows % chunk_rows
    first = -first_row % chunk_rows
    return [0, *(r for r in range(first, h, step) if r > 0)]


class RegionPlan:
    """How a region grid is filled: the zones holding the year, and the one zone read window by
    window when the grid is a plain window of it (``direct``: the zone and its (row, col) offset)."""

    def __init__(
        self,
        zone: ZoneLookup,
        crs: CRS,
        transform: Affine,
        shape: tuple[int, int],
        zones: list[int],
        year: int,
    ) -> None:
        self.zone, self.crs, self.transform, self.shape, self.zones, self.year = (
            zone,
            crs,
            transform,
            shape,
            zones,
            year,
        )
        self.epsg = crs.to_epsg()
        found = [(z, zz) for z in zones if (zz := zone(z)) is not None and year in zz.years]
        self.direct: tuple[Zone, tuple[int, int]] | None = None
        if len(zones) == 1 and len(found) == 1:
            zz = found[0][1]
            off = _aligned(self.epsg, transform, zz.info.epsg, zz.info.x0, zz.info.y0, zz.info.res)
            if off is not None and zz.band_axis_first:
                self.direct = (zz, off)

    def starts(self, strip_rows: int | None) -> list[int]:
        """First rows of the strips (see :func:`_boundaries`)."""
        h = self.shape[0]
        if self.direct is not None:
            zz, off = self.direct
            return _boundaries(h, strip_rows, off[0], zz.embeddings.inner_shape[2])
        return list(range(0, h, strip_rows or STRIP_ROWS))

    def fill(
        self,
        reader: ChunkReader,
        r0: int,
        r1: int,
        out: npt.NDArray[Any],
        scales_out: npt.NDArray[np.float32] | None = None,
    ) -> int:
        """Fill output rows [r0, r1) into ``out`` (r1 - r0, W, B): float32 values, or with
        ``scales_out`` (r1 - r0, W) the int8 stored values and their scales. Every pixel is
        written (NaN, or 0 with a NaN scale, where there is no value). Returns the implausible
        scale count."""
        w = self.shape[1]
        year = self.year
        have = np.zeros((r1 - r0, w), dtype=bool)
        if self.direct is not None:  # writes every pixel: no prefill
            dz, doff = self.direct
            return read_window(
                reader,
                dz,
                dz.years.index(year),
                doff[0] + r0,
                doff[0] + r1,
                doff[1],
                doff[1] + w,
                out,
                have,
                None,
                scales_out,
            )
        out.fill(np.nan if scales_out is None else 0)
        if scales_out is not None:
            scales_out.fill(np.nan)
        n_bad = 0
        zones = self.zones
        owner = _owners(self.crs, self.transform, r0, r1, w) if len(zones) > 1 else None
        passes = [(z, owner == z if owner is not None else None) for z in zones]
        if owner is not None:  # second pass: any zone may fill what the owning zone left empty
            passes += [(z, None) for z in zones]
        for z, allow in passes:
            zz = self.zone(z)
            if zz is None or year not in zz.years:
                continue
            t = zz.years.index(year)
            info = zz.info
            off = _aligned(self.epsg, self.transform, info.epsg, info.x0, info.y0, info.res)
            if off is not None:
                n_bad += read_window(
                    reader, zz, t, off[0] + r0, off[0] + r1, off[1], off[1] + w, out, have, allow, scales_out
                )
                continue
            cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(r0, r1) + 0.5)
            px, py = self.transform @ (cols.ravel(), rows.ravel())
            to_zone = Transformer.from_crs(self.crs, CRS.from_epsg(info.epsg), always_xy=True)
            zx, zy = to_zone.transform(px, py)
            zc = np.floor((np.asarray(zx) - info.x0) / info.res).astype(np.int64)
            zr = np.floor((info.y0 - np.asarray(zy)) / info.res).astype(np.int64)
            ok = (zr >= 0) & (zr < info.shape[0]) & (zc >= 0) & (zc < info.shape[1]) & ~have.ravel()
            if allow is not None:
                ok &= allow.ravel()
            idx = np.flatnonzero(ok)
            n = len(idx)
            vals = np.full((n, zz.n_bands), np.nan, dtype=np.float32)
            st = np.full(n, OUTSIDE, dtype=np.uint8)
            quant = None
            if scales_out is not None:
                quant = (np.zeros((n, zz.n_bands), dtype=np.int8), np.full(n, np.nan, dtype=np.float32))
            n_bad += gather_into(reader, zz, t, zr[idx], zc[idx], vals, np.arange(n), st, quantized=quant)
            keep = st != NODATA
            if scales_out is None or quant is None:
                out.reshape(-1, out.shape[2])[idx[keep]] = vals[keep]
            else:
                out.reshape(-1, out.shape[2])[idx[keep]] = quant[0][keep]
                scales_out.reshape(-1)[idx[keep]] = quant[1][keep]
            have.reshape(-1)[idx[keep]] = True
        return n_bad


def warn_implausible(n_bad: int, stacklevel: int = 3) -> None:
    """The :class:`ScaleWarning` of a read that met ``n_bad`` implausible scales (none when 0)."""
    if n_bad:
        warnings.warn(
            f"{n_bad} pixels have implausible scales outside [0, 1); returned as NaN",
            ScaleWarning,
            stacklevel=stacklevel + 1,
        )


def iter_strips(
    zone: ZoneLookup,
    reader: ChunkReader,
    gsd: float,
    bbox: Any,
    year: int,
    *,
    n_bands: int = 128,
    target_crs: Any = None,
    resolution: float | None = None,
    strip_rows: int | None = STRIP_ROWS,
    into: npt.NDArray[np.float32] | None = None,
) -> Iterator[Strip]:
    """Row strips (h <= strip_rows, W, B) float32 of the region; see :meth:`GeoTesseraZarr.iter_region`.

    ``zone(z)``: the readable zone ``z`` of the store (None when absent), reading ``n_bands``
    bands; ``gsd``: its pixel size (m). ``strip_rows`` None: one strip when the region is a
    plain window of one zone (read_region), else 256 rows. ``into``: fill this (H, W, B) array
    in place instead of allocating strips.
    """
    crs, transform, shape, zones = region_grid(bbox, gsd, target_crs, resolution)
    plan = RegionPlan(zone, crs, transform, shape, zones, year)
    return strips_of(plan, reader, n_bands, strip_rows, into)


def strips_of(
    plan: RegionPlan,
    reader: ChunkReader,
    n_bands: int,
    strip_rows: int | None,
    into: npt.NDArray[np.float32] | None = None,
) -> Iterator[Strip]:
    """Row strips (h, W, B) float32 of a region plan (see :func:`iter_strips`)."""
    h, w = plan.shape
    starts = plan.starts(strip_rows)
    n_bad = 0
    for r0, r1 in zip(starts, [*starts[1:], h], strict=True):
        out = into[r0:r1] if into is not None else np.empty((r1 - r0, w, n_bands), dtype=np.float32)
        n_bad += plan.fill(reader, r0, r1, out)
        yield Strip(r0, out, plan.transform @ Affine.translation(0, r0), plan.crs)
    warn_implausible(n_bad)


def iter_quantized_strips(
    reader: ChunkReader,
    plan: RegionPlan,
    strip_rows: int | None,
    n_bands: int,
    into: tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]] | None = None,
) -> Iterator[tuple[int, npt.NDArray[np.int8], npt.NDArray[np.float32]]]:
    """``(first row, int8 (h, W, B), scales (h, W))`` strips of a region plan: the stored values,
    0 and a NaN scale where there is none. ``into``: fill these (H, W, B) and (H, W) arrays."""
    h, w = plan.shape
    starts = plan.starts(strip_rows)
    n_bad = 0
    for r0, r1 in zip(starts, [*starts[1:], h], strict=True):
        if into is not None:
            q, s = into[0][r0:r1], into[1][r0:r1]
        else:
            q = np.empty((r1 - r0, w, n_bands), dtype=np.int8)
            s = np.empty((r1 - r0, w), dtype=np.float32)
        n_bad += plan.fill(reader, r0, r1, q, s)
        yield r0, q, s
    warn_implausible(n_bad)
