"""Directory locks exclude other processes and threads, and die with their holder."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from geotessera.files import directory_lock

HOLD = """
import sys, time
from geotessera.files import directory_lock
with directory_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_lock_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "1.0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with directory_lock(tmp_path):
            waited = time.monotonic() - t0
        assert waited > 0.5  # the holder keeps it a second after saying so
    finally:
        holder.kill()
        holder.wait()
    assert list(tmp_path.iterdir()) == []  # no lock file left behind


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "60"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    t0 = time.monotonic()
    with directory_lock(tmp_path):
        assert time.monotonic() - t0 < 5


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    inside, most = 0, 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(20):
            with directory_lock(tmp_path / "d"):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
