"""Spatial block folds never split a block or a polygon (analysis/spatial_cv.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from geotessera.analysis.spatial_cv import spatial_blocks, spatial_folds
from geotessera.errors import InvalidInputError


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([200.0, 1000.0, 3000.0]), st.integers(2, 5))
def test_no_block_on_both_sides_of_a_split(seed: int, block_m: float, folds: int) -> None:
    rng = np.random.default_rng(seed)
    pts = np.c_[rng.uniform(5.8, 6.2, 300), rng.uniform(45.0, 45.1, 300)]  # across the 6 E zone seam
    y = rng.integers(0, 3, 300)
    groups = spatial_blocks(pts, block_m)
    if len(np.unique(groups)) < folds:
        return
    for train, test in spatial_folds(groups, folds, y, seed=seed % 1000):
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == 300
    # blocks are squares of block_m in the point's own UTM zone
    x, yy = Transformer.from_crs(4326, 32631, always_xy=True).transform(pts[:, 0], pts[:, 1])
    west = pts[:, 0] < 6.0
    keys = np.c_[np.floor(np.asarray(x)[west] / block_m), np.floor(np.asarray(yy)[west] / block_m)]
    same_key = (keys[:, None, :] == keys[None, :, :]).all(axis=2)
    same_group = groups[west][:, None] == groups[west][None, :]
    assert (same_key == same_group).all()


def test_polygon_samples_stay_together() -> None:
    pts = np.array([[0.10, 52.1], [0.30, 52.1], [0.50, 52.1], [0.70, 52.1]])
    assert len(np.unique(spatial_blocks(pts, 1000.0))) == 4
    merged = spatial_blocks(pts, 1000.0, [7, 7, None, 8])
    assert merged[0] == merged[1] and len(np.unique(merged)) == 3


def test_too_few_blocks_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="lower --folds or --cv-block-m"):
        spatial_folds(np.array([0, 0, 1, 1]), 5)
