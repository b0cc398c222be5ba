"""A readable zone of a store (:class:`Zone`, :func:`load_zone`) and what a pixel's scale says.

Pixel status codes: :data:`VALID`, :data:`WATER`, :data:`NODATA` (never embedded, or an
implausible scale) and :data:`OUTSIDE` (set by callers for points off every zone grid); lower
is better when two zones can serve a pixel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import CorruptDataError, InvalidInputError
from ...tiles import valid_scale_mask
from ..conventions import NODATA_INF, ZoneInfo, depth_array_name, parse_zone, zone_group_name
from ..layout import ArrayLayout
from ..shard_record import RECORD_ATTR, decode_record
from .chunk_reader import ChunkReader

VALID, WATER, NODATA, OUTSIDE = 0, 1, 2, 3
STATUS_NAMES = np.array(["valid", "water", "nodata", "outside"])


@dataclass
class Zone:
    """One readable zone: its grid, array layouts and years (time index order)."""

    info: ZoneInfo
    embeddings: ArrayLayout
    scales: ArrayLayout
    years: list[int]
    scale_nodata: str  # "+inf" or "NaN"
    depths: dict[int, ArrayLayout] = field(default_factory=dict)  # truncated copies by depth

    @property
    def n_bands(self) -> int:
        """Bands of :attr:`embeddings` (128, or the depth of a truncated copy)."""
        return int(self.embeddings.shape[1] if self.band_axis_first else self.embeddings.shape[3])

    def at_depth(self, depth: int | None) -> Zone:
        """This zone reading the copy of the first ``depth`` bands (None or the full band count:
        itself). Raises :class:`CorruptDataError` when the store declares the depth but this zone
        lacks its array."""
        if depth is None or depth == self.n_bands:
            return self
        layout = self.depths.get(depth)
        if layout is None:
            raise CorruptDataError(
                f"zone group {zone_group_name(self.info.zone)} has no {depth_array_name(depth)!r} array, "
                "though the store declares that depth"
            )
        return replace(self, embeddings=layout, depths={})

    @property
    def band_axis_first(self) -> bool:
        """True for the (time, band, y, x) layout of formats.md; False for (time, y, x, band)."""
        dims = self.embeddings.dimension_names
        if dims is None:
            return True
        # truncated copies name their band axis band_d4, band_d16 (xarray needs one size per name)
        return len(dims) == 4 and dims[0] == "time" and dims[1].startswith("band") and dims[2:] == ("y", "x")


def classify(s: npt.NDArray[np.float32], nodata: str) -> tuple[npt.NDArray[np.uint8], int]:
    """Status codes of scales under the store's convention, and the count of implausible scales.

    ``+inf`` convention: +inf (fill) -> NODATA, NaN -> WATER. ``NaN`` convention: NaN -> NODATA.
    A finite scale outside [0, 1) is implausible -> NODATA (reported by the caller).
    """
    st = np.full(s.shape, NODATA, dtype=np.uint8)
    finite = np.isfinite(s)
    ok = valid_scale_mask(s)
    st[ok] = VALID
    if nodata == NODATA_INF:
        st[np.isnan(s)] = WATER
    return st, int((finite & ~ok).sum())


def unwritten(s: npt.NDArray[np.float32], nodata: str) -> npt.NDArray[np.bool_]:
    """True where a scale is the store's "never written" sentinel (+inf, or NaN in stores that
    declare NaN as their nodata): the pixels a nearest-valid search may repair."""
    return np.isnan(s) if nodata != NODATA_INF else np.isposinf(s)


def check_depth(depth: int | None, held: Iterable[int], n_bands: int) -> int | None:
    """``depth`` validated against the store's depths (None, or ``n_bands``: the full embedding).

    Raises :class:`InvalidInputError` (a ``ValueError``) listing the depths the store holds.
    """
    if depth is None:
        return None
    held = sorted(held)
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer):
        raise InvalidInputError(f"depth must be a whole number, got {depth!r}")
    if int(depth) == n_bands:
        return None
    if int(depth) not in held:
        have = ", ".join(str(d) for d in [*held, n_bands])
        raise InvalidInputError(f"the store holds no depth {depth}; its depths: {have} (the full embedding)")
    return int(depth)


def load_zone(
    zone: int,
    meta: Callable[[str], dict[str, Any] | None],
    reader: ChunkReader,
    scale_nodata: str,
    where: str,
    depths: Iterable[int] = (),
) -> Zone | None:
    """Zone ``zone`` of a store (None when it has no such group).

    ``meta(path)`` is the ``zarr.json`` dict of a node (None when absent); the ``time`` array is
    read through ``reader``. ``where`` names the store in errors (:class:`CorruptDataError` for
    a zone group missing an array or with an irregular chunk grid).
    """
    name = zone_group_name(zone)
    gmeta = meta(name)
    if gmeta is None:
        return None
    lay: dict[str, ArrayLayout] = {}
    metas: dict[str, dict[str, Any]] = {}
    for a in ("embeddings", "scales", "time"):
        m = meta(f"{name}/{a}")
        if m is None:
            raise CorruptDataError(f"{where}: zone group {name} has no {a!r} array")
        metas[a] = m
        layout = ArrayLayout.from_metadata(f"{name}/{a}", m)
        if layout is None:
            raise CorruptDataError(f"{where}: zone group {name} has an irregular chunk grid ({a})")
        lay[a] = layout
    emb, scl, tim = lay["embeddings"], lay["scales"], lay["time"]
    h, w = scl.shape[1], scl.shape[2]
    info = parse_zone(name, gmeta.get("attributes", {}), fallback_shape=(h, w))
    years = np.zeros(tim.shape[0], dtype=np.int64)
    n = tim.inner_shape[0]

    def on(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:  # disjoint slices of `years`
        if arr is not None:
            part = arr[: max(0, min(n, tim.shape[0] - c[0] * n))]
            years[c[0] * n : c[0] * n + len(part)] = part

    n_chunks = tim.grid_shape[0] * (tim.shard_shape[0] // n)
    reader.read_chunks(tim, np.arange(n_chunks, dtype=np.int64).reshape(-1, 1), on)
    zone_years = [int(y) for y in years]
    for layout, m in ((emb, metas["embeddings"]), (scl, metas["scales"])):
        _record(reader, layout, m.get("attributes", {}), zone_years, f"{where}: {layout.path}")
    held: dict[int, ArrayLayout] = {}
    for d in depths:  # a declared depth this zone lacks fails when it is read (Zone.at_depth)
        path = f"{name}/{depth_array_name(d)}"
        m = meta(path)
        layout = None if m is None else ArrayLayout.from_metadata(path, m)
        if m is not None and layout is None:
            raise CorruptDataError(f"{where}: zone group {name} has an irregular chunk grid ({path})")
        if m is not None and layout is not None:
            _record(reader, layout, m.get("attributes", {}), zone_years, f"{where}: {path}")
            held[d] = layout
    return Zone(info, emb, scl, zone_years, scale_nodata, held)


def _record(
    reader: ChunkReader, layout: ArrayLayout, attrs: dict[str, Any], years: list[int], where: str
) -> None:
    """Tell ``reader`` which shards of ``layout``'s array its record says hold data (stores
    geotessera built: :mod:`..shard_record`); an array without a record is read as before."""
    shards = decode_record(attrs.get(RECORD_ATTR), where)
    t_of = {y: t for t, y in enumerate(years)}
    cells = [(t_of[y], r, c) for y, rc in shards.items() if y in t_of for r, c in rc]
    if not cells or not layout.sharded:
        return
    dims = layout.dimension_names
    if len(layout.shape) == 4 and (dims is None or (dims[0] == "time" and tuple(dims[2:]) == ("y", "x"))):
        reader.record_shards(layout, [(t, 0, r, c) for t, r, c in cells])  # embeddings, embeddings_d{D}
    elif len(layout.shape) == 3:
        reader.record_shards(layout, cells)
