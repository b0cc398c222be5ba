"""From component values to 8-bit colours: one stretch for the whole mosaic.

A :class:`ColourStretch` maps each channel through a piecewise-linear curve fitted on a
sample (knots in value space, levels in [0, 1]). Because the same curve is applied to
every tile, colours match across tile borders (no seams).

Balance methods (the published names):

- ``histogram``: histogram equalisation; the curve is the sample's cumulative
  distribution between its 0.5th and 99.5th percentiles (256 steps), so every colour
  level is used about equally;
- ``percentile``: a linear stretch between two percentiles (default 2 and 98);
- ``adaptive``: a linear stretch over mean +- 2.5 standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError

BALANCE_METHODS = ("histogram", "percentile", "adaptive")
F32 = npt.NDArray[np.float32]
_LEVELS = 257
_LUT = 4096


def check_percentiles(percentile_range: tuple[float, float]) -> tuple[float, float]:
    """Validate ``(low, high)`` percentiles: 0 <= low < high <= 100."""
    try:
        lo, hi = (float(v) for v in percentile_range)
    except (TypeError, ValueError):
        raise InvalidInputError(f"percentile range must be two numbers, got {percentile_range!r}") from None
    if not (0 <= lo < hi <= 100):
        raise InvalidInputError(f"percentiles must satisfy 0 <= low < high <= 100, got ({lo:g}, {hi:g})")
    return lo, hi


def _increasing(knots: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Knots made strictly increasing (ties nudged apart), as ``np.interp`` needs."""
    k = np.maximum.accumulate(knots)
    step = np.maximum(np.abs(k[-1] - k[0]), 1.0) * 1e-9
    return k + np.arange(k.size) * step


@dataclass(frozen=True)
class ColourStretch:
    """Per-channel curves: ``knots`` (C, M) in value space and ``levels`` (M,) in [0, 1]."""

    method: str
    knots: npt.NDArray[np.float64]
    levels: npt.NDArray[np.float64]

    @property
    def channels(self) -> int:
        """C."""
        return int(self.knots.shape[0])

    def apply(self, values: F32) -> npt.NDArray[np.uint8]:
        """(C, ...) values -> (C, ...) uint8 levels (NaN -> 0; mask nodata separately).

        Each channel goes through a 4096-entry lookup table spanning its knots (a value
        is placed to 1/4096 of the stretched range: far finer than the 256 output levels).
        """
        v = np.asarray(values, np.float32)
        if v.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {v.shape[0]}")
        out = np.empty(v.shape, np.uint8)
        for c in range(self.channels):
            lo, hi = float(self.knots[c, 0]), float(self.knots[c, -1])
            step = (hi - lo) / (_LUT - 1) if hi > lo else 1.0
            lut = np.interp(lo + step * np.arange(_LUT), self.knots[c], self.levels * 255.0)
            lut8 = (lut + 0.5).astype(np.uint8)
            with np.errstate(invalid="ignore"):
                idx = np.rint((v[c] - lo) / step)
            np.clip(idx, 0, _LUT - 1, out=idx)
            level = lut8[np.nan_to_num(idx, nan=0.0).astype(np.intp)]
            level[np.isnan(v[c])] = 0
            out[c] = level
        return out

    def to_rgb(self, values: F32) -> npt.NDArray[np.uint8]:
        """(K, H, W) component values -> (3, H, W) uint8 RGB.

        K >= 3: the first three channels; K = 2: red and green, blue at mid level;
        K = 1: grey.
        """
        levels = self.apply(values[: min(3, self.channels)])
        if levels.shape[0] >= 3:
            return levels[:3]
        if levels.shape[0] == 2:
            return np.concatenate([levels, np.full((1, *levels.shape[1:]), 128, np.uint8)])
        return np.repeat(levels, 3, axis=0)


def fit_stretch(
    sample: npt.NDArray[np.floating],
    method: str = "histogram",
    percentile_range: tuple[float, float] = (2, 98),
) -> ColourStretch:
    """Fit a stretch on ``sample`` (N, C) (NaN rows ignored) with a balance method of the module doc."""
    if method not in BALANCE_METHODS:
        raise InvalidInputError(
            f"unknown balance method {method!r}; choose one of {', '.join(BALANCE_METHODS)}"
        )
    lo, hi = check_percentiles(percentile_range)
    x = np.asarray(sample, np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] == 0:
        raise InvalidInputError("no valid pixels to fit colours on")
    if method == "histogram":
        q = np.linspace(0.5, 99.5, _LEVELS)
        knots = np.percentile(x, q, axis=0).T
        levels = np.linspace(0.0, 1.0, _LEVELS)
    elif method == "percentile":
        knots = np.percentile(x, [lo, hi], axis=0).T
        levels = np.array([0.0, 1.0])
    else:
        m, s = x.mean(axis=0), x.std(axis=0)
        knots = np.stack([m - 2.5 * s, m + 2.5 * s], axis=1)
        levels = np.array([0.0, 1.0])
    return ColourStretch(method, np.stack([_increasing(k) for k in knots]), levels)
