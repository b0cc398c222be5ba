"""Dequantisation rules of formats.md section 2."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from geotessera.errors import CorruptDataError, ScaleWarning
from geotessera.tiles import dequantize_embedding
from geotessera.tiles.dequantize import dequantize_band_major

scale_values = st.one_of(
    st.floats(min_value=0.0001220703125, max_value=0.25, width=32),
    st.sampled_from([0.0, np.nan, np.inf, -np.inf, 3.4e38, -0.5, 1.0]),
)


@given(
    hnp.arrays(np.int8, st.tuples(st.integers(1, 70), st.integers(1, 5), st.just(4))),
    st.data(),
)
def test_matches_reference(q: np.ndarray, data: st.DataObject) -> None:
    h, w, _ = q.shape
    s = data.draw(hnp.arrays(np.float32, (h, w), elements=scale_values))
    with pytest.warns(ScaleWarning) if _has_bad(s) else _nullwarn():
        got = dequantize_embedding(q, s, threads=2)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = q.astype(np.float32) * s[:, :, None]
    nodata = ~np.isfinite(s) | (s < 0) | (s >= 1)
    assert got.dtype == np.float32 and got.shape == q.shape
    assert np.isnan(got[nodata]).all()
    np.testing.assert_array_equal(got[~nodata], ref[~nodata])
    # band-major gives the same numbers
    bm = np.empty((q.shape[2], h, w), np.float32)
    with pytest.warns(ScaleWarning) if _has_bad(s) else _nullwarn():
        dequantize_band_major(q, s, bm)
    np.testing.assert_array_equal(bm.transpose(1, 2, 0), got)


def _has_bad(s: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        return bool((np.isfinite(s) & ((s < 0) | (s >= 1))).any())


class _nullwarn:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def test_zero_scale_is_zero_vector_not_nodata() -> None:
    q = np.full((1, 1, 128), 5, np.int8)
    out = dequantize_embedding(q, np.zeros((1, 1), np.float32))
    assert (out == 0).all()


def test_corrupt_scales_reported_and_voided() -> None:
    q = np.full((2, 2, 128), -100, np.int8)
    s = np.full((2, 2), 0.06, np.float32)
    s[0, 0] = 3.4e38  # a published corrupt tile
    with pytest.warns(ScaleWarning, match="1 pixels"):
        out = dequantize_embedding(q, s)
    assert np.isnan(out[0, 0]).all()
    assert np.allclose(out[1, 1], -6.0)


def test_per_band_scales_and_band_selection() -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, (3, 4, 128), dtype=np.int8)
    s = rng.uniform(0.01, 0.1, (3, 4, 128)).astype(np.float32)
    out = dequantize_embedding(q, s, bands=[0, 5, 127])
    np.testing.assert_array_equal(out, (q.astype(np.float32) * s)[:, :, [0, 5, 127]])


@pytest.mark.parametrize(
    ("qs", "ss"), [((4, 5, 128), (4, 6)), ((4, 5, 128), (5, 4)), ((4, 5), (4, 5)), ((4, 5, 128), (4, 5, 3))]
)
def test_shape_mismatch_is_an_error(qs: tuple[int, ...], ss: tuple[int, ...]) -> None:
    with pytest.raises(CorruptDataError):
        dequantize_embedding(np.zeros(qs, np.int8), np.ones(ss, np.float32) * 0.1)


def test_bad_band_index() -> None:
    from geotessera.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        dequantize_embedding(np.zeros((2, 2, 128), np.int8), np.ones((2, 2), np.float32) * 0.1, bands=[128])
