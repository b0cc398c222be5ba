"""Synthetic land cover and Tessera-like embeddings for the sample store (pure numpy, no I/O).

Land cover
    A map defined in lon/lat (degrees, EPSG:4326), so it is continuous across
    tile borders and UTM zones. Classes (``CLASS_NAMES``, codes 0..4): water,
    urban, cropland, grassland, forest. The base map comes from hash-based value
    noise (fBm) on a global lattice; small lakes are the peaks of a finer noise
    field; sea lies east of a wavy synthetic coastline near 1.75 E, 51.8-53.1 N
    (it crosses tile ``grid_1.75_52.45``). Two forced patches in the default
    Cambridge region carry the year-to-year changes listed in :data:`CHANGES`:
    a forest clearing (forest -> grassland) in ``grid_0.15_52.15`` and an urban
    expansion (cropland -> urban) across the border of ``grid_0.25_52.05`` and
    ``grid_0.35_52.05``, both taking effect in 2024.

Embeddings
    Each class has a distinct 128-d signature per dataset (:func:`class_signatures`;
    v1.1 is another model run, so its signatures differ). A pixel's value is its
    class signature, plus a low-rank spatially smooth variation (``N_FIELDS``
    smooth lon/lat fields times fixed random directions, per dataset and year),
    plus i.i.d. noise (drawn from a per-tile bank of normal vectors, which is
    much faster than drawing 128 normals per pixel). Quantisation follows
    Tessera: ``scale = max|v| / 127`` (float32), ``q = round(v / scale)`` (int8).
    Water pixels are nodata: scale NaN, q = 0.

Determinism
    Every random draw comes from :class:`numpy.random.SeedSequence` built from
    stable integers (dataset version/variant bytes, year, tile indices), never
    from Python's ``hash()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

from ..datasets import DatasetId
from ..grid import Cell, PixelGrid
from .noise import dataset_key, fbm, seed64, seed_sequence, tile_seed, value_noise

CLASS_NAMES: tuple[str, ...] = ("water", "urban", "cropland", "grassland", "forest")
WATER, URBAN, CROPLAND, GRASSLAND, FOREST = range(5)
N_CLASSES = len(CLASS_NAMES)
N_BANDS = 128

#: Peak |component| of each class signature (water's is unused: water is nodata).
#: With the variation and noise below, the median scale is about 0.064.
SIGNATURE_PEAK = (8.3, 8.4, 8.0, 8.3, 8.1)
#: Standard deviation of the per-pixel i.i.d. noise, per band.
NOISE_STD = 0.3
#: Number of smooth fields in the low-rank spatial variation, and the per-band
#: standard deviation of each field's direction vector (fields lie in [-1, 1]).
N_FIELDS = 3
FIELD_DIRECTION_STD = 0.3

_F64 = npt.NDArray[np.float64]
_F32 = npt.NDArray[np.float32]
_U8 = npt.NDArray[np.uint8]
_BoolA = npt.NDArray[np.bool_]


def _plane(lon: _F64, lat: _F64) -> tuple[_F64, _F64]:
    """Roughly isotropic plane coordinates in degrees of latitude: (lon * cos(lat), lat)."""
    return lon * np.cos(np.radians(lat)), lat


# --- land cover --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Patch:
    """A wobbly disc: centre (lon, lat) in degrees, radius in degrees of latitude."""

    lon: float
    lat: float
    radius_deg: float
    wobble: float = 0.15
    phase: float = 0.0

    def mask(self, lon: _F64, lat: _F64) -> _BoolA:
        """Boolean mask of the points (lon, lat) (arrays, degrees) inside the patch."""
        c = math.cos(math.radians(self.lat))
        reach = self.radius_deg * (1.0 + abs(self.wobble))
        if lon.size == 0 or not _overlaps(
            lon, lat, self.lon - reach / c, self.lon + reach / c, self.lat - reach, self.lat + reach
        ):
            return np.zeros(lon.shape, dtype=bool)
        dx = (lon - self.lon) * c
        dy = lat - self.lat
        r = self.radius_deg * (1.0 + self.wobble * np.sin(3.0 * np.arctan2(dy, dx) + self.phase))
        return np.asarray(dx * dx + dy * dy < r * r)


def _overlaps(lon: _F64, lat: _F64, min_lon: float, max_lon: float, min_lat: float, max_lat: float) -> bool:
    """Whether the extent of the points may intersect the box (a cheap early rejection)."""
    return bool(
        lon.max() >= min_lon and lon.min() <= max_lon and lat.max() >= min_lat and lat.min() <= max_lat
    )


@dataclass(frozen=True, slots=True)
class Change:
    """Pixels of class ``from_code`` inside ``area`` become ``to_code`` from ``year`` on."""

    name: str
    from_code: int
    to_code: int
    year: int
    area: Patch


#: Forced patches of the base map, so each change has pixels to act on.
FORCED_PATCHES: tuple[tuple[Patch, int], ...] = (
    (Patch(0.150, 52.150, 0.020, phase=0.4), FOREST),
    (Patch(0.300, 52.050, 0.020, phase=1.7), CROPLAND),
)
CHANGES: tuple[Change, ...] = (
    Change("forest clearing", FOREST, GRASSLAND, 2024, Patch(0.155, 52.145, 0.009, phase=2.1)),
    Change("urban expansion", CROPLAND, URBAN, 2024, Patch(0.298, 52.052, 0.010, phase=0.9)),
)

#: The synthetic coastline: sea east of ``coast_lon(lat)`` for lat in COAST_LAT and lon < COAST_MAX_LON.
COAST_LAT = (51.8, 53.1)
COAST_MAX_LON = 4.5


def coast_lon(lat: _F64) -> _F64:
    """Longitude (degrees) of the synthetic coastline at latitude ``lat`` (near 1.745 E)."""
    t = (lat - 52.40) * (2.0 * math.pi)
    return 1.745 + 0.018 * np.sin(t / 0.09) + 0.006 * np.sin(t / 0.023 + 1.3)


def is_sea(lon: _F64, lat: _F64) -> _BoolA:
    """Boolean mask: points east of the synthetic coastline."""
    if lon.size == 0 or not _overlaps(lon, lat, 1.745 - 0.025, COAST_MAX_LON, *COAST_LAT):
        return np.zeros(lon.shape, dtype=bool)
    return np.asarray(
        (lat > COAST_LAT[0]) & (lat < COAST_LAT[1]) & (lon > coast_lon(lat)) & (lon < COAST_MAX_LON)
    )


# Noise-field thresholds (quantiles of the fields), chosen for roughly 10 % urban, 22 % forest,
# 27 % grassland, 38 % cropland and 3 % lakes (before forced patches and sea).
_LC_SPACING, _LC_OCTAVES = 0.03, 2
_MIX_SPACING, _MIX_OCTAVES = 0.015, 1
_LAKE_SPACING, _LAKE_OCTAVES = 0.005, 1
_FIELD_SPACING = 0.04
_URBAN_ABOVE, _FOREST_BELOW, _GRASS_BELOW, _LAKE_ABOVE = 0.71, 0.367, 0.44, 0.885


def base_land_cover(lon: _F64, lat: _F64, chunk: int = 16384) -> _U8:
    """Land-cover codes (uint8, same shape as ``lon``) before any year-specific change.

    ``lon`` and ``lat`` are float64 degrees of one shape; work proceeds in chunks of
    ``chunk`` points so temporaries stay in cache.
    """
    flat_lon, flat_lat = lon.ravel(), lat.ravel()
    out = np.empty(flat_lon.shape, dtype=np.uint8)
    for i in range(0, flat_lon.size, chunk):
        out[i : i + chunk] = _base_chunk(flat_lon[i : i + chunk], flat_lat[i : i + chunk])
    return out.reshape(lon.shape)


def _base_chunk(lon: _F64, lat: _F64) -> _U8:
    x, y = _plane(lon, lat)
    f1 = fbm(x, y, 11, _LC_SPACING, _LC_OCTAVES)
    f2 = fbm(x, y, 12, _MIX_SPACING, _MIX_OCTAVES)
    lake = fbm(x, y, 13, _LAKE_SPACING, _LAKE_OCTAVES)
    out = np.where(f2 < _GRASS_BELOW, GRASSLAND, CROPLAND).astype(np.uint8)
    out[f1 < _FOREST_BELOW] = FOREST
    out[f1 > _URBAN_ABOVE] = URBAN
    out[lake > _LAKE_ABOVE] = WATER
    for patch, code in FORCED_PATCHES:
        out[patch.mask(lon, lat)] = code
    out[is_sea(lon, lat)] = WATER
    return out


def apply_changes(base: _U8, lon: _F64, lat: _F64, year: int) -> _U8:
    """Land cover of ``year``: ``base`` with every change of :data:`CHANGES` effective by then."""
    out = base.copy()
    for ch in CHANGES:
        if year >= ch.year:
            out[(out == ch.from_code) & ch.area.mask(lon, lat)] = ch.to_code
    return out


def land_cover(lon: _F64, lat: _F64, year: int) -> _U8:
    """Land-cover codes (uint8) of ``year`` at points (lon, lat) in degrees (arrays of one shape)."""
    return apply_changes(base_land_cover(lon, lat), lon, lat, year)


@lru_cache(maxsize=64)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


def pixel_lonlat(grid: PixelGrid) -> tuple[_F64, _F64]:
    """Lon/lat (degrees) of every pixel centre of ``grid``: two float64 arrays of shape (H, W)."""
    t = grid.transform
    xs = t.c + (np.arange(grid.width) + 0.5) * t.a
    ys = t.f + (np.arange(grid.height) + 0.5) * t.e
    xx, yy = np.meshgrid(xs, ys)
    lon, lat = _to_lonlat(grid.epsg).transform(xx, yy)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


# --- embeddings --------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _signatures(dataset: DatasetId) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed_sequence(3, *dataset_key(dataset)))
    sig = rng.standard_normal((N_CLASSES, N_BANDS))
    sig *= (np.asarray(SIGNATURE_PEAK) / np.abs(sig).max(axis=1))[:, None]
    out = sig.astype(np.float32)
    out.flags.writeable = False
    return out


def class_signatures(dataset: DatasetId) -> npt.NDArray[np.float32]:
    """Class signatures of a dataset: float32 (N_CLASSES, 128), row k for class code k.

    Row 0 (water) exists for completeness; water pixels are nodata in the store.
    """
    return _signatures(dataset).copy()


@dataclass(frozen=True)
class YearModel:
    """Embedding model of one (dataset, year): signatures, smooth-field seeds and directions.

    ``directions`` is float32 (N_FIELDS, 128).
    """

    dataset: DatasetId
    year: int
    signatures: npt.NDArray[np.float32]
    field_seeds: tuple[int, ...]
    directions: npt.NDArray[np.float32]

    @classmethod
    def for_year(cls, dataset: DatasetId, year: int) -> YearModel:
        """The deterministic model of ``dataset`` in ``year``."""
        key = dataset_key(dataset)
        rng = np.random.default_rng(seed_sequence(4, *key, year))
        directions = (rng.standard_normal((N_FIELDS, N_BANDS)) * FIELD_DIRECTION_STD).astype(np.float32)
        seeds = tuple(seed64(5, *key, year, k) for k in range(N_FIELDS))
        return cls(dataset, year, _signatures(dataset), seeds, directions)

    def fields(self, lon: _F64, lat: _F64) -> npt.NDArray[np.float32]:
        """Smooth fields in [-1, 1] at points (N,) of lon/lat degrees: float32 (N, N_FIELDS)."""
        x, y = _plane(lon, lat)
        out = np.empty((lon.size, N_FIELDS), dtype=np.float32)
        for k, seed in enumerate(self.field_seeds):
            out[:, k] = value_noise(x.ravel(), y.ravel(), seed, _FIELD_SPACING) * 2.0 - 1.0
        return out


def noise_bank(dataset: DatasetId, year: int, cell: Cell, n_pixels: int) -> npt.NDArray[np.float32]:
    """Per-class banks of ``signature + noise`` vectors of one tile: float32 (N_CLASSES * B, 128).

    Row ``c * B + k`` is signature ``c`` plus noise vector ``k``; ``B`` grows with the
    tile's pixel count (256..2048). Pixels draw a random row of their class.
    """
    rng = np.random.default_rng(tile_seed(dataset, year, cell))
    b = min(2048, max(256, n_pixels // 16))
    bank = rng.standard_normal((N_CLASSES, b, N_BANDS), dtype=np.float32)
    bank *= np.float32(NOISE_STD)
    bank += _signatures(dataset)[:, None, :]
    return bank.reshape(N_CLASSES * b, N_BANDS)


def quantise(values: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Tessera quantisation of float32 (N, 128) vectors, in place: ``(q int8 (N, 128), scale float32 (N,))``.

    ``scale = max|v| / 127``, ``q = round(v / scale)``. ``values`` is overwritten.
    An all-zero vector gets scale 0 and q = 0.
    """
    peak = np.abs(values).max(axis=1)
    scale = (peak / np.float32(127.0)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0))
    values /= safe[:, None]
    np.rint(values, out=values)
    return values.astype(np.int8), scale


def iter_tile_strips(
    model: YearModel,
    cell: Cell,
    lon: _F64,
    lat: _F64,
    classes: _U8,
    strip_pixels: int = 16384,
) -> Iterator[tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]]:
    """Quantised embedding of one tile in row strips.

    ``lon``, ``lat`` (float64) and ``classes`` (uint8) have the tile's shape (H, W).
    Yields ``(q, scales)`` per strip of rows, top to bottom: int8 (h, W, 128) and
    float32 (h, W); water pixels have q = 0 and scale NaN. Peak memory is a few
    strips of float32, never the whole tile.
    """
    height, width = classes.shape
    rows = max(1, strip_pixels // max(width, 1))
    bank = noise_bank(model.dataset, model.year, cell, height * width)
    per_class = bank.shape[0] // N_CLASSES
    rng = np.random.default_rng(seed_sequence(6, *dataset_key(model.dataset), model.year, cell.ix, cell.iy))
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        cls = classes[r0:r1].ravel()
        n = cls.size
        idx = cls.astype(np.intp) * per_class + rng.integers(0, per_class, n)
        v = bank[idx]
        v += model.fields(lon[r0:r1].ravel(), lat[r0:r1].ravel()) @ model.directions
        q, scale = quantise(v)
        water = cls == WATER
        q[water] = 0
        scale[water] = np.nan
        yield q.reshape(r1 - r0, width, N_BANDS), scale.reshape(r1 - r0, width)
