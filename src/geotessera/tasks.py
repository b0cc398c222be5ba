"""Bounded task submission (layer L0): the one "at most N in flight" loop of the package.

Thread pools are fed lazily, so memory is bounded by the tasks in flight, not by how many
there are: the transfer engine (downloads), the Zarr builder (shards) and the Zarr chunk
reader (requests, window rows) all submit through :func:`map_bounded`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import TypeVar

__all__ = ["map_bounded"]

T = TypeVar("T")
R = TypeVar("R")


def map_bounded(
    pool: Executor,
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    limit: int,
    on_result: Callable[[T, R], None] | None = None,
    poll_s: float | None = None,
    settle: bool = False,
) -> None:
    """Run ``fn(item)`` on ``pool`` for every item, with at most ``limit`` submitted and unfinished.

    ``items`` is consumed lazily, in the calling thread. ``on_result(item, result)`` is called in
    the calling thread as each task completes (in completion order). The first exception, from a
    task, from ``on_result`` or while iterating ``items``, cancels the tasks not yet started and
    propagates; tasks already running are left to finish on the pool. ``poll_s``: wake up at
    least this often while waiting (seconds), so a ``KeyboardInterrupt`` is seen promptly.
    ``settle``: after a failure, wait for the tasks already running before propagating, so
    none is still at work (e.g. writing a cache file) when the call returns.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    pending: dict[Future[R], T] = {}
    try:
        for item in items:
            pending[pool.submit(fn, item)] = item
            while len(pending) >= limit:
                _drain(pending, on_result, poll_s)
        while pending:
            _drain(pending, on_result, poll_s)
    except BaseException:
        for future in pending:
            future.cancel()
        if settle:
            wait(pending)  # their own errors are dropped: the first one propagates
        raise


def _drain(
    pending: dict[Future[R], T], on_result: Callable[[T, R], None] | None, poll_s: float | None
) -> None:
    """Wait for at least one task of ``pending`` to finish and hand over what finished."""
    done, _ = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
    for future in done:
        item = pending.pop(future)
        result = future.result()
        if on_result is not None:
            on_result(item, result)
