"""Analysis at real 10 m resolution: wall-to-wall prediction and label extraction vs. obvious scripts.

Store: 4 x 4 real-size sample tiles near Cambridge (2024, v1; about 1.7 GB, cached and shared),
read in place as a local mirror by a ``GeoTessera`` client. Model: a random forest
(100 trees) trained on 50 labelled pixels per class drawn from the store's ground truth.

Prediction over the 16 tiles (about 13 million pixels), pixels/s and peak memory:

- ``script: load all tiles, predict stacked`` (baseline): ``fetch_embeddings`` of every
  tile, the tiles stacked into one (N, 128) array, NaN rows dropped, one ``model.predict``
  (the forest on both cores, ``n_jobs=-1``);
- ``predict, local threads``: ``geotessera.analysis.predict`` in this process (2 threads,
  512-pixel blocks), writing the class GeoTIFF;
- ``predict, LocalCluster 2 workers``: the same on a two-worker ``LocalCluster`` (one thread
  each, separate processes); ``worker_peak_mib`` is the highest peak RSS of a worker.

Goal: at least as fast as the script with at most a quarter of its peak memory.

Extraction of 100,000 random labelled points (``extract`` from the tiles) against a naive
per-point read (per point: open the tile's ``.npy`` files and landmask, project, read one
pixel), which is timed on 2,000 points; the ratio is of points per second. Goal >= 20x.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._store import build_options, cached_store
from benchmarks.harness import Case, CaseResult

BBOX = (0.0, 52.0, 0.4, 52.4)  # 4 x 4 tiles
YEAR = 2024
OPTIONS = build_options(BBOX, 10.0, YEAR)
N_POINTS = 100_000
N_NAIVE = 2_000


def _client(work: Path) -> Any:
    from geotessera.client import GeoTessera

    return GeoTessera(
        base_url=str(cached_store(OPTIONS)), cache_dir=work / "cache", embeddings_dir=work / "emb"
    )


def _labels(per_class: int = 50, seed: int = 0) -> Any:
    """``per_class`` random land pixels per class from the ground-truth class maps, as a GeoDataFrame."""
    import geopandas as gpd
    import rasterio
    from pyproj import Transformer

    from geotessera.sample.content import CLASS_NAMES

    lons, lats, codes = [], [], []
    for f in sorted((cached_store(OPTIONS) / "ground_truth" / str(YEAR)).glob("*_classes.tif")):
        with rasterio.open(f) as ds:
            a, t, epsg = ds.read(1), ds.transform, ds.crs.to_epsg()
        r, c = np.nonzero(a[::7, ::7] > 0)
        r, c = r * 7, c * 7
        x, y = t @ (c + 0.5, r + 0.5)
        lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y)
        lons.append(np.asarray(lon))
        lats.append(np.asarray(lat))
        codes.append(a[r, c])
    lon, lat, code = np.concatenate(lons), np.concatenate(lats), np.concatenate(codes)
    rng = np.random.default_rng(seed)
    pick = np.concatenate(
        [rng.choice(np.flatnonzero(code == k), per_class, replace=False) for k in range(1, 5)]
    )
    names = [CLASS_NAMES[k] for k in code[pick]]
    return gpd.GeoDataFrame({"landcover": names}, geometry=gpd.points_from_xy(lon[pick], lat[pick]), crs=4326)


def _setup_predict() -> dict[str, Any]:
    from geotessera.analysis import extract, train

    work = Path(tempfile.mkdtemp(prefix="gt-bench-analysis-"))
    gt = _client(work)
    model, _ = train(extract(gt, _labels(), YEAR), "landcover")
    return {"work": work, "gt": gt, "model": model}


def _teardown(state: dict[str, Any]) -> None:
    if "dc" in state:
        state["dc"].close()
        state["cluster"].close()
    shutil.rmtree(state["work"], ignore_errors=True)


def _run_script(state: dict[str, Any]) -> dict[str, float]:
    gt, model = state["gt"], state["model"].estimator
    tiles = gt.registry.load_blocks_for_region(BBOX, YEAR)
    stacked = np.concatenate([arr.reshape(-1, 128) for *_, arr, _, _ in gt.fetch_embeddings(tiles)])
    ok = np.isfinite(stacked).all(axis=1)
    pred = np.full(len(stacked), 255, dtype=np.uint8)
    pred[ok] = model.predict(stacked[ok])
    return {"pixels": float(len(stacked)), "predicted": float(ok.sum())}


def _grid_pixels(path: Path) -> tuple[float, float]:
    import rasterio

    with rasterio.open(path) as ds:
        a = ds.read(1)
    return float(a.size), float((a != 255).sum())


def _run_predict(state: dict[str, Any]) -> dict[str, float]:
    from geotessera.analysis import predict

    out = state["work"] / "map.tif"
    [path] = predict(state["model"], state["gt"], BBOX, YEAR, out, client=state.get("dc"))
    pixels, predicted = _grid_pixels(path)
    metrics = {"pixels": pixels, "predicted": predicted}
    if "dc" in state:
        metrics["worker_peak_mib"] = max(state["dc"].run(_peak_mib).values())
    return metrics


def _reset_workers(state: dict[str, Any]) -> None:
    if "dc" in state:
        state["dc"].run(_clear_peak)


def _clear_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _setup_cluster() -> dict[str, Any]:
    from distributed import Client, LocalCluster

    state = _setup_predict()
    state["cluster"] = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    state["dc"] = Client(state["cluster"])
    return state


def _points() -> np.ndarray:
    rng = np.random.default_rng(42)
    lon = rng.uniform(BBOX[0] + 1e-6, BBOX[2] - 1e-6, N_POINTS)
    lat = rng.uniform(BBOX[1] + 1e-6, BBOX[3] - 1e-6, N_POINTS)
    return np.c_[lon, lat]


def _setup_extract() -> dict[str, Any]:
    import geopandas as gpd

    work = Path(tempfile.mkdtemp(prefix="gt-bench-analysis-"))
    pts = _points()
    labels = gpd.GeoDataFrame(
        {"id": np.arange(N_POINTS)}, geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=4326
    )
    return {"work": work, "gt": _client(work), "labels": labels, "points": pts}


def _run_extract(state: dict[str, Any]) -> dict[str, float]:
    from geotessera.analysis import extract

    t = extract(state["gt"], state["labels"], YEAR)
    return {"points": float(len(t)), "valid": float((t["status"] == "valid").sum())}


def _run_naive(state: dict[str, Any]) -> dict[str, float]:
    """Per point: find the tile, open its files and landmask, project, read one pixel."""
    import rasterio
    from pyproj import Transformer

    from geotessera.grid import Cell

    base = cached_store(OPTIONS) / "v1"
    valid = 0
    for lon, lat in state["points"][:N_NAIVE]:
        name = Cell.from_point(float(lon), float(lat)).name
        tile = base / "global_0.1_degree_representation" / str(YEAR) / name
        q = np.load(tile / f"{name}.npy", mmap_mode="r")
        s = np.load(tile / f"{name}_scales.npy", mmap_mode="r")
        with rasterio.open(base / "global_0.1_degree_tiff_all" / f"{name}.tiff") as ds:
            transform, crs = ds.transform, ds.crs
        x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
        col, row = ~transform @ (x, y)
        v = q[int(row), int(col)].astype(np.float32) * s[int(row), int(col)]
        valid += int(np.isfinite(v).all())
    return {"points": float(N_NAIVE), "valid": float(valid)}


def summary(results: dict[str, CaseResult]) -> list[str]:
    """Pixels/s and memory of the prediction cases against the script; the extraction speed-up."""
    lines = []
    base = results.get("script: load all tiles, predict stacked")
    for name in ("predict, local threads", "predict, LocalCluster 2 workers"):
        r = results.get(name)
        if not (r and base) or r.error or base.error:
            continue
        rate = r.metrics["pixels"] / r.median_s
        base_rate = base.metrics["pixels"] / base.median_s
        mem = r.metrics.get("worker_peak_mib", r.peak_rss_mib)
        lines.append(
            f"{name}: {rate / 1e6:.2f} Mpixel/s vs the script's {base_rate / 1e6:.2f} "
            f"({rate / base_rate:.2f}x, "
            f"goal >= 1); peak memory per worker {mem:.0f} MiB = {mem / base.peak_rss_mib:.3f} of the "
            f"script's {base.peak_rss_mib:.0f} MiB (goal <= 0.25)"
        )
    ours, naive = results.get("extract 100k points"), results.get("naive per-point read, 2k points")
    if ours and naive and not ours.error and not naive.error:
        r_ours = ours.metrics["points"] / ours.median_s
        r_naive = naive.metrics["points"] / naive.median_s
        lines.append(
            f"extraction: {r_ours:,.0f} points/s vs the naive per-point read's {r_naive:,.0f} "
            f"({r_ours / r_naive:.1f}x, goal >= 20x)"
        )
    return lines


def cases() -> list[Case]:
    threads = str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "?"
    return [
        Case(
            name="script: load all tiles, predict stacked",
            baseline=True,
            setup=_setup_predict,
            run=_run_script,
            teardown=_teardown,
            repeats=2,
            description="fetch_embeddings of 16 tiles, stacked, NaN rows dropped, one predict (n_jobs=-1)",
        ),
        Case(
            name="predict, local threads",
            setup=_setup_predict,
            run=_run_predict,
            teardown=_teardown,
            repeats=2,
            description=f"analysis.predict in-process ({threads} threads, 512-pixel blocks) -> class GeoTIFF",
        ),
        Case(
            name="predict, LocalCluster 2 workers",
            setup=_setup_cluster,
            reset=_reset_workers,
            run=_run_predict,
            teardown=_teardown,
            repeats=2,
            description="analysis.predict on a two-worker LocalCluster (1 thread each) -> class GeoTIFF",
        ),
        Case(
            name="extract 100k points",
            setup=_setup_extract,
            run=_run_extract,
            teardown=_teardown,
            description="analysis.extract of 100,000 random points from the 16 local tiles",
        ),
        Case(
            name="naive per-point read, 2k points",
            setup=_setup_extract,
            run=_run_naive,
            teardown=_teardown,
            description="per point: np.load mmap of the tile, rasterio landmask, pyproj, one pixel",
        ),
    ]
