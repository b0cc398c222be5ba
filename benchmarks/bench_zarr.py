"""Zarr reads at real 10 m resolution: point sampling and region reads vs. naive baselines.

Store: 2 x 2 real-size sample tiles (0.2 x 0.2 degree near Cambridge, 2023), converted
with ``build_zarr`` once and cached under the temp directory (``gt-bench-zarr``).
Points: 100,000 uniform random points over the covered 0.2 x 0.2 degree area (a 1 x 1
degree store would need 100 real tiles, ~11 GB; the per-point costs do not depend on the
area once points outnumber inner chunks). Baseline for points: zarr-python ``vindex``
with (N, 128) integer index arrays, the naive vectorised read. Region: ``read_region``
of the whole 0.2 x 0.2 box vs. the raw decode of the same inner chunks (read + numcodecs,
one thread). Both region cases count the same bytes (H x W x 128 of the output grid), so
read_region's share of the decode rate is the ratio of their MB/s (= raw s / region s).
read_region runs on the reader's thread pool; the raw decode is one thread.
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


def _region_bytes(gz: Any) -> int:
    """int8 bytes of the region read_region returns (H x W x 128): the bytes both region cases count."""
    from geotessera.store.region import region_grid

    _, _, (h, w), _ = region_grid(BBOX, gz.info.gsd)
    return h * w * 128


def _run_region(state: dict[str, Any]) -> dict[str, float]:
    data, _, _ = state["gz"].read_region(BBOX, 2023)
    assert data.shape[0] * data.shape[1] * 128 == state["bytes"]
    return {"bytes": state["bytes"], "pixels": data.shape[0] * data.shape[1]}


def _setup_region() -> dict[str, Any]:
    state = _setup_reader()
    state["bytes"] = _region_bytes(state["gz"])
    return state


def _setup_raw_decode() -> dict[str, Any]:
    """The byte ranges of exactly the inner chunks read_region decodes: those covering the box's window."""
    from pyproj import CRS

    from geotessera.store.chunks import EMPTY
    from geotessera.store.region import _aligned, region_grid

    state = _setup_region()
    gz = state["gz"]
    zone = gz.zone(31)
    lay = zone.embeddings
    crs, transform, (h, w), zones = region_grid(BBOX, gz.info.gsd)
    assert zones == [31], zones  # one zone: read_region copies a window of it
    info = zone.info
    off = _aligned(CRS(crs).to_epsg(), transform, info.epsg, info.x0, info.y0, info.res)
    assert off is not None
    _, _, eh, ew = lay.inner_shape
    per = lay.inner_per_shard
    r0, c0 = max(off[0], 0), max(off[1], 0)
    r1, c1 = min(off[0] + h, info.shape[0]), min(off[1] + w, info.shape[1])
    rows: list[tuple[str, int, int, list[tuple[int, int]]]] = []  # (file, start, length, chunk ranges)
    for cr in range(r0 // eh, (r1 - 1) // eh + 1):
        by_shard: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for cc in range(c0 // ew, (c1 - 1) // ew + 1):
            shard = (0, 0, cr // per[2], cc // per[3])
            idx = gz.reader.shard_index(lay, shard)
            if idx is None:
                continue
            o, n = idx[(cr % per[2]) * per[3] + cc % per[3]]
            if o != EMPTY:
                by_shard.setdefault(shard, []).append((int(o), int(n)))
        for shard, ranges in by_shard.items():
            start = min(o for o, _ in ranges)
            end = max(o + n for o, n in ranges)
            path = str(gz.objects.root / lay.shard_key(shard))
            rows.append((path, start, end - start, [(o - start, n) for o, n in ranges]))
    state["rows"] = rows
    state["layout"] = lay
    return state


def _run_raw_decode(state: dict[str, Any]) -> dict[str, float]:
    """Read and decode (numcodecs, into a reused buffer) the same inner chunks, no assembly, one thread."""
    from geotessera.store.chunks import decode_inner

    lay = state["layout"]
    buf = np.empty(lay.inner_shape, dtype=lay.dtype)
    chunks = 0
    for path, start, length, ranges in state["rows"]:
        with open(path, "rb") as f:
            f.seek(start)
            blob = memoryview(f.read(length))
        for o, n in ranges:
            decode_inner(blob[o : o + n], lay, out=buf)
            chunks += 1
    return {"bytes": state["bytes"], "chunks": chunks, "decoded_bytes": chunks * buf.nbytes}


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
            name="raw decode, region chunks",
            setup=_setup_raw_decode,
            run=_run_raw_decode,
            repeats=3,
            description="read + numcodecs decode of exactly the inner chunks read_region decodes "
            "(the decode floor); MB/s counts the region's H x W x 128 bytes, as read_region does",
        ),
        Case(
            name="read_region 0.2x0.2 deg",
            setup=_setup_region,
            run=_run_region,
            repeats=3,
            description="GeoTesseraZarr.read_region of the whole 0.2 x 0.2 degree box (float32 out)",
        ),
    ]
