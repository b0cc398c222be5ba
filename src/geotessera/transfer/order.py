"""The order a plan's transfers start in: largest first, a window of tiles at a time.

A pool of ``workers`` connections finishes a plan when its last transfer ends. Started in
plan order (each tile's embedding, scales, landmask, tile after tile), the last tiles'
embeddings start late and run alone at the end: through the WAN-like proxy of
``benchmarks/bench_remote.py`` (30 ms, 60 MB/s per connection) 16 tiles on 8 workers took
1.42-1.47 s, the last 0.37 s with fewer and fewer workers busy. Starting the largest files
first (LPT) leaves only small files for the end, which fill the workers evenly, but taken
over the whole plan it fetches every embedding before any scales, so no tile is complete
(and no GeoTIFF conversion can start) until nearly everything has arrived.

:func:`queue_order` does both, on windows of ``workers`` tiles:

1. a tile's files form a group (``TransferItem.label``; an item without a label is a
   group of its own); groups are ordered by their total ``expected_size``, largest
   first, ties in plan order;
2. that sequence is cut into windows of ``workers`` groups, counted from the end: the
   last window is full and the first holds the remainder, so the plan's tail is the
   largest-first order of the last ``workers`` tiles;
3. within a window, items go largest first (ties in plan order).

So the first window's tiles are complete after about one large file per worker (the first
GeoTIFF conversion started at 0.6 s of a 1.4 s transfer), a tile's files all lie in one
window, at most two windows' tiles are partly fetched at a time, and the plan ends on small
files: the same 16 tiles took 1.17-1.24 s (7.7x one worker; with the early writeback of
:mod:`geotessera.files.writeback`). Windows step a whole window at a time rather than
sliding tile by tile: a window that admits the next tile only when one completes starts
that tile's large file behind the window's small ones, which staggers the second round of
large files (7.0x instead of 8.0x for 16 tiles on 8 workers, in a model of the link above).
An unknown ``expected_size`` counts as 0; with no sizes at all the order is the plan's.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from ..errors import InvalidInputError
from .engine import TransferItem

__all__ = ["queue_order", "queue_windows"]


def _size(item: TransferItem) -> int:
    return item.expected_size or 0


def _group_key(index: int, item: TransferItem) -> Hashable:
    return ("label", item.label) if item.label is not None else ("item", index)


def queue_windows(items: Iterable[TransferItem], workers: int) -> list[list[TransferItem]]:
    """The windows of :func:`queue_order`, in order, each already largest first.

    Every window but the first holds the files of exactly ``workers`` tiles (groups of the
    same ``label``); the first holds the rest (1 to ``workers`` tiles).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    groups: dict[Hashable, list[TransferItem]] = {}
    for index, item in enumerate(items):
        groups.setdefault(_group_key(index, item), []).append(item)
    # sorted() is stable: equal totals keep plan order, equal sizes keep their order in the group
    ranked = sorted(groups.values(), key=lambda g: -sum(_size(i) for i in g))
    windows = []
    start, stop = 0, len(ranked) % workers or workers  # the first window holds the remainder
    while start < len(ranked):
        window = [item for group in ranked[start:stop] for item in group]
        windows.append(sorted(window, key=lambda i: -_size(i)))
        start, stop = stop, stop + workers
    return windows


def queue_order(items: Iterable[TransferItem], workers: int) -> list[TransferItem]:
    """``items`` in the order to start them on ``workers`` connections (see the module docstring)."""
    return [item for window in queue_windows(items, workers) for item in window]
