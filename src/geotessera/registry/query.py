"""Vectorised queries over a manifest: tiles of a region or of points, years, counts, sizes.

Every (year, tile) row becomes one int64 key ``(year - 2000) * 3600 * 1800 + ix' * 1800 + iy'``
(``ix' = ix + 1800``, ``iy' = iy + 900`` the shifted cell indices), kept sorted and unique.
A year is then one contiguous slice, and within it a grid column ``ix`` one contiguous run,
so a region query is two ``np.searchsorted`` calls per column of the box and a point
query one ``np.searchsorted`` per batch; no query loops over the rows in Python.
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ..datasets import DatasetId
from ..errors import CorruptDataError, InvalidInputError, NotCoveredError
from ..grid import Cell, as_bbox, cell_index_ranges, points_to_keys, tile_name
from .coverage import no_coverage_message, warn_no_coverage
from .manifest import Manifest, prepare_landmasks, prepare_tiles

log = logging.getLogger(__name__)

_NY = 1800  # iy' in [0, 1800)
_NX = 3600  # ix' in [0, 3600)
_PER_YEAR = _NX * _NY
_YEAR0 = 2000

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


class PointTiles(NamedTuple):
    """Result of :meth:`Registry.tiles_for_points`, all arrays of shape (N,).

    ``covered`` (bool) tells whether the point's tile exists for the year;
    ``lon_i``/``lat_i`` (int32) are the tile keys ``round(centre * 100)`` of every point.
    """

    covered: npt.NDArray[np.bool_]
    lon_i: I32
    lat_i: I32


def _pack(year: int | I64, ix: int | I64, iy: int | I64) -> I64:
    """Key of (year, cell ix, cell iy); scalars or broadcastable int64 arrays."""
    y = np.asarray(year, dtype=np.int64)
    ix64 = np.asarray(ix, np.int64)
    iy64 = np.asarray(iy, np.int64)
    return np.asarray((y - _YEAR0) * _PER_YEAR + (ix64 + 1800) * _NY + (iy64 + 900))


def _unpack_cells(keys: I64) -> tuple[I64, I64]:
    """Cell indices (ix, iy) of keys."""
    rem = keys % _PER_YEAR
    return rem // _NY - 1800, rem % _NY - 900


def _shifted_cells(keys_i: npt.NDArray[np.int32], offset: int, n: int, what: str, origin: str) -> I32:
    """Shifted cell index ``(key + offset) / 10`` of int32 keys ``round(centre * 100)``, checked.

    Raises :class:`CorruptDataError` naming ``origin`` when a key is not a tile centre.
    """
    shifted = keys_i + np.int32(offset)
    cells = shifted // np.int32(10)
    bad = (cells * np.int32(10) != shifted) | (shifted < 0) | (cells >= n)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CorruptDataError(
            f"{origin}: {int(bad.sum())} rows have a {what} that is not a tile centre, "
            f"e.g. {keys_i[i] / 100:.2f}"
        )
    return cells


def _table_keys(table: pa.Table, origin: str, *, with_year: bool = True) -> I64:
    """Keys (N,) int64 of a prepared table (year, lon_i, lat_i), validated."""
    lon_i = np.asarray(table.column("lon_i").to_numpy(), dtype=np.int32)
    cells = _shifted_cells(lon_i, 17995, _NX, "longitude", origin)
    del lon_i
    cells *= np.int32(_NY)  # at most 3599 * 1800 + 1799: fits int32
    lat_i = np.asarray(table.column("lat_i").to_numpy(), dtype=np.int32)
    cells += _shifted_cells(lat_i, 8995, _NY, "latitude", origin)
    del lat_i
    if not with_year:
        return cells.astype(np.int64)
    keys = np.asarray(table.column("year").to_numpy(), dtype=np.int64) - _YEAR0
    keys *= _PER_YEAR
    keys += cells
    return keys


def _argsort(keys: I64) -> npt.NDArray[np.intp]:
    """Order sorting ``keys`` (uint32 when they fit: about 2x faster); ties in no set order."""
    if keys.size and keys.min() >= 0 and keys.max() < 2**32:
        return np.argsort(keys.astype(np.uint32))
    return np.argsort(keys)


def _sort_unique(keys: I64, origin: str) -> I64:
    """Sorted unique copy of ``keys`` (no work when already sorted, which built manifests are)."""
    if keys.size < 2:
        return keys
    if not (keys[1:] > keys[:-1]).all():
        if not (keys[1:] >= keys[:-1]).all():
            if keys.min() >= 0 and keys.max() < 2**32:  # sorting uint32 is about 2x faster
                small = keys.astype(np.uint32)
                small.sort()
                keys = small.astype(np.int64)
            else:
                keys = np.sort(keys)
        keep = np.empty(keys.size, dtype=bool)
        keep[0] = True
        np.not_equal(keys[1:], keys[:-1], out=keep[1:])
        if not keep.all():
            log.warning("%s lists %d (year, tile) rows more than once", origin, keys.size - int(keep.sum()))
            keys = keys[keep]
    return keys


def _lookup(sorted_keys: I64, want: I64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Positions of ``want`` in ``sorted_keys`` (clipped) and whether each was found."""
    if sorted_keys.size == 0:
        return np.zeros(want.shape, np.intp), np.zeros(want.shape, bool)
    idx = np.minimum(np.searchsorted(sorted_keys, want), sorted_keys.size - 1)
    return idx, sorted_keys[idx] == want


class Registry:
    """The tiles of one dataset (version, variant), indexed for vectorised queries.

    Build it with :meth:`from_manifest` (see :func:`~.manifest.load_manifest`) or, for
    tests and in-memory tables, :meth:`from_table`. Coordinates are degrees; a tile is
    named by its centre, and any point inside a tile designates it. Sizes and landmasks
    are read on first use, so start-up costs only the keys.
    """

    def __init__(self, manifest: Manifest) -> None:
        """Index the keys of ``manifest`` (raises :class:`CorruptDataError` for a non-centre key)."""
        self.dataset = manifest.dataset
        self.origin = manifest.origin
        self._keys = _sort_unique(_table_keys(manifest.tiles, manifest.origin), manifest.origin)
        if manifest.path is not None and "grid_size" not in manifest.tiles.column_names:
            # the keys now live in self._keys; sizes are re-read from the file on demand
            manifest = dataclasses.replace(manifest, tiles=manifest.tiles.slice(0, 0))
            pa.default_memory_pool().release_unused()
        self.manifest = manifest
        self._sizes: tuple[I64, I64] | None = None
        self._lm_index: tuple[I64, I64] | None = None
        self._years, self._year_bounds = self._index_years()

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Registry:
        """The registry of a loaded :class:`~.manifest.Manifest`."""
        return cls(manifest)

    @classmethod
    def from_table(
        cls, table: pa.Table, dataset: DatasetId | None = None, *, landmasks: pa.Table | None = None
    ) -> Registry:
        """A registry over an in-memory manifest table (``formats.md`` section 4 schema)."""
        ds = dataset or DatasetId()
        lm = prepare_landmasks(landmasks, ds) if landmasks is not None else None
        return cls(Manifest(prepare_tiles(table, ds, "table"), ds, "table", landmasks=lm))

    def _index_years(self) -> tuple[list[int], I64]:
        """Years present and the start index of each year's slice (plus the end)."""
        if self._keys.size == 0:
            return [], np.zeros(1, np.int64)
        first, last = (int(k) // _PER_YEAR + _YEAR0 for k in (self._keys[0], self._keys[-1]))
        span = np.arange(first, last + 2, dtype=np.int64)
        starts = np.searchsorted(self._keys, (span - _YEAR0) * _PER_YEAR).astype(np.int64)
        present = np.flatnonzero(np.diff(starts) > 0)
        return [int(y) for y in span[present]], np.append(starts[present], starts[-1])

    # --- summaries ----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of (year, tile) entries."""
        return int(self._keys.size)

    def available_years(self) -> list[int]:
        """Years with at least one tile, ascending."""
        return list(self._years)

    def tile_counts_by_year(self) -> dict[int, int]:
        """Number of tiles per year."""
        counts = np.diff(self._year_bounds)
        return {y: int(c) for y, c in zip(self._years, counts, strict=True)}

    def _year_slice(self, year: int) -> slice:
        lo, hi = np.searchsorted(self._keys, [_pack(year, -1800, -900), _pack(year + 1, -1800, -900)])
        return slice(int(lo), int(hi))

    def cells(self, year: int) -> list[Cell]:
        """Every tile of ``year``, ordered by (lon, lat)."""
        cx, cy = _unpack_cells(self._keys[self._year_slice(int(year))])
        return [Cell(int(x), int(y)) for x, y in zip(cx.tolist(), cy.tolist(), strict=True)]

    # --- single tiles ---------------------------------------------------------------------------
    def has_tile(self, year: int, lon: float, lat: float) -> bool:
        """True when the tile containing (lon, lat) exists for ``year``."""
        c = Cell.from_point(lon, lat)
        return self._contains(int(_pack(year, c.ix, c.iy)))

    def _contains(self, key: int) -> bool:
        i = int(np.searchsorted(self._keys, key))
        return i < self._keys.size and int(self._keys[i]) == key

    def years_for_tile(self, lon: float, lat: float) -> list[int]:
        """Years in which the tile containing (lon, lat) exists, ascending."""
        c = Cell.from_point(lon, lat)
        years = np.asarray(self._years, dtype=np.int64)
        if years.size == 0:
            return []
        _, found = _lookup(self._keys, _pack(years, c.ix, c.iy))
        return [int(y) for y in years[found]]

    def require_tile(self, year: int, lon: float, lat: float) -> None:
        """Raise :class:`NotCoveredError` naming the tile and the years that exist, unless covered."""
        c = Cell.from_point(lon, lat)
        if self._contains(int(_pack(year, c.ix, c.iy))):
            return
        where = f"(dataset {self.dataset})"
        years = self.years_for_tile(lon, lat)
        if years:
            listed = ", ".join(map(str, years))
            raise NotCoveredError(
                f"tile {c.name} is not covered for {year}; available years for this tile: {listed} {where}"
            )
        raise NotCoveredError(
            f"tile {c.name} is not covered for {year}; {self._nearest_hint(year, c)} {where}"
        )

    def _nearest_hint(self, year: int, c: Cell) -> str:
        s = self._year_slice(year)
        if s.stop == s.start:
            known = ", ".join(map(str, self._years)) or "none"
            return f"this tile is not in the dataset at all, which has no tiles for {year} (years: {known})"
        ix, iy = _unpack_cells(self._keys[s])
        i = int(np.argmin((ix - c.ix) ** 2 + (iy - c.iy) ** 2))
        near = tile_name((int(ix[i]) * 10 + 5) / 100, (int(iy[i]) * 10 + 5) / 100)
        return f"this tile is not in the dataset at all; nearest covered tile for {year}: {near}"

    # --- regions and points -------------------------------------------------------------------
    def tile_keys_for_region(self, bounds: object, year: int) -> tuple[I32, I32]:
        """Keys ``(lon_i, lat_i)`` (int32, shape (N,)) of the tiles of ``year`` overlapping ``bounds``.

        ``bounds`` is (min_lon, min_lat, max_lon, max_lat) in degrees, or a point (lon, lat).
        A tile is selected when its cell overlaps the box with positive area (a box
        aligned to one cell selects that tile only); a degenerate box selects the
        tiles containing it. Ordered by (lon, lat).
        """
        xs, ys = cell_index_ranges(bounds)
        ix = np.arange(xs.start, xs.stop, dtype=np.int64)
        lo = np.searchsorted(self._keys, _pack(year, ix, ys.start), side="left")
        hi = np.searchsorted(self._keys, _pack(year, ix, ys.stop - 1), side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, np.int32), np.empty(0, np.int32)
        # indices lo[j] .. hi[j]-1 for every column j, concatenated without a Python loop
        offsets = np.cumsum(counts) - counts
        idx = np.repeat(lo - offsets, counts) + np.arange(total)
        cx, cy = _unpack_cells(self._keys[idx])
        return (cx * 10 + 5).astype(np.int32), (cy * 10 + 5).astype(np.int32)

    def load_blocks_for_region(self, bounds: object, year: int) -> list[tuple[int, float, float]]:
        """``(year, tile_lon, tile_lat)`` of every tile of ``year`` overlapping ``bounds`` (seed API).

        See :meth:`tile_keys_for_region` for the selection rule; centres are in degrees,
        rounded to 2 decimals. An empty result comes with a :class:`CoverageWarning` saying
        what the dataset does hold.
        """
        lon_i, lat_i = self.tile_keys_for_region(bounds, year)
        if lon_i.size == 0:
            xs, ys = cell_index_ranges(bounds)
            box = tuple(as_bbox(bounds))
            n = len(xs) * len(ys)
            msg = no_coverage_message(n, f"bbox {box}", [int(year)], self.dataset, self.available_years())
            warn_no_coverage(msg)
        lons = (lon_i / 100).tolist()
        lats = (lat_i / 100).tolist()
        return [(int(year), x, y) for x, y in zip(lons, lats, strict=True)]

    def tiles_for_points(self, lon: npt.ArrayLike, lat: npt.ArrayLike, year: int) -> PointTiles:
        """Tile of each point (degrees, arrays of shape (N,)) and whether it exists for ``year``."""
        lon_i, lat_i = points_to_keys(np.atleast_1d(lon), np.atleast_1d(lat))
        want = _pack(year, (lon_i.astype(np.int64) - 5) // 10, (lat_i.astype(np.int64) - 5) // 10)
        _, found = _lookup(self._keys, want)
        return PointTiles(found, lon_i, lat_i)

    # --- sizes ----------------------------------------------------------------------------------
    def _size_arrays(self) -> tuple[I64, I64]:
        """(grid bytes, scales bytes) aligned with ``self._keys``; read on first use."""
        if self._sizes is None:
            table = self.manifest.load_sizes()
            keys = _table_keys(table, self.origin)
            order = _argsort(keys)
            keys = keys[order]
            idx, found = _lookup(keys, self._keys)
            grid = np.asarray(table.column("grid_size").to_numpy(), np.int64)[order][idx]
            scales = np.asarray(table.column("scales_size").to_numpy(), np.int64)[order][idx]
            if not found.all():  # the cached file was replaced since start-up
                log.warning(
                    "%s changed since start-up; sizes of %d tiles unknown", self.origin, (~found).sum()
                )
                grid[~found] = 0
                scales[~found] = 0
            self._sizes = (grid, scales)
        return self._sizes

    def file_sizes(self, tiles: Iterable[tuple[int, float, float]]) -> tuple[int, int]:
        """Total bytes ``(embeddings, scales)`` of ``(year, lon, lat)`` tiles, for dry runs.

        Raises :class:`NotCoveredError` for a tile that is not in the registry.
        """
        arr = np.asarray(list(tiles), dtype=np.float64).reshape(-1, 3)
        if arr.shape[0] == 0:
            return 0, 0
        years = arr[:, 0].astype(np.int64)
        if not np.array_equal(years, arr[:, 0]):
            raise InvalidInputError("tile years must be whole numbers")
        lon_i, lat_i = points_to_keys(arr[:, 1], arr[:, 2])
        want = _pack(years, (lon_i.astype(np.int64) - 5) // 10, (lat_i.astype(np.int64) - 5) // 10)
        idx, found = _lookup(self._keys, want)
        if not found.all():
            j = int(np.flatnonzero(~found)[0])
            self.require_tile(int(years[j]), float(arr[j, 1]), float(arr[j, 2]))
        grid, scales = self._size_arrays()
        return int(grid[idx].sum()), int(scales[idx].sum())

    def landmask_size(self, lon: float, lat: float) -> int | None:
        """Bytes of the landmask GeoTIFF of the tile containing (lon, lat); None when unknown."""
        if self._lm_index is None:
            table = self.manifest.load_landmasks()
            if table is None:
                self._lm_index = (np.empty(0, np.int64), np.empty(0, np.int64))
            else:
                keys = _table_keys(table, f"landmasks of {self.origin}", with_year=False)
                order = _argsort(keys)
                sizes = np.asarray(table.column("file_size").to_numpy(), np.int64)[order]
                self._lm_index = (keys[order], sizes)
        lm_keys, lm_sizes = self._lm_index
        c = Cell.from_point(lon, lat)
        idx, found = _lookup(lm_keys, np.asarray([(c.ix + 1800) * _NY + c.iy + 900], np.int64))
        return int(lm_sizes[idx[0]]) if found[0] else None

    def __repr__(self) -> str:
        return f"Registry({self.dataset}, {len(self)} tiles, years {self._years}, from {self.origin})"
