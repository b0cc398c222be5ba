"""What a sample store build writes, decided without I/O: options checked, tiles chosen.

:func:`plan_store` turns the options of :func:`~geotessera.sample.build.build_store`
into a :class:`StorePlan` (datasets, years, cells, and which edge tiles play which role).
Everything here is re-exported by :mod:`geotessera.sample.build`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..datasets import DatasetId, normalize_version
from ..errors import InvalidInputError
from ..grid import Cell, cell_index_ranges, cells_in_bbox

DEFAULT_BBOX = (0.0, 52.0, 0.4, 52.3)
DEFAULT_YEARS = (2023, 2024)
DEFAULT_VERSIONS = ("v1", "v1.1")
#: The variant built for each supported version.
VERSION_VARIANTS = {"1.0": "vultr", "1.1": "cambridge"}
MAX_TILES = 2000

#: Extra tiles added with ``edge_tiles=True``, by role (tile centres, degrees).
EDGE_TILES: dict[str, tuple[tuple[float, float], ...]] = {
    "seam": ((5.95, 45.05), (6.05, 45.05)),
    "southern": ((-58.45, -34.55),),
    "coastal": ((1.75, 52.45),),
    "partial_year": ((0.35, 52.25),),
}


@dataclass(frozen=True)
class StorePlan:
    """Which datasets, years and tiles a build writes.

    ``absent`` maps a cell to the years it is missing from; ``roles`` maps an
    edge-tile role ("seam", "southern", "coastal", "partial_year") to its cells.
    """

    datasets: tuple[DatasetId, ...]
    years: tuple[int, ...]
    cells: tuple[Cell, ...]
    absent: dict[Cell, tuple[int, ...]] = field(default_factory=dict)
    roles: dict[str, tuple[Cell, ...]] = field(default_factory=dict)

    def present(self, cell: Cell, year: int) -> bool:
        """Whether ``cell`` has embeddings in ``year``."""
        return year not in self.absent.get(cell, ())

    def cells_in_year(self, year: int) -> list[Cell]:
        """The cells with embeddings in ``year``."""
        return [c for c in self.cells if self.present(c, year)]


# --- input validation --------------------------------------------------------------------
def _as_years(years: Sequence[int]) -> tuple[int, ...]:
    if isinstance(years, str | bytes) or not isinstance(years, Sequence):
        raise InvalidInputError(f"years must be a sequence of integers, got {years!r}")
    out = set()
    for y in years:
        if isinstance(y, bool) or not isinstance(y, int | np.integer) or not 2000 <= int(y) <= 2100:
            raise InvalidInputError(f"year {y!r} is not an integer year between 2000 and 2100")
        out.add(int(y))
    if not out:
        raise InvalidInputError("at least one year is needed")
    return tuple(sorted(out))


def _as_datasets(versions: Sequence[str]) -> tuple[DatasetId, ...]:
    if isinstance(versions, str | bytes) or not isinstance(versions, Sequence):
        raise InvalidInputError(f"versions must be a sequence of version strings, got {versions!r}")
    out: list[DatasetId] = []
    for v in versions:
        canonical = normalize_version(v)
        if canonical not in VERSION_VARIANTS:
            known = ", ".join(DatasetId(k).vpath for k in VERSION_VARIANTS)
            raise InvalidInputError(f"the sample store has no version {v!r} (known: {known})")
        ds = DatasetId(canonical, VERSION_VARIANTS[canonical])
        if ds not in out:
            out.append(ds)
    if not out:
        raise InvalidInputError("at least one dataset version is needed")
    return tuple(out)


def _as_pixel_size(pixel_size_m: float) -> float:
    try:
        p = float(pixel_size_m)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"pixel size {pixel_size_m!r} is not a number") from exc
    if not (math.isfinite(p) and 1.0 <= p <= 1000.0):
        raise InvalidInputError(f"pixel size {pixel_size_m!r} m is outside [1, 1000]")
    return p


def plan_store(
    *,
    bbox: tuple[float, float, float, float] | None = None,
    years: Sequence[int] = DEFAULT_YEARS,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    edge_tiles: bool = True,
) -> StorePlan:
    """Validate the options of :func:`build_store` and list what it would write (no I/O)."""
    datasets = _as_datasets(versions)
    yrs = _as_years(years)
    region = DEFAULT_BBOX if bbox is None else bbox
    xs, ys = cell_index_ranges(region)
    if len(xs) * len(ys) > MAX_TILES:
        raise InvalidInputError(
            f"bbox {bbox!r} selects {len(xs) * len(ys)} tiles; the sample store allows {MAX_TILES}"
        )
    cells = set(cells_in_bbox(region))
    roles: dict[str, tuple[Cell, ...]] = {}
    absent: dict[Cell, tuple[int, ...]] = {}
    if edge_tiles:
        for role, centres in EDGE_TILES.items():
            roles[role] = tuple(Cell.from_centre(lon, lat) for lon, lat in centres)
            cells.update(roles[role])
        if len(yrs) >= 2:
            for cell in roles["partial_year"]:
                absent[cell] = (yrs[0],)
    if len(cells) > MAX_TILES:
        raise InvalidInputError(
            f"bbox {bbox!r} selects {len(cells)} tiles; the sample store allows {MAX_TILES}"
        )
    ordered = tuple(sorted(cells, key=lambda c: (c.iy, c.ix)))
    return StorePlan(datasets, yrs, ordered, absent, roles)
