"""Temporary files left by a killed writer are removed; those of live writers are kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from geotessera.files import atomic_path, atomic_write, remove_stale_temps, remove_stale_temps_under
from geotessera.files._names import temp_path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp_of(final: Path, pid: int) -> Path:
    """The temporary name process ``pid`` of this machine would give ``final``."""
    mine = temp_path(final).name
    return final.with_name(mine.replace(f"-{os.getpid()}-", f"-{pid}-"))


def test_a_killed_writers_temp_goes_at_once_a_live_ones_stays(tmp_path: Path) -> None:
    final = tmp_path / "grid_0.15_52.05.npy"
    killed = _temp_of(final, _dead_pid())
    live = _temp_of(final, os.getppid())  # a process that is running (our parent)
    for p in (killed, live):
        p.write_bytes(b"partial")
    with atomic_write(final) as out:
        out.write(b"complete")
    assert final.read_bytes() == b"complete"
    assert not killed.exists()  # fresh, but its writer has exited: it can never be finished
    assert live.exists()  # possibly another writer at work


def test_untouched_temps_of_unknown_writers_go_after_the_age_limit(tmp_path: Path) -> None:
    final = tmp_path / "grid_0.15_52.05.npy"
    stale = tmp_path / ".grid_0.15_52.05.npy.deadbeef0001.part"  # another machine, or an old name
    fresh = tmp_path / ".grid_0.15_52.05.npy.deadbeef0002.part"
    other = tmp_path / ".grid_0.25_52.05.npy.deadbeef0003.part"
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"complete")
    assert not stale.exists() and fresh.exists()
    assert other.exists()  # another file's business
    assert remove_stale_temps(tmp_path / "grid_0.25_52.05.npy") == 1 and not other.exists()


def test_a_tree_sweep_removes_stale_temps_at_any_depth_and_nothing_else(tmp_path: Path) -> None:
    shard = tmp_path / "utm31" / "embeddings" / "c" / "0" / "0" / "1"
    shard.parent.mkdir(parents=True)
    killed = _temp_of(shard, _dead_pid())
    live = _temp_of(shard.with_name("2"), os.getppid())
    receipt = shard.with_name(".1.receipt.json")
    for p in (killed, live, receipt, shard):
        p.write_bytes(b"x")
    assert remove_stale_temps_under(tmp_path) == 1
    assert not killed.exists() and live.exists() and receipt.exists() and shard.exists()


def test_a_sweep_can_take_another_librarys_temporaries_by_age(tmp_path: Path) -> None:
    old, new = tmp_path / "zarr.0a1b.partial", tmp_path / "zarr.2c3d.partial"
    for p in (old, new):
        p.write_bytes(b"{")
    t = time.time() - 3600
    os.utime(old, (t, t))
    assert remove_stale_temps_under(tmp_path) == 0  # not ours unless asked
    assert remove_stale_temps_under(tmp_path, foreign=lambda n: n.endswith(".partial")) == 1
    assert not old.exists() and new.exists()


def test_a_lock_holder_takes_another_librarys_temporaries_however_recent(tmp_path: Path) -> None:
    fresh = tmp_path / "sub" / "zarr.4e5f.partial"
    fresh.parent.mkdir()
    fresh.write_bytes(b"{")
    mine = tmp_path / "sub" / ".shard.abcdef-1-0123abcd.part"  # ours: still judged by its writer
    mine.write_bytes(b"x")
    kw = {"foreign": lambda n: n.endswith(".partial"), "foreign_older_than_s": 0.0}
    assert remove_stale_temps_under(tmp_path, **kw) == 1  # type: ignore[arg-type]
    assert not fresh.exists() and mine.exists()


def test_a_killed_writers_work_directory_goes_a_live_ones_stays(tmp_path: Path) -> None:
    """A writer whose files are written by others (GDAL's scratch canvas, the COG, its
    quick-look) works in a directory named as a temporary of its output; killed, it leaves it."""
    final = tmp_path / "mosaic.tif"
    killed, live = _temp_of(final, _dead_pid()), _temp_of(final, os.getppid())
    for d in (killed, live):
        d.mkdir()
        (d / "scratch.tif").write_bytes(b"canvas")
    assert remove_stale_temps(final) == 1
    assert not killed.exists() and (live / "scratch.tif").exists()
