"""Cell masks: exact against projecting every pixel centre; neighbours partition the pixels."""

from __future__ import annotations

import numpy as np
from pyproj import Transformer

from geotessera.grid import Cell, PixelGrid
from geotessera.store.write.tiles import cell_mask, northern


def _centres(grid: PixelGrid) -> tuple[np.ndarray, np.ndarray]:
    xs = grid.transform.c + (np.arange(grid.width) + 0.5) * grid.res
    ys = grid.transform.f - (np.arange(grid.height) + 0.5) * grid.res
    return xs, ys


def test_mask_matches_brute_force_projection() -> None:
    for cell in (Cell.from_point(0.15, 52.05), Cell.from_point(-58.45, -34.55), Cell.from_point(5.95, 0.05)):
        grid = northern(PixelGrid.from_cell(cell, 30.0))
        xs, ys = _centres(grid)
        mask = cell_mask(cell, grid.epsg, xs, ys)
        X, Y = np.meshgrid(xs, ys)
        lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(X, Y)
        b = cell.bounds
        exact = (lon >= b.min_lon) & (lon < b.max_lon) & (lat >= b.min_lat) & (lat < b.max_lat)
        assert (mask != exact).sum() <= 2, cell  # only centres within a millimetre of an edge may differ


def test_neighbours_partition_pixels_and_halo_opens_only_the_seam() -> None:
    a, b = Cell.from_point(5.95, 52.05), Cell.from_point(5.85, 52.05)
    grid = PixelGrid.from_cell(a, 50.0)
    xs, ys = _centres(grid)
    ma, mb = cell_mask(a, grid.epsg, xs, ys), cell_mask(b, grid.epsg, xs, ys)
    assert not (ma & mb).any()
    halo = cell_mask(a, grid.epsg, xs, ys, halo=True)
    assert halo.sum() > ma.sum() and not (halo & mb).any()  # grows east (seam at 6 E), never west
