"""Property tests of the option parsers (--bbox, --tile, --year/--years, --bands) and of as_bbox.

Whatever the text, a parser either returns a value that keeps its promises (finite, in range,
ordered, bounded in size) or raises the one error the CLI turns into an ``error:`` line; and
what it accepts round-trips with what a user meant.
"""

from __future__ import annotations

import math

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.cli.options import N_BANDS, YEAR_RANGE, _bands, _bbox, _point, parse_years
from geotessera.errors import InvalidInputError
from geotessera.grid import as_bbox

EXAMPLES = settings(max_examples=200, deadline=None)

_number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-400, 400).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "", " ", "-", "+", "1e", "0x10", "١", "1_0", "--1"]),
    st.text(max_size=4),
)
_lists = st.lists(_number_text, max_size=6).map(",".join)
_texts = st.one_of(_lists, st.text(max_size=40))


def _call(parser: object, text: str) -> object:
    return parser(None, None, text)  # type: ignore[operator]


@EXAMPLES
@given(_texts)
def test_bbox_parser_returns_a_valid_box_or_a_usage_error(text: str) -> None:
    try:
        box = _call(_bbox, text)
    except click.BadParameter:
        return
    assert isinstance(box, tuple) and len(box) == 4
    w, s, e, n = box
    assert all(math.isfinite(v) for v in box)
    assert -180 <= w <= e <= 180 and -90 <= s <= n <= 90


@EXAMPLES
@given(
    st.lists(st.floats(-200, 200, allow_nan=False), min_size=4, max_size=4),
)
def test_bbox_parser_reads_the_numbers_it_is_given(nums: list[float]) -> None:
    text = ",".join(repr(v) for v in nums)
    w, s, e, n = nums
    valid = -180 <= w <= e <= 180 and -90 <= s <= n <= 90
    if valid:
        assert _call(_bbox, text) == tuple(nums)
    else:
        with pytest.raises(click.BadParameter):
            _call(_bbox, text)


@EXAMPLES
@given(_texts)
def test_tile_parser_returns_a_point_on_earth_or_a_usage_error(text: str) -> None:
    try:
        lon, lat = _call(_point, text)  # type: ignore[misc]
    except click.BadParameter:
        return
    assert -180 <= lon <= 180 and -90 <= lat <= 90


_year_parts = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.tuples(st.integers(1800, 2200), st.integers(1800, 2200)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(st.integers(0, 10**15), st.integers(0, 10**15)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.text(max_size=6),
)


@EXAMPLES
@given(st.lists(st.lists(_year_parts, max_size=4).map(",".join), min_size=1, max_size=3))
def test_years_parser_is_bounded_sorted_and_in_range(values: list[str]) -> None:
    try:
        years = parse_years(values)
    except click.BadParameter:
        return
    lo, hi = YEAR_RANGE
    assert years == sorted(set(years))
    assert years and all(lo <= y <= hi for y in years)
    assert len(years) <= hi - lo + 1  # never more than the plausible years, whatever was typed


_band_parts = st.one_of(
    st.integers(-5, 200).map(str),
    st.tuples(st.integers(-5, 200), st.integers(-5, 200)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 10**18).map(lambda n: f"0-{n}"),
    st.text(max_size=5),
)


@EXAMPLES
@given(st.lists(_band_parts, max_size=6).map(",".join))
def test_bands_parser_gives_unique_indices_within_0_127(text: str) -> None:
    try:
        bands = _call(_bands, text)
    except click.BadParameter:
        return
    assert isinstance(bands, list) and bands
    assert len(set(bands)) == len(bands) and all(0 <= b < N_BANDS for b in bands)


@EXAMPLES
@given(st.lists(st.integers(0, N_BANDS - 1), min_size=1, max_size=20, unique=True))
def test_bands_parser_reads_the_indices_it_is_given(bands: list[int]) -> None:
    assert _call(_bands, ",".join(map(str, bands))) == bands


@EXAMPLES
@given(
    st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6),
        st.lists(st.one_of(st.integers(-(10**400), 10**400), st.text(max_size=3)), max_size=5),
        st.text(max_size=20),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=4),
    )
)
def test_as_bbox_refuses_or_returns_a_valid_box(value: object) -> None:
    try:
        box = as_bbox(value)
    except InvalidInputError:
        return
    w, s, e, n = box
    assert all(math.isfinite(v) for v in box)
    assert -180 <= w <= e <= 180 and -90 <= s <= n <= 90


def test_as_bbox_never_reads_a_string_by_its_characters() -> None:
    for value in ("1234", b"1234", {"a": 1, "b": 2}):  # "1234" was the box (1, 2, 3, 4)
        with pytest.raises(InvalidInputError):
            as_bbox(value)
