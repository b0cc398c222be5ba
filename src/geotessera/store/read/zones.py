"""A readable zone of a store (:class:`Zone`, :func:`load_zone`) and what a pixel's scale says.

Pixel status codes: :data:`VALID`, :data:`WATER`, :data:`NODATA` (never embedded, or an
implausible scale) and :data:`OUTSIDE` (set by callers for points off every zone grid); lower
is better when two zones can serve a pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import CorruptDataError
from ...tiles import valid_scale_mask
from ..conventions import NODATA_INF, ZoneInfo, parse_zone, zone_group_name
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

    @property
    def band_axis_first(self) -> bool:
        """True for the (time, band, y, x) layout of formats.md; False for (time, y, x, band)."""
        dims = self.embeddings.dimension_names
        return dims is None or list(dims) == ["time", "band", "y", "x"]


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


def load_zone(
    zone: int,
    meta: Callable[[str], dict[str, Any] | None],
    reader: ChunkReader,
    scale_nodata: str,
    where: str,
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
    return Zone(info, emb, scl, zone_years, scale_nodata)


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
    if len(layout.shape) == 4 and layout.dimension_names in (None, ("time", "band", "y", "x")):
        reader.record_shards(layout, [(t, 0, r, c) for t, r, c in cells])
    elif len(layout.shape) == 3:
        reader.record_shards(layout, cells)
