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
from .points import ZoneLookup, gather
from .windows import read_window
from .zones import NODATA, Zone

_DENSIFY = 21
STRIP_ROWS = 256


class Strip(NamedTuple):
    """A row strip of a region: ``data`` (h, W, 128) float32 starting at output row ``row``."""

    row: int
    data: npt.NDArray[np.float32]
    transform: Affine
    crs: CRS


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
    row of inner chunks is decoded twice; the first strip may then be shorter.
    """
    if strip_rows is None or strip_rows >= h:
        return [0]
    if strip_rows < chunk_rows:
        return list(range(0, h, max(1, strip_rows)))
    step = strip_rows - strip_rows % chunk_rows
    first = -first_row % chunk_rows
    return [0, *(r for r in range(first, h, step) if r > 0)]


def iter_strips(
    zone: ZoneLookup,
    reader: ChunkReader,
    gsd: float,
    bbox: Any,
    year: int,
    *,
    target_crs: Any = None,
    resolution: float | None = None,
    strip_rows: int | None = STRIP_ROWS,
    into: npt.NDArray[np.float32] | None = None,
) -> Iterator[Strip]:
    """Row strips (h <= strip_rows, W, 128) float32 of the region; see :meth:`GeoTesseraZarr.iter_region`.

    ``zone(z)``: the readable zone ``z`` of the store (None when absent); ``gsd``: its pixel
    size (m). ``strip_rows`` None: one strip when the region is a plain window of one zone
    (read_region), else 256 rows. ``into``: fill this (H, W, 128) array in place instead of
    allocating strips.
    """
    crs, transform, (h, w), zones = region_grid(bbox, gsd, target_crs, resolution)
    epsg = crs.to_epsg()
    found: list[tuple[int, Zone]] = []
    for z in zones:
        zz = zone(z)
        if zz is not None and year in zz.years:
            found.append((z, zz))
    direct = None  # the one zone holding the whole box, when read window by window
    if len(zones) == 1 and len(found) == 1:
        zz = found[0][1]
        off = _aligned(epsg, transform, zz.info.epsg, zz.info.x0, zz.info.y0, zz.info.res)
        if off is not None and zz.band_axis_first:
            direct = (zz, off)
    if direct is not None:
        eh = direct[0].embeddings.inner_shape[2]
        starts = _boundaries(h, strip_rows, direct[1][0], eh)
    else:
        starts = list(range(0, h, strip_rows or STRIP_ROWS))
    n_bad = 0
    for r0, r1 in zip(starts, [*starts[1:], h], strict=True):
        if into is not None:  # read_region: fill the caller's array in place, no copy
            out = into[r0:r1]
        else:
            out = np.empty((r1 - r0, w, 128), dtype=np.float32)
        have = np.zeros((r1 - r0, w), dtype=bool)
        if direct is not None:  # writes every pixel: no NaN prefill
            zz, off = direct
            t = zz.years.index(year)
            n_bad += read_window(reader, zz, t, off[0] + r0, off[0] + r1, off[1], off[1] + w, out, have)
            yield Strip(r0, out, transform @ Affine.translation(0, r0), crs)
            continue
        out.fill(np.nan)
        owner = _owners(crs, transform, r0, r1, w) if len(zones) > 1 else None
        passes = [(z, owner == z if owner is not None else None) for z in zones]
        if owner is not None:  # second pass: any zone may fill what the owning zone left empty
            passes += [(z, None) for z in zones]
        for z, allow in passes:
            zz = zone(z)
            if zz is None or year not in zz.years:
                continue
            t = zz.years.index(year)
            info = zz.info
            off = _aligned(epsg, transform, info.epsg, info.x0, info.y0, info.res)
            if off is not None:
                n_bad += read_window(
                    reader, zz, t, off[0] + r0, off[0] + r1, off[1], off[1] + w, out, have, allow
                )
                continue
            cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(r0, r1) + 0.5)
            px, py = transform @ (cols.ravel(), rows.ravel())
            zx, zy = Transformer.from_crs(crs, CRS.from_epsg(info.epsg), always_xy=True).transform(px, py)
            zc = np.floor((np.asarray(zx) - info.x0) / info.res).astype(np.int64)
            zr = np.floor((info.y0 - np.asarray(zy)) / info.res).astype(np.int64)
            ok = (zr >= 0) & (zr < info.shape[0]) & (zc >= 0) & (zc < info.shape[1]) & ~have.ravel()
            if allow is not None:
                ok &= allow.ravel()
            idx = np.flatnonzero(ok)
            vals, st, bad = gather(reader, zz, t, zr[idx], zc[idx])
            n_bad += bad
            keep = st != NODATA
            flat_out = out.reshape(-1, out.shape[2])
            flat_out[idx[keep]] = vals[keep]
            have.reshape(-1)[idx[keep]] = True
        yield Strip(r0, out, transform @ Affine.translation(0, r0), crs)
    if n_bad:
        warnings.warn(
            f"{n_bad} pixels have implausible scales outside [0, 1); returned as NaN",
            ScaleWarning,
            stacklevel=3,
        )
