"""Registry queries on in-memory Arrow tables, checked against brute force over the rows."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geotessera.datasets import DatasetId
from geotessera.errors import CorruptDataError, CoverageWarning, InvalidInputError, NotCoveredError
from geotessera.grid import Cell
from geotessera.registry import Registry

# a small patch of the grid (cells ix in [-6, 5], iy in [518, 527]) so random boxes hit tiles
IX = st.integers(-6, 5)
IY = st.integers(518, 527)
YEARS = st.integers(2017, 2025)
ROWS = st.lists(st.tuples(YEARS, IX, IY), min_size=0, max_size=60)


def make_table(rows: list[tuple[int, int, int]], *, shuffle_seed: int | None = None) -> pa.Table:
    """Manifest table (formats.md section 4 columns, no lon_i/lat_i) of (year, ix, iy) rows."""
    years = [r[0] for r in rows]
    lons = [Cell(r[1], r[2]).lon for r in rows]
    lats = [Cell(r[1], r[2]).lat for r in rows]
    order = list(range(len(rows)))
    if shuffle_seed is not None:
        np.random.default_rng(shuffle_seed).shuffle(order)
    return pa.table(
        {
            "year": pa.array([years[i] for i in order], pa.int64()),
            "lon": pa.array([lons[i] for i in order], pa.float64()),
            "lat": pa.array([lats[i] for i in order], pa.float64()),
            "grid_size": pa.array([1000 * (i + 1) for i in order], pa.int64()),
            "scales_size": pa.array([i + 1 for i in order], pa.int64()),
        }
    )


def brute_force(rows: list[tuple[int, int, int]], bbox: tuple[float, float, float, float], year: int) -> set:
    """Tiles of ``year`` whose cell overlaps ``bbox`` with positive area (a point: its cell)."""
    x0, y0, x1, y1 = bbox

    def overlaps(i: int, lo: float, hi: float, last: int) -> bool:
        a, b = i / 10, (i + 1) / 10
        if lo == hi:  # degenerate axis: the half-open cell containing the coordinate
            return a <= lo < b or (i == last and lo == b)
        return max(lo, a) < min(hi, b)

    return {
        (y, Cell(ix, iy).lon, Cell(ix, iy).lat)
        for (y, ix, iy) in rows
        if y == year and overlaps(ix, x0, x1, 1799) and overlaps(iy, y0, y1, 899)
    }


coords_lon = st.one_of(st.floats(-0.7, 0.7), st.integers(-7, 7).map(lambda k: k / 10))
coords_lat = st.one_of(st.floats(51.7, 52.9), st.integers(517, 529).map(lambda k: k / 10))


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    """Random boxes, boxes on cell edges, tiny boxes and points."""
    kind = draw(st.sampled_from(["any", "aligned", "tiny", "point"]))
    if kind == "aligned":
        ix, iy = draw(IX), draw(IY)
        w, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        return (ix / 10, iy / 10, (ix + w) / 10, (iy + h) / 10)
    x, y = draw(coords_lon), draw(coords_lat)
    if kind == "point":
        return (x, y, x, y)
    if kind == "tiny":
        return (x, y, math.nextafter(x, 1.0), math.nextafter(y, 90.0))
    x2, y2 = draw(coords_lon), draw(coords_lat)
    return (min(x, x2), min(y, y2), max(x, x2), max(y, y2))


@settings(max_examples=150, deadline=None)
@given(ROWS, boxes(), YEARS, st.integers(0, 3))
@example([(2024, 1, 520)], (0.1, 52.0, 0.2, 52.1), 2024, 0)
@example([(2024, 0, 520), (2024, 1, 520), (2024, 1, 521)], (0.1, 52.0, 0.1, 52.0), 2024, 1)
@pytest.mark.filterwarnings("ignore::geotessera.errors.CoverageWarning")
def test_region_query_equals_brute_force(rows: list, bbox: tuple, year: int, seed: int) -> None:
    reg = Registry.from_table(make_table(rows, shuffle_seed=seed))
    got = reg.load_blocks_for_region(bbox, year)
    assert len(got) == len(set(got))
    assert set(got) == brute_force(rows, bbox, year)
    assert all(isinstance(t[0], int) and isinstance(t[1], float) for t in got)


def test_box_aligned_to_one_cell_gives_one_tile() -> None:
    rows = [(2024, ix, iy) for ix in range(-1, 3) for iy in range(519, 523)]
    reg = Registry.from_table(make_table(rows))
    assert reg.load_blocks_for_region((0.1, 52.0, 0.2, 52.1), 2024) == [(2024, 0.15, 52.05)]
    # a 2x2-cell aligned box: 4 tiles, not the 16 a touching rule would give
    assert len(reg.load_blocks_for_region((0.0, 52.0, 0.2, 52.2), 2024)) == 4


@settings(max_examples=60, deadline=None)
@given(ROWS, st.lists(st.tuples(coords_lon, coords_lat), min_size=1, max_size=30), YEARS)
def test_points_equal_brute_force(rows: list, points: list, year: int) -> None:
    reg = Registry.from_table(make_table(rows))
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    res = reg.tiles_for_points(lon, lat, year)
    present = {(ix, iy) for (y, ix, iy) in rows if y == year}
    for i, (x, y) in enumerate(points):
        c = Cell.from_point(x, y)
        assert (res.lon_i[i], res.lat_i[i]) == (c.lon_i, c.lat_i)
        assert bool(res.covered[i]) == ((c.ix, c.iy) in present)


@settings(max_examples=60, deadline=None)
@given(ROWS)
def test_years_counts_and_membership(rows: list) -> None:
    reg = Registry.from_table(make_table(rows, shuffle_seed=1))
    unique = set(rows)
    assert len(reg) == len(unique)
    assert reg.available_years() == sorted({y for y, _, _ in unique})
    counts: dict[int, int] = {}
    for y, _, _ in unique:
        counts[y] = counts.get(y, 0) + 1
    assert reg.tile_counts_by_year() == counts
    for _, ix, iy in list(unique)[:5]:
        c = Cell(ix, iy)
        assert reg.years_for_tile(c.lon, c.lat) == sorted({y for y, a, b in unique if (a, b) == (ix, iy)})
        for year in range(2017, 2026):
            assert reg.has_tile(year, c.lon, c.lat) == ((year, ix, iy) in unique)


def test_a_region_without_coverage_warns_as_the_cli_says() -> None:
    reg = Registry.from_table(make_table([(2023, 1, 520), (2024, 1, 520)]))
    with pytest.warns(CoverageWarning) as caught:
        assert reg.load_blocks_for_region((10.0, 10.0, 10.2, 10.1), 2024) == []
    assert [str(w.message) for w in caught] == [
        "none of the 2 tiles of bbox (10.0, 10.0, 10.2, 10.1) is covered for 2024 "
        "(dataset v1/vultr has data for 2023, 2024, elsewhere)"
    ]
    with pytest.warns(CoverageWarning, match=r"^the only tile of bbox \(10\.0, 10\.0, 10\.1, 10\.1\) is not"):
        reg.load_blocks_for_region((10.0, 10.0, 10.1, 10.1), 2024)


def test_empty_registry() -> None:
    reg = Registry.from_table(make_table([]))
    assert len(reg) == 0
    assert reg.available_years() == []
    with pytest.warns(
        CoverageWarning, match=r"none of the 100 tiles of .* \(dataset v1/vultr has no tiles at all\)"
    ):
        assert reg.load_blocks_for_region((0, 52, 1, 53), 2024) == []
    assert not reg.tiles_for_points([0.1], [52.1], 2024).covered.any()
    assert reg.years_for_tile(0.15, 52.05) == []


def test_not_covered_names_tile_and_years() -> None:
    reg = Registry.from_table(make_table([(2024, 1, 520), (2024, 3, 521)]))
    reg.require_tile(2024, 0.15, 52.05)
    with pytest.raises(NotCoveredError) as exc:
        reg.require_tile(2023, 0.15, 52.05)
    msg = str(exc.value)
    assert "tile grid_0.15_52.05 is not covered for 2023" in msg
    assert "available years for this tile: 2024" in msg
    with pytest.raises(
        NotCoveredError, match=r"grid_0\.45_52\.05 .*not in the dataset at all.*grid_0\.35_52\.15"
    ):
        reg.require_tile(2024, 0.45, 52.05)
    with pytest.raises(NotCoveredError, match="no tiles for 2019"):
        reg.require_tile(2019, 5.0, 5.0)
    assert isinstance(exc.value, LookupError)


def test_file_sizes_and_landmasks() -> None:
    rows = [(2024, 1, 520), (2024, 2, 520), (2023, 1, 520)]
    landmasks = pa.table({"lon": [0.15, 0.25], "lat": [52.05, 52.05], "file_size": [11, 22]})
    reg = Registry.from_table(make_table(rows, shuffle_seed=3), landmasks=landmasks)
    tiles = reg.load_blocks_for_region((0.1, 52.0, 0.3, 52.1), 2024)
    assert reg.file_sizes(tiles) == (1000 + 2000, 1 + 2)
    assert reg.file_sizes([]) == (0, 0)
    assert reg.landmask_size(0.15, 52.05) == 11
    assert reg.landmask_size(0.21, 52.01) == 22  # any point of the tile
    assert reg.landmask_size(5.0, 5.0) is None
    with pytest.raises(NotCoveredError, match=r"grid_0\.25_52\.05 is not covered for 2023"):
        reg.file_sizes([(2023, 0.25, 52.05)])
    with pytest.raises(InvalidInputError):
        reg.file_sizes([(2023.5, 0.25, 52.05)])
    assert Registry.from_table(make_table(rows)).landmask_size(0.15, 52.05) is None


def test_duplicates_and_legacy_columns() -> None:
    table = pa.table(
        {
            "year": [2024, 2024, 2024],
            "lon_i": pa.array([15, 15, 25], pa.int32()),
            "lat_i": pa.array([5205, 5205, 5205], pa.int32()),
            "file_size": [7, 7, 9],  # legacy name of grid_size
        }
    )
    reg = Registry.from_table(table)
    assert len(reg) == 2
    assert reg.file_sizes(reg.load_blocks_for_region((0, 52, 0.3, 52.1), 2024)) == (16, 0)


@pytest.mark.parametrize(
    ("columns", "needle"),
    [
        ({"lon": [0.15], "lat": [52.05], "grid_size": [1]}, "year"),
        ({"year": [2024], "lat": [52.05], "grid_size": [1]}, "lon"),
        ({"year": [2024], "lon": [0.15], "lat": [52.05]}, "grid_size"),
    ],
)
def test_missing_columns_are_corrupt(columns: dict, needle: str) -> None:
    with pytest.raises(CorruptDataError, match=needle):
        Registry.from_table(pa.table(columns))


def test_non_centre_rows_are_corrupt() -> None:
    table = pa.table({"year": [2024], "lon": [0.1], "lat": [52.05], "grid_size": [1]})
    with pytest.raises(CorruptDataError, match="not a tile centre"):
        Registry.from_table(table)


def test_variants_are_filtered_never_mixed() -> None:
    table = pa.table(
        {
            "version": ["1.0", "1.0", "1.1"],
            "variant": ["vultr", "cambridge", "cambridge"],
            "year": [2024, 2024, 2024],
            "lon": [0.15, 0.25, 0.35],
            "lat": [52.05, 52.05, 52.05],
            "grid_size": [1, 2, 3],
        }
    )
    vultr = Registry.from_table(table, DatasetId.parse("v1", "vultr"))
    assert vultr.load_blocks_for_region((0, 52, 1, 53), 2024) == [(2024, 0.15, 52.05)]
    cam = Registry.from_table(table, DatasetId.parse("1.1", "cambridge"))
    assert cam.load_blocks_for_region((0, 52, 1, 53), 2024) == [(2024, 0.35, 52.05)]
    with pytest.raises(NotCoveredError, match=r"dataset v1\.1/vultr does not exist: .* holds .*v1/cambridge"):
        Registry.from_table(table, DatasetId.parse("1.1", "vultr"))


def test_edges_of_the_world() -> None:
    rows = [(2024, 1799, 899), (2024, -1800, -900)]
    reg = Registry.from_table(make_table(rows))
    assert reg.load_blocks_for_region((180, 90, 180, 90), 2024) == [(2024, 179.95, 89.95)]
    assert len(reg.load_blocks_for_region((-180, -90, 180, 90), 2024)) == 2
    assert reg.has_tile(2024, -180, -90)
