"""Zarr reads at real 10 m resolution: point sampling and region reads vs. naive baselines.

Stores: real-size sample tiles (near Cambridge, 2023, v1) converted with ``build_zarr`` once
and cached under the temp directory: 10 x 10 tiles over the 1 x 1 degree points area
(``gt-bench-zarr-1deg``, about 6.6 GB; its tiles are deleted once converted) and 2 x 2
tiles for the 0.2 x 0.2 degree region cases (``gt-bench-zarr``).
Points: 100,000 uniform random points over the 1 x 1 degree area, about one point per
inner chunk. Baseline: zarr-python ``vindex`` with (N, 128) integer index arrays, the naive
vectorised read; ``sample_points`` starts each repeat with a cold shard-index cache.
Region: ``read_region`` of the whole 0.2 x 0.2 box against raw reads of the same data:
zarr-python slicing of the region's windows (the naive read), a direct decode of the same
inner chunks into the raw windows (the raw decode rate), on one thread and on as many
threads as read_region uses, and the codec alone (decode into one reused buffer). All
region cases count the same bytes (H x W x 128 of the output grid), so a share of a rate
is a ratio of times. read_region runs on the reader's thread pool.
Remote: the same region read over HTTP from the local S3 endpoint (``geotessera sample
serve`` in a child process, serving a hard-linked copy of the store) with an on-disk
chunk cache, cold (a fresh cache each repeat) and warm (the cache filled in setup; a fresh
reader each repeat): the warm read's requests and bytes show what still goes to the network.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Case, CaseResult
from geotessera.store.read.chunk_reader import usable_cores

BBOX = (0.0, 52.0, 0.2, 52.2)  # the region (and the store of the region cases)
POINTS_BBOX = (0.0, 52.0, 1.0, 53.0)  # the points' 1 x 1 degree area (its own 100-tile store)
N_POINTS = 100_000
CACHE = Path(tempfile.gettempdir()) / "gt-bench-zarr"
THREADS = usable_cores()  # read_region's threads on a local store
# region cases take about a second; the first run in a process and fresh-memory costs on a VM
# vary a lot, so five runs keep the median off the outliers
REGION_REPEATS = 5
POINTS_CACHE = Path(tempfile.gettempdir()) / "gt-bench-zarr-1deg"


def _store(cache: Path = CACHE, bbox: tuple[float, float, float, float] = BBOX) -> Path:
    """The real-size Zarr store of ``bbox`` (2023, v1), built once under ``cache`` and reused.

    The sample tiles are deleted once converted, except for the small region store (kept as
    the benchmarks built before kept it).
    """
    from geotessera.datasets import DatasetId
    from geotessera.sample.build import build_store
    from geotessera.store import build_zarr

    store = cache / "store.zarr"
    marker = cache / "ready.json"
    if marker.is_file():
        return store
    src = cache / "tiles"
    build_store(src, bbox=bbox, years=(2023,), versions=("v1",), pixel_size_m=10.0, edge_tiles=False)
    report = build_zarr(src, store, dataset=DatasetId.parse("v1"), workers=2)
    if cache != CACHE:
        shutil.rmtree(src)
    marker.write_text(json.dumps({"bytes": report.bytes_written}))
    return store


def _points_store() -> Path:
    return _store(POINTS_CACHE, POINTS_BBOX)


def _points() -> np.ndarray:
    rng = np.random.default_rng(42)
    lon = rng.uniform(POINTS_BBOX[0] + 1e-6, POINTS_BBOX[2] - 1e-6, N_POINTS)
    lat = rng.uniform(POINTS_BBOX[1] + 1e-6, POINTS_BBOX[3] - 1e-6, N_POINTS)
    return np.c_[lon, lat]


def _setup_points() -> dict[str, Any]:
    from geotessera.store import GeoTesseraZarr

    return {"gz": GeoTesseraZarr(_points_store()), "points": _points()}


def _run_points(state: dict[str, Any]) -> dict[str, float]:
    gz = state["gz"]
    gz.reader._index_cache = type(gz.reader._index_cache)()  # cold index cache each repeat
    req0, bytes0 = gz.source.requests, gz.source.bytes_read
    vals = gz.sample_points(state["points"], 2023)
    n = len(state["points"])
    return {
        "points": n,
        "valid": float(np.isfinite(vals[:, 0]).sum()),
        "requests_per_point": (gz.source.requests - req0) / n,
        "bytes_per_point": (gz.source.bytes_read - bytes0) / n,
    }


def _setup_vindex() -> dict[str, Any]:
    import zarr
    from pyproj import Transformer

    g: Any = zarr.open_group(_points_store(), mode="r")["utm31"]
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
    from geotessera.store.read.regions import region_grid

    _, _, (h, w), _ = region_grid(BBOX, gz.info.gsd)
    return h * w * 128


def _run_region(state: dict[str, Any]) -> dict[str, float]:
    data, _, _ = state["gz"].read_region(BBOX, 2023)
    assert data.shape[0] * data.shape[1] * 128 == state["bytes"]
    return {"bytes": state["bytes"], "pixels": data.shape[0] * data.shape[1]}


def _setup_region() -> dict[str, Any]:
    from geotessera.store import GeoTesseraZarr

    gz = GeoTesseraZarr(_store())
    return {"gz": gz, "bytes": _region_bytes(gz)}


def _window(gz: Any) -> tuple[Any, tuple[int, int, int, int]]:
    """The zone and its window (r0, r1, c0, c1) that read_region copies for the box (one zone, aligned)."""
    from pyproj import CRS

    from geotessera.store.read.regions import _aligned, region_grid

    zone = gz.zone(31)
    crs, transform, (h, w), zones = region_grid(BBOX, gz.info.gsd)
    assert zones == [31], zones  # one zone: read_region copies a window of it
    info = zone.info
    off = _aligned(CRS(crs).to_epsg(), transform, info.epsg, info.x0, info.y0, info.res)
    assert off is not None
    r0, c0 = max(off[0], 0), max(off[1], 0)
    return zone, (r0, min(off[0] + h, info.shape[0]), c0, min(off[1] + w, info.shape[1]))


Ranges = list[tuple[str, int, int, list[tuple[int, int, int, int]]]]


def _ranges(gz: Any, lay: Any, window: tuple[int, int, int, int]) -> Ranges:
    """Per chunk row and shard: (file, start, length, [(chunk row, chunk col, offset, nbytes)]) of
    the stored inner chunks of ``lay`` covering ``window``. read_region decodes the same chunks, except
    embedding chunks with no usable pixel (there are none on this store: 3,157 of each array)."""
    from geotessera.store.layout import EMPTY

    r0, r1, c0, c1 = window
    ih, iw = lay.inner_shape[-2:]
    per = lay.inner_per_shard
    lead = (0,) * (len(per) - 2)
    rows: Ranges = []
    for cr in range(r0 // ih, (r1 - 1) // ih + 1):
        by_shard: dict[tuple[int, ...], list[tuple[int, int, int, int]]] = {}
        for cc in range(c0 // iw, (c1 - 1) // iw + 1):
            shard = (*lead, cr // per[-2], cc // per[-1])
            idx = gz.reader.shard_index(lay, shard)
            if idx is None:
                continue
            o, n = idx[(cr % per[-2]) * per[-1] + cc % per[-1]]
            if o != EMPTY:
                by_shard.setdefault(shard, []).append((cr, cc, int(o), int(n)))
        for shard, items in by_shard.items():
            start = min(i[2] for i in items)
            end = max(i[2] + i[3] for i in items)
            path = str(Path(gz.url) / lay.shard_key(shard))
            rows.append((path, start, end - start, [(cr, cc, o - start, n) for cr, cc, o, n in items]))
    return rows


def _setup_raw_decode() -> dict[str, Any]:
    state = _setup_region()
    zone, window = _window(state["gz"])
    state["window"] = window
    state["layouts"] = (zone.embeddings, zone.scales)
    state["rows"] = (_ranges(state["gz"], zone.embeddings, window), _ranges(state["gz"], zone.scales, window))
    return state


def _decode_rows(rows: Ranges, lay: Any, place: Any) -> int:
    """Read and decode (numcodecs, into one reused buffer) every chunk of ``rows``; ``place(cr, cc, buf)``."""
    from geotessera.store.read.decode import decode_inner

    buf = np.empty(lay.inner_shape, dtype=lay.dtype)
    chunks = 0
    for path, start, length, items in rows:
        with open(path, "rb") as f:
            f.seek(start)
            blob = memoryview(f.read(length))
        for cr, cc, o, n in items:
            decode_inner(blob[o : o + n], lay, out=buf)
            place(cr, cc, buf)
            chunks += 1
    return chunks


def _run_codec_only(state: dict[str, Any]) -> dict[str, float]:
    """The embedding chunks, decoded and thrown away: the codec's own rate."""
    chunks = _decode_rows(state["rows"][0], state["layouts"][0], lambda cr, cc, buf: None)
    return {"bytes": state["bytes"], "chunks": chunks}


def _run_raw_window(state: dict[str, Any], threads: int = 1) -> dict[str, float]:
    """The region's stored arrays decoded into their raw windows: int8 (128, h, w) and scales (h, w).

    ``threads`` > 1: the chunk rows are shared among that many threads (as read_region shares them)."""
    from concurrent.futures import ThreadPoolExecutor

    r0, r1, c0, c1 = state["window"]
    emb, scl = state["layouts"]
    q = np.empty((emb.shape[1], r1 - r0, c1 - c0), dtype=np.int8)
    s = np.empty((r1 - r0, c1 - c0), dtype=np.float32)

    def into(dst: np.ndarray, ih: int, iw: int) -> Any:
        def place(cr: int, cc: int, buf: np.ndarray) -> None:
            y0, x0 = cr * ih, cc * iw
            a0, a1, b0, b1 = max(y0, r0), min(y0 + ih, r1), max(x0, c0), min(x0 + iw, c1)
            src = buf.reshape(-1, ih, iw)[:, a0 - y0 : a1 - y0, b0 - x0 : b1 - x0]
            dst.reshape(-1, r1 - r0, c1 - c0)[:, a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = src

        return place

    def part(i: int) -> int:
        n = _decode_rows(state["rows"][0][i::threads], emb, into(q, *emb.inner_shape[-2:]))
        return n + _decode_rows(state["rows"][1][i::threads], scl, into(s, *scl.inner_shape[-2:]))

    if threads == 1:
        chunks = part(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            chunks = sum(pool.map(part, range(threads)))
    return {"bytes": state["bytes"], "chunks": chunks}


def _setup_zarr_window() -> dict[str, Any]:
    import zarr

    state = _setup_region()
    _, window = _window(state["gz"])
    state.pop("gz").close()  # only its window was needed
    g: Any = zarr.open_group(_store(), mode="r")["utm31"]
    state.update(window=window, emb=g["embeddings"], scl=g["scales"])
    return state


def _run_zarr_window(state: dict[str, Any]) -> dict[str, float]:
    """zarr-python slicing of the same windows of both arrays (the naive raw read)."""
    r0, r1, c0, c1 = state["window"]
    q = state["emb"][0, :, r0:r1, c0:c1]
    s = state["scl"][0, r0:r1, c0:c1]
    return {"bytes": state["bytes"], "pixels": float(q.shape[1] * q.shape[2] + 0 * s.size)}


def _served_root() -> Path:
    """A directory holding only the store (hard links), for the S3 endpoint to serve."""
    root = CACHE / "served"
    store = _store()
    built = (CACHE / "ready.json").read_text()  # the store's build record: a rebuild changes it
    if not (root / "ready.json").is_file() or (root / "ready.json").read_text() != built:
        tmp = CACHE / "served.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(store, tmp / "store.zarr", copy_function=os.link)
        (tmp / "ready.json").write_text(built)
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    return root


def _setup_remote(warm: bool) -> dict[str, Any]:
    from benchmarks._store import ServedStore

    root = _served_root()
    server = ServedStore(root)
    state: dict[str, Any] = {"server": server, "url": f"{server.base_url}/store.zarr", "warm": warm}
    state["cache"] = Path(tempfile.mkdtemp(prefix="gt-bench-zcache-"))
    with _setup_region()["gz"] as local:
        state["bytes"] = _region_bytes(local)
    if warm:  # fill the cache once, untimed
        _read_remote(state)
    return state


def _reset_remote(state: dict[str, Any]) -> None:
    if not state["warm"]:  # cold: an empty cache each repeat
        shutil.rmtree(state["cache"], ignore_errors=True)
        state["cache"].mkdir()


def _read_remote(state: dict[str, Any]) -> dict[str, float]:
    from geotessera.store import GeoTesseraZarr

    with GeoTesseraZarr(state["url"], cache_dir=state["cache"]) as gz:  # fresh memory caches
        data, _, _ = gz.read_region(BBOX, 2023)
        return {
            "bytes": state["bytes"],
            "pixels": data.shape[0] * data.shape[1],
            "requests": gz.source.requests,
            "network_bytes": gz.source.bytes_read,
        }


def _teardown_remote(state: dict[str, Any]) -> None:
    state["server"].stop()
    shutil.rmtree(state["cache"], ignore_errors=True)


def _remote_case(warm: bool) -> Case:
    """The region over HTTP from the local S3 endpoint, with an empty or a filled chunk cache."""
    return Case(
        name=f"read_region remote, {'warm' if warm else 'cold'} cache",
        setup=lambda: _setup_remote(warm=warm),
        reset=_reset_remote,
        run=_read_remote,
        teardown=_teardown_remote,
        repeats=3,
        description="the same region again with the chunk cache filled (fresh reader each repeat)"
        if warm
        else "the same region over HTTP from the local S3 endpoint, empty chunk cache",
    )


def summary(results: dict[str, CaseResult]) -> list[str]:
    """The goals' figures: points vs vindex (time, memory), region vs raw decode, warm cache traffic."""
    lines = []
    vi, sp = results.get("zarr vindex 100k points"), results.get("sample_points 100k points")
    if vi and sp:
        lines.append(
            f"points: {vi.median_s / sp.median_s:.1f}x the baseline's speed (goal >= 10x), "
            f"{sp.peak_rss_mib / vi.peak_rss_mib:.3f} of its peak RSS (goal <= 0.1), "
            f"{sp.metrics.get('requests_per_point', float('nan')):.4f} requests and "
            f"{sp.metrics.get('bytes_per_point', float('nan')):.0f} bytes per point"
        )
    reg = results.get("read_region 0.2x0.2 deg")
    refs = ("raw decode, region window", f"raw decode, region window, {THREADS} threads")
    for ref in (*refs, "zarr-python raw window", "codec only, region chunks"):
        raw = results.get(ref)
        if raw and reg:
            lines.append(
                f"read_region vs {ref}: {raw.median_s / reg.median_s:.2f} of its rate on medians, "
                f"{min(raw.times_s) / min(reg.times_s):.2f} on best times"
            )
    for name in ("read_region remote, cold cache", "read_region remote, warm cache"):
        r = results.get(name)
        if r:
            lines.append(
                f"{name}: {r.metrics.get('requests', float('nan')):.0f} requests, "
                f"{r.metrics.get('network_bytes', float('nan')) / 1e6:.2f} MB from the network"
            )
    return lines


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
            setup=_setup_points,
            run=_run_points,
            repeats=3,
            description="GeoTesseraZarr.sample_points: scales first, needed inner chunks once, cold index",
        ),
        Case(
            name="zarr-python raw window",
            setup=_setup_zarr_window,
            run=_run_zarr_window,
            repeats=3,
            description="zarr-python slicing of the region's window of embeddings (int8) and scales: "
            "the naive raw read",
        ),
        Case(
            name="raw decode, region window",
            setup=_setup_raw_decode,
            run=_run_raw_window,
            repeats=REGION_REPEATS,
            description="read + numcodecs decode of the stored inner chunks covering the window, placed "
            "into the region's raw windows (int8 (128, h, w) and scales (h, w)), one thread",
        ),
        Case(
            name=f"raw decode, region window, {THREADS} threads",
            setup=_setup_raw_decode,
            run=lambda state: _run_raw_window(state, THREADS),
            repeats=REGION_REPEATS,
            description="the same, the chunk rows shared among as many threads as read_region uses on "
            "a local store (one per core)",
        ),
        Case(
            name="codec only, region chunks",
            setup=_setup_raw_decode,
            run=_run_codec_only,
            repeats=REGION_REPEATS,
            description="read + numcodecs decode of the same embedding chunks into one reused buffer, "
            "no placement: the codec's own rate, one thread",
        ),
        Case(
            name="read_region 0.2x0.2 deg",
            setup=_setup_region,
            run=_run_region,
            repeats=REGION_REPEATS,
            description="GeoTesseraZarr.read_region of the whole 0.2 x 0.2 degree box (float32 out)",
        ),
        _remote_case(warm=False),
        _remote_case(warm=True),
    ]
