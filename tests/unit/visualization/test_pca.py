"""PCA fitted by covariance + eigh on a sample: the same components as an SVD of the standardised data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.errors import InvalidInputError
from geotessera.visualization.pca import draw_sample, fit_pca
from geotessera.visualization.tilesets import ArrayTile


def _data(seed: int, n: int, nb: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(nb, nb)) * rng.uniform(0.1, 3, size=nb)
    return (rng.normal(size=(n, nb)) @ mix + rng.normal(size=nb) * 5).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), nb=st.integers(3, 24), k=st.integers(1, 3))
def test_components_match_an_svd_of_the_standardised_data(seed: int, nb: int, k: int) -> None:
    x = _data(seed, 500, nb)
    fit = fit_pca(x, k)
    z = (x - x.mean(0)) / x.std(0)
    _, s, vt = np.linalg.svd(z.astype(np.float64), full_matrices=False)
    ratio = s**2 / (s**2).sum()
    for i in range(k):
        if i + 1 < len(s) and ratio[i] - ratio[i + 1] < 1e-3:
            continue  # (nearly) equal eigenvalues: the components are not unique
        assert abs(abs(float(fit.components[i] @ vt[i])) - 1) < 1e-6
        # sign convention: the largest loading is positive
        assert fit.components[i][np.argmax(np.abs(fit.components[i]))] > 0
    np.testing.assert_allclose(fit.explained_variance_ratio, ratio[:k], rtol=1e-6, atol=1e-9)
    assert np.all(np.diff(fit.explained_variance_ratio) <= 1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_projection_is_standardise_then_rotate(seed: int) -> None:
    x = _data(seed, 300, 8)
    fit = fit_pca(x, 3)
    a, b = fit.projection()
    expected = ((x - fit.mean) / fit.scale) @ fit.components.T
    np.testing.assert_allclose(x @ a + b, expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fit.transform(x), expected, rtol=1e-4, atol=1e-3)


def test_a_constant_band_is_not_divided_by_zero() -> None:
    x = _data(1, 200, 5)
    x[:, 2] = 7.0
    fit = fit_pca(x, 2)
    assert np.isfinite(fit.components).all() and fit.scale[2] == 1.0


@pytest.mark.parametrize("k", [0, 6])
def test_n_components_outside_the_bands_is_refused(k: int) -> None:
    with pytest.raises(InvalidInputError, match="n_components"):
        fit_pca(_data(0, 50, 5), k)


def _tile(seed: int, h: int = 40, w: int = 30, nb: int = 6, water: float = 0.0) -> ArrayTile:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(h, w, nb)).astype(np.float32)
    data[rng.random((h, w)) < water] = np.nan
    return ArrayTile(data, "EPSG:32631", (10.0, 0.0, 300_000.0, 0.0, -10.0, 5_800_000.0))


def test_the_sample_is_bounded_seeded_and_free_of_nodata() -> None:
    tiles = [_tile(i, water=0.3) for i in range(20)]
    a = draw_sample(tiles, 500, seed=3)
    b = draw_sample(tiles, 500, seed=3)
    assert a.shape[0] <= 500 and a.shape[1] == 6 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, draw_sample(tiles, 500, seed=4))
    # more tiles than the sample size: still bounded
    assert draw_sample(tiles, 7, seed=0).shape[0] <= 7


def test_all_water_tiles_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="no valid pixels"):
        draw_sample([_tile(0, water=1.0)], 100)


def test_array_tiles_project_every_pixel_and_keep_nodata() -> None:
    t = _tile(5, water=0.2)
    a = np.arange(18, dtype=np.float32).reshape(6, 3) / 10
    b = np.array([1, 2, 3], np.float32)
    out = t.project(a, b)
    assert out.shape == (3, 40, 30)
    expected = np.moveaxis(t.data @ a + b, 2, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert np.array_equal(np.isnan(out[0]), np.isnan(t.data).any(axis=2))
