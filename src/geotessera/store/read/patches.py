"""ML patches: ``size`` x ``size`` pixel windows centred on lon/lat points.

A patch holds its point in pixel ``[size // 2, size // 2]``. Where every pixel of the patch
belongs to the point's own zone (no seam inside, no ``dst_crs``) it is a plain window of the
zone grid, read unresampled in the zone's CRS (EPSG:326NN, or 327NN south of the equator with
the same pixels) and batched with the other patches of the zone (:mod:`.patch_windows`: each
inner chunk read once). Otherwise it is merged onto a grid of its own: a transverse Mercator
projection centred on the point (``dst_crs`` None), or ``dst_crs`` snapped to its lattice at
the store's pixel size, each pixel taken from the zone owning its longitude (neighbours
filling gaps), by nearest neighbour (exact: the zone pixel containing the pixel centre) or
through rasterio's ``reproject`` for another ``resampling``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS
from pyproj.crs import GeographicCRS, ProjectedCRS
from pyproj.crs.coordinate_operation import TransverseMercatorConversion

from ...errors import InvalidInputError
from ...grid import SOUTH_OFFSET_M, points_to_keys, utm_zones
from .chunk_reader import ChunkReader
from .patch_windows import group_windows, read_windows
from .points import ZoneLookup
from .regions import RegionPlan, warn_implausible
from .sampling import own_zones, transformer
from .windows import read_window
from .zones import Zone

M_PER_DEG = 111_320.0
MAX_PATCH_PX = 4096


def patch_crs(lon: float, lat: float) -> CRS:
    """The transverse Mercator CRS of a merged patch centred on ``lon`` (k = 0.9996, false
    easting 500,000 m, false northing 10,000,000 m south of the equator)."""
    conv = TransverseMercatorConversion(
        latitude_natural_origin=0.0,
        longitude_natural_origin=float(lon),
        false_easting=500_000.0,
        false_northing=SOUTH_OFFSET_M if lat < 0 else 0.0,
        scale_factor_natural_origin=0.9996,
    )
    name = f"Tessera patch Transverse Mercator lon_0={float(lon):.6f}"
    return CRS(ProjectedCRS(conversion=conv, name=name, geodetic_crs=GeographicCRS(datum="WGS84")))


def check_patch_args(size_px: int, dst_crs: Any, resampling: str) -> tuple[int, CRS | None, str]:
    """Validated (size, dst CRS or None, resampling name)."""
    if (
        isinstance(size_px, bool)
        or not isinstance(size_px, int | np.integer)
        or not 1 <= size_px <= MAX_PATCH_PX
    ):
        raise InvalidInputError(f"size_px must be a whole number from 1 to {MAX_PATCH_PX}, got {size_px!r}")
    crs = None
    if dst_crs is not None:
        try:
            crs = CRS.from_user_input(dst_crs)
        except Exception as exc:  # pyproj raises CRSError
            raise InvalidInputError(f"dst_crs {dst_crs!r} is not a CRS pyproj understands") from exc
        unit = crs.axis_info[0].unit_name if crs.axis_info else ""
        if not crs.is_projected or unit not in ("metre", "meter"):
            raise InvalidInputError(f"dst_crs must be a projected CRS in metres, got {crs.name!r}")
    from rasterio.enums import Resampling

    name = str(resampling).lower()
    if name not in Resampling.__members__:
        raise InvalidInputError(
            f"unknown resampling {resampling!r}; choose one of {', '.join(Resampling.__members__)}"
        )
    return int(size_px), crs, name


def _zone_windows(
    zone: Zone | None,
    z: int,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    size: int,
    res: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float, float]:
    """(first rows, first cols, x0, y0) of the patches in zone ``z``'s grid (its lattice from
    0/0 when the store has no such zone)."""
    x0, y0 = (zone.info.x0, zone.info.y0) if zone is not None else (0.0, 0.0)
    x, y = transformer("EPSG:4326", f"EPSG:{32600 + z}").transform(lon, lat)
    col = np.floor((np.asarray(x) - x0) / res).astype(np.int64)
    row = np.floor((y0 - np.asarray(y)) / res).astype(np.int64)
    return row - size // 2, col - size // 2, x0, y0


def _inside_zone(
    z: int,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    r0: npt.NDArray[np.int64],
    c0: npt.NDArray[np.int64],
    size: int,
    res: float,
    x0: float,
    y0: float,
) -> npt.NDArray[np.bool_]:
    """True for patches whose every pixel centre lies in zone ``z`` (checked on the patch edge
    for those near a seam: a meridian crossing a patch crosses its edge)."""
    half_m = (size / 2 + 1) * res * math.sqrt(2)
    lat_far = np.minimum(np.abs(lat) + half_m / M_PER_DEG, 89.9)
    half_deg = half_m / (M_PER_DEG * np.cos(np.radians(lat_far)))
    west = (z - 1) * 6 - 180
    off = lon - west
    near = np.flatnonzero((off < 1.5 * half_deg + 0.01) | (off > 6 - 1.5 * half_deg - 0.01))
    ok = np.ones(len(lon), dtype=bool)
    if len(near) == 0:
        return ok
    e = np.arange(size) + 0.5
    edge_r = np.r_[np.full(size, 0.5), np.full(size, size - 0.5), e, e]
    edge_c = np.r_[e, e, np.full(size, 0.5), np.full(size, size - 0.5)]
    px = x0 + (c0[near, None] + edge_c) * res
    py = y0 - (r0[near, None] + edge_r) * res
    elon, elat = transformer(f"EPSG:{32600 + z}", "EPSG:4326").transform(px.ravel(), py.ravel())
    lon_i, _ = points_to_keys(np.clip(elon, -180, 180), np.clip(elat, -90, 90))
    owners = utm_zones(lon_i / 100).reshape(len(near), -1)
    ok[near] = (owners == z).all(axis=1)
    return ok


def _own_grid(
    z: int, lat: float, r0: int, c0: int, res: float, x0: float, y0: float, size: int
) -> tuple[CRS, Affine]:
    """CRS and transform of an in-zone patch: the zone's UTM CRS (327NN south of the equator)."""
    south = lat < 0
    shift = SOUTH_OFFSET_M if south else 0.0
    crs = CRS.from_epsg((32700 if south else 32600) + z)
    return crs, Affine(res, 0.0, x0 + c0 * res, 0.0, -res, y0 - r0 * res + shift)


def _merged_grid(lon: float, lat: float, size: int, res: float, dst: CRS | None) -> tuple[CRS, Affine]:
    """The grid of a merged patch: centred on the point (transverse Mercator), or ``dst``
    snapped to its lattice with the point in pixel [size // 2, size // 2]."""
    c = size // 2
    if dst is None:
        crs = patch_crs(lon, lat)
        px, py = transformer("EPSG:4326", crs.to_wkt()).transform(lon, lat)
        return crs, Affine(res, 0.0, px - (c + 0.5) * res, 0.0, -res, py + (c + 0.5) * res)
    px, py = transformer("EPSG:4326", dst.to_wkt()).transform(lon, lat)
    col, row = math.floor(px / res), math.floor(py / res)  # the lattice cell holding the point
    return dst, Affine(res, 0.0, (col - c) * res, 0.0, -res, (row + 1 + c) * res)


def _patch_zones(crs: CRS, transform: Affine, size: int, z: int) -> list[int]:
    """Zones owning a patch's pixels (the point's own first), and their seam neighbours."""
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    px, py = transform @ (cols.ravel(), rows.ravel())
    lon, lat = transformer(crs.to_wkt(), "EPSG:4326").transform(px, py)
    lon_i, _ = points_to_keys(np.clip(lon, -180, 180), np.clip(lat, -90, 90))
    owners = set(utm_zones(lon_i / 100).tolist())
    return sorted(owners | {z}, key=lambda v: (v != z, v))


def read_patches(
    zone: ZoneLookup,
    reader: ChunkReader,
    gsd: float,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    year: int,
    size: int,
    out: npt.NDArray[np.float32],
    *,
    dst_crs: CRS | None = None,
    resampling: str = "nearest",
    want_grids: bool = False,
) -> list[tuple[CRS, Affine]]:
    """Fill ``out`` (N, size, size, B) with the patches at points ``lon``, ``lat`` (N,) degrees.

    ``zone(z)`` is the readable zone ``z`` reading B bands. Returns each patch's (CRS,
    transform) when ``want_grids``, else an empty list.
    """
    n = len(lon)
    own = own_zones(lon, lat)
    merged = np.ones(n, dtype=bool) if dst_crs is not None else np.zeros(n, dtype=bool)
    grids: list[Any] = [None] * n if want_grids else []
    n_bad = 0
    for z, idx in group_windows(own).items() if dst_crs is None else ():
        zz = zone(z)
        r0, c0, x0, y0 = _zone_windows(zz, z, lon[idx], lat[idx], size, gsd)
        inside = _inside_zone(z, lon[idx], lat[idx], r0, c0, size, gsd, x0, y0)
        merged[idx[~inside]] = True
        idx, r0, c0 = idx[inside], r0[inside], c0[inside]
        if want_grids:
            for i, a, b in zip(idx.tolist(), r0.tolist(), c0.tolist(), strict=True):
                grids[i] = _own_grid(z, float(lat[i]), a, b, gsd, x0, y0, size)
        if zz is None or year not in zz.years:
            out[idx] = np.nan
            continue
        n_bad += read_windows(reader, zz, zz.years.index(year), r0, c0, size, out, idx)
    for i in np.flatnonzero(merged).tolist():
        crs, transform = _merged_grid(float(lon[i]), float(lat[i]), size, gsd, dst_crs)
        zones = _patch_zones(crs, transform, size, int(own[i]))
        if want_grids:
            grids[i] = (crs, transform)
        if resampling == "nearest":
            plan = RegionPlan(zone, crs, transform, (size, size), zones, year)
            n_bad += plan.fill(reader, 0, size, out[i])
        else:
            n_bad += _reproject_patch(zone, reader, crs, transform, size, zones, year, resampling, out[i])
    warn_implausible(n_bad, stacklevel=4)
    return grids


def _reproject_patch(
    zone: ZoneLookup,
    reader: ChunkReader,
    crs: CRS,
    transform: Affine,
    size: int,
    zones: list[int],
    year: int,
    resampling: str,
    out: npt.NDArray[np.float32],
) -> int:
    """A merged patch through rasterio's ``reproject`` (``resampling``) from each zone's window
    covering it; owner zones first, the others filling what is left NaN."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    out[...] = np.nan
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    px, py = transform @ (cols.ravel(), rows.ravel())
    lon, lat = transformer(crs.to_wkt(), "EPSG:4326").transform(px, py)
    lon_i, _ = points_to_keys(np.clip(lon, -180, 180), np.clip(lat, -90, 90))
    owner = utm_zones(lon_i / 100).reshape(size, size)
    n_bad = 0
    per_zone: dict[int, npt.NDArray[np.float32]] = {}
    for z in zones:
        zz = zone(z)
        if zz is None or year not in zz.years:
            continue
        info = zz.info
        # the patch's footprint in the zone grid, with a margin for the resampling kernel
        ex = np.r_[np.arange(size + 1), np.arange(size + 1), np.zeros(size + 1), np.full(size + 1, size)]
        ey = np.r_[np.zeros(size + 1), np.full(size + 1, size), np.arange(size + 1), np.arange(size + 1)]
        fx, fy = transform @ (ex, ey)
        zx, zy = transformer(crs.to_wkt(), f"EPSG:{info.epsg}").transform(fx, fy)
        m = 3
        c0 = math.floor((float(np.min(zx)) - info.x0) / info.res) - m
        c1 = math.ceil((float(np.max(zx)) - info.x0) / info.res) + m
        r0 = math.floor((info.y0 - float(np.max(zy))) / info.res) - m
        r1 = math.ceil((info.y0 - float(np.min(zy))) / info.res) + m
        src = np.empty((r1 - r0, c1 - c0, zz.n_bands), dtype=np.float32)
        have = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        n_bad += read_window(reader, zz, zz.years.index(year), r0, r1, c0, c1, src, have)
        if not np.isfinite(src).any():
            continue
        dst = np.full((zz.n_bands, size, size), np.nan, dtype=np.float32)
        reproject(
            np.ascontiguousarray(src.transpose(2, 0, 1)),
            dst,
            src_transform=info.transform * Affine.translation(c0, r0),
            src_crs=CRS.from_epsg(info.epsg).to_wkt(),
            dst_transform=transform,
            dst_crs=crs.to_wkt(),
            resampling=Resampling[resampling],
            src_nodata=np.nan,
            dst_nodata=np.nan,
        )
        per_zone[z] = dst.transpose(1, 2, 0)
    filled = np.zeros((size, size), dtype=bool)
    for owners_only in (True, False):  # each pixel from the zone owning it, then any zone
        for z, vals in per_zone.items():
            take = np.isfinite(vals).all(axis=2) & ~filled
            if owners_only:
                take &= owner == z
            out[take] = vals[take]
            filled |= take
    return n_bad
