"""The download queue's order: largest first within a window of tiles, a tile's files together."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geotessera.errors import InvalidInputError
from geotessera.transfer import TransferItem, queue_order, queue_windows

EMB, SCALES, LANDMASK = 27_000_000, 3_300_000, 90_000


def _tile(i: int, emb: int = EMB) -> list[TransferItem]:
    """A tile's three files in plan order (embedding, scales, landmask), labelled by the tile."""
    name = f"grid_{i}/2024"
    return [
        TransferItem(f"e/{i}.npy", Path(f"e{i}"), expected_size=emb, label=name),
        TransferItem(f"s/{i}.npy", Path(f"s{i}"), expected_size=SCALES, label=name),
        TransferItem(f"l/{i}.tiff", Path(f"l{i}"), expected_size=LANDMASK, label=name),
    ]


def _plan(n: int) -> list[TransferItem]:
    return [item for i in range(n) for item in _tile(i, EMB - i)]


def test_sixteen_tiles_on_eight_workers_make_two_rounds_of_large_files_then_small_ones() -> None:
    plan = _plan(16)
    windows = queue_windows(plan, 8)
    assert [len(w) for w in windows] == [24, 24]
    for w in windows:
        sizes = [i.expected_size for i in w]
        # one embedding per worker first, then the window's scales, then its landmasks
        assert sizes[:8] == sorted(sizes[:8], reverse=True) and min(sizes[:8]) > SCALES
        assert sizes[8:16] == [SCALES] * 8 and sizes[16:] == [LANDMASK] * 8
    # the largest tiles (embedding sizes EMB - i) come first: tiles 0-7, then 8-15
    assert [i.key for i in windows[0][:8]] == [f"e/{i}.npy" for i in range(8)]
    assert [i.key for i in windows[1][:8]] == [f"e/{i}.npy" for i in range(8, 16)]
    # the plan ends on small files, so the workers finish together
    order = queue_order(plan, 8)
    assert all(i.expected_size == LANDMASK for i in order[-8:])
    assert order == windows[0] + windows[1]


def test_a_tiles_files_stay_in_one_window() -> None:
    order = queue_order(_plan(16), 8)
    for t in range(16):
        positions = [k for k, item in enumerate(order) if item.label == f"grid_{t}/2024"]
        assert len(positions) == 3
        assert positions[0] // 24 == positions[-1] // 24  # same window of 24 items
        assert positions[-1] - positions[0] < 24


def test_the_first_window_holds_the_remainder_so_the_plan_ends_on_a_full_window() -> None:
    windows = queue_windows(_plan(11), 4)
    assert [len(w) // 3 for w in windows] == [3, 4, 4]
    assert {i.label for i in windows[0]} == {f"grid_{t}/2024" for t in range(3)}  # the largest tiles


def test_without_sizes_the_plan_order_is_kept() -> None:
    plan = [TransferItem(f"k{i}", Path(f"d{i}"), label=f"t{i // 3}") for i in range(12)]
    assert queue_order(plan, 4) == plan
    assert queue_order(plan, 1) == plan


def test_items_without_label_are_groups_of_their_own() -> None:
    plan = [TransferItem(f"k{i}", Path(f"d{i}"), expected_size=s) for i, s in enumerate([1, 5, 3, 5])]
    assert [i.key for i in queue_order(plan, 4)] == ["k1", "k3", "k2", "k0"]  # ties keep plan order
    assert [i.key for i in queue_order(plan, 2)] == ["k1", "k3", "k2", "k0"]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "8"])
def test_bad_worker_counts_are_refused(workers: object) -> None:
    with pytest.raises(InvalidInputError, match="workers"):
        queue_order(_plan(2), workers)  # type: ignore[arg-type]


def size(item: TransferItem) -> int:
    return item.expected_size or 0


_sizes = st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))


@given(
    tiles=st.lists(st.lists(_sizes, min_size=1, max_size=4), min_size=0, max_size=40),
    workers=st.integers(min_value=1, max_value=12),
)
def test_order_properties(tiles: list[list[int | None]], workers: int) -> None:
    plan = [
        TransferItem(f"{t}/{k}", Path(f"{t}-{k}"), expected_size=size, label=f"tile{t}")
        for t, sizes in enumerate(tiles)
        for k, size in enumerate(sizes)
    ]
    windows = queue_windows(plan, workers)
    order = queue_order(plan, workers)
    assert order == [i for w in windows for i in w]
    assert Counter(order) == Counter(plan)  # a permutation: nothing lost, nothing repeated
    window_of: dict[str | None, int] = {}
    for w_index, w in enumerate(windows):
        labels = {i.label for i in w}
        # every window but the first holds exactly `workers` tiles; the first 1..workers
        assert 1 <= len(labels) <= workers and (w_index == 0 or len(labels) == workers)
        assert [size(i) for i in w] == sorted((size(i) for i in w), reverse=True)  # largest first
        for i in w:
            assert window_of.setdefault(i.label, w_index) == w_index  # a tile's files in one window
    # tiles go largest first: no tile in a later window is bigger than one in an earlier window
    totals = [sorted(sum(size(i) for i in w if i.label == t) for t in {i.label for i in w}) for w in windows]
    for earlier, later in itertools.pairwise(totals):
        assert earlier[0] >= later[-1]
