"""The 0.1-degree Tessera tile grid (``formats.md`` section 1): pure maths, no I/O.

A cell is identified by integer indices ``(ix, iy)``: it covers the half-open
interval ``[ix / 10, (ix + 1) / 10)`` in longitude and the same in latitude.
Its centre is ``(ix + 0.5) / 10`` and its name ``grid_{lon:.2f}_{lat:.2f}``.
The lookup keys used by manifests are ``lon_i = round(lon * 100)`` of the
centre, i.e. ``10 * ix + 5``.

Valid indices are ``-1800 <= ix <= 1799`` and ``-900 <= iy <= 899``; points on
lon = 180 or lat = 90 belong to the last real cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError

CELL_DEG = 0.1
MIN_IX, MAX_IX = -1800, 1799
MIN_IY, MAX_IY = -900, 899

_NAME_RE = re.compile(r"^grid_(-?\d{1,3}\.\d{2})_(-?\d{1,2}\.\d{2})$")


class BBox(NamedTuple):
    """A lon/lat bounding box in degrees (EPSG:4326), in rasterio's field order."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


def _edge(i: int) -> float:
    """Float value of the grid line ``i / 10`` (exactly what ``bounds`` reports)."""
    return i / 10


def _index(x: float, lo: int, hi: int) -> int:
    """Index of the half-open cell containing ``x``, exact against float edges."""
    i = math.floor(x * 10)
    # x * 10 may round across an edge; correct against the float edge values.
    if x < _edge(i):
        i -= 1
    elif x >= _edge(i + 1):
        i += 1
    return min(max(i, lo), hi)


def _check_lon(lon: float) -> None:
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidInputError(f"longitude {lon!r} is outside [-180, 180]")


def _check_lat(lat: float) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidInputError(f"latitude {lat!r} is outside [-90, 90]")


@dataclass(frozen=True, order=True, slots=True)
class Cell:
    """One 0.1-degree tile, identified by integer cell indices.

    Use :meth:`from_point`, :meth:`from_name` or :meth:`from_centre` to build one.
    """

    ix: int
    iy: int

    def __post_init__(self) -> None:
        if not (MIN_IX <= self.ix <= MAX_IX and MIN_IY <= self.iy <= MAX_IY):
            raise InvalidInputError(f"cell index ({self.ix}, {self.iy}) is outside the grid")

    # --- constructors -------------------------------------------------------
    @classmethod
    def from_point(cls, lon: float, lat: float) -> Cell:
        """The cell containing the point (lon, lat) in degrees."""
        _check_lon(lon)
        _check_lat(lat)
        return cls(_index(lon, MIN_IX, MAX_IX), _index(lat, MIN_IY, MAX_IY))

    @classmethod
    def from_centre(cls, lon: float, lat: float) -> Cell:
        """The cell whose centre is (lon, lat); raises if that is not a centre."""
        return cls.from_key(round(lon * 100), round(lat * 100))

    @classmethod
    def from_key(cls, lon_i: int, lat_i: int) -> Cell:
        """The cell of integer keys ``lon_i = round(lon * 100)``, ``lat_i`` likewise."""
        if (lon_i - 5) % 10 or (lat_i - 5) % 10:
            raise InvalidInputError(
                f"({lon_i / 100:.2f}, {lat_i / 100:.2f}) is not a tile centre "
                "(centres are odd multiples of 0.05)"
            )
        return cls((lon_i - 5) // 10, (lat_i - 5) // 10)

    @classmethod
    def from_name(cls, name: str) -> Cell:
        """Parse ``grid_{lon:.2f}_{lat:.2f}`` (an optional ``.npy``/``.tiff`` suffix is not allowed)."""
        m = _NAME_RE.match(name)
        if m is None:
            raise InvalidInputError(f"{name!r} is not a tile name like 'grid_0.15_52.05'")
        cell = cls.from_centre(float(m.group(1)), float(m.group(2)))
        if cell.name != name:  # e.g. "-0.00" or a non-canonical spelling
            raise InvalidInputError(f"{name!r} is not a canonical tile name (expected {cell.name!r})")
        return cell

    # --- derived values ----------------------------------------------------
    @property
    def lon(self) -> float:
        """Centre longitude in degrees, rounded to 2 decimals."""
        return round((self.ix + 0.5) / 10, 2)

    @property
    def lat(self) -> float:
        """Centre latitude in degrees, rounded to 2 decimals."""
        return round((self.iy + 0.5) / 10, 2)

    @property
    def lon_i(self) -> int:
        """Integer key ``round(lon * 100)``."""
        return 10 * self.ix + 5

    @property
    def lat_i(self) -> int:
        """Integer key ``round(lat * 100)``."""
        return 10 * self.iy + 5

    @property
    def name(self) -> str:
        """Tile name, e.g. ``grid_0.15_52.05``."""
        return tile_name(self.lon, self.lat)

    @property
    def bounds(self) -> BBox:
        """Cell bounds (min_lon, min_lat, max_lon, max_lat) in degrees."""
        return BBox(_edge(self.ix), _edge(self.iy), _edge(self.ix + 1), _edge(self.iy + 1))

    def __str__(self) -> str:
        return self.name


def tile_name(lon: float, lat: float) -> str:
    """Name of the tile centred at (lon, lat): ``grid_{lon:.2f}_{lat:.2f}``."""
    return f"grid_{lon:.2f}_{lat:.2f}"


def point_to_centre(lon: float, lat: float) -> tuple[float, float]:
    """Centre (lon, lat) of the tile containing a point, both rounded to 2 decimals."""
    c = Cell.from_point(lon, lat)
    return c.lon, c.lat


def as_bbox(value: object) -> BBox:
    """Validate a bbox-like value: 2 numbers (a point) or 4 (min_lon, min_lat, max_lon, max_lat).

    Raises :class:`InvalidInputError` quoting the value when it is malformed (a string or a
    mapping too), out of range, inverted, or crosses the antimeridian.
    """
    if isinstance(value, str | bytes | Mapping):  # never a string's characters: "1234" is no box
        raise InvalidInputError(f"bbox {value!r} is not a sequence of numbers")
    try:
        nums = [float(v) for v in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(f"bbox {value!r} is not a sequence of numbers") from exc
    if len(nums) == 2:
        nums = nums * 2
    if len(nums) != 4:
        raise InvalidInputError(
            f"bbox {value!r} needs 2 numbers (lon,lat) or 4 (min_lon,min_lat,max_lon,max_lat)"
        )
    min_lon, min_lat, max_lon, max_lat = nums
    if not all(math.isfinite(v) for v in nums):
        raise InvalidInputError(f"bbox {value!r} contains a non-finite number")
    for lon in (min_lon, max_lon):
        _check_lon(lon)
    for lat in (min_lat, max_lat):
        _check_lat(lat)
    if min_lat > max_lat:
        raise InvalidInputError(f"bbox {value!r} has min_lat > max_lat")
    if min_lon > max_lon:
        raise InvalidInputError(
            f"bbox {value!r} has min_lon > max_lon; boxes crossing the antimeridian "
            "are not supported, split it into two boxes"
        )
    return BBox(min_lon, min_lat, max_lon, max_lat)


def _axis_range(lo: float, hi: float, lo_idx: int, hi_idx: int) -> range:
    """Indices of cells overlapping [lo, hi] with positive length (a point: its cell)."""
    first = _index(lo, lo_idx, hi_idx)
    if lo == hi:
        return range(first, first + 1)
    last = _index(hi, lo_idx, hi_idx)
    if hi == _edge(last) and last > first:
        last -= 1  # hi lies on the west/south edge of `last`: zero-area overlap
    return range(first, last + 1)


def cells_in_bbox(bbox: object) -> list[Cell]:
    """Cells overlapping the bbox with positive area, ordered by (iy, ix).

    A box aligned to one cell selects exactly that cell; a degenerate box (a
    point, or a line) selects the cells containing it along the flat axis.
    """
    b = as_bbox(bbox)
    xs = _axis_range(b.min_lon, b.max_lon, MIN_IX, MAX_IX)
    ys = _axis_range(b.min_lat, b.max_lat, MIN_IY, MAX_IY)
    return [Cell(ix, iy) for iy in ys for ix in xs]


def cell_index_ranges(bbox: object) -> tuple[range, range]:
    """(ix range, iy range) of the cells overlapping ``bbox`` (see :func:`cells_in_bbox`)."""
    b = as_bbox(bbox)
    return (
        _axis_range(b.min_lon, b.max_lon, MIN_IX, MAX_IX),
        _axis_range(b.min_lat, b.max_lat, MIN_IY, MAX_IY),
    )


def points_to_keys(
    lon: npt.ArrayLike, lat: npt.ArrayLike
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Vectorised point -> tile keys ``(lon_i, lat_i)`` (int32), same rule as :meth:`Cell.from_point`.

    ``lon`` and ``lat`` are arrays of shape (N,) in degrees; NaN or out-of-range
    inputs raise :class:`InvalidInputError`.
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape:
        raise InvalidInputError(f"lon and lat shapes differ: {x.shape} vs {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidInputError("point coordinates must be finite numbers")
    if np.any(np.abs(x) > 180) or np.any(np.abs(y) > 90):
        raise InvalidInputError("point coordinates must lie within lon [-180, 180], lat [-90, 90]")
    ix = _vindex(x, MIN_IX, MAX_IX)
    iy = _vindex(y, MIN_IY, MAX_IY)
    return (10 * ix + 5).astype(np.int32), (10 * iy + 5).astype(np.int32)


def _vindex(x: npt.NDArray[np.float64], lo: int, hi: int) -> npt.NDArray[np.int64]:
    i = np.floor(x * 10).astype(np.int64)
    i -= x < i / 10
    i += x >= (i + 1) / 10
    return np.clip(i, lo, hi)
