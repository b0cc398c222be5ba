"""Top-K non-adjacent selection from per-block candidates equals greedy selection on the whole map."""

from __future__ import annotations

import numpy as np
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.analysis.grids import OutputGrid
from geotessera.analysis.similarity import TopK


def _greedy(values: np.ndarray, k: int) -> list[tuple[int, int]]:
    r, c = np.nonzero(np.isfinite(values))
    order = np.lexsort((c, r, -values[r, c]))
    taken: list[tuple[int, int]] = []
    for i in order:
        rr, cc = int(r[i]), int(c[i])
        if all(max(abs(rr - a), abs(cc - b)) > 1 for a, b in taken):
            taken.append((rr, cc))
            if len(taken) == k:
                break
    return taken


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 12), st.sampled_from([4, 7, 16]))
def test_blockwise_topk_matches_whole_map_greedy(seed: int, k: int, block: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 20, (23, 19)).astype(np.float32)  # ties on purpose
    values[rng.random(values.shape) < 0.1] = np.nan
    grid = OutputGrid(32631, Affine(10, 0, 0, 0, -10, 0), values.shape, (), None)
    top = TopK(k)
    for r0 in range(0, values.shape[0], block):
        for c0 in range(0, values.shape[1], block):
            top.add(grid, r0, c0, values[r0 : r0 + block, c0 : c0 + block, None])
    got = [(int(r), int(c)) for _, _, r, c in top.select().tolist()]
    assert got == _greedy(values, k)
