"""Temporary files left by a killed process are cleaned up by the next write of the same file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from geotessera.transfer.atomic import atomic_write, remove_stale_parts


def test_stale_parts_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    final = tmp_path / "grid_0.15_52.05.npy"
    stale = tmp_path / ".grid_0.15_52.05.npy.deadbeef0001.part"
    fresh = tmp_path / ".grid_0.15_52.05.npy.deadbeef0002.part"
    other = tmp_path / ".grid_0.25_52.05.npy.deadbeef0003.part"
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    with atomic_write(final) as out:
        out.write(b"complete")
    assert final.read_bytes() == b"complete"
    assert not stale.exists()  # a killed run's leftover
    assert fresh.exists()  # possibly another writer at work
    assert other.exists()  # another file's business
    assert remove_stale_parts(tmp_path / "grid_0.25_52.05.npy") == 1 and not other.exists()
