"""Web tiles are cut only where a mosaic holds data, and never miss a tile that has some."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from geotessera.errors import InvalidInputError
from geotessera.web.footprint import data_cells, fit_zoom, native_zoom, tiles_over

pytest.importorskip("rio_tiler")
morecantile = pytest.importorskip("morecantile")


def _mosaic(path: Path, crs: str, spots: list[tuple[int, int, int]], size: int = 1000) -> Path:
    """RGBA mosaic, transparent but for square ``spots`` (row, col, side in pixels)."""
    if crs == "EPSG:4326":
        transform = from_origin(-30.0, 60.0, 0.05, 0.05)  # 50 x 50 degrees
    else:
        transform = from_origin(-3_000_000.0, 8_000_000.0, 5000.0, 5000.0)
    data = np.zeros((4, size, size), dtype=np.uint8)
    for r, c, side in spots:
        data[:, r : r + side, c : c + side] = 200
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 4,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "photometric": "RGB",
        "alpha": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _tiles_with_data(path: Path, zooms: tuple[int, int]) -> set[tuple[int, int, int]]:
    """Brute force: every tile of the mosaic's bounds that rio-tiler renders with any data."""
    from rasterio.warp import transform_bounds
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    tms = morecantile.tms.get("WebMercatorQuad")
    with rasterio.open(path) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    found = set()
    with Reader(str(path)) as reader:
        for t in tms.tiles(w, max(s, -85.0), e, min(n, 85.0), list(range(zooms[0], zooms[1] + 1))):
            try:
                img = reader.tile(t.x, t.y, t.z, tilesize=256)
            except TileOutsideBounds:
                continue
            if img.mask.any():
                found.add((t.x, t.y, t.z))
    return found


spot = st.tuples(st.integers(0, 990), st.integers(0, 990), st.integers(1, 10))
"""(row, col, side) of a square of data in a 1000 x 1000 mosaic."""


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spots=st.lists(spot, min_size=1, max_size=3), crs=st.sampled_from(["EPSG:4326", "EPSG:3857"]))
def test_every_tile_with_data_is_cut_and_few_without(
    spots: list[tuple[int, int, int]], crs: str, tmp_path: Path
) -> None:
    path = _mosaic(tmp_path / f"m-{len(spots)}-{crs[5:]}.tif", crs, spots)
    zooms = (3, 6)  # up to a zoom past the mosaic's own resolution (4 in 4326, 5 in 3857)
    want = _tiles_with_data(path, zooms)
    got = {(t.x, t.y, t.z) for t in tiles_over(data_cells(path), zooms, 1_000_000)}
    assert want <= got  # a tile with data is never skipped
    assert len(got) <= 4 * len(want) + 40 * len(spots)  # and the rest is near the data only


def test_an_empty_mosaic_has_no_tiles_and_a_spread_one_few(tmp_path: Path) -> None:
    empty = _mosaic(tmp_path / "empty.tif", "EPSG:4326", [])
    assert tiles_over(data_cells(empty), (8, 15), 1000) == []
    spread = _mosaic(tmp_path / "spread.tif", "EPSG:4326", [(0, 0, 2), (997, 997, 3)])
    tms = morecantile.tms.get("WebMercatorQuad")
    zooms = (6, 8)  # the mosaic's own resolution (0.05 degree) is zoom 5
    bbox_tiles = sum(1 for _ in tms.tiles(-30.0, 10.0, 20.0, 60.0, list(range(6, 9))))
    got = tiles_over(data_cells(spread), zooms, 1_000_000)
    assert bbox_tiles > 2000 and 6 <= len(got) <= 60


def test_too_many_tiles_are_refused_naming_max_zoom(tmp_path: Path) -> None:
    full = _mosaic(tmp_path / "full.tif", "EPSG:4326", [(0, 0, 1000)])
    with pytest.raises(InvalidInputError, match="--max-zoom"):
        tiles_over(data_cells(full), (8, 20), 2_000_000)


def test_zoom_helpers() -> None:
    assert native_zoom(360.0 / 256) == 0  # one tile of 256 pixels spans the world
    assert native_zoom(1e-4) == 14  # the pyramid's level 0, about 11 m
    assert native_zoom(0.0128) == 7
    assert fit_zoom((-180.0, -85.0, 180.0, 85.0)) == 2  # 1024 pixels: 4 tiles across
    assert fit_zoom((0.0, 52.0, 0.4, 52.3)) == 11
    assert fit_zoom((-58.0, -34.0, 6.0, 52.0)) <= 3


def test_cells_merge_into_few_boxes_covering_exactly_them() -> None:
    from geotessera.web.footprint import merge_cells

    block = np.array([[x, y, x + 1.0, y + 1.0] for x in range(3) for y in range(3)], dtype=float)
    lone = np.array([[10.0, 10.0, 11.0, 11.0]])
    ell = np.array([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0], [0.0, 1.0, 1.0, 2.0]])
    assert merge_cells(block) == [(0.0, 0.0, 3.0, 3.0)]
    assert sorted(merge_cells(np.vstack([block, lone]))) == [(0.0, 0.0, 3.0, 3.0), (10.0, 10.0, 11.0, 11.0)]
    boxes = merge_cells(ell)
    area = sum((e - w) * (n - s) for w, s, e, n in boxes)
    assert len(boxes) == 2 and area == 3.0  # an L: two boxes, exactly its three cells
    many = np.array([[2.0 * i, 0.0, 2.0 * i + 1, 1.0] for i in range(50)])
    assert len(merge_cells(many)) == 50 and merge_cells(many, max_boxes=49) == []


_PROJECTED = {
    # crs: (west, north, pixel metres); 1000 x 1000 pixels
    "EPSG:3413": (
        -1_500_000.0,
        1_500_000.0,
        3000.0,
    ),  # north polar stereographic: the 180th meridian crosses it
    "EPSG:3031": (-1_500_000.0, 1_500_000.0, 3000.0),  # south polar stereographic, likewise
    "EPSG:32760": (500_000.0, 8_300_000.0, 500.0),  # UTM 60 S over Fiji: 177 E to 178 W
}


def _projected(path: Path, crs: str, spots: list[tuple[int, int, int]]) -> Path:
    x0, y0, px = _PROJECTED[crs]
    data = np.zeros((4, 1000, 1000), dtype=np.uint8)
    for r, c, side in spots:
        data[:, r : r + side, c : c + side] = 200
    profile = {
        "driver": "GTiff",
        "width": 1000,
        "height": 1000,
        "count": 4,
        "dtype": "uint8",
        "crs": crs,
        "transform": from_origin(x0, y0, px, px),
        "photometric": "RGB",
        "alpha": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _tiles_of_pixels(path: Path, zooms: tuple[int, int]) -> set[tuple[int, int, int]]:
    """The tiles holding the centre or a corner (inset a tenth) of a pixel with data."""
    from pyproj import Transformer

    with rasterio.open(path) as ds:
        rows, cols = np.nonzero(ds.dataset_mask())
        t, crs = ds.transform, ds.crs
    dr = np.array([0.5, 0.1, 0.1, 0.9, 0.9])
    dc = np.array([0.5, 0.1, 0.9, 0.1, 0.9])
    xs, ys = t * ((cols[:, None] + dc).ravel(), (rows[:, None] + dr).ravel())
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    keep = np.abs(lat) < 85.0
    lon, lat = np.asarray(lon)[keep], np.radians(np.asarray(lat)[keep])
    out = set()
    for z in range(zooms[0], zooms[1] + 1):  # the slippy-map tile numbers
        x = np.floor((lon + 180.0) / 360.0 * 2**z).astype(int) % 2**z
        y = np.floor((1.0 - np.arcsinh(np.tan(lat)) / np.pi) / 2.0 * 2**z).astype(int)
        out |= {(int(a), int(b), z) for a, b in set(zip(x.tolist(), y.tolist(), strict=True))}
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spots=st.lists(spot, min_size=1, max_size=3), crs=st.sampled_from(sorted(_PROJECTED)))
def test_no_tile_with_data_is_missed_in_polar_and_antimeridian_projections(
    spots: list[tuple[int, int, int]], crs: str, tmp_path: Path
) -> None:
    path = _projected(tmp_path / f"p-{crs[5:]}.tif", crs, spots)
    zooms = (4, 9)
    got = {(t.x, t.y, t.z) for t in tiles_over(data_cells(path), zooms, 1_000_000)}
    assert _tiles_of_pixels(path, zooms) <= got


@pytest.mark.parametrize("crs", ["EPSG:3413", "EPSG:32760"])
def test_a_cell_across_the_antimeridian_meets_tiles_on_both_sides_only(crs: str, tmp_path: Path) -> None:
    # spot (22, 26): 3413's corner cell, from 176 E across the 180th meridian to 176 W
    spots = [(22, 26, 3)] if crs == "EPSG:3413" else [(0, 0, 1000)]  # the whole of 32760's
    path = _projected(tmp_path / "m.tif", crs, spots)
    got = {(t.x, t.y, t.z) for t in tiles_over(data_cells(path), (4, 9), 1_000_000)}
    assert _tiles_of_pixels(path, (4, 9)) <= got
    assert {x for x, _, z in got if z == 9} <= set(range(0, 12)) | set(range(500, 512))  # none in between
    if crs == "EPSG:32760":  # the seed's zooms: the tiles of a 500 x 500 km mosaic, not of the world
        assert len(tiles_over(data_cells(path), (8, 15), 2_000_000)) < 400_000


def test_the_tile_limit_counts_distinct_tiles_not_cells() -> None:
    # a big mosaic at a low zoom: many cells, each in one of a few tiles (here 50 cells in 1)
    cells = np.array([[10.0 + i * 0.01, 50.0, 10.0 + i * 0.01 + 0.005, 50.005] for i in range(50)])
    assert [(t.x, t.y, t.z) for t in tiles_over(cells, (3, 3), 10)] == [(4, 2, 3)]
    assert len(tiles_over(cells, (3, 10), 10)) == 9  # one a zoom up to 9, then two
    with pytest.raises(InvalidInputError, match="zoom 11 passes"):
        tiles_over(cells, (3, 11), 10)  # and three or four at zoom 11


def test_a_coarse_world_mosaic_in_degrees_meets_every_tile(tmp_path: Path) -> None:
    # 64 x 32 pixels of 5.625 degrees: one cell spans the whole world, -170 to 190
    path = tmp_path / "world.tif"
    profile = {
        "driver": "GTiff",
        "width": 64,
        "height": 32,
        "count": 4,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": from_origin(-170.0, 90.0, 5.625, 5.625),
        "photometric": "RGB",
        "alpha": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((4, 32, 64), 200, dtype=np.uint8))
    got = {(t.x, t.y, t.z) for t in tiles_over(data_cells(path), (0, 2), 1000)}
    assert got == {(x, y, z) for z in range(3) for x in range(2**z) for y in range(2**z)}
