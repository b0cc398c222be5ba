"""Coverage as data: which 0.1-degree cells hold tiles, grouped into coloured layers.

Everything here works on cell index arrays taken from the manifest through the registry's
vectorised queries (:meth:`~geotessera.registry.Registry.tile_keys_for_region`,
:meth:`~geotessera.registry.Registry.tiles_for_points`); no tile is ever downloaded, and no
query loops over tiles in Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError, NotCoveredError

I64 = npt.NDArray[np.int64]

#: Colours of the multi-year layers (the published ones).
ALL_YEARS_COLOUR, LATEST_ONLY_COLOUR, SOME_YEARS_COLOUR = "darkgreen", "darkblue", "darkorange"
#: Colours of the per-source layers (matplotlib's tab10).
SOURCE_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
WORLD = (-180.0, -90.0, 180.0, 90.0)


@dataclass(frozen=True)
class CoverageLayer:
    """Cells drawn in one colour: ``ix``/``iy`` (N,) int64 cell indices (cell = [ix/10, (ix+1)/10) ...)."""

    label: str
    colour: str
    ix: I64
    iy: I64

    @property
    def count(self) -> int:
        """Number of cells."""
        return int(self.ix.size)


@dataclass
class CoverageMap:
    """What a coverage map shows: layers (drawn in order), the extent, an outline and facts.

    ``extent`` is (min_lon, min_lat, max_lon, max_lat) in degrees; ``outline`` a shapely
    geometry in lon/lat (the region asked for) or None; ``facts`` a JSON-ready summary
    (datasets, years, counts per year and layer, the region's covered share).
    """

    title: str
    extent: tuple[float, float, float, float]
    layers: list[CoverageLayer]
    outline: Any = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def locations(self) -> int:
        """Tile locations drawn (cells of all layers)."""
        return sum(layer.count for layer in self.layers)


def cells_of(registry: Any, extent: Sequence[float], year: int) -> I64:
    """Sorted packed cell keys ``(iy + 900) * 3600 + (ix + 1800)`` of ``year``'s tiles in ``extent``."""
    lon_i, lat_i = registry.tile_keys_for_region(tuple(extent), int(year))
    ix = (lon_i.astype(np.int64) - 5) // 10
    iy = (lat_i.astype(np.int64) - 5) // 10
    return np.sort((iy + 900) * 3600 + (ix + 1800))


def unpack(keys: I64) -> tuple[I64, I64]:
    """(ix, iy) of packed cell keys."""
    return keys % 3600 - 1800, keys // 3600 - 900


def padded_extent(bbox: Sequence[float] | None, pad: float = 0.05) -> tuple[float, float, float, float]:
    """``bbox`` grown by ``pad`` of its size on each side (at least one cell), clipped to the world."""
    if bbox is None:
        return WORLD
    w, s, e, n = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (w, s, e, n)) or w > e or s > n:
        raise InvalidInputError(f"invalid bounding box {tuple(bbox)!r}")
    dx, dy = max((e - w) * pad, 0.1), max((n - s) * pad, 0.1)
    return max(-180.0, w - dx), max(-90.0, s - dy), min(180.0, e + dx), min(90.0, n + dy)


def year_layers(
    registry: Any,
    years: Sequence[int],
    extent: Sequence[float],
    *,
    multi_year_colors: bool = True,
    tile_color: str = "red",
) -> tuple[list[CoverageLayer], dict[int, int]]:
    """Layers of ``registry``'s tiles in ``extent`` over ``years``, and the tile count of each year.

    One year, or ``multi_year_colors=False``: one layer in ``tile_color``. Several years:
    cells present in every year, in the latest year only, and in some years, in the
    published colours.
    """
    per_year = {int(y): cells_of(registry, extent, y) for y in years}
    counts = {y: int(k.size) for y, k in per_year.items()}
    if not per_year or not any(counts.values()):
        raise NotCoveredError(f"no tiles of {', '.join(map(str, years)) or 'any year'} in this area")
    if len(per_year) == 1 or not multi_year_colors:
        keys = np.unique(np.concatenate(list(per_year.values())))
        (only,) = per_year if len(per_year) == 1 else (None,)
        label = (
            f"Tiles of {only}" if only is not None else f"Tiles of any year ({min(per_year)}-{max(per_year)})"
        )
        return [CoverageLayer(f"{label} ({keys.size:,})", tile_color, *unpack(keys))], counts
    keys, n_years = np.unique(np.concatenate(list(per_year.values())), return_counts=True)
    latest = max(per_year)
    in_latest = np.isin(keys, per_year[latest], assume_unique=True)
    groups = (
        (f"All {len(per_year)} years", ALL_YEARS_COLOUR, n_years == len(per_year)),
        (f"Latest year only ({latest})", LATEST_ONLY_COLOUR, (n_years == 1) & in_latest),
        ("Some years", SOME_YEARS_COLOUR, (n_years < len(per_year)) & ~((n_years == 1) & in_latest)),
    )
    layers = [
        CoverageLayer(f"{name} ({int(sel.sum()):,})", colour, *unpack(keys[sel]))
        for name, colour, sel in groups
    ]
    return layers, counts


def source_layers(
    registries: Sequence[tuple[str, Any]], years: Sequence[int] | None, extent: Sequence[float]
) -> tuple[list[CoverageLayer], dict[str, dict[int, int]]]:
    """One layer per ``(name, registry)`` source (cells of any of ``years``; None = all its years)."""
    layers, counts = [], {}
    for k, (name, reg) in enumerate(registries):
        ys = [y for y in (years if years is not None else reg.available_years())]
        per_year = {int(y): cells_of(reg, extent, y) for y in ys}
        counts[name] = {y: int(v.size) for y, v in per_year.items()}
        keys = np.unique(np.concatenate(list(per_year.values()))) if per_year else np.empty(0, np.int64)
        colour = SOURCE_COLOURS[k % len(SOURCE_COLOURS)]
        layers.append(CoverageLayer(f"{name} ({keys.size:,})", colour, *unpack(keys)))
    if not any(layer.count for layer in layers):
        raise NotCoveredError("no tiles of the chosen sources and years in this area")
    return layers, counts


def region_share(registry: Any, region: Any, years: Sequence[int]) -> dict[int, int]:
    """Per year, how many of ``region``'s cells (a :class:`~geotessera.regions.Region`) hold a tile."""
    lon, lat = region.centres
    return {int(y): int(registry.tiles_for_points(lon, lat, int(y)).covered.sum()) for y in years}
