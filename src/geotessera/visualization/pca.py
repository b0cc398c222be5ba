"""Principal components of embeddings, fitted on a bounded sample (covariance + ``eigh``).

The published client standardises every pixel of every tile and runs a full PCA on the
stack. Here the fit sees a seeded random sample drawn across all tiles (a few tens of
thousands of pixels; the covariance of 128 bands needs no more), and the fitted map is
then applied tile by tile: memory stays flat in the number of tiles, and one mapping
holds for the whole mosaic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError
from .tilesets import EmbeddingTile

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Pixels drawn across all tiles to fit the PCA and the colour mapping.
DEFAULT_SAMPLE_SIZE = 65_536
_CHUNK = 16_384


def draw_sample(tiles: Sequence[EmbeddingTile], size: int = DEFAULT_SAMPLE_SIZE, *, seed: int = 0) -> F32:
    """A seeded random sample of valid pixels across ``tiles``: (N, B) float32, N <= ``size``.

    Each tile gives an equal share; when there are more tiles than ``size``, a random
    subset of ``size`` tiles gives one pixel each. Raises :class:`InvalidInputError`
    when no tile has a valid pixel (all water or nodata).
    """
    if size < 1:
        raise InvalidInputError(f"sample size must be positive, got {size}")
    rng = np.random.default_rng(seed)
    chosen = list(tiles)
    if len(chosen) > size:
        keep = np.sort(rng.choice(len(chosen), size=size, replace=False))
        chosen = [chosen[int(i)] for i in keep]
    share = max(1, size // max(1, len(chosen)))
    parts = [t.sample(rng, share) for t in chosen]
    sample = np.concatenate(parts) if parts else np.empty((0, 0), np.float32)
    if sample.shape[0] == 0:
        raise InvalidInputError("the tiles hold no valid pixels (all water or nodata): nothing to draw")
    return sample


@dataclass(frozen=True)
class PCAFit:
    """A PCA of standardised embeddings.

    ``mean`` and ``scale`` (B,) standardise a pixel; ``components`` (K, B) are unit
    eigenvectors of the correlation matrix, largest variance first, each signed so its
    largest loading is positive (the same data always gives the same colours);
    ``explained_variance_ratio`` (K,) is each component's share of the total variance.
    """

    mean: F64
    scale: F64
    components: F64
    explained_variance_ratio: F64

    @property
    def n_components(self) -> int:
        """K."""
        return int(self.components.shape[0])

    def projection(self) -> tuple[F32, F32]:
        """``(a, b)`` with ``x @ a + b`` = the component scores of a raw pixel ``x``: (B, K), (K,)."""
        a = (self.components / self.scale).T
        b = -(self.mean / self.scale) @ self.components.T
        return a.astype(np.float32), b.astype(np.float32)

    def transform(self, x: npt.NDArray[np.floating]) -> F32:
        """Component scores (N, K) float32 of raw pixels (N, B)."""
        a, b = self.projection()
        return np.asarray(np.asarray(x, np.float32) @ a + b, np.float32)


def fit_pca(sample: npt.NDArray[np.floating], n_components: int = 3) -> PCAFit:
    """Fit a PCA on standardised ``sample`` (N, B): covariance in float64 (chunked), then ``eigh``.

    Raises :class:`InvalidInputError` for ``n_components`` outside 1..B or fewer than two pixels.
    """
    x = np.asarray(sample)
    if x.ndim != 2:
        raise InvalidInputError(f"a PCA sample must be (pixels, bands), got shape {x.shape}")
    n, nb = x.shape
    if not 1 <= n_components <= nb:
        raise InvalidInputError(
            f"n_components must be between 1 and {nb} (the number of bands), got {n_components}"
        )
    if n < 2:
        raise InvalidInputError(f"a PCA needs at least 2 valid pixels, got {n}")
    mean = x.mean(axis=0, dtype=np.float64)
    scale = x.std(axis=0, dtype=np.float64)
    scale[~(scale > 0)] = 1.0  # a constant band: left at zero, never divided by zero
    cov = np.zeros((nb, nb))
    for i in range(0, n, _CHUNK):
        z = (x[i : i + _CHUNK].astype(np.float64) - mean) / scale
        cov += z.T @ z
    cov /= n - 1
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:n_components]
    comps = vectors[:, order].T.copy()
    signs = np.sign(comps[np.arange(n_components), np.argmax(np.abs(comps), axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    total = float(np.clip(values, 0, None).sum())
    ratio = np.clip(values[order], 0, None) / total if total > 0 else np.zeros(n_components)
    return PCAFit(mean, scale, comps, ratio)
