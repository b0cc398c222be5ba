"""map_bounded: a failure cancels what has not started; with ``settle`` it also waits for
what is running, so nothing is still at work when the call returns."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from geotessera.tasks import map_bounded


def _run(settle: bool) -> tuple[list[str], threading.Event]:
    finished: list[str] = []
    started, returned = threading.Event(), threading.Event()

    def task(name: str) -> None:
        if name == "slow":
            started.set()
            if settle:
                time.sleep(0.3)  # still running when "bad" fails: the call must wait for it
            else:
                returned.wait(5)  # still running when the call returns, however slow the machine
            finished.append(name)
        elif name == "bad":
            started.wait(5)
            raise RuntimeError("boom")
        else:
            finished.append(name)

    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(RuntimeError, match="boom"):
            map_bounded(pool, task, ["slow", "bad", "later"], limit=2, settle=settle)
        seen = list(finished)  # what had finished when the call returned
        returned.set()
    return seen, started


def test_settle_waits_for_running_tasks_before_raising() -> None:
    seen, started = _run(settle=True)
    assert started.is_set() and seen == ["slow"]  # "later" was never started


def test_without_settle_running_tasks_are_left_to_finish() -> None:
    seen, _ = _run(settle=False)
    assert seen == []
