"""Grid maths of formats.md section 1: property-based and edge-case tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from geotessera.errors import InvalidInputError
from geotessera.grid import (
    BBox,
    Cell,
    as_bbox,
    cell_index_ranges,
    cells_in_bbox,
    point_to_centre,
    points_to_keys,
)

lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
# points on grid lines exercise the half-open rule
edge_lons = st.integers(-1800, 1800).map(lambda k: k / 10)
edge_lats = st.integers(-900, 900).map(lambda k: k / 10)


@given(st.one_of(lons, edge_lons), st.one_of(lats, edge_lats))
@example(180.0, 90.0)
@example(-180.0, -90.0)
@example(0.0, 0.0)
@example(math.nextafter(0.3, 0), math.nextafter(52.3, 0))
def test_every_point_falls_in_its_cell(lon: float, lat: float) -> None:
    cell = Cell.from_point(lon, lat)
    b = cell.bounds
    if lon < 180:
        assert b.min_lon <= lon < b.max_lon
    else:
        assert cell.lon == 179.95
    if lat < 90:
        assert b.min_lat <= lat < b.max_lat
    else:
        assert cell.lat == 89.95
    # the spec's formula, where x * 10 does not round across an edge
    ix = math.floor(lon * 10)
    if lon < 180 and ix / 10 <= lon < (ix + 1) / 10:
        assert cell.lon == round(ix / 10 + 0.05, 2)


@given(st.integers(-1800, 1799), st.integers(-900, 899))
def test_names_round_trip(ix: int, iy: int) -> None:
    cell = Cell(ix, iy)
    assert Cell.from_name(cell.name) == cell
    assert Cell.from_centre(cell.lon, cell.lat) == cell
    assert Cell.from_key(cell.lon_i, cell.lat_i) == cell
    assert cell.lon_i == round(cell.lon * 100)
    assert cell.lat_i == round(cell.lat * 100)
    assert Cell.from_point(cell.lon, cell.lat) == cell
    assert f"{cell.lon:.2f}" in cell.name


@pytest.mark.parametrize(
    ("lon", "lat", "name"),
    [
        (0.15, 52.05, "grid_0.15_52.05"),
        (-0.1, -0.01, "grid_-0.05_-0.05"),
        (0.0, 0.0, "grid_0.05_0.05"),
        (180.0, 90.0, "grid_179.95_89.95"),
        (-180.0, -90.0, "grid_-179.95_-89.95"),
        (0.17, 52.23, "grid_0.15_52.25"),
        (0.2, 52.1, "grid_0.25_52.15"),  # west/south edges belong east/north
    ],
)
def test_known_names(lon: float, lat: float, name: str) -> None:
    assert Cell.from_point(lon, lat).name == name


@pytest.mark.parametrize(
    "bad",
    [
        "grid_0.15",
        "grid_0.1_52.05",
        "grid_0.10_52.05",
        "grid_+0.15_52.05",
        "grid_0.15_52.05.npy",
        "grid_180.05_0.05",
        "grid_0.15_90.05",
        "grid_-0.150_52.05",
        "tile_0.15_52.05",
    ],
)
def test_bad_names_rejected(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        Cell.from_name(bad)


def _brute_force(b: BBox) -> set[tuple[int, int]]:
    """Cells whose closed cell overlaps the box with positive area (or contain a degenerate box)."""
    out = set()
    for ix in range(math.floor(b.min_lon * 10) - 2, math.floor(b.max_lon * 10) + 3):
        for iy in range(math.floor(b.min_lat * 10) - 2, math.floor(b.max_lat * 10) + 3):
            if not (-1800 <= ix <= 1799 and -900 <= iy <= 899):
                continue
            w, e, s, n = ix / 10, (ix + 1) / 10, iy / 10, (iy + 1) / 10
            if b.min_lon == b.max_lon:
                okx = Cell.from_point(b.min_lon, 0).ix == ix
            else:
                okx = min(e, b.max_lon) - max(w, b.min_lon) > 0
            if b.min_lat == b.max_lat:
                oky = Cell.from_point(0, b.min_lat).iy == iy
            else:
                oky = min(n, b.max_lat) - max(s, b.min_lat) > 0
            if okx and oky:
                out.add((ix, iy))
    return out


small = st.floats(min_value=0, max_value=0.35, allow_nan=False)


@given(
    st.one_of(lons, edge_lons),
    st.one_of(lats, edge_lats),
    st.one_of(small, st.sampled_from([0.0, 0.1, 0.2, 1e-9])),
    st.one_of(small, st.sampled_from([0.0, 0.1, 0.3, 1e-9])),
)
@example(0.0, 52.0, 0.1, 0.1)
@example(179.9, 89.9, 0.1, 0.1)
@example(-180.0, -90.0, 0.0, 0.0)
def test_bbox_selection_equals_brute_force(lon: float, lat: float, dx: float, dy: float) -> None:
    max_lon, max_lat = min(lon + dx, 180.0), min(lat + dy, 90.0)
    assume(lon <= max_lon and lat <= max_lat)
    b = BBox(lon, lat, max_lon, max_lat)
    got = {(c.ix, c.iy) for c in cells_in_bbox(b)}
    assert got == _brute_force(b)
    xr, yr = cell_index_ranges(b)
    assert len(got) == len(xr) * len(yr)


def test_cell_aligned_box_selects_one_cell() -> None:
    assert [c.name for c in cells_in_bbox((0.1, 52.0, 0.2, 52.1))] == ["grid_0.15_52.05"]
    # the London example from user-voice: a box aligned to 2x2 cells gives 4 tiles, not 16
    assert len(cells_in_bbox((-0.2, 51.4, 0.0, 51.6))) == 4


def test_point_bbox_selects_its_cell() -> None:
    assert [c.name for c in cells_in_bbox((0.17, 52.23))] == ["grid_0.15_52.25"]


@pytest.mark.parametrize(
    "bad",
    [
        (1, 2, 3),
        (0, 0, "x", 1),
        (0, 52.3, 0.4, 52.0),
        (0, 91, 1, 92),
        (float("nan"), 0, 1, 1),
        (-181, 0, 0, 1),
        "0,52",
        None,
    ],
)
def test_bad_bboxes(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        as_bbox(bad)


def test_antimeridian_box_gets_its_own_message() -> None:
    with pytest.raises(InvalidInputError, match="antimeridian"):
        as_bbox((179.5, 0, -179.5, 1))


@given(st.lists(st.tuples(st.one_of(lons, edge_lons), st.one_of(lats, edge_lats)), min_size=1, max_size=50))
def test_vectorised_keys_match_scalar(points: list[tuple[float, float]]) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    kx, ky = points_to_keys(lon, lat)
    for (x, y), a, b in zip(points, kx, ky, strict=True):
        c = Cell.from_point(x, y)
        assert (a, b) == (c.lon_i, c.lat_i)
    assert kx.dtype == np.int32


def test_point_to_centre() -> None:
    assert point_to_centre(0.17, 52.23) == (0.15, 52.25)
