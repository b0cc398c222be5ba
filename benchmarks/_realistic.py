"""A tile of independent realistic embedding data, unlike the sample store's synthesis.

The sample store builds its values from a land-cover map, per-class signatures, smooth
variation and noise; real embeddings may compress differently. This tile is made another
way: 16 smooth Gaussian random fields (correlation lengths of 5 to 120 pixels, drawn at
random) mixed into 128 correlated bands by a random matrix, plus per-pixel noise and a
per-pixel gain, then quantised as Tessera does (``scale = max|v| / 127`` per pixel,
``q = round(v / scale)``) and rescaled so the median scale is the published 0.064. A few
pixels are nodata (NaN scale, q = 0), as water is.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

N_FIELDS = 16
MEDIAN_SCALE = 0.064


def realistic_tile(
    h: int = 1141, w: int = 731, nb: int = 128, seed: int = 7
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """(q int8 (h, w, nb), scales float32 (h, w)) of smooth random fields with per-pixel scales."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f2 = fy**2 + fx**2
    latent = np.empty((h * w, N_FIELDS), np.float32)
    for i in range(N_FIELDS):
        length = rng.uniform(5, 120)
        noise = rng.standard_normal(f2.shape) + 1j * rng.standard_normal(f2.shape)
        field = np.fft.irfft2(np.exp(-f2 * (np.pi * length) ** 2 / 2) * noise, s=(h, w))
        latent[:, i] = (field / field.std()).astype(np.float32).ravel()
    mix = (rng.standard_normal((N_FIELDS, nb)) / np.sqrt(N_FIELDS)).astype(np.float32)
    v = latent @ mix
    v += rng.standard_normal(v.shape, dtype=np.float32) * np.float32(0.3)
    v *= np.exp(rng.standard_normal((v.shape[0], 1)).astype(np.float32) * np.float32(0.2))
    scale = np.abs(v).max(axis=1) / np.float32(127)
    q = np.rint(v / scale[:, None]).astype(np.int8)
    scale *= np.float32(MEDIAN_SCALE) / np.median(scale)
    nodata = rng.random(scale.shape) < 0.002
    q[nodata] = 0
    scale[nodata] = np.nan
    return q.reshape(h, w, nb), scale.astype(np.float32).reshape(h, w)
