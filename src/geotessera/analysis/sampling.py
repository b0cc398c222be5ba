"""Pixel samples inside polygons, stratified by class, seeded.

A polygon's candidate pixels are the pixels of the tile lattice (the UTM zone of the
polygon's centroid, at the source's pixel size) whose centres lie inside it. With
``per_class`` N, each class (value of the label column; one class when there is none)
gets a share of the budget ``N x classes`` by the allocation rule, capped by the pixels
it has:

- ``equal``: N per class;
- ``proportional``: in proportion to the class's pixel count;
- ``sqrt``: in proportion to the square root of its pixel count.

Within a class, pixels are drawn uniformly without replacement (so polygons contribute
in proportion to their size). Without ``per_class``, every pixel is a sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer

from ..errors import InvalidInputError
from ..grid import utm_epsg

ALLOCATIONS = ("equal", "proportional", "sqrt")
MAX_CANDIDATES = 10_000_000


@dataclass(frozen=True)
class PixelSamples:
    """Sampled pixel centres: ``lonlat`` (N, 2) degrees and the source feature of each (N,)."""

    lonlat: npt.NDArray[np.float64]
    feature: npt.NDArray[np.int64]


def polygon_pixels(polygon: shapely.Geometry, pixel_size_m: float) -> npt.NDArray[np.float64]:
    """(N, 2) lon/lat of the lattice pixel centres inside ``polygon`` (a lon/lat polygon).

    Candidates are the lattice pixels of the polygon's projected bounds (edges densified);
    a pixel is inside when its centre, in lon/lat, is inside the polygon.
    """
    c = polygon.centroid
    epsg = utm_epsg(c.x, c.y)
    fwd = Transformer.from_crs(4326, epsg, always_xy=True)
    dense = shapely.segmentize(polygon, 0.001)
    proj = shapely.transform(dense, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
    x0, y0, x1, y1 = proj.bounds
    p = float(pixel_size_m)
    c0, c1 = int(np.floor(x0 / p)) - 1, int(np.ceil(x1 / p)) + 1
    r0, r1 = int(np.floor(y0 / p)) - 1, int(np.ceil(y1 / p)) + 1
    n = (c1 - c0) * (r1 - r0)
    if n > MAX_CANDIDATES:
        raise InvalidInputError(
            f"a label polygon spans {n:,} pixels of {p:g} m; split it or label smaller areas"
        )
    xs = (np.arange(c0, c1) + 0.5) * p
    ys = (np.arange(r0, r1) + 0.5) * p
    xx, yy = np.meshgrid(xs, ys[::-1])
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xx.ravel(), yy.ravel())
    lon, lat = np.asarray(lon), np.asarray(lat)
    shapely.prepare(polygon)
    inside = shapely.contains_xy(polygon, lon, lat)
    return np.c_[lon[inside], lat[inside]]


def allocate(counts: Sequence[int], per_class: int, allocation: str) -> list[int]:
    """Samples per class: a budget of ``per_class x len(counts)`` shared by the rule, capped by counts."""
    if allocation not in ALLOCATIONS:
        raise InvalidInputError(f"unknown allocation {allocation!r}; choose one of {', '.join(ALLOCATIONS)}")
    if per_class < 1:
        raise InvalidInputError(f"per_class must be >= 1, got {per_class}")
    c = np.asarray(counts, dtype=np.float64)
    k = len(c)
    if allocation == "equal":
        return [int(min(per_class, v)) for v in c]
    weights = c if allocation == "proportional" else np.sqrt(c)
    total = per_class * k
    if weights.sum() == 0:
        return [0] * k
    share = weights / weights.sum() * total
    n = np.floor(share).astype(np.int64)
    rest = total - int(n.sum())  # largest remainders first, ties by class order
    order = np.argsort(-(share - n), kind="stable")
    n[order[:rest]] += 1
    return [int(min(a, b)) for a, b in zip(n, c, strict=True)]


def sample_polygons(
    polygons: Sequence[shapely.Geometry],
    classes: Sequence[object] | None,
    pixel_size_m: float,
    *,
    per_class: int | None = None,
    allocation: str = "equal",
    seed: int = 0,
) -> PixelSamples:
    """Pixel samples of ``polygons`` (lon/lat) stratified by ``classes`` (one value per polygon)."""
    if allocation not in ALLOCATIONS:
        raise InvalidInputError(f"unknown allocation {allocation!r}; choose one of {', '.join(ALLOCATIONS)}")
    pixels = [polygon_pixels(g, pixel_size_m) for g in polygons]
    parts = [np.full(len(px), i, dtype=np.int64) for i, px in enumerate(pixels)]
    feature = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    lonlat = np.concatenate(pixels) if pixels else np.zeros((0, 2))
    if per_class is None:
        return PixelSamples(lonlat, feature.astype(np.int64))
    labels = list(classes) if classes is not None else [0] * len(polygons)
    keys = sorted({str(v) for v in labels})
    cls = np.array([keys.index(str(labels[i])) for i in feature.tolist()], dtype=np.int64)
    counts = np.bincount(cls, minlength=len(keys)) if len(cls) else np.zeros(len(keys), np.int64)
    want = allocate(counts.tolist(), per_class, allocation)
    rng = np.random.default_rng(seed)
    chosen = []
    for k, n in enumerate(want):
        idx = np.flatnonzero(cls == k)
        if n:
            chosen.append(np.sort(rng.choice(idx, size=n, replace=False)))
    sel = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return PixelSamples(lonlat[sel], feature[sel].astype(np.int64))
