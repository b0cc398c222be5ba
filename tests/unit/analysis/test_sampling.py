"""Stratified allocation and polygon pixel enumeration (analysis/sampling.py)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from geotessera.analysis.sampling import allocate, polygon_pixels, sample_polygons
from geotessera.errors import InvalidInputError

counts_st = st.lists(st.integers(0, 10_000), min_size=1, max_size=8)


@given(counts_st, st.integers(1, 500), st.sampled_from(["equal", "proportional", "sqrt"]))
def test_allocation_is_capped_and_spends_the_budget(counts: list[int], n: int, rule: str) -> None:
    got = allocate(counts, n, rule)
    assert len(got) == len(counts)
    assert all(0 <= g <= c for g, c in zip(got, counts, strict=True))
    if rule == "equal":
        assert got == [min(n, c) for c in counts]
    elif all(c >= n * len(counts) for c in counts) and sum(counts):
        assert sum(got) == n * len(counts)  # nothing capped: the whole budget is spent


def test_allocation_rules_follow_class_areas() -> None:
    assert allocate([100, 400], 10, "proportional") == [4, 16]
    assert allocate([100, 400], 10, "sqrt") == [7, 13]
    with pytest.raises(InvalidInputError):
        allocate([1], 1, "cubic")


@settings(max_examples=25, deadline=None)
@given(st.floats(0.001, 0.02), st.floats(0.001, 0.02), st.sampled_from([10.0, 100.0]))
def test_polygon_pixels_are_lattice_centres_inside(w: float, h: float, p: float) -> None:
    poly = shapely.box(0.1, 52.1, 0.1 + w, 52.1 + h)
    lonlat = polygon_pixels(poly, p)
    assert shapely.contains_xy(poly, lonlat[:, 0], lonlat[:, 1]).all()
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    frac = np.c_[np.asarray(x), np.asarray(y)] / p % 1.0
    np.testing.assert_allclose(frac, 0.5, atol=1e-6)  # pixel centres of the zone's lattice
    area_px = (
        shapely.area(
            shapely.transform(
                poly,
                lambda xy: np.c_[
                    Transformer.from_crs(4326, 32631, always_xy=True).transform(xy[:, 0], xy[:, 1])
                ],
            )
        )
        / p**2
    )
    assert abs(len(lonlat) - area_px) <= 2 * (area_px**0.5 + 2) * 2


def test_sampling_is_seeded_and_per_class() -> None:
    polys = [shapely.box(0.1, 52.1, 0.12, 52.11), shapely.box(0.2, 52.1, 0.21, 52.105)]
    a = sample_polygons(polys, ["x", "y"], 10.0, per_class=30, seed=4)
    b = sample_polygons(polys, ["x", "y"], 10.0, per_class=30, seed=4)
    c = sample_polygons(polys, ["x", "y"], 10.0, per_class=30, seed=5)
    np.testing.assert_array_equal(a.lonlat, b.lonlat)
    assert not np.array_equal(a.lonlat, c.lonlat)
    assert np.bincount(a.feature).tolist() == [30, 30]
