"""Spatial block cross-validation: folds that never split a block of ``block_m`` metres.

Each sample's point is projected to the UTM zone of its 0.1-degree cell and put into the
square block ``(epsg, floor(x / block_m), floor(y / block_m))``. Samples drawn from one
polygon are kept together too (their blocks are merged), so neither a block nor a
polygon has samples on both sides of a split. Classification folds are stratified over
those groups (scikit-learn ``StratifiedGroupKFold``, seeded) when every class has at
least ``folds`` samples, else plain ``GroupKFold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

from .._optional import require
from ..errors import InvalidInputError
from ..grid import points_to_keys

Fold = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]


def spatial_blocks(
    lonlat: npt.ArrayLike, block_m: float, polygon_id: Sequence[object] | None = None
) -> npt.NDArray[np.int64]:
    """Group id (N,) int64 of each (lon, lat) point (degrees): its block, merged across polygons."""
    pts = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    if not (np.isfinite(block_m) and block_m > 0):
        raise InvalidInputError(f"the CV block size must be a positive number of metres, got {block_m!r}")
    n = len(pts)
    lon_i, lat_i = points_to_keys(pts[:, 0], pts[:, 1])
    zone = np.clip(np.floor((lon_i / 100 + 180) / 6).astype(np.int64) + 1, 1, 60)
    epsg = np.where(lat_i >= 0, 32600, 32700) + zone
    bx = np.zeros(n, dtype=np.int64)
    by = np.zeros(n, dtype=np.int64)
    for e in np.unique(epsg).tolist():
        sel = epsg == e
        x, y = Transformer.from_crs(4326, int(e), always_xy=True).transform(pts[sel, 0], pts[sel, 1])
        bx[sel] = np.floor(np.asarray(x) / block_m).astype(np.int64)
        by[sel] = np.floor(np.asarray(y) / block_m).astype(np.int64)
    _, block = np.unique(np.stack([epsg, bx, by], axis=1), axis=0, return_inverse=True)
    block = block.ravel().astype(np.int64)
    if polygon_id is None:
        return block
    parent = np.arange(int(block.max()) + 1 if n else 0)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    first: dict[object, int] = {}
    for b, pid in zip(block.tolist(), polygon_id, strict=True):
        if pid is None or pid != pid:  # None / NaN: a point, not a polygon sample
            continue
        if pid in first:
            ra, rb = find(first[pid]), find(b)
            if ra != rb:
                parent[rb] = ra
        else:
            first[pid] = b
    roots = np.array([find(int(b)) for b in block], dtype=np.int64)
    _, merged = np.unique(roots, return_inverse=True)
    return merged.ravel().astype(np.int64)


def spatial_folds(
    groups: npt.NDArray[np.int64], folds: int, y: npt.ArrayLike | None = None, seed: int = 0
) -> list[Fold]:
    """(train, test) index pairs: ``folds`` splits that keep every group on one side.

    ``y`` (class labels) asks for stratification over groups. Raises
    :class:`InvalidInputError` when there are fewer groups than folds.
    """
    require("sklearn", "ml")
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if folds < 2:
        raise InvalidInputError(f"cross-validation needs at least 2 folds, got {folds}")
    n_groups = len(np.unique(groups))
    if n_groups < folds:
        raise InvalidInputError(
            f"the samples fall into only {n_groups} spatial blocks, fewer than the {folds} folds; "
            "lower --folds or --cv-block-m"
        )
    x = np.zeros((len(groups), 1))
    if y is not None:
        _, counts = np.unique(np.asarray(y), return_counts=True)
        if counts.min() >= folds:
            sgkf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
            return [(tr, te) for tr, te in sgkf.split(x, np.asarray(y), groups)]
    gkf = GroupKFold(n_splits=folds)
    return [(tr, te) for tr, te in gkf.split(x, None, groups)]
