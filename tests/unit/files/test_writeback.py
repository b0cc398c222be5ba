"""Early writeback: an atomically written file asks the kernel to write it out as it grows."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import geotessera.files.atomic as atomic_mod
from geotessera.files import atomic_write
from geotessera.files.writeback import WRITEBACK_STEP, start_writeback, writeback_supported

MIB = 1024 * 1024


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every start_writeback(fd, offset, length) of atomic_write, with the file's size on disk then."""
    seen: list[tuple[int, int, int]] = []

    def record(fd: int, offset: int, length: int) -> bool:
        seen.append((offset, length, os.fstat(fd).st_size))
        return start_writeback(fd, offset, length)

    monkeypatch.setattr(atomic_mod, "start_writeback", record)
    return seen


def test_writeback_is_started_in_steps_covering_what_was_written(
    tmp_path: Path, calls: list[tuple[int, int, int]]
) -> None:
    data = os.urandom(5 * MIB + 12345)
    dest = tmp_path / "tile.npy"
    with atomic_write(dest, checksum=True) as out:
        for start in range(0, len(data), 700_000):  # chunks that do not divide the step
            out.write(data[start : start + 700_000])
    assert dest.read_bytes() == data
    assert len(calls) == len(data) // WRITEBACK_STEP
    offset = 0
    for start, length, on_disk in calls:
        assert start == offset and length >= WRITEBACK_STEP  # contiguous from byte 0, no gaps
        assert on_disk >= start + length  # flushed to the kernel before writeback is asked for
        offset += length
    assert len(data) - offset < WRITEBACK_STEP  # only the tail is left for the fsync


def test_restart_starts_writeback_again_from_byte_0(
    tmp_path: Path, calls: list[tuple[int, int, int]]
) -> None:
    with atomic_write(tmp_path / "a", checksum=True) as out:
        out.write(b"x" * (WRITEBACK_STEP + 10))
        out.restart()
        out.write(b"y" * (WRITEBACK_STEP + 10))
    assert [c[:2] for c in calls] == [(0, WRITEBACK_STEP + 10), (0, WRITEBACK_STEP + 10)]
    assert (tmp_path / "a").read_bytes() == b"y" * (WRITEBACK_STEP + 10)


def test_no_writeback_for_files_that_are_not_fsynced(
    tmp_path: Path, calls: list[tuple[int, int, int]]
) -> None:
    with atomic_write(tmp_path / "cache", fsync=False) as out:
        out.write(b"z" * 3 * WRITEBACK_STEP)
    assert calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_kernel_call_works_here_and_refuses_a_pipe(tmp_path: Path) -> None:
    assert writeback_supported()
    path = tmp_path / "f"
    path.write_bytes(b"a" * MIB)
    fd = os.open(path, os.O_RDWR)
    try:
        assert start_writeback(fd, 0, MIB)
        assert not start_writeback(fd, 0, 0)  # nothing to write
    finally:
        os.close(fd)
    assert path.read_bytes() == b"a" * MIB
    r, w = os.pipe()
    try:
        assert not start_writeback(w, 0, 10)  # ESPIPE: reported, never raised
    finally:
        os.close(r)
        os.close(w)
