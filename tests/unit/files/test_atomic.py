"""Atomic writes leave nothing behind on failure; receipts decide what a rerun may skip."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest

import geotessera.files.atomic as atomic_mod
import geotessera.files.receipts as receipts_mod
from geotessera.errors import OutputError
from geotessera.files import (
    atomic_write,
    is_complete,
    read_receipt,
    receipt_path,
    write_receipt,
)
from geotessera.files.checksum import crc64nvme_b64


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_success_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "a.npy"
    with atomic_write(dest, checksum=True) as out:
        assert out.tmp_path.parent == dest.parent
        assert out.tmp_path.name.startswith(".a.npy.") and out.tmp_path.name.endswith(".part")
        out.write(b"hello ")
        out.write(memoryview(b"world"))
        assert not dest.exists()
    assert dest.read_bytes() == b"hello world"
    assert out.size == 11
    assert out.crc is not None and out.crc.b64 == crc64nvme_b64(b"hello world")
    assert _leftovers(dest.parent) == []


def test_temp_names_are_unique(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    with atomic_write(dest) as a, atomic_write(dest) as b:
        assert a.tmp_path != b.tmp_path
        a.write(b"a")
        b.write(b"b")
    assert dest.read_bytes() in (b"a", b"b")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_failure_removes_temp_and_keeps_old_file(tmp_path: Path, exc_type: type[BaseException]) -> None:
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"old")
    with pytest.raises(exc_type), atomic_write(dest) as out:
        out.write(b"new partial data")
        raise exc_type("boom")
    assert dest.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_restart_discards_written_bytes(tmp_path: Path) -> None:
    dest = tmp_path / "r"
    with atomic_write(dest, checksum=True) as out:
        out.write(b"garbage")
        out.restart()
        out.write(b"good")
    assert dest.read_bytes() == b"good"
    assert out.crc is not None and out.crc.b64 == crc64nvme_b64(b"good")


class _FullDisk:
    """A file object whose writes fail like a full disk."""

    def __init__(self, real: Any, err: int) -> None:
        self._real = real
        self._err = err

    def write(self, data: bytes) -> int:
        raise OSError(self._err, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_is_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    real_open = open

    def fake_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return _FullDisk(real_open(path, mode, *args, **kwargs), err)

    monkeypatch.setattr(atomic_mod, "open", fake_open, raising=False)
    dest = tmp_path / "tile.npy"
    with pytest.raises(OutputError, match=r"disk full .*tile\.npy") as info, atomic_write(dest) as out:
        out.write(b"x" * 10)
    assert isinstance(info.value.__cause__, OSError)
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


def test_unwritable_directory_is_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OutputError, match="cannot write"), atomic_write(blocker / "child.bin"):
        pass


# -- receipts ------------------------------------------------------------------------------


def _write_with_receipt(path: Path, data: bytes, key: str = "k") -> None:
    with atomic_write(path) as out:
        out.write(data)
    write_receipt(path, size=len(data), crc64nvme=crc64nvme_b64(data), key=key)


def test_receipt_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    _write_with_receipt(path, b"abc", key="v1/x/a.npy")
    rp = receipt_path(path)
    assert rp == tmp_path / ".a.npy.receipt.json"
    body = json.loads(rp.read_text())
    assert body["size"] == 3 and body["crc64nvme"] == crc64nvme_b64(b"abc") and body["key"] == "v1/x/a.npy"
    receipt = read_receipt(path)
    assert receipt is not None
    assert (receipt.size, receipt.crc64nvme, receipt.key) == (3, crc64nvme_b64(b"abc"), "v1/x/a.npy")
    assert receipt.written_at.endswith("Z")


def test_is_complete_rules(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    assert not is_complete(path)  # nothing there
    path.write_bytes(b"abc")
    assert not is_complete(path)  # no receipt: not trusted
    write_receipt(path, size=3, crc64nvme=crc64nvme_b64(b"abc"))
    assert is_complete(path)
    assert is_complete(path, expected_size=3, expected_crc=crc64nvme_b64(b"abc"))
    assert not is_complete(path, expected_size=4)
    assert not is_complete(path, expected_crc=crc64nvme_b64(b"abd"))
    path.write_bytes(b"abcd")  # size changed since the receipt
    assert not is_complete(path)


def test_is_complete_does_not_rehash_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.npy"
    _write_with_receipt(path, b"abc")
    path.write_bytes(b"xyz")  # same size, different bytes: only a re-hash can tell

    def no_hashing(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("is_complete re-hashed without verify=True")

    monkeypatch.setattr(receipts_mod, "crc64nvme_file", no_hashing)
    assert is_complete(path)
    monkeypatch.undo()
    assert not is_complete(path, verify=True)
    path.write_bytes(b"abc")
    assert is_complete(path, verify=True)


@pytest.mark.parametrize("content", ["not json", "[]", '{"format": "other", "size": 3, "crc64nvme": "x"}'])
def test_bad_receipt_is_not_trusted(tmp_path: Path, content: str) -> None:
    path = tmp_path / "a.npy"
    path.write_bytes(b"abc")
    receipt_path(path).write_text(content)
    assert read_receipt(path) is None
    assert not is_complete(path)


def test_replacing_a_file_drops_its_old_receipt_first(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    _write_with_receipt(path, b"abc")
    with atomic_write(path) as out:
        out.write(b"xyz")  # same size: a stale receipt would wrongly vouch for it
    # A crash here (before the new receipt) must not leave the old receipt in place.
    assert read_receipt(path) is None
    assert not is_complete(path)
