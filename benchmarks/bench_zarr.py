"""Zarr reads at real 10 m resolution: point sampling and region reads vs. naive baselines.

Store: 2 x 2 real-size sample tiles (0.2 x 0.2 degree near Cambridge, 2023), converted
with ``build_zarr`` once and cached under the temp directory (``gt-bench-zarr``).
Points: 100,000 uniform random points over the covered 0.2 x 0.2 degree area (a 1 x 1
degree store would need 100 real tiles, ~11 GB; the per-point costs do not depend on the
area once points outnumber inner chunks). Baseline for points: zarr-python ``vindex``
with (N, 128) integer index arrays, the naive vectorised read. Region: ``read_region``
of the whole 0.2 x 0.2 box vs. the raw decode of the same inner chunks (numcodecs only).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Case

BBOX = (0.0, 52.0, 0.2, 52.2)
N_POINTS = 100_000
CACHE = Path(tempfile.gettempdir()) / "gt-bench-zarr"


def _store() -> Path:
    from geotessera.datasets import DatasetId
    from geotessera.sample.build import build_store
    from geotessera.store import build_zarr

    store = CACHE / "store.zarr"
    marker = CACHE / "ready.json"
    if marker.is_file():
        return store
    src = CACHE / "tiles"
    build_store(src, bbox=BBOX, years=(2023,), versions=("v1",), pixel_size_m=10.0, edge_tiles=False)
    report = build_zarr(src, store, dataset=DatasetId.parse("v1"), workers=2)
    marker.write_text(json.dumps({"bytes": report.bytes_written}))
    return store


def _points() -> np.ndarray:
    rng = np.random.default_rng(42)
    lon = rng.uniform(BBOX[0] + 1e-6, BBOX[2] - 1e-6, N_POINTS)
    lat = rng.uniform(BBOX[1] + 1e-6, BBOX[3] - 1e-6, N_POINTS)
    return np.c_[lon, lat]


def _setup_reader() -> dict[str, Any]:
    from geotessera.store import GeoTesseraZarr

    gz = GeoTesseraZarr(_store())
    return {"gz": gz, "points": _points()}


def _run_points(state: dict[str, Any]) -> dict[str, float]:
    gz = state["gz"]
    gz.reader._index_cache = type(gz.reader._index_cache)()  # cold index cache each repeat
    req0, bytes0 = gz.objects.requests, gz.objects.bytes_read
    vals = gz.sample_points(state["points"], 2023)
    n = len(state["points"])
    return {
        "points": n,
        "valid": float(np.isfinite(vals[:, 0]).sum()),
        "requests_per_point": (gz.objects.requests - req0) / n,
        "bytes_per_point": (gz.objects.bytes_read - bytes0) / n,
    }


def _setup_vindex() -> dict[str, Any]:
    import zarr
    from pyproj import Transformer

    store = _store()
    g = zarr.open_group(store, mode="r")["utm31"]
    attrs = dict(g.attrs)
    res, _, x0, _, _, y0 = attrs["spatial:transform"]
    pts = _points()
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(pts[:, 0], pts[:, 1])
    cols = np.floor((np.asarray(x) - x0) / res).astype(np.int64)
    rows = np.floor((y0 - np.asarray(y)) / res).astype(np.int64)
    return {"emb": g["embeddings"], "scl": g["scales"], "rows": rows, "cols": cols}


def _run_vindex(state: dict[str, Any]) -> dict[str, float]:
    rows, cols = state["rows"], state["cols"]
    n = len(rows)
    band = np.broadcast_to(np.arange(128), (n, 128))
    q = state["emb"].vindex[
        np.zeros((n, 128), np.int64), band, rows[:, None].repeat(128, 1), cols[:, None].repeat(128, 1)
    ]
    s = state["scl"].vindex[np.zeros(n, np.int64), rows, cols]
    vals = q.astype(np.float32) * s[:, None]
    return {"points": n, "valid": float(np.isfinite(vals[:, 0]).sum())}


def _run_region(state: dict[str, Any]) -> dict[str, float]:
    data, _, _ = state["gz"].read_region(BBOX, 2023)
    return {"bytes": data.shape[0] * data.shape[1] * 128, "pixels": data.shape[0] * data.shape[1]}


def _run_raw_decode(state: dict[str, Any]) -> dict[str, float]:
    """Decode every present inner chunk of the store's embeddings (numcodecs), no assembly."""
    from geotessera.store.chunks import EMPTY, decode_inner

    gz = state["gz"]
    zone = gz.zone(31)
    lay = zone.embeddings
    total = 0
    for path in sorted((gz.objects.root / "utm31" / "embeddings" / "c").rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        blob = path.read_bytes()
        idx = np.frombuffer(blob[-lay.index_nbytes : -4], dtype="<u8").reshape(-1, 2)
        for off, n in idx[idx[:, 0] != EMPTY].tolist():
            total += decode_inner(blob[off : off + n], lay).nbytes
    return {"bytes": total}


def cases() -> list[Case]:
    """Points (baseline: zarr vindex) and regions (compare with raw decode)."""
    return [
        Case(
            name="zarr vindex 100k points",
            baseline=True,
            setup=_setup_vindex,
            run=_run_vindex,
            repeats=1,
            description="zarr-python vindex with (N, 128) index arrays, 100k random points, 10 m store",
        ),
        Case(
            name="sample_points 100k points",
            setup=_setup_reader,
            run=_run_points,
            repeats=3,
            description="GeoTesseraZarr.sample_points: scales first, needed inner chunks once, cold index",
        ),
        Case(
            name="raw decode all chunks",
            setup=_setup_reader,
            run=_run_raw_decode,
            repeats=3,
            description="numcodecs decode of every present embeddings inner chunk (the decode floor)",
        ),
        Case(
            name="read_region 0.2x0.2 deg",
            setup=_setup_reader,
            run=_run_region,
            repeats=3,
            description="GeoTesseraZarr.read_region of the whole 0.2 x 0.2 degree box (float32 out)",
        ),
    ]
