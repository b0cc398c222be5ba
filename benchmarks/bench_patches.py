"""ML patches at real 10 m resolution: ``read_patches`` against a loop of ``read_patch``.

Patches: 10,000 of 32 x 32 pixels (x 128 bands, float32: 5.2 GB of output) centred on
uniform random points, in two areas (the Zarr stores of :mod:`benchmarks.bench_zarr`, built
once and shared):

- *sparse*: the 1 x 1 degree, 100-tile store (``gt-bench-zarr-1deg``): about one patch per
  3,000 inner chunks, so no two patches share a chunk and each patch costs the decode of the
  3-4 chunks it overlaps whichever way it is read;
- *dense*: the 0.2 x 0.2 degree store (``gt-bench-zarr``, 2 x 2 tiles): about three patches
  per inner chunk, each overlapping 3-4 chunks, so a chunk serves a dozen patches.

Baseline: a Python loop of ``read_patch``, each patch copied into a preallocated (N, 32, 32,
128) array. Measured: one ``read_patches`` call writing into the same kind of array
(``out=``). Every repeat starts with a cold shard-index cache, on a local store; the output
array is allocated in setup, so peak RSS counts it in every case.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.bench_zarr import BBOX, POINTS_BBOX, _points_store, _store
from benchmarks.harness import Case, CaseResult

N_PATCHES = 10_000
SIZE = 32
YEAR = 2023


AREAS = {"sparse": POINTS_BBOX, "dense": BBOX}


def _points(area: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    pad = 0.003  # patches whole inside the area
    w, s, e, n = AREAS[area]
    lon = rng.uniform(w + pad, e - pad, N_PATCHES)
    lat = rng.uniform(s + pad, n - pad, N_PATCHES)
    return np.c_[lon, lat]


def _setup(area: str) -> dict[str, Any]:
    from geotessera.store import GeoTesseraZarr

    gz = GeoTesseraZarr(_points_store() if area == "sparse" else _store())
    out = np.empty((N_PATCHES, SIZE, SIZE, gz.n_bands), dtype=np.float32)
    out.fill(0.0)  # touch the pages now: the timed calls pay for reading, not for first-touch
    return {"gz": gz, "points": _points(area), "out": out}


def _cold(state: dict[str, Any]) -> None:
    gz = state["gz"]
    gz.reader._index_cache = type(gz.reader._index_cache)()  # cold shard-index cache each repeat


def _metrics(state: dict[str, Any]) -> dict[str, float]:
    out = state["out"]
    return {
        "patches": float(len(out)),
        "bytes": float(out.nbytes),
        "valid_pixels": float(np.isfinite(out[..., 0]).mean()),
    }


def _run_loop(state: dict[str, Any]) -> dict[str, float]:
    gz, out = state["gz"], state["out"]
    for i, (lon, lat) in enumerate(state["points"]):
        out[i] = gz.read_patch(float(lon), float(lat), YEAR, SIZE)[0]
    return _metrics(state)


def _run_batch(state: dict[str, Any]) -> dict[str, float]:
    got = state["gz"].read_patches(state["points"], YEAR, SIZE, out=state["out"])
    assert got is state["out"]
    return _metrics(state)


def _teardown(state: dict[str, Any]) -> None:
    state["gz"].close()


def _name(area: str, batch: bool) -> str:
    what = "read_patches" if batch else "read_patch loop"
    return f"{what}, {N_PATCHES // 1000}k {SIZE}x{SIZE}, {area}"


def summary(results: dict[str, CaseResult]) -> list[str]:
    """The goal's figure per area: the batch's speed over the loop's."""
    lines = []
    for area in AREAS:
        loop, batch = results.get(_name(area, False)), results.get(_name(area, True))
        if not (loop and batch and loop.times_s and batch.times_s):
            continue
        lines.append(
            f"patches, {area}: read_patches {loop.median_s / batch.median_s:.1f}x the speed of a "
            f"read_patch loop (goal >= 10x): {N_PATCHES / batch.median_s:,.0f} vs "
            f"{N_PATCHES / loop.median_s:,.0f} patches/s; peak RSS {batch.peak_rss_mib:,.0f} vs "
            f"{loop.peak_rss_mib:,.0f} MiB (both hold the {N_PATCHES * SIZE * SIZE * 128 * 4 / 2**30:.1f} "
            "GiB output)"
        )
    return lines


def _case(area: str, batch: bool) -> Case:
    what = (
        "one GeoTesseraZarr.read_patches call, out= a preallocated array"
        if batch
        else (f"{N_PATCHES:,} calls of GeoTesseraZarr.read_patch, each copied into a preallocated array")
    )
    return Case(
        name=_name(area, batch),
        baseline=area == "sparse" and not batch,
        setup=lambda: _setup(area),
        reset=_cold,
        run=_run_batch if batch else _run_loop,
        teardown=_teardown,
        repeats=3 if batch else 1,
        description=f"{what}; {SIZE} x {SIZE} px at random points, {area} area "
        f"({AREAS[area][2] - AREAS[area][0]:.1f} degree square)",
    )


def cases() -> list[Case]:
    """Per area, the loop and the batch (baseline: the sparse loop)."""
    return [_case(area, batch) for area in AREAS for batch in (False, True)]
