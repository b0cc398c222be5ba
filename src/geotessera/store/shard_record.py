"""Which shards of an array hold data: the record a geotessera build leaves in the array's attributes.

An absent shard reads as the fill value in Zarr, so a shard deleted from a store would read as
"no data" without a word. A build therefore records, in the attribute :data:`RECORD_ATTR` of
each zone's ``embeddings`` and ``scales`` arrays, every (year, shard row, shard col) whose shard
file holds data (a shard of fill values only is never written, so it is not recorded), and the
reader refuses to read a recorded shard as absent. The record is compact: per year a bitmap over
the zone's shard grid, packed and base64-encoded::

    {"grid": [rows, cols], "years": {"2024": "<base64 of numpy.packbits(bitmap, C order)>"}}

Stores without the attribute (the published ones) are read as before.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import CorruptDataError

RECORD_ATTR = "geotessera:shards"

Shards = dict[int, set[tuple[int, int]]]
"""year -> {(shard row, shard col)}."""


def decode_record(value: Any, where: str) -> Shards:
    """The shards a record lists (empty for None); :class:`CorruptDataError` if it is malformed."""
    if value is None:
        return {}
    try:
        rows, cols = (int(n) for n in value["grid"])
        out: Shards = {}
        for year, text in value["years"].items():
            bits = np.unpackbits(np.frombuffer(base64.b64decode(text, validate=True), np.uint8))
            if bits.size < rows * cols:
                raise ValueError(f"{bits.size} bits for a {rows} x {cols} grid")
            r, c = np.nonzero(bits[: rows * cols].reshape(rows, cols))
            out[int(year)] = {(int(a), int(b)) for a, b in zip(r, c, strict=True)}
        return out
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptDataError(f"{where}: attribute {RECORD_ATTR!r} is malformed ({exc})") from exc


def encode_record(shards: Mapping[int, Iterable[tuple[int, int]]], grid: tuple[int, int]) -> dict[str, Any]:
    """The attribute value recording ``shards`` on a shard grid of ``grid`` (rows, cols)."""
    rows, cols = grid
    years: dict[str, str] = {}
    for year, cells in sorted(shards.items()):
        bitmap = np.zeros((rows, cols), dtype=np.uint8)
        for r, c in cells:
            if not (0 <= r < rows and 0 <= c < cols):
                raise ValueError(f"shard ({r}, {c}) lies outside the {rows} x {cols} grid")
            bitmap[r, c] = 1
        years[str(year)] = base64.b64encode(np.packbits(bitmap.ravel()).tobytes()).decode("ascii")
    return {"grid": [rows, cols], "years": years}


def merged_record(
    old: Any, seen: Mapping[int, Mapping[tuple[int, int], bool]], grid: tuple[int, int], where: str
) -> dict[str, Any]:
    """``old`` (an attribute value, or None) updated with ``seen`` (year -> shard -> holds data),
    on the grid ``grid`` (a zone only grows east and south, so an older, smaller grid's shards
    keep their places); shards not in ``seen`` keep their old entry."""
    shards = decode_record(old, where)
    for year, cells in seen.items():
        mine = shards.setdefault(int(year), set())
        mine.update(c for c, held in cells.items() if held)
        mine.difference_update(c for c, held in cells.items() if not held)
    return encode_record({y: c for y, c in shards.items() if c}, grid)
