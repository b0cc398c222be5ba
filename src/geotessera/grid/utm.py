"""UTM zone of a tile and the tile's pixel grid (``formats.md`` section 1).

:class:`PixelGrid` is one value saying where the pixels are: CRS (EPSG code),
affine transform and shape (height, width). It is frozen and hashable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS, Transformer

from .cells import BBox, Cell

PIXEL_SIZE_M = 10.0
SOUTH_OFFSET_M = 10_000_000.0
"""False northing of the southern UTM CRSs (EPSG:327NN): their northings minus this are the
northern CRS's (326NN), so one zone is one continuous grid (``formats.md`` section 6)."""


def utm_zone(lon_centre: float) -> int:
    """UTM zone 1..60 of a tile centre longitude (degrees); see :func:`utm_zones`."""
    return int(utm_zones(lon_centre))


def utm_zones(lon_centres: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """UTM zone 1..60 of each tile centre longitude of an array (degrees), same shape, int64:
    ``floor((lon + 180) / 6) + 1``, clamped (no Norway/Svalbard exceptions, as published)."""
    lon = np.asarray(lon_centres, dtype=np.float64)
    return np.clip(np.floor((lon + 180.0) / 6.0).astype(np.int64) + 1, 1, 60)


def utm_epsg(lon_centre: float, lat_centre: float) -> int:
    """EPSG code of a tile's UTM CRS: 326NN north of (or on) the equator, else 327NN."""
    zone = utm_zone(lon_centre)
    return (32600 if lat_centre >= 0 else 32700) + zone


@lru_cache(maxsize=256)
def _to_crs(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


@lru_cache(maxsize=256)
def crs_from_epsg(epsg: int) -> CRS:
    """A cached :class:`pyproj.CRS` for an EPSG code."""
    return CRS.from_epsg(epsg)


@dataclass(frozen=True, slots=True)
class PixelGrid:
    """A north-up raster grid: ``epsg``, ``transform`` (Affine) and ``shape`` (height, width).

    Pixel (row, col) covers ``transform * (col, row)`` .. ``transform * (col + 1, row + 1)``.
    """

    epsg: int
    transform: Affine
    shape: tuple[int, int]

    @property
    def height(self) -> int:
        """Number of rows."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.shape[1]

    @property
    def crs(self) -> CRS:
        """The grid's CRS as a pyproj CRS."""
        return crs_from_epsg(self.epsg)

    @property
    def res(self) -> float:
        """Pixel size in CRS units (metres for UTM)."""
        return float(self.transform.a)

    @property
    def bounds(self) -> BBox:
        """(left, bottom, right, top) in CRS units."""
        t = self.transform
        left, top = t.c, t.f
        return BBox(left, top + t.e * self.height, left + t.a * self.width, top)

    def __getitem__(self, key: tuple[slice, slice]) -> PixelGrid:
        """Sub-grid ``grid[r0:r1, c0:c1]`` (steps not allowed)."""
        rows, cols = key
        r0, r1, _ = rows.indices(self.height)
        c0, c1, _ = cols.indices(self.width)
        return PixelGrid(
            self.epsg, self.transform @ Affine.translation(c0, r0), (max(r1 - r0, 0), max(c1 - c0, 0))
        )

    @classmethod
    def from_cell(cls, cell: Cell, pixel_size_m: float = PIXEL_SIZE_M) -> PixelGrid:
        """The grid rule of ``formats.md`` section 1, snapped outward to the zone's lattice.

        ``pixel_size_m`` other than 10 is only for small synthetic stores.
        """
        epsg = utm_epsg(cell.lon, cell.lat)
        b = cell.bounds
        tr = _to_crs(epsg)
        # corners: (west, south), (west, north), (east, south), (east, north)
        xs, ys = tr.transform(
            [b.min_lon, b.min_lon, b.max_lon, b.max_lon], [b.min_lat, b.max_lat, b.min_lat, b.max_lat]
        )
        p = float(pixel_size_m)
        x0 = math.floor(min(xs[0], xs[1]) / p) * p
        y0 = math.ceil(max(ys[1], ys[3]) / p) * p
        width = math.ceil((max(xs[2], xs[3]) - x0) / p)
        height = math.ceil((y0 - min(ys[0], ys[2])) / p)
        return cls(epsg, Affine(p, 0.0, x0, 0.0, -p, y0), (height, width))

    @classmethod
    def from_raster(cls, dataset: object) -> PixelGrid:
        """The grid of an open rasterio dataset (e.g. a landmask GeoTIFF)."""
        crs = dataset.crs  # type: ignore[attr-defined]
        epsg = crs.to_epsg()
        if epsg is None:
            raise ValueError(f"raster CRS {crs} has no EPSG code")
        return cls(int(epsg), dataset.transform, (dataset.height, dataset.width))  # type: ignore[attr-defined]
