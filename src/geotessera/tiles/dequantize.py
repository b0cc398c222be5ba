"""Dequantisation of Tessera tiles (``formats.md`` section 2).

``value = float32(q) * scale``, with a 2-D scale broadcast over the 128 bands.
Rules: a non-finite scale makes the whole pixel NaN (nodata); a scale of exactly
0 gives a zero vector; a finite scale outside [0, 1) is implausible (published
corrupt tiles carry scales near FLT_MAX): those pixels become NaN and a
:class:`~geotessera.errors.ScaleWarning` reports how many there were.
"""

from __future__ import annotations

import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from ..errors import CorruptDataError, InvalidInputError, ScaleWarning

log = logging.getLogger(__name__)

_ROWS_PER_BLOCK = 64


def check_shapes(q_shape: tuple[int, ...], s_shape: tuple[int, ...], *, name: str = "tile") -> None:
    """Raise :class:`CorruptDataError` unless (H, W, B) embeddings and (H, W[, B]) scales agree."""
    if len(q_shape) != 3:
        raise CorruptDataError(f"{name}: embedding must be (H, W, bands), got shape {q_shape}")
    if s_shape not in (q_shape[:2], q_shape):
        raise CorruptDataError(
            f"{name}: scales shape {s_shape} does not match embedding shape {q_shape} "
            "(expected (H, W) or (H, W, bands))"
        )


def valid_scale_mask(scales: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """True where a scale is usable: finite and in [0, 1) (the one validity rule of the package)."""
    s = np.asarray(scales)
    with np.errstate(invalid="ignore"):
        return np.isfinite(s) & (s >= 0) & (s < 1)


def invalid_scale_mask(scales: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """True where a finite scale is implausible (negative, or >= 1)."""
    s = np.asarray(scales)
    return np.isfinite(s) & ~valid_scale_mask(s)


def _band_index(bands: npt.ArrayLike | None, nb: int, name: str) -> npt.NDArray[np.intp] | None:
    if bands is None:
        return None
    idx = np.atleast_1d(np.asarray(bands, dtype=np.intp))
    if idx.ndim != 1 or np.any(idx < 0) or np.any(idx >= nb):
        raise InvalidInputError(f"{name}: band indices {bands!r} outside 0..{nb - 1}")
    return idx


def _rows(
    q: npt.NDArray[np.integer],
    s: npt.NDArray[np.floating],
    out: npt.NDArray[np.float32],
    band_idx: npt.NDArray[np.intp] | None,
) -> int:
    """Dequantise a block of rows into ``out`` (rows, W, B); returns the count of implausible pixels."""
    s = np.asarray(s, dtype=np.float32)
    per_band = s.ndim == 3
    if band_idx is not None:
        q = q[:, :, band_idx]
        if per_band:
            s = s[:, :, band_idx]
    with np.errstate(over="ignore", invalid="ignore"):  # corrupt scales: voided below
        np.multiply(q, s if per_band else s[:, :, None], out=out, dtype=np.float32)
    bad = invalid_scale_mask(s)
    nodata = np.logical_or(bad, ~np.isfinite(s))
    if per_band:
        bad = np.any(bad, axis=2)
        nodata = np.any(nodata, axis=2)
    if nodata.any():
        out[nodata] = np.nan
    return int(bad.sum())


def report_implausible(n_bad: int, name: str) -> None:
    """Log and warn (:class:`~geotessera.errors.ScaleWarning`) how many pixels had implausible scales."""
    _report(n_bad, name)


def _report(n_bad: int, name: str) -> None:
    if n_bad:
        msg = f"{name}: {n_bad} pixels have implausible scales outside [0, 1); they are set to NaN"
        log.warning(msg)
        warnings.warn(msg, ScaleWarning, stacklevel=3)


def dequantize_embedding(
    quantized: npt.NDArray[np.integer],
    scales: npt.NDArray[np.floating],
    *,
    out: npt.NDArray[np.float32] | None = None,
    bands: npt.ArrayLike | None = None,
    threads: int | None = None,
    name: str = "tile",
) -> npt.NDArray[np.float32]:
    """Dequantise an int8 embedding (see :func:`dequantize_counting` for the rules).

    Args:
        quantized: int8 array (H, W, 128) (memory-mapped arrays are fine).
        scales: float32 array (H, W) or (H, W, 128).
        out: optional preallocated float32 array (H, W, len(bands)).
        bands: optional band indices to keep (default all).
        threads: worker threads (default: up to 2); row blocks are processed in parallel.
        name: used in error and warning messages.

    Returns:
        float32 array (H, W, B): ``q * scale``; NaN where the scale is non-finite or implausible.
    """
    res, n_bad = dequantize_counting(quantized, scales, out=out, bands=bands, threads=threads, name=name)
    _report(n_bad, name)
    return res


def dequantize_counting(
    quantized: npt.NDArray[np.integer],
    scales: npt.NDArray[np.floating],
    *,
    out: npt.NDArray[np.float32] | None = None,
    bands: npt.ArrayLike | None = None,
    threads: int | None = None,
    name: str = "tile",
) -> tuple[npt.NDArray[np.float32], int]:
    """:func:`dequantize_embedding` without the warning: returns ``(values, implausible pixels)``.

    For writers that dequantise a file in many pieces and report once per file
    (:func:`report_implausible`). ``out`` may be a strided view (e.g. part of a padded tile).
    """
    check_shapes(quantized.shape, scales.shape, name=name)
    h, w, nb = quantized.shape
    band_idx = _band_index(bands, nb, name)
    nout = nb if band_idx is None else len(band_idx)
    if out is None:
        out = np.empty((h, w, nout), dtype=np.float32)
    elif out.shape != (h, w, nout) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(h, w, nout)}, got {out.dtype} {out.shape}")
    res = out

    def block(r0: int) -> int:
        r1 = min(r0 + _ROWS_PER_BLOCK, h)
        return _rows(quantized[r0:r1], scales[r0:r1], res[r0:r1], band_idx)

    starts = range(0, h, _ROWS_PER_BLOCK)
    n_threads = threads if threads is not None else min(2, os.cpu_count() or 1)
    if n_threads > 1 and h > _ROWS_PER_BLOCK:
        with ThreadPoolExecutor(n_threads) as pool:
            n_bad = sum(pool.map(block, starts))
    else:
        n_bad = sum(block(r0) for r0 in starts)
    return res, n_bad


def dequantize_band_major(
    quantized: npt.NDArray[np.integer],
    scales: npt.NDArray[np.floating],
    out: npt.NDArray[np.float32],
    *,
    bands: npt.ArrayLike | None = None,
    threads: int | None = None,
    name: str = "tile",
) -> npt.NDArray[np.float32]:
    """Dequantise (H, W, 128) int8 into a band-major float32 ``out`` of shape (B, H, W).

    GeoTIFF writers and image code want band-major pixels. A strided transpose
    of a whole tile is slow (cache misses), so pairs of rows are dequantised into
    a small pixel-major buffer and transposed from there (about 5x faster). The
    nodata rules of :func:`dequantize_embedding` apply.
    """
    check_shapes(quantized.shape, scales.shape, name=name)
    h, w, nb = quantized.shape
    band_idx = _band_index(bands, nb, name)
    nout = nb if band_idx is None else len(band_idx)
    if out.shape != (nout, h, w) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(nout, h, w)}, got {out.dtype} {out.shape}")
    rows = 2

    def part(lo: int, hi: int) -> int:
        tmp = np.empty((rows, w, nout), dtype=np.float32)
        bad = 0
        for r0 in range(lo, hi, rows):
            r1 = min(r0 + rows, hi)
            t = tmp[: r1 - r0]
            bad += _rows(quantized[r0:r1], scales[r0:r1], t, band_idx)
            out[:, r0:r1, :] = t.transpose(2, 0, 1)
        return bad

    n_threads = min(threads if threads is not None else 2, max(1, h // 64))
    if n_threads > 1:
        cuts = [round(h * k / n_threads / rows) * rows for k in range(n_threads)] + [h]
        with ThreadPoolExecutor(n_threads) as pool:
            n_bad = sum(pool.map(part, cuts[:-1], cuts[1:]))
    else:
        n_bad = part(0, h)
    _report(n_bad, name)
    return out
