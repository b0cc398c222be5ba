"""Synthetic land cover and embeddings of the sample store (geotessera.sample.content)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.datasets import DatasetId
from geotessera.grid import Cell, PixelGrid
from geotessera.sample import content as C
from geotessera.sample import noise as N

V1 = DatasetId("1.0", "vultr")
V11 = DatasetId("1.1", "cambridge")


def test_class_names_and_codes() -> None:
    assert C.CLASS_NAMES == ("water", "urban", "cropland", "grassland", "forest")
    assert (C.WATER, C.URBAN, C.CROPLAND, C.GRASSLAND, C.FOREST) == (0, 1, 2, 3, 4)


def test_class_signatures_shape_determinism_and_distinctness() -> None:
    s1 = C.class_signatures(V1)
    assert s1.dtype == np.float32 and s1.shape == (len(C.CLASS_NAMES), 128)
    np.testing.assert_array_equal(s1, C.class_signatures(DatasetId("1.0", "vultr")))
    s1[0, 0] = 1e6  # a copy: callers cannot corrupt the cached signatures
    assert C.class_signatures(V1)[0, 0] != 1e6
    s1 = C.class_signatures(V1)
    s2 = C.class_signatures(V11)
    assert not np.allclose(s1, s2), "v1.1 is another model run: different signatures"
    for sig in (s1, s2):
        d = np.linalg.norm(sig[:, None, :] - sig[None, :, :], axis=-1)
        off = d[~np.eye(len(sig), dtype=bool)]
        assert off.min() > 0.5 * np.linalg.norm(sig, axis=1).mean()
        np.testing.assert_allclose(np.abs(sig).max(axis=1), C.SIGNATURE_PEAK, rtol=1e-6)


def test_seeds_are_stable_integers_not_hash() -> None:
    a = N.tile_seed(V1, 2024, Cell.from_centre(0.15, 52.05)).generate_state(4)
    b = N.tile_seed(V1, 2024, Cell.from_centre(0.15, 52.05)).generate_state(4)
    np.testing.assert_array_equal(a, b)
    others = [
        N.tile_seed(V11, 2024, Cell.from_centre(0.15, 52.05)),
        N.tile_seed(V1, 2023, Cell.from_centre(0.15, 52.05)),
        N.tile_seed(V1, 2024, Cell.from_centre(-0.15, 52.05)),
        N.tile_seed(V1, 2024, Cell.from_centre(0.15, -52.05)),
    ]
    for o in others:
        assert not np.array_equal(a, o.generate_state(4))


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-179.9, 179.9),
    st.floats(-80.0, 80.0),
    st.integers(1, 50),
)
def test_land_cover_depends_only_on_the_point(lon: float, lat: float, n: int) -> None:
    """Continuity across tiles: a point's class does not depend on the array it sits in."""
    rng = np.random.default_rng(n)
    lons = np.concatenate([[lon], lon + rng.uniform(-0.3, 0.3, n)])
    lats = np.concatenate([[lat], lat + rng.uniform(-0.3, 0.3, n)])
    alone = C.land_cover(np.array([lon]), np.array([lat]), 2024)
    within = C.land_cover(lons, lats, 2024)
    assert alone[0] == within[0]
    f_alone = N.value_noise(np.array([lon]), np.array([lat]), 7, 0.01)
    f_within = N.value_noise(lons, lats, 7, 0.01)
    assert f_alone[0] == f_within[0]
    assert f_within.min() >= 0.0 and f_within.max() <= 1.0


def test_value_noise_is_smooth() -> None:
    x = np.linspace(0.0, 0.2, 20001)
    f = N.value_noise(x, np.full_like(x, 52.0), 3, 0.01)
    assert np.abs(np.diff(f)).max() < 0.01  # 1e-5 degree steps: no jumps
    assert f.max() - f.min() > 0.3  # but it does vary


def test_base_land_cover_chunking_is_invisible() -> None:
    grid = PixelGrid.from_cell(Cell.from_centre(0.15, 52.15), 200.0)
    lon, lat = C.pixel_lonlat(grid)
    np.testing.assert_array_equal(C.base_land_cover(lon, lat), C.base_land_cover(lon, lat, chunk=37))


def test_pixel_lonlat_inside_the_cell() -> None:
    cell = Cell.from_centre(-58.45, -34.55)
    grid = PixelGrid.from_cell(cell, 100.0)
    lon, lat = C.pixel_lonlat(grid)
    assert lon.shape == lat.shape == grid.shape
    b = cell.bounds
    # the grid is snapped outward: it covers the cell plus less than a pixel or so
    assert lon.min() < b.min_lon + 0.002 and lon.max() > b.max_lon - 0.002
    assert lat.min() < b.min_lat + 0.002 and lat.max() > b.max_lat - 0.002
    assert lat[0, 0] > lat[-1, 0]  # north up


def test_all_classes_occur_in_the_default_region() -> None:
    lon, lat = np.meshgrid(np.linspace(0.0, 0.4, 300), np.linspace(52.0, 52.3, 300))
    counts = np.bincount(C.land_cover(lon, lat, 2023).ravel(), minlength=5) / lon.size
    assert (counts > 0.01).all(), counts
    assert counts[C.WATER] < 0.1  # small lakes, no sea here


def test_coastline_crosses_the_coastal_tile() -> None:
    lat = np.linspace(52.4, 52.5, 101)
    coast = C.coast_lon(lat)
    assert (coast > 1.7).all() and (coast < 1.8).all()
    assert C.is_sea(np.array([1.79]), np.array([52.45]))[0]
    assert not C.is_sea(np.array([1.71]), np.array([52.45]))[0]
    assert not C.is_sea(np.array([6.0]), np.array([45.05]))[0]


def test_changes_act_only_inside_their_area_from_their_year() -> None:
    lon, lat = np.meshgrid(np.linspace(0.0, 0.4, 400), np.linspace(52.0, 52.3, 300))
    before = C.land_cover(lon, lat, 2023)
    after = C.land_cover(lon, lat, 2024)
    np.testing.assert_array_equal(before, C.land_cover(lon, lat, 2017))
    changed = before != after
    assert changed.any()
    inside = np.zeros_like(changed)
    for ch in C.CHANGES:
        m = ch.area.mask(lon, lat)
        inside |= m
        sel = changed & m
        assert sel.any(), ch.name
        assert (before[sel] == ch.from_code).all() and (after[sel] == ch.to_code).all()
    assert not (changed & ~inside).any()


def test_quantise_follows_tessera() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(0, 3, (500, 128)).astype(np.float32)
    v[7] = 0.0
    original = v.copy()
    q, scale = C.quantise(v)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (500,)
    expected = (np.abs(original).max(axis=1) / np.float32(127)).astype(np.float32)
    np.testing.assert_array_equal(scale, expected)
    assert scale[7] == 0 and not q[7].any()
    nz = np.arange(500) != 7
    assert (np.abs(q[nz]).max(axis=1) == 127).all()
    err = np.abs(q[nz].astype(np.float32) * scale[nz, None] - original[nz])
    assert (err <= scale[nz, None] * 0.5001).all()


def test_tile_strips_water_is_nodata_and_land_matches_signature() -> None:
    cell = Cell.from_centre(1.75, 52.45)  # coastal: sea and land
    grid = PixelGrid.from_cell(cell, 200.0)
    lon, lat = C.pixel_lonlat(grid)
    classes = C.land_cover(lon, lat, 2024)
    model = C.YearModel.for_year(V11, 2024)
    strips = list(C.iter_tile_strips(model, cell, lon, lat, classes, strip_pixels=500))
    assert len(strips) > 1
    q = np.concatenate([s[0] for s in strips])
    scale = np.concatenate([s[1] for s in strips])
    assert q.shape == (*grid.shape, 128) and scale.shape == grid.shape
    water = classes == C.WATER
    assert water.any() and (~water).any()
    assert np.isnan(scale[water]).all() and not q[water].any()
    assert np.isfinite(scale[~water]).all() and ((scale[~water] > 0) & (scale[~water] < 1)).all()
    v = q[~water].astype(np.float32) * scale[~water][:, None]
    sig = C.class_signatures(V11)
    nearest = np.argmin(((v[:, None, :] - sig[None, 1:, :]) ** 2).sum(-1), axis=1) + 1
    assert (nearest == classes[~water]).mean() > 0.95
    # the same inputs give the same bytes
    again = list(C.iter_tile_strips(model, cell, lon, lat, classes, strip_pixels=500))
    for (qa, sa), (qb, sb) in zip(strips, again, strict=True):
        assert qa.tobytes() == qb.tobytes() and sa.tobytes() == sb.tobytes()


@pytest.mark.parametrize("dataset", [V1, V11])
def test_year_models_differ_between_years(dataset: DatasetId) -> None:
    a = C.YearModel.for_year(dataset, 2023)
    b = C.YearModel.for_year(dataset, 2024)
    assert a.directions.shape == (C.N_FIELDS, 128)
    assert not np.array_equal(a.directions, b.directions)
    lon = np.linspace(0.0, 0.4, 1000)
    lat = np.full_like(lon, 52.1)
    f = a.fields(lon, lat)
    assert f.shape == (1000, C.N_FIELDS) and f.dtype == np.float32
    assert (f >= -1).all() and (f <= 1).all()
