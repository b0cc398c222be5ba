"""Pixel ownership of an output window: the coarse-lattice shortcut equals projecting every pixel."""

from __future__ import annotations

import numpy as np
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.analysis.windows import Window, _cell_keys, pack_cells
from geotessera.grid import Cell, PixelGrid


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-179.0, 179.0),
    st.floats(-79.0, 79.0),
    st.integers(1, 300),
    st.integers(1, 300),
    st.integers(-200, 1300),
    st.integers(-200, 1300),
)
def test_owners_match_per_pixel_projection(lon: float, lat: float, h: int, w: int, r0: int, c0: int) -> None:
    cell = Cell.from_point(lon, lat)
    g = PixelGrid.from_cell(cell, 10.0)
    win = Window(
        g.epsg, g.transform @ Affine.translation(c0, r0), (h, w), (int(pack_cells(cell.ix, cell.iy)),)
    )
    owner, shown = win.owners()
    lon_, lat_ = win._lonlat(np.arange(h), np.arange(w))
    exact = _cell_keys(lon_, lat_)
    assert (owner == exact).all()
    assert (shown == (exact == pack_cells(cell.ix, cell.iy))).all()


def test_a_shape_clips_the_window() -> None:
    import shapely

    cell = Cell.from_point(0.15, 52.15)
    g = PixelGrid.from_cell(cell, 100.0)
    half = shapely.box(0.1, 52.1, 0.15, 52.2)
    win = Window(g.epsg, g.transform, g.shape, (int(pack_cells(cell.ix, cell.iy)),), shapely.to_wkb(half))
    _, shown = win.owners()
    lon, lat = win._lonlat(np.arange(g.height), np.arange(g.width))
    assert (shown == ((lon < 0.15) & (lon >= 0.1) & (lat >= 52.1) & (lat < 52.2))).all()
