"""UTM zone, EPSG and pixel grid rule (formats.md section 1)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from pyproj import Transformer

from geotessera.grid import Cell, PixelGrid, utm_epsg, utm_zone


def test_zone_and_epsg_examples() -> None:
    assert utm_zone(0.15) == 31
    assert utm_zone(5.95) == 31
    assert utm_zone(6.05) == 32
    assert utm_zone(-179.95) == 1
    assert utm_zone(179.95) == 60
    assert utm_epsg(0.15, 52.05) == 32631
    assert utm_epsg(-58.45, -34.55) == 32721
    assert utm_epsg(0.05, -0.05) == 32731
    assert utm_epsg(0.05, 0.05) == 32631


@given(st.integers(-1800, 1799), st.integers(-900, 899))
def test_zone_from_centre_formula(ix: int, iy: int) -> None:
    c = Cell(ix, iy)
    z = utm_zone(c.lon)
    assert 1 <= z <= 60
    assert z == min(max(math.floor((c.lon + 180) / 6) + 1, 1), 60)
    assert utm_epsg(c.lon, c.lat) == (32600 if c.lat >= 0 else 32700) + z


def test_pixel_grid_at_52n_matches_published_size() -> None:
    g = PixelGrid.from_cell(Cell.from_name("grid_0.15_52.05"))
    assert g.epsg == 32631
    assert abs(g.height - 1140) <= 3 and abs(g.width - 731) <= 3
    assert g.transform.a == 10 and g.transform.e == -10
    assert g.transform.c % 10 == 0 and g.transform.f % 10 == 0


def test_pixel_grid_at_equator() -> None:
    g = PixelGrid.from_cell(Cell.from_name("grid_0.05_0.05"))
    assert abs(g.height - 1107) <= 3 and abs(g.width - 1107) <= 10


@given(st.integers(-1800, 1799), st.integers(-800, 799), st.sampled_from([10.0, 100.0]))
def test_pixel_grid_covers_the_cell(ix: int, iy: int, p: float) -> None:
    cell = Cell(ix, iy)
    g = PixelGrid.from_cell(cell, p)
    tr = Transformer.from_crs(4326, g.epsg, always_xy=True)
    b = cell.bounds
    xs, ys = tr.transform(
        [b.min_lon, b.min_lon, b.max_lon, b.max_lon], [b.min_lat, b.max_lat, b.min_lat, b.max_lat]
    )
    left, bottom, right, top = g.bounds
    assert left <= min(xs[:2]) and top >= max(ys[1], ys[3])
    assert right >= max(xs[2:]) and bottom <= min(ys[0], ys[2])
    # snapped outward by less than one pixel
    assert min(xs[:2]) - left < p and top - max(ys[1], ys[3]) < p
    assert right - max(xs[2:]) < p and min(ys[0], ys[2]) - bottom < p
    assert g.transform.c % p == 0 and g.transform.f % p == 0


def test_subgrid_slicing() -> None:
    g = PixelGrid.from_cell(Cell.from_name("grid_0.15_52.05"))
    sub = g[10:20, 5:15]
    assert sub.shape == (10, 10)
    assert sub.transform.c == g.transform.c + 50 and sub.transform.f == g.transform.f - 100
