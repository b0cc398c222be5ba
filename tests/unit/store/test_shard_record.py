"""The shard record: which shards of an array hold data (store/shard_record.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.errors import CorruptDataError
from geotessera.store.shard_record import decode_record, encode_record, merged_record

GRID = st.tuples(st.integers(1, 12), st.integers(1, 12))


@st.composite
def records(draw: st.DrawFn) -> tuple[tuple[int, int], dict[int, set[tuple[int, int]]]]:
    rows, cols = draw(GRID)
    cell = st.tuples(st.integers(0, rows - 1), st.integers(0, cols - 1))
    shards = draw(
        st.dictionaries(st.integers(2017, 2030), st.sets(cell, min_size=1, max_size=20), max_size=4)
    )
    return (rows, cols), shards


@settings(max_examples=60, deadline=None)
@given(records())
def test_a_record_reads_back_exactly(rec: tuple[tuple[int, int], dict[int, set[tuple[int, int]]]]) -> None:
    grid, shards = rec
    assert decode_record(encode_record(shards, grid), "here") == shards


@settings(max_examples=60, deadline=None)
@given(records(), st.data())
def test_a_merge_adds_what_holds_data_and_drops_what_no_longer_does(
    rec: tuple[tuple[int, int], dict[int, set[tuple[int, int]]]], data: st.DataObject
) -> None:
    (rows, cols), old = rec
    grown = (rows + data.draw(st.integers(0, 3)), cols + data.draw(st.integers(0, 3)))
    cell = st.tuples(st.integers(0, grown[0] - 1), st.integers(0, grown[1] - 1))
    seen = data.draw(
        st.dictionaries(st.integers(2017, 2030), st.dictionaries(cell, st.booleans()), max_size=3)
    )
    got = decode_record(merged_record(encode_record(old, (rows, cols)), seen, grown, "here"), "here")
    for year in set(old) | set(seen):
        want = set(old.get(year, set()))
        want |= {c for c, held in seen.get(year, {}).items() if held}
        want -= {c for c, held in seen.get(year, {}).items() if not held}
        assert got.get(year, set()) == want


def test_no_record_is_an_empty_one() -> None:
    assert decode_record(None, "here") == {}


@pytest.mark.parametrize(
    "value",
    [
        "text",
        {"grid": [2, 2]},
        {"grid": [2], "years": {}},
        {"grid": [4, 4], "years": {"2024": "AA=="}},  # 8 bits for 16 shards
        {"grid": [2, 2], "years": {"2024": "not base64!"}},
        {"grid": [2, 2], "years": {"twenty": "gA=="}},
        {"grid": [2, 2], "years": ["2024"]},
    ],
)
def test_a_malformed_record_is_corrupt_data(value: Any) -> None:
    with pytest.raises(
        CorruptDataError, match="utm31/embeddings: attribute 'geotessera:shards' is malformed"
    ):
        decode_record(value, "utm31/embeddings")


def test_a_shard_outside_the_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        encode_record({2024: {(2, 0)}}, (2, 2))
