"""k-means clusters: ``cluster(source, region, year, k, output)``.

Mini-batch k-means (scikit-learn ``MiniBatchKMeans``) is fitted on a seeded sample of
``sample_size`` random points over the area (points in water or without data are left
out), then every pixel gets its nearest centroid, block by block. Output: cluster ids
(uint8, 255 = nodata) with a colour table, and ``STEM_centroids.json`` (the k x 128
centroids, the sample size and seed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from .._optional import require
from ..errors import InvalidInputError
from ..progress import ProgressSink
from .grids import DEFAULT_BLOCK
from .rasters import RasterSpec, check_map_path, colour_table, drop_description, write_description
from .regionops import Plan, finite_rows, make_runner, plan, run


@dataclass
class ClusterResult:
    """Files written by :func:`cluster` and the centroids (k, 128) float32."""

    rasters: list[Path]
    centroids_path: Path
    centroids: npt.NDArray[np.float32]


def sample_points(p: Plan, n: int, seed: int) -> npt.NDArray[np.float64]:
    """(n, 2) seeded uniform lon/lat points in the plan's cells (and inside its shape)."""
    rng = np.random.default_rng(seed)
    cells = [c for g in p.grids for c in g.cells]
    geom = p.area.geometry
    if geom is not None:
        shapely.prepare(geom)
    got: list[npt.NDArray[np.float64]] = []
    have = 0
    for _ in range(50):
        m = 2 * (n - have) + 16
        pick = rng.integers(0, len(cells), m)
        ix = np.array([cells[i].ix for i in pick], dtype=np.float64)
        iy = np.array([cells[i].iy for i in pick], dtype=np.float64)
        lon = (ix + rng.random(m)) / 10
        lat = (iy + rng.random(m)) / 10
        pts = np.c_[lon, lat]
        if geom is not None:
            pts = pts[shapely.contains_xy(geom, lon, lat)]
        got.append(pts)
        have += len(pts)
        if have >= n:
            break
    return np.concatenate(got)[:n]


def _cluster_block(block: npt.NDArray[np.float32], model: Any) -> npt.NDArray[np.uint8]:
    """(h, w, 128) -> (h, w, 1) uint8 nearest-centroid ids; 255 = nodata."""
    h, w = block.shape[:2]
    flat, ok = finite_rows(block)
    out = np.full(h * w, 255, dtype=np.uint8)
    if ok.any():
        out[ok] = model.predict(flat[ok].astype(np.float32)).astype(np.uint8)
    return out.reshape(h, w, 1)


def cluster(
    source: Any,
    region: Any,
    year: int,
    k: int,
    output: str | os.PathLike[str],
    *,
    sample_size: int = 20_000,
    seed: int = 0,
    client: Any = None,
    block: int = DEFAULT_BLOCK,
    workers: int | None = None,
    progress: ProgressSink | None = None,
) -> ClusterResult:
    """k-means clusters of the embeddings over ``region`` for ``year`` (see the module docstring)."""
    check_map_path(output)
    cl = require("sklearn.cluster", "ml")
    if not 2 <= int(k) <= 254:
        raise InvalidInputError(f"k must be between 2 and 254, got {k}")
    if sample_size < k:
        raise InvalidInputError(f"the sample ({sample_size} points) must be at least k ({k})")
    runner = make_runner(client, workers)  # connect first: an unreachable scheduler fails fast
    try:
        p = plan(source, region, [year], block=block)
        pts = sample_points(p, int(sample_size), seed)
        s = p.source.sample(pts, int(year))
        x = s.values[s.status == "valid"]
        if len(x) < k:
            raise InvalidInputError(
                f"only {len(x)} of the {len(pts)} sampled points have an embedding; fewer than k = {k}"
            )
        model = cl.MiniBatchKMeans(n_clusters=int(k), random_state=seed, n_init=3, batch_size=4096)
        model.fit(x.astype(np.float32))
        centroids = model.cluster_centers_.astype(np.float32)
        m = runner.constant(model)
        arrays = []
        for g in p.grids:
            emb = p.embeddings(g, int(year))
            arrays.append(emb.map_blocks(_cluster_block, m, dtype=np.uint8, chunks=(*emb.chunks[:2], (1,))))
        paths = p.paths(output)
        tags = {"TESSERA_YEAR": str(year), "CLUSTERS": f"k-means, k={k}, seed={seed}, sample={len(x)}"}
        spec = RasterSpec("uint8", 1, 255, colour_table(int(k)), ("cluster",), tags)
        out = Path(output)
        cpath = out.with_name(f"{out.stem}_centroids.json")
        drop_description(cpath)
        written = run(p, arrays, paths, spec, runner, progress=progress)
    finally:
        runner.close()
    doc = {
        "k": int(k),
        "year": int(year),
        "seed": seed,
        "sample_points": len(pts),
        "sample_valid": len(x),
        "inertia": float(model.inertia_),
        "centroids": centroids.tolist(),
    }
    write_description(cpath, doc, indent=None)
    return ClusterResult(written, cpath, centroids)
