"""Deterministic randomness for the sample store: stable seeds and smooth value noise (pure numpy).

Seeds come from :class:`numpy.random.SeedSequence` built from stable integers (dataset
version/variant bytes, year, tile indices), never from Python's ``hash()``. Value noise
lives on a global lattice, so a field's value at a point does not depend on the extent
of the array it is computed in: fields are continuous across tiles and UTM zones.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ..datasets import DatasetId
from ..grid import Cell

_ROOT_SEED = 0x7E55E4A  # "tessera"
_F64 = npt.NDArray[np.float64]
_F32 = npt.NDArray[np.float32]


# --- seeds ---------------------------------------------------------------------------
def dataset_key(dataset: DatasetId) -> tuple[int, ...]:
    """Stable non-negative integers identifying a dataset (version numbers, variant bytes)."""
    major, _, minor = dataset.version.partition(".")
    variant = dataset.variant.encode("utf-8")
    return (int(major), int(minor or 0), len(variant), *variant)


def seed_sequence(*parts: int) -> np.random.SeedSequence:
    """A SeedSequence from stable integers (negative parts are folded to non-negative)."""
    return np.random.SeedSequence([_ROOT_SEED, *(p * 2 if p >= 0 else -p * 2 - 1 for p in parts)])


@lru_cache(maxsize=4096)
def seed64(*parts: int) -> int:
    """A uint64 seed (as int) from stable integers: the first state word of their SeedSequence."""
    return int(seed_sequence(*parts).generate_state(1, np.uint64)[0])


def tile_seed(dataset: DatasetId, year: int, cell: Cell) -> np.random.SeedSequence:
    """The seed of one (dataset, year, tile): drives the tile's pixel noise."""
    return seed_sequence(1, *dataset_key(dataset), year, cell.ix, cell.iy)


# --- value noise on a global lon/lat lattice ---------------------------------------------
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_P1 = np.uint64(0x9E3779B97F4A7C15)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)


def _hash_unit(i: npt.NDArray[np.int64], j: npt.NDArray[np.int64], seed: int) -> _F64:
    """Uniform [0, 1) value per integer lattice point (splitmix64 finaliser)."""
    h = (i.astype(np.int64).view(np.uint64) * _P1) ^ (j.astype(np.int64).view(np.uint64) * _P2)
    h ^= np.uint64(seed)
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def value_noise(x: _F64, y: _F64, seed: int, spacing: float) -> _F32:
    """Smooth noise in [0, 1] at points (x, y): lattice values every ``spacing`` units, smoothstep-bilerped.

    ``x`` and ``y`` are float64 arrays of one shape (any units); the result is float32 of
    the same shape. The value at a point depends only on the point and ``seed``, not on
    the array's extent, so fields are continuous across tiles.
    """
    gx = x / spacing
    gy = y / spacing
    fi = np.floor(gx)
    fj = np.floor(gy)
    i0, j0 = int(fi.min()), int(fj.min())
    ni = int(fi.max()) - i0 + 2
    nj = int(fj.max()) - j0 + 2
    ii = np.arange(i0, i0 + ni, dtype=np.int64)
    jj = np.arange(j0, j0 + nj, dtype=np.int64)
    table = _hash_unit(ii[None, :], jj[:, None], seed).astype(np.float32).ravel()
    base = (fj - j0).astype(np.intp)
    base *= ni
    base += (fi - i0).astype(np.intp)
    tx = (gx - fi).astype(np.float32)
    ty = (gy - fj).astype(np.float32)
    tx = tx * tx * (np.float32(3.0) - np.float32(2.0) * tx)
    ty = ty * ty * (np.float32(3.0) - np.float32(2.0) * ty)
    a = table[base]
    top = a + (table[base + 1] - a) * tx
    base += ni
    a = table[base]
    bot = a + (table[base + 1] - a) * tx
    top += (bot - top) * ty
    return top


def fbm(x: _F64, y: _F64, seed: int, spacing: float, octaves: int) -> _F32:
    """Fractal sum of ``octaves`` value-noise layers (spacing halves, weight halves): float32 in [0, 1]."""
    total = np.zeros(np.shape(x), dtype=np.float32)
    weight, norm = 1.0, 0.0
    for k in range(octaves):
        layer = value_noise(x, y, seed64(2, seed, k), spacing / 2**k)
        layer *= np.float32(weight)
        total += layer
        norm += weight
        weight *= 0.5
    total /= np.float32(norm)
    return total
