"""Colour stretches: monotone, fitted on a sample, one curve for every tile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.errors import InvalidInputError
from geotessera.visualization.colour import fit_stretch


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(["histogram", "percentile", "adaptive"]))
def test_stretches_are_monotone_and_span_the_levels(seed: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    sample = np.column_stack(
        [rng.normal(size=2000), rng.exponential(size=2000) * 50, rng.integers(0, 4, 2000)]
    )
    st_ = fit_stretch(sample, method)
    lo = np.minimum(sample.min(0), st_.knots.min(1)) - 1
    hi = np.maximum(sample.max(0), st_.knots.max(1)) + 1
    grid = np.linspace(lo, hi, 500).T.astype(np.float32)
    levels = st_.apply(grid).astype(int)
    assert (np.diff(levels, axis=1) >= 0).all()
    assert levels[:, 0].max() <= 2 and levels[:, -1].min() >= 253


def test_histogram_equalisation_uses_the_levels_evenly() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(20000, 1)).astype(np.float32)  # very skewed
    levels = fit_stretch(x, "histogram").apply(x.T)[0]
    counts = np.bincount(levels // 32, minlength=8)
    assert counts.min() > 0.7 * counts.mean()  # a linear stretch would leave most bins empty


def test_percentile_stretch_pins_the_percentiles() -> None:
    x = np.arange(1001, dtype=np.float32)[:, None]
    s = fit_stretch(x, "percentile", (10, 90))
    assert s.apply(np.array([[100.0, 900.0, 740.0, 50.0, 2000.0]], np.float32)).tolist() == [
        [0, 255, 204, 0, 255]
    ]


def test_nodata_becomes_level_zero_and_channels_make_rgb() -> None:
    x = np.random.default_rng(1).normal(size=(100, 2)).astype(np.float32)
    s = fit_stretch(x, "adaptive")
    rgb = s.to_rgb(np.array([[[np.nan, 0.0]], [[0.0, 0.0]]], np.float32))
    assert rgb.shape == (3, 1, 2) and rgb[0, 0, 0] == 0 and rgb[2, 0, 1] == 128
    grey = fit_stretch(x[:, :1], "adaptive").to_rgb(np.zeros((1, 1, 1), np.float32))
    assert grey.shape == (3, 1, 1) and len(set(grey.ravel().tolist())) == 1


@pytest.mark.parametrize(
    ("method", "pr", "msg"),
    [
        ("contrast", (2, 98), "unknown balance"),
        ("percentile", (98, 2), "percentiles"),
        ("percentile", (-1, 50), "percentiles"),
    ],
)
def test_bad_settings_are_refused(method: str, pr: tuple[float, float], msg: str) -> None:
    with pytest.raises(InvalidInputError, match=msg):
        fit_stretch(np.zeros((10, 1), np.float32), method, pr)
