"""Request planning: chunks to merged byte ranges of their shards (property-based)."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.store.layout import EMPTY, ArrayLayout
from geotessera.store.read.requests import MAX_MERGED_BYTES, MERGE_GAP_BYTES, plan_requests

LAYOUT = ArrayLayout("a", (1, 256, 256), np.dtype("float32"), 0.0, (1, 128, 128), (1, 32, 32), True,
                     None, True, True, "/", False, None)  # fmt: skip  # 2 x 2 shards of 4 x 4 chunks


Chunk = tuple[int, ...]


def _reference(chunks: list[Chunk], indexes: dict[Chunk, np.ndarray]) -> tuple[list, list]:
    """The plan spelled out: absent chunks, and per shard the chunks by offset, a new request
    where the gap from the previous chunk's end or the request's span grows too large."""
    absent, requests = [], []
    by_shard: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for c in chunks:
        by_shard.setdefault((c[0], c[1] // 4, c[2] // 4), []).append(c)
    for shard, members in by_shard.items():
        index = indexes[shard]
        entries = []
        for c in members:
            off, n = (int(v) for v in index[(c[1] % 4) * 4 + c[2] % 4])
            if off == int(EMPTY) and n == int(EMPTY):
                absent.append(c)
            else:
                entries.append((c, off, n))
        entries.sort(key=lambda e: e[1])
        group: list = []
        for e in entries:
            gap = e[1] - (group[-1][1] + group[-1][2]) if group else 0
            if group and (gap > MERGE_GAP_BYTES or e[1] + e[2] - group[0][1] > MAX_MERGED_BYTES):
                requests.append((LAYOUT.shard_key(shard), group))
                group = []
            group.append(e)
        if group:
            requests.append((LAYOUT.shard_key(shard), group))
    return absent, requests


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 900_000), min_size=16, max_size=16),
    gaps=st.lists(st.sampled_from([0, 10, 65_536, 65_537, 400_000]), min_size=16, max_size=16),
    empty=st.sets(st.integers(0, 15)),
    picks=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), min_size=1, max_size=40, unique=True),
    shuffle=st.randoms(use_true_random=False),
)
def test_plan_matches_the_rule(
    sizes: list[int], gaps: list[int], empty: set[int], picks: list[tuple[int, int]], shuffle: random.Random
) -> None:
    layout_order = list(range(16))
    shuffle.shuffle(layout_order)  # chunks stored in another order than their grid order
    entries = np.full((16, 2), EMPTY, dtype="<u8")
    off = 0
    for lin in layout_order:
        off += gaps[lin]
        if lin not in empty:
            entries[lin] = (off, sizes[lin])
            off += sizes[lin]
    indexes: dict[Chunk, np.ndarray] = {(0, r, c): entries for r in range(2) for c in range(2)}
    chunks = [(0, r, c) for r, c in picks]
    seen: list[tuple[int, ...]] = []
    picked = np.array(chunks, dtype=np.int64)
    plan = list(plan_requests(LAYOUT, picked, lambda shards: [indexes[s] for s in shards], seen.append))
    want_absent, want_requests = _reference(chunks, indexes)
    assert sorted(seen) == sorted(want_absent)
    assert plan == want_requests


def test_a_request_spans_at_most_max_merged_bytes() -> None:
    entries = np.full((16, 2), EMPTY, dtype="<u8")
    half = MAX_MERGED_BYTES // 2
    entries[0], entries[1], entries[2] = (0, half), (half, half), (2 * half, 1)  # 2 chunks fill it exactly
    plan = list(plan_requests(LAYOUT, np.array([(0, 0, 0), (0, 0, 1), (0, 0, 2)]),
                              lambda shards: [entries for _ in shards], lambda c: None))  # fmt: skip
    assert [[c for c, _, _ in group] for _, group in plan] == [[(0, 0, 0), (0, 0, 1)], [(0, 0, 2)]]
