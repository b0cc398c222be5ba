"""LocalObjects: range reads through descriptors kept open between reads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from geotessera.store.objects import LocalObjects


def test_range_reads_with_few_descriptors_are_right_under_threads(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    blobs = {f"a/{i}": rng.integers(0, 256, 5000 + i, dtype=np.uint8).tobytes() for i in range(12)}
    for key, data in blobs.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)
    store = LocalObjects(tmp_path)
    files = store._files
    assert files is not None
    files.cap = 3  # far fewer descriptors than files: constant eviction while others read
    errors: list[str] = []

    def work(seed: int) -> None:
        r = np.random.default_rng(seed)
        for _ in range(400):
            key = f"a/{int(r.integers(12))}"
            start, length = int(r.integers(0, 6000)), int(r.integers(0, 900))
            try:
                got = store.get_range(key, start, length)
            except OSError as exc:  # e.g. a descriptor closed under a reader
                errors.append(f"{key}: {exc}")
                continue
            if got != blobs[key][start : start + length]:
                errors.append(f"{key} {start} {length}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(files._open) <= files.cap
    assert store.get_range("a/missing", 0, 10) is None
    assert store.get_range("a", 0, 10) is None  # a directory is not an object
    assert store.get_range("a/3/x", 0, 10) is None
    store.close()
    assert files._open == {}
    assert store.get_range("a/1", 10, 5) == blobs["a/1"][10:15]  # usable after close (reopens)
    store.close()


def test_without_pread_a_file_is_opened_per_read(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"0123456789")
    store = LocalObjects(tmp_path)
    store._files = None  # platforms without os.pread
    assert store.get_range("x", 3, 4) == b"3456"
    assert store.get_range("y", 0, 1) is None
