"""The fault matrix of tile downloads (npy and tiff), through the real HTTP path on loopback.

Every fault of the fault server is put on one tile's embedding object. Each row asserts its
guaranteed outcome: the download is retried (or resumed) and correct, or that one tile fails
with a message naming the cause while the others complete; in every case nothing wrong sits
at a final path, and a plain rerun (the fault gone) completes byte-correct. Timeouts and
backoffs are set short by the tests, so a stalled body costs about a second.
``docs/reliability.md`` lists these rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from geotessera.datasets import DatasetId
from geotessera.grid import Cell
from geotessera.outcome import DownloadResult, TileRef
from geotessera.pipeline import execute, plan_tiles
from geotessera.registry import Registry, load_manifest
from geotessera.transfer import HttpSource, RetryPolicy
from support.fault_server import Fault, FaultServer
from support.outputs import assert_complete, check_final_paths

FAST = RetryPolicy(max_retries=3, initial_backoff_s=0.01, max_backoff_s=0.05, total_timeout_s=20)
TIMEOUT_S = 0.5
"""The read timeout the tests give the client: a stall of a few seconds must end in a retry."""
TILES = [TileRef(2024, Cell.from_point(lon, 52.05)) for lon in (0.05, 0.15)]
FAULTED = "v1/global_0.1_degree_representation/2024/grid_0.05_52.05/grid_0.05_52.05.npy"


@dataclass(frozen=True)
class Row:
    """A fault and what it must come to: ``None`` (retried and correct) or a failure's words."""

    fault: Callable[[], Fault]
    failure: str | None
    retried: bool = False
    """The outcome needs more than one request for the object (a retry or a resume)."""


ROWS = {
    "503 twice, Retry-After 0": Row(
        lambda: Fault.http_status(503, times=2, retry_after="0"), None, retried=True
    ),
    "500 once": Row(lambda: Fault.http_status(500, times=1), None, retried=True),
    "429 once, Retry-After date": Row(
        lambda: Fault.http_status(429, times=1, retry_after="Thu, 01 Jan 1970 00:00:00 GMT"), None, True
    ),
    "reset mid-body": Row(lambda: Fault.reset(fraction=0.4, times=2), None, retried=True),
    "truncated, Content-Length right": Row(lambda: Fault.truncate(fraction=0.3, times=1), None, retried=True),
    "stalled mid-body": Row(lambda: Fault.stall(3.0, fraction=0.5, times=1), None, retried=True),
    "trickled": Row(lambda: Fault.trickle(0.05, pieces=8), None),
    "slow to answer": Row(lambda: Fault.slow(0.2, times=1), None),
    "byte flipped": Row(lambda: Fault.corrupt(times=None), "CRC64NVMe mismatch"),
    "checksum header dropped": Row(
        lambda: Fault.no_checksum(times=None), "no x-amz-checksum-crc64nvme header"
    ),
    "checksum header altered": Row(lambda: Fault.bad_checksum(times=None), "CRC64NVMe mismatch"),
    "truncated, Content-Length agreeing": Row(lambda: Fault.short(fraction=0.5, times=None), "size mismatch"),
    "503 always": Row(lambda: Fault.http_status(503, times=None, retry_after="0"), "HTTP 503"),
    "stalled always": Row(lambda: Fault.stall(2.0, fraction=0.2, times=None), "timed out"),
    "404": Row(lambda: Fault.http_status(404, times=None), "HTTP 404"),
    "403": Row(lambda: Fault.http_status(403, times=None), "HTTP 403"),
}


@pytest.fixture(scope="module")
def server(tiny_store: Path) -> Iterator[FaultServer]:
    srv = FaultServer.from_tree(tiny_store, under="v1/global_0.1_degree_representation/2024")
    for p in (tiny_store / "v1" / "global_0.1_degree_tiff_all").glob("*.tiff"):
        srv.put(p.relative_to(tiny_store).as_posix(), p.read_bytes())
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def registry(tiny_store: Path) -> Registry:
    return Registry(load_manifest(DatasetId(), registry_dir=tiny_store / "v1"))


def _download(server: FaultServer, registry: Registry, out: Path, fmt: str) -> DownloadResult:
    with HttpSource(server.url, pool_size=2, retry=FAST, timeout_s=TIMEOUT_S, connect_timeout_s=1) as src:
        plan = plan_tiles(registry, src, DatasetId(), TILES, out, fmt=fmt)
        return execute(plan, src, workers=2)


@pytest.mark.parametrize("fmt", ["npy", "tiff"])
@pytest.mark.parametrize("name", list(ROWS))
def test_tile_download_fault(
    name: str,
    fmt: str,
    server: FaultServer,
    registry: Registry,
    tiny_store: Path,
    tiff_reference: Path,
    tmp_path: Path,
) -> None:
    row = ROWS[name]
    out = tmp_path / "out"
    server.clear_faults()
    server.script(FAULTED, row.fault())
    before = len(server.requests_for(FAULTED))
    try:
        result = _download(server, registry, out, fmt)
    finally:
        server.clear_faults()
    check_final_paths(out, tiny_store, tiff_reference)  # nothing wrong at a final path, whatever came
    if row.failure is None:
        assert result.ok, result.failed
        assert not row.retried or len(server.requests_for(FAULTED)) - before >= 2
    else:
        (failed,) = result.failed  # that tile alone, with a message naming the cause
        assert failed[0] == TILES[0] and row.failure in failed[1], failed
        assert result.done == [TILES[1]]
    rerun = _download(server, registry, out, fmt)
    assert rerun.ok, rerun.failed
    assert_complete(out, tiny_store, fmt, tiff_reference, n_tiles=len(TILES), sidecar=False)


def test_a_small_object_resumes_after_a_reset_on_every_request(tmp_path: Path) -> None:
    # smaller than one read (1 MiB): the bytes that arrived before each reset are kept in the
    # running checksum, so every retry asks only for the rest and the object completes
    import os

    data = os.urandom(300_000)
    with FaultServer({"small.npy": data}) as srv:
        srv.script("small.npy", Fault.reset(fraction=0.6, times=None))
        policy = RetryPolicy(max_retries=25, initial_backoff_s=0.001, max_backoff_s=0.005, total_timeout_s=30)
        with HttpSource(srv.url, retry=policy, timeout_s=2) as src:
            result = src.get("small.npy", dest_path=tmp_path / "small.npy", expected_size=len(data))
        ranges = [r.range for r in srv.requests_for("small.npy")]
    assert (tmp_path / "small.npy").read_bytes() == data and result.verified and result.resumed
    assert ranges[0] is None and all(r is not None for r in ranges[1:])  # each retry resumed
