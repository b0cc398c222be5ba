"""The transfer engine on local sources: skipping, failure isolation, bounds, events, Ctrl-C."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from geotessera.errors import GeoTesseraError, InvalidInputError, SourceError
from geotessera.files import is_complete
from geotessera.progress import (
    BytesReceived,
    Event,
    ItemDone,
    ItemFailed,
    ItemSkipped,
    PlanReady,
    ProgressSink,
)
from geotessera.transfer import (
    FetchResult,
    LocalSource,
    ObjectInfo,
    TransferError,
    TransferItem,
    run,
)
from support.recorder import Recorder


def _mirror(root: Path, n: int, size: int = 1000) -> list[str]:
    keys = []
    for i in range(n):
        key = f"v1/d/2024/grid_{i}/grid_{i}.npy"
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i % 256]) * size)
        keys.append(key)
    return keys


def _no_parts(root: Path) -> bool:
    return not [p for p in root.rglob("*.part")]


def test_run_copies_then_rerun_skips(tmp_path: Path) -> None:
    keys = _mirror(tmp_path / "m", 5)
    src = LocalSource(tmp_path / "m")
    out = tmp_path / "out"
    items = [TransferItem(k, out / k, expected_size=1000) for k in keys]
    rec = Recorder()
    report = run(src, items, workers=3, progress=rec)
    assert report.ok and len(report.done) == 5 and not report.skipped
    assert report.bytes_transferred == 5000 and report.seconds >= 0
    assert rec.events[0] == PlanReady(items=5, bytes=5000, label="transfer")
    assert {e.key for e in rec.of(ItemDone)} == set(keys)
    assert sum(e.n for e in rec.of(BytesReceived)) == 5000
    assert all(is_complete(i.dest) for i in items)
    report.raise_for_failures()  # nothing to raise

    rec2 = Recorder()
    again = run(src, items, workers=3, progress=rec2)
    assert len(again.skipped) == 5 and not again.done and again.bytes_skipped == 5000
    assert not rec2.of(BytesReceived)
    assert {e.reason for e in rec2.of(ItemSkipped)} == {"receipt matches"}

    # verify_existing re-hashes: a same-size corruption is detected and fetched again.
    items[0].dest.write_bytes(b"\xff" * 1000)
    third = run(src, items, workers=2, verify_existing=True)
    assert [i.key for i in third.done] == [keys[0]] and len(third.skipped) == 4
    assert items[0].dest.read_bytes() == (tmp_path / "m" / keys[0]).read_bytes()


def test_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    keys = _mirror(tmp_path / "m", 4)
    src = LocalSource(tmp_path / "m")
    items = [TransferItem(k, tmp_path / "o" / k) for k in keys]
    items.insert(1, TransferItem("v1/missing.npy", tmp_path / "o" / "missing.npy", label="the missing tile"))
    rec = Recorder()
    report = run(src, items, workers=2, progress=rec)
    assert not report.ok
    assert len(report.done) == 4
    [(item, message, exc)] = report.failed
    assert item.key == "v1/missing.npy" and item.name == "the missing tile"
    assert isinstance(exc, SourceError) and exc.status == 404
    assert "not found" in message
    assert [e.key for e in rec.of(ItemFailed)] == ["v1/missing.npy"]
    with pytest.raises(TransferError, match=r"1 of 5 transfers failed: v1/missing\.npy") as info:
        report.raise_for_failures()
    assert isinstance(info.value, GeoTesseraError)
    assert info.value.failed == report.failed


def test_invalid_plans(tmp_path: Path) -> None:
    src = LocalSource(tmp_path)
    with pytest.raises(InvalidInputError, match="workers"):
        run(src, [], workers=0)
    with pytest.raises(InvalidInputError, match="would be written to"):
        run(src, [TransferItem("a", tmp_path / "x"), TransferItem("b", tmp_path / "x")])
    with pytest.raises(InvalidInputError):
        TransferItem("a", tmp_path / "x", expected_size=-1)
    assert run(src, []).ok
    assert isinstance(TransferItem("a", str(tmp_path / "x")).dest, Path)  # type: ignore[arg-type]


class CountingSource:
    """A fake source that records how many gets run at once."""

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.active = 0
        self.max_active = 0
        self.calls = 0
        self._lock = threading.Lock()

    def get(
        self,
        key: str,
        *,
        dest_path: str | os.PathLike[str],
        expected_size: int | None = None,
        progress: ProgressSink | None = None,
        cancel: threading.Event | None = None,
    ) -> FetchResult:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay_s)
            if key.endswith("boom"):
                raise RuntimeError("a bug in a source")
            Path(dest_path).write_bytes(b"x")
            return FetchResult(key, Path(dest_path), 1, None, verified=False)
        finally:
            with self._lock:
                self.active -= 1

    def read_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        return True

    def describe(self) -> str:
        return "counting"

    def close(self) -> None:
        pass


def test_concurrency_is_bounded_by_workers(tmp_path: Path) -> None:
    src = CountingSource()
    items = [TransferItem(f"k{i}", tmp_path / f"f{i}") for i in range(24)]
    report = run(src, items, workers=3)
    assert report.ok and src.calls == 24
    assert 1 < src.max_active <= 3


def test_unexpected_exception_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    src = CountingSource(delay_s=0)
    items = [TransferItem("boom", tmp_path / "a"), TransferItem("fine", tmp_path / "b")]
    report = run(src, items, workers=2)
    assert [i.key for i in report.done] == ["fine"]
    assert "RuntimeError" in report.failed[0].message


def test_keyboard_interrupt_cancels_and_cleans_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "small").write_bytes(b"s")
    for i in range(3):
        (root / f"big{i}").write_bytes(b"b" * 2_000_000)
    src = LocalSource(root, chunk_size=20_000)  # 100 chunks per big file
    out = tmp_path / "out"
    items = [TransferItem("small", out / "small")] + [
        TransferItem(f"big{i}", out / f"big{i}") for i in range(3)
    ]
    started = threading.Event()

    def sink(event: Event) -> None:
        if isinstance(event, BytesReceived) and event.key.startswith("big"):
            started.set()
            time.sleep(0.005)  # slow the big copies down
        if isinstance(event, ItemDone):  # delivered on the calling thread
            started.wait(5)
            raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(src, items, workers=4, progress=sink)
    assert time.monotonic() - t0 < 5
    assert _no_parts(out)
    assert not any((out / f"big{i}").exists() for i in range(3))
