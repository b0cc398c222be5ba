"""The fault matrix of manifest loads and Zarr reads, through the real HTTP path on loopback.

Manifest loads: every fault of the fault server is put on ``v1/manifest.parquet`` of a first
load (an empty cache). Each row asserts its outcome (loaded after retries, or the load fails
naming the cause), that nothing but the served bytes sits in the manifest cache (its final
path), and that a plain rerun loads and caches the manifest byte for byte.

Zarr reads: the faults go on one embeddings shard of a store geotessera built (ranged reads:
its index, then its inner chunks) or, for the checksum header rows, on the store's root
``zarr.json`` (the whole-object read that carries a CRC64NVMe). Each row asserts the outcome
(the region read equals a fault-free read, or the read raises naming the cause), that every
entry of the reader's disk cache (its final paths) holds the served bytes, and that a plain
rerun with that cache reads the region correctly.

Time-outs (0.5 s between bytes) and backoffs are set short by the tests.
``docs/reliability.md`` lists these rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geotessera.datasets import DatasetId
from geotessera.errors import GeoTesseraError
from geotessera.registry import Manifest, load_manifest
from geotessera.sample.build import build_store
from geotessera.store import GeoTesseraZarr, build_zarr
from geotessera.transfer import HttpSource, RetryPolicy
from support.fault_server import Fault, FaultServer

FAST = RetryPolicy(max_retries=3, initial_backoff_s=0.01, max_backoff_s=0.05, total_timeout_s=20)
TIMEOUT_S = 0.5
MANIFEST = "v1/manifest.parquet"
LANDMASKS = "v1/landmasks.parquet"
SHARD = "utm31/embeddings/c/0/0/8/1"
BOX = (5.8, 51.9, 5.99, 52.1)  # zone 31, all in the one shard of SHARD


@dataclass(frozen=True)
class Row:
    """A fault and what it must come to: ``None`` (retried and correct) or a failure's words."""

    fault: Callable[[], list[Fault]]
    failure: str | None
    retried: bool = False
    """The outcome needs more than one request for the object (a retry or a resume)."""
    key: str = SHARD
    """(Zarr rows) the faulted object."""


def _one(make: Callable[[], Fault]) -> Callable[[], list[Fault]]:
    return lambda: [make()]


MANIFEST_ROWS = {
    "503 twice, Retry-After 0": Row(
        _one(lambda: Fault.http_status(503, times=2, retry_after="0")), None, retried=True
    ),
    "500 once": Row(_one(lambda: Fault.http_status(500, times=1)), None, retried=True),
    "429 once, Retry-After date": Row(
        _one(lambda: Fault.http_status(429, times=1, retry_after="Thu, 01 Jan 1970 00:00:00 GMT")), None, True
    ),
    "reset mid-body": Row(_one(lambda: Fault.reset(fraction=0.4, times=2)), None, retried=True),
    "truncated, Content-Length right": Row(
        _one(lambda: Fault.truncate(fraction=0.3, times=1)), None, retried=True
    ),
    "stalled mid-body": Row(_one(lambda: Fault.stall(3.0, fraction=0.5, times=1)), None, retried=True),
    "trickled": Row(_one(lambda: Fault.trickle(0.05, pieces=8)), None),
    "slow to answer": Row(_one(lambda: Fault.slow(0.2, times=1)), None),
    "byte flipped": Row(_one(lambda: Fault.corrupt(times=None)), "CRC64NVMe mismatch"),
    "checksum header dropped": Row(
        _one(lambda: Fault.no_checksum(times=None)), "no x-amz-checksum-crc64nvme header"
    ),
    "checksum header altered": Row(_one(lambda: Fault.bad_checksum(times=None)), "CRC64NVMe mismatch"),
    "truncated, Content-Length agreeing": Row(
        _one(lambda: Fault.short(fraction=0.5, times=None)), "CRC64NVMe mismatch"
    ),
    "503 always": Row(_one(lambda: Fault.http_status(503, times=None, retry_after="0")), "HTTP 503"),
    "stalled always": Row(_one(lambda: Fault.stall(2.0, fraction=0.2, times=None)), "timed out"),
    "404": Row(_one(lambda: Fault.http_status(404, times=None)), "HTTP 404"),
    "403": Row(_one(lambda: Fault.http_status(403, times=None)), "HTTP 403"),
}

ZARR_ROWS = {
    "503 twice, Retry-After 0": Row(
        _one(lambda: Fault.http_status(503, times=2, retry_after="0")), None, retried=True
    ),
    "500 once": Row(_one(lambda: Fault.http_status(500, times=1)), None, retried=True),
    "429 once, Retry-After date": Row(
        _one(lambda: Fault.http_status(429, times=1, retry_after="Thu, 01 Jan 1970 00:00:00 GMT")), None, True
    ),
    "reset mid-body": Row(_one(lambda: Fault.reset(fraction=0.4, times=2)), None, retried=True),
    "truncated, Content-Length right": Row(
        _one(lambda: Fault.truncate(fraction=0.3, times=1)), None, retried=True
    ),
    "stalled mid-body": Row(_one(lambda: Fault.stall(3.0, fraction=0.5, times=1)), None, retried=True),
    "trickled": Row(_one(lambda: Fault.trickle(0.05, pieces=8)), None),
    "slow to answer": Row(_one(lambda: Fault.slow(0.2, times=1)), None),
    "range ignored": Row(_one(lambda: Fault.ignore_range(times=None)), None),
    "byte flipped in the shard index": Row(
        _one(lambda: Fault.corrupt(times=None)), "shard index crc32c mismatch"
    ),
    "byte flipped in an inner chunk": Row(
        lambda: [Fault.slow(0.0, times=1), Fault.corrupt(times=None)],  # the index intact, then flips
        "utm31/embeddings: inner chunk .* is damaged",
    ),
    "byte flipped in the metadata": Row(
        _one(lambda: Fault.corrupt(times=None)), "CRC64NVMe mismatch", key="zarr.json"
    ),
    "checksum header dropped": Row(_one(lambda: Fault.no_checksum(times=None)), None, key="zarr.json"),
    "checksum header altered": Row(
        _one(lambda: Fault.bad_checksum(times=None)), "CRC64NVMe mismatch", key="zarr.json"
    ),
    "truncated, Content-Length agreeing": Row(
        _one(lambda: Fault.short(fraction=0.5, times=None)), "shard object is shorter .* than its index"
    ),
    "503 always": Row(_one(lambda: Fault.http_status(503, times=None, retry_after="0")), "HTTP 503"),
    "stalled always": Row(_one(lambda: Fault.stall(2.0, fraction=0.2, times=None)), "timed out"),
    "404": Row(_one(lambda: Fault.http_status(404, times=None)), "missing, though the store records"),
    "403": Row(_one(lambda: Fault.http_status(403, times=None)), "HTTP 403"),
}


# --- manifest loads ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest_server(tiny_store: Path) -> Iterator[FaultServer]:
    with FaultServer({k: (tiny_store / k).read_bytes() for k in (MANIFEST, LANDMASKS)}) as srv:
        yield srv


def _load(server: FaultServer, cache: Path) -> Manifest:
    with HttpSource(server.url, pool_size=2, retry=FAST, timeout_s=TIMEOUT_S, connect_timeout_s=1) as src:
        return load_manifest(
            DatasetId(), base_url=server.url, source=src, cache_dir=cache, freshness_timeout_s=2
        )


def _cached(cache: Path) -> dict[str, bytes]:
    """Every file in the manifest cache by name (sidecars included); no temporary may be there."""
    files = {p.name: p.read_bytes() for p in cache.rglob("*") if p.is_file()}
    assert not [n for n in files if n.endswith(".part")], files.keys()
    return files


@pytest.mark.parametrize("name", list(MANIFEST_ROWS))
def test_manifest_load_fault(
    name: str, manifest_server: FaultServer, tiny_store: Path, tmp_path: Path
) -> None:
    row = MANIFEST_ROWS[name]
    served = manifest_server.objects[MANIFEST]
    manifest_server.clear_faults()
    manifest_server.script(MANIFEST, *row.fault())
    before = len(manifest_server.requests_for(MANIFEST))
    try:
        if row.failure is None:
            manifest = _load(manifest_server, tmp_path)
            assert not manifest.from_cache
            assert not row.retried or len(manifest_server.requests_for(MANIFEST)) - before >= 2
        else:
            with pytest.raises(GeoTesseraError, match=row.failure):
                _load(manifest_server, tmp_path)
    finally:
        manifest_server.clear_faults()
    files = _cached(tmp_path)  # nothing but the served bytes at the cache's final path
    assert files.get("manifest.parquet", served) == served
    assert ("manifest.parquet" in files) == (row.failure is None)
    rerun = _load(manifest_server, tmp_path)
    assert _cached(tmp_path)["manifest.parquet"] == served
    expected = load_manifest(DatasetId(), registry_dir=tiny_store / "v1")
    assert len(rerun.tiles) == len(expected.tiles) and rerun.tiles.equals(expected.tiles)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.corrupt(times=None),
        Fault.short(fraction=0.5, times=None),
        Fault.stall(5.0, fraction=0.2, times=None),
        Fault.http_status(503, times=None, retry_after="0"),
    ],
    ids=["byte flipped", "cut short", "stalled", "503"],
)
def test_a_faulty_freshness_check_keeps_the_cached_manifest(
    fault: Fault, manifest_server: FaultServer, tmp_path: Path
) -> None:
    """With a manifest cached and a newer one published, a fault during the freshness check
    leaves the cached one in use and in place; the next load caches the newer one."""
    served = manifest_server.objects[MANIFEST]
    _load(manifest_server, tmp_path / "cache")
    table = pq.read_table(pa.BufferReader(served))
    sink = pa.BufferOutputStream()
    pq.write_table(table.slice(1), sink)  # the newer manifest: one row fewer
    newer = sink.getvalue().to_pybytes()
    (tmp_path / "newer.parquet").write_bytes(newer)
    want = load_manifest(DatasetId(), registry_path=tmp_path / "newer.parquet").tiles
    manifest_server.put(MANIFEST, newer)
    try:
        manifest_server.script(MANIFEST, fault)
        old = _load(manifest_server, tmp_path / "cache")
        assert old.from_cache and _cached(tmp_path / "cache")["manifest.parquet"] == served
        manifest_server.clear_faults()
        new = _load(manifest_server, tmp_path / "cache")
        assert _cached(tmp_path / "cache")["manifest.parquet"] == newer
        assert not new.from_cache and new.tiles.equals(want) and not old.tiles.equals(want)
    finally:
        manifest_server.clear_faults()
        manifest_server.put(MANIFEST, served)


# --- Zarr reads ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zarr_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = tmp_path_factory.mktemp("reads_sample")
    build_store(sample, bbox=(5.8, 51.9, 6.2, 52.1), years=(2024,), versions=("v1",), pixel_size_m=100.0)
    store = tmp_path_factory.mktemp("reads_store") / "v1.zarr"
    build_zarr(sample, store, dataset=DatasetId.parse("v1"), workers=2)
    return store


@pytest.fixture(scope="module")
def zarr_server(zarr_store: Path) -> Iterator[FaultServer]:
    with FaultServer.from_tree(zarr_store) as srv:
        yield srv


@pytest.fixture(scope="module")
def region(zarr_store: Path) -> np.ndarray:
    with GeoTesseraZarr(zarr_store) as gz:
        data, _, _ = gz.read_region(BOX, 2024)
    assert np.isfinite(data).any()
    return data


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's HTTP time-outs, set short by the test (a stall costs about a second)."""
    import geotessera.store.read.reader as reader_module

    short = functools.partial(reader_module.source_from_url, timeout_s=TIMEOUT_S, connect_timeout_s=1)
    monkeypatch.setattr(reader_module, "source_from_url", short)


def _read(server: FaultServer, cache: Path) -> np.ndarray:
    with GeoTesseraZarr(server.url, cache_dir=cache, retries=FAST) as gz:
        data, _, _ = gz.read_region(BOX, 2024)
    return data


def _check_cache(cache: Path, server: FaultServer) -> int:
    """Every entry of the reader's disk cache holds the served bytes: a whole object (``all``),
    a shard index (``index``: the object's last bytes) or a range (``{offset}_{length}``)."""
    entries = [p for p in (cache / "zarr").rglob("*") if p.is_file()]
    (root,) = {p.relative_to(cache / "zarr").parts[0] for p in entries} or {""}
    for p in entries:
        assert not p.name.endswith(".part"), p
        key, tag = p.parent.relative_to(cache / "zarr" / root).as_posix(), p.name
        obj, got = server.objects[key], p.read_bytes()
        if tag == "all":
            assert got == obj, key
        elif tag == "index":
            assert got == obj[-len(got) :], key
        else:
            off, n = (int(v) for v in tag.split("_"))
            assert got == obj[off : off + n] and len(got) == n, (key, tag)
    return len(entries)


@pytest.mark.parametrize("name", list(ZARR_ROWS))
def test_zarr_read_fault(
    name: str, zarr_server: FaultServer, region: np.ndarray, tmp_path: Path, short_timeouts: None
) -> None:
    row = ZARR_ROWS[name]
    zarr_server.clear_faults()
    zarr_server.script(row.key, *row.fault())
    before = len(zarr_server.requests_for(row.key))
    try:
        if row.failure is None:
            np.testing.assert_array_equal(_read(zarr_server, tmp_path), region)
            assert not row.retried or len(zarr_server.requests_for(row.key)) - before >= 2
        else:
            with pytest.raises(GeoTesseraError, match=row.failure):
                _read(zarr_server, tmp_path)
    finally:
        zarr_server.clear_faults()
    _check_cache(tmp_path, zarr_server)  # nothing wrong at a final path (the disk cache)
    np.testing.assert_array_equal(_read(zarr_server, tmp_path), region)  # a plain rerun
    assert _check_cache(tmp_path, zarr_server) > 0
