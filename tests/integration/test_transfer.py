"""The transfer engine and the HTTP client against a fault-injecting server on loopback: retries,
resume, corruption, cancellation. What every source does alike is ``tests/contract``.

Every server binds 127.0.0.1 on port 0 and is stopped in ``finally``. Retry policies
use millisecond backoffs so the whole module stays fast.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from geotessera.errors import IntegrityError, SourceError
from geotessera.progress import BytesReceived, Event, ItemDone, ItemFailed, ItemSkipped, PlanReady, Retrying
from geotessera.transfer import (
    HttpSource,
    RetryPolicy,
    TransferError,
    TransferItem,
    UnreachableError,
    run,
)
from support.fault_server import Fault, FaultServer, crc64nvme_header
from support.recorder import Recorder

FAST = RetryPolicy(max_retries=3, initial_backoff_s=0.01, max_backoff_s=0.05, total_timeout_s=10)
CHUNK = 64 * 1024


def _blob(i: int, size: int = 300_000) -> bytes:
    return os.urandom(16) + bytes([i % 256]) * (size - 16)


KEYS = [f"v1/global_0.1_degree_representation/2024/grid_{i}.15_52.05/grid_{i}.15_52.05.npy" for i in range(6)]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer({k: _blob(i) for i, k in enumerate(KEYS)})
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def source(server: FaultServer) -> Iterator[HttpSource]:
    src = HttpSource(server.url, pool_size=4, retry=FAST, chunk_size=CHUNK, timeout_s=5, connect_timeout_s=1)
    try:
        yield src
    finally:
        src.close()


def _parts(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*.part")] if directory.exists() else []


# -- single objects ------------------------------------------------------------------------


def test_corrupted_body_is_rejected_and_never_reaches_dest(
    server: FaultServer, source: HttpSource, tmp_path: Path
) -> None:
    key = KEYS[1]
    server.script(key, Fault.corrupt(times=None))
    dest = tmp_path / "t.npy"
    dest.write_bytes(b"previous content")
    with pytest.raises(IntegrityError) as info:
        source.get(key, dest_path=dest)
    message = str(info.value)
    assert key in message and "discarded" in message
    assert crc64nvme_header(server.objects[key]) in message  # expected
    bad = bytearray(server.objects[key])
    bad[len(bad) // 2] ^= 0xFF
    assert crc64nvme_header(bytes(bad)) in message  # actual
    assert dest.read_bytes() == b"previous content"
    assert _parts(tmp_path) == []
    assert len(server.requests_for(key)) == 1  # a checksum mismatch is not retried


def test_missing_checksum_header_is_rejected(server: FaultServer, source: HttpSource, tmp_path: Path) -> None:
    key = KEYS[2]
    server.script(key, Fault.no_checksum(times=None))
    with pytest.raises(IntegrityError, match="x-amz-checksum-crc64nvme"):
        source.get(key, dest_path=tmp_path / "t.npy")
    assert not (tmp_path / "t.npy").exists() and _parts(tmp_path) == []
    with pytest.raises(IntegrityError):
        source.read_bytes(key)
    # Opting out accepts the bytes, unverified (e.g. Source Cooperative).
    lax = HttpSource(server.url, retry=FAST, require_checksum=False)
    try:
        result = lax.get(key, dest_path=tmp_path / "t.npy")
    finally:
        lax.close()
    assert not result.verified and (tmp_path / "t.npy").read_bytes() == server.objects[key]


def test_503_then_success_emits_retrying(server: FaultServer, source: HttpSource, tmp_path: Path) -> None:
    key = KEYS[3]
    server.script(key, Fault.http_status(503, times=2))
    rec = Recorder()
    result = source.get(key, dest_path=tmp_path / "t", progress=rec)
    assert result.attempts == 3 and (tmp_path / "t").read_bytes() == server.objects[key]
    retries = rec.of(Retrying)
    assert [r.attempt for r in retries] == [1, 2]
    assert all(r.key == key and "503" in r.reason and 0 <= r.delay_s <= FAST.max_backoff_s for r in retries)


def test_503_forever_gives_source_error_with_status(
    server: FaultServer, source: HttpSource, tmp_path: Path
) -> None:
    key = KEYS[3]
    server.script(key, Fault.http_status(503, times=None))
    with pytest.raises(SourceError) as info:
        source.get(key, dest_path=tmp_path / "t")
    assert info.value.status == 503 and "4 attempts" in str(info.value)
    assert len(server.requests_for(key)) == FAST.max_retries + 1


def test_429_honours_retry_after(server: FaultServer, tmp_path: Path) -> None:
    key = KEYS[4]
    server.script(key, Fault.http_status(429, retry_after="1"))
    policy = RetryPolicy(max_retries=2, initial_backoff_s=0.001, max_backoff_s=5.0)
    rec = Recorder()
    with HttpSource(server.url, retry=policy) as src:
        t0 = time.monotonic()
        src.get(key, dest_path=tmp_path / "t", progress=rec)
        elapsed = time.monotonic() - t0
    [retry] = rec.of(Retrying)
    assert retry.delay_s == 1.0 and "429" in retry.reason
    assert elapsed >= 0.95
    first, second = server.requests_for(key)
    assert second.at - first.at >= 0.95


def test_retry_after_is_capped(server: FaultServer, tmp_path: Path) -> None:
    key = KEYS[4]
    server.script(key, Fault.http_status(503, retry_after="3600"))
    rec = Recorder()
    with HttpSource(server.url, retry=FAST) as src:
        src.get(key, dest_path=tmp_path / "t", progress=rec)
    assert [r.delay_s for r in rec.of(Retrying)] == [FAST.max_backoff_s]


def test_reset_mid_body_is_retried(server: FaultServer, source: HttpSource, tmp_path: Path) -> None:
    key = KEYS[5]
    server.script(key, Fault.reset(fraction=0.5))
    rec = Recorder()
    result = source.get(key, dest_path=tmp_path / "t", progress=rec)
    assert (tmp_path / "t").read_bytes() == server.objects[key]
    assert result.verified and result.attempts == 2
    [retry] = rec.of(Retrying)
    assert "connection lost" in retry.reason


def test_truncated_body_resumes_with_range(server: FaultServer, source: HttpSource, tmp_path: Path) -> None:
    key = KEYS[0]
    server.script(key, Fault.truncate(fraction=0.6))
    result = source.get(key, dest_path=tmp_path / "t")
    assert (tmp_path / "t").read_bytes() == server.objects[key]
    assert result.resumed and result.attempts == 2
    first, second = server.requests_for(key)
    assert first.range is None
    assert second.range is not None and second.range.startswith("bytes=")
    offset = int(second.range.removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= 0.6 * 300_000
    assert second.headers.get("if-match", "").startswith('"')


def test_resume_falls_back_to_full_download_when_range_is_ignored(
    server: FaultServer, source: HttpSource, tmp_path: Path
) -> None:
    key = KEYS[1]
    server.script(key, Fault.truncate(fraction=0.5), Fault.ignore_range(times=1))
    result = source.get(key, dest_path=tmp_path / "t")
    assert (tmp_path / "t").read_bytes() == server.objects[key]
    assert result.verified and not result.resumed and result.attempts == 2


def test_truncation_forever_gives_source_error(
    server: FaultServer, source: HttpSource, tmp_path: Path
) -> None:
    key = KEYS[2]
    server.script(key, Fault.truncate(fraction=0.0, times=None))
    with pytest.raises(SourceError, match=r"truncated|connection lost"):
        source.get(key, dest_path=tmp_path / "t")
    assert not (tmp_path / "t").exists() and _parts(tmp_path) == []


def test_slow_response_read_timeout_is_retried(server: FaultServer, tmp_path: Path) -> None:
    key = KEYS[3]
    server.script(key, Fault.slow(0.6, times=1))
    rec = Recorder()
    with HttpSource(server.url, retry=FAST, timeout_s=0.2) as src:
        src.get(key, dest_path=tmp_path / "t", progress=rec)
    assert (tmp_path / "t").read_bytes() == server.objects[key]
    [retry] = rec.of(Retrying)
    assert "Timeout" in retry.reason


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_endpoint_fails_quickly(tmp_path: Path) -> None:
    port = _closed_port()
    with HttpSource(f"http://127.0.0.1:{port}/bucket", retry=FAST, connect_timeout_s=1) as src:
        t0 = time.monotonic()
        with pytest.raises(SourceError, match=f"cannot reach 127.0.0.1:{port}") as info:
            src.get("v1/a.npy", dest_path=tmp_path / "a")
        assert isinstance(info.value, UnreachableError)
        # In a batch, the first unreachable failure fails the items not yet started at once.
        items = [TransferItem(f"v1/{i}.npy", tmp_path / f"{i}.npy") for i in range(20)]
        report = run(src, items, workers=2)
        assert time.monotonic() - t0 < 5
    assert len(report.failed) == 20 and not report.done
    assert all("cannot reach" in f.message for f in report.failed)
    assert _parts(tmp_path) == []


def test_a_refused_first_contact_is_given_up_soon_and_a_known_host_retried_fully(
    server: FaultServer, tmp_path: Path
) -> None:
    """A wrong or unreachable endpoint is reported after FIRST_CONTACT_RETRIES retries (about a
    second with the default backoff), not the whole policy; a host that has answered before is
    retried as the policy says when it starts refusing (a restart, an overload)."""
    from geotessera.transfer.http import FIRST_CONTACT_RETRIES

    policy = RetryPolicy(max_retries=5, initial_backoff_s=0.01, max_backoff_s=0.02, total_timeout_s=30)
    port = _closed_port()
    first = rf"\({FIRST_CONTACT_RETRIES + 1} attempts"
    with (
        HttpSource(f"http://127.0.0.1:{port}/bucket", retry=policy, connect_timeout_s=1) as src,
        pytest.raises(UnreachableError, match=first),
    ):
        src.get("v1/a.npy", dest_path=tmp_path / "a")
    with HttpSource(server.url, retry=policy, connect_timeout_s=1) as src:
        src.get(KEYS[0], dest_path=tmp_path / "b")  # the host answers once...
        server.stop()  # ...then refuses every new connection
        src.close()  # (drop the kept-alive one, which the server's handler thread would still serve)
        with pytest.raises(UnreachableError, match=r"\(6 attempts"):
            src.get(KEYS[1], dest_path=tmp_path / "c")
    assert _parts(tmp_path) == []


def test_an_unreachable_endpoint_with_the_default_policy_is_reported_within_seconds(tmp_path: Path) -> None:
    port = _closed_port()
    with HttpSource(f"http://127.0.0.1:{port}/bucket", connect_timeout_s=1) as src:  # RetryPolicy()
        t0 = time.monotonic()
        with pytest.raises(UnreachableError):
            src.get("v1/a.npy", dest_path=tmp_path / "a")
        assert time.monotonic() - t0 < 4  # 2 retries: at most 0.5 + 1.0 s of backoff (8-15 s before)


# -- batches -------------------------------------------------------------------------------


def test_batch_failures_resume_and_rerun(server: FaultServer, source: HttpSource, tmp_path: Path) -> None:
    out = tmp_path / "out"
    items = [TransferItem(k, out / k, expected_size=300_000, label=f"tile {i}") for i, k in enumerate(KEYS)]
    server.script(KEYS[0], Fault.reset(fraction=0.5))  # interrupted once, then fine
    server.script(KEYS[1], Fault.truncate(fraction=0.7))  # resumed with Range
    server.script(KEYS[2], Fault.http_status(503, times=None))  # fails this run
    server.script(KEYS[3], Fault.corrupt(times=None))  # fails this run
    rec = Recorder()
    report = run(source, items, workers=3, progress=rec)

    assert rec.events[0] == PlanReady(items=6, bytes=6 * 300_000, label="transfer")
    assert {i.key for i in report.done} == {KEYS[0], KEYS[1], KEYS[4], KEYS[5]}
    failed = {f.item.key: f for f in report.failed}
    assert set(failed) == {KEYS[2], KEYS[3]}
    assert failed[KEYS[2]].exception.status == 503  # type: ignore[attr-defined]
    assert isinstance(failed[KEYS[3]].exception, IntegrityError)
    assert {e.key for e in rec.of(ItemFailed)} == set(failed)
    assert {e.key for e in rec.of(ItemDone)} == {i.key for i in report.done}
    assert rec.of(Retrying)
    assert any(r.resumed for r in report.results)
    for item in report.done:
        assert item.dest.read_bytes() == server.objects[item.key]
    for key in failed:
        assert not (out / key).exists()
    assert _parts(out) == []
    with pytest.raises(TransferError) as info:
        report.raise_for_failures()
    assert KEYS[2] in str(info.value) and KEYS[3] in str(info.value)

    # The source recovers; a rerun skips completed files and finishes the failed ones.
    server.clear_faults()
    before = {k: len(server.requests_for(k)) for k in KEYS}
    rec2 = Recorder()
    second = run(source, items, workers=3, progress=rec2)
    assert second.ok
    assert {i.key for i in second.skipped} == {KEYS[0], KEYS[1], KEYS[4], KEYS[5]}
    assert {i.key for i in second.done} == {KEYS[2], KEYS[3]}
    assert {e.key for e in rec2.of(ItemSkipped)} == {i.key for i in second.skipped}
    for key in KEYS:
        assert (out / key).read_bytes() == server.objects[key]
        expected_new = 1 if key in (KEYS[2], KEYS[3]) else 0
        assert len(server.requests_for(key)) - before[key] == expected_new


def test_concurrency_happens(server: FaultServer, tmp_path: Path) -> None:
    for i in range(8):
        key = f"c/{i}.bin"
        server.put(key, _blob(i, 50_000))
        server.script(key, Fault.slow(0.2))
    items = [TransferItem(f"c/{i}.bin", tmp_path / f"{i}.bin") for i in range(8)]
    with HttpSource(server.url, pool_size=4, retry=FAST) as src:
        t0 = time.monotonic()
        report = run(src, items, workers=4)
        elapsed = time.monotonic() - t0
    assert report.ok and len(report.done) == 8
    assert 1 < server.max_concurrent <= 4
    assert elapsed < 8 * 0.2


def test_ctrl_c_cancels_and_removes_partial_files(server: FaultServer, tmp_path: Path) -> None:
    # Timing-free: no download may get past its first chunk until the main thread has taken the
    # interrupt (a SIGINT handler records it), and each needs ~60 more chunks at 10 ms a chunk,
    # so the cancellation always lands mid-transfer however late a loaded machine delivers it.
    for i in range(4):
        server.put(f"big/{i}", _blob(i, 1_000_000))
    items = [TransferItem(f"big/{i}", tmp_path / f"{i}.bin") for i in range(4)]
    receiving, interrupted = threading.Event(), threading.Event()

    def slow_sink(event: Event) -> None:
        if isinstance(event, BytesReceived):
            receiving.set()
            interrupted.wait(30)
            time.sleep(0.01)  # 16 KiB chunks

    def on_sigint(signum: int, frame: object) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    def interrupt() -> None:
        receiving.wait(30)
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, on_sigint)
    killer = threading.Thread(target=interrupt, daemon=True)
    try:
        with HttpSource(server.url, retry=FAST, chunk_size=16 * 1024) as src:
            killer.start()
            with pytest.raises(KeyboardInterrupt):
                run(src, items, workers=2, progress=slow_sink)
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupted.set()
        killer.join()
    assert _parts(tmp_path) == []
    assert not any(i.dest.exists() for i in items)


def test_progress_takes_back_bytes_discarded_by_a_restart(
    server: FaultServer, source: HttpSource, tmp_path: Path
) -> None:
    key = KEYS[0]
    server.script(key, Fault.truncate(fraction=0.5), Fault.ignore_range(times=1))
    events: list[Event] = []
    source.get(key, dest_path=tmp_path / "x", progress=events.append)
    received = [e.n for e in events if isinstance(e, BytesReceived)]
    assert any(n < 0 for n in received)  # the restart was reported
    assert sum(received) == len(server.objects[key])  # so a progress bar ends at exactly 100%
