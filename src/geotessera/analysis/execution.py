"""Running block-wise dask arrays locally or on a ``dask.distributed`` cluster, in bounded memory.

:class:`Runner` computes the blocks of a dask array and hands them back in row-major
order, keeping at most ``in_flight`` blocks submitted or waiting at a time, so memory
(on the workers and here) is bounded by the block size, never by the region. The
caller writes each block as it arrives (windowed GeoTIFF writes), in a fixed order, so
the output file is the same byte for byte whoever computed the blocks.

- Local (``client=None``): a thread pool of ``workers`` threads, each computing one
  block's task graph with dask's synchronous scheduler (read, then the operation).
- Distributed: ``client.compute`` per block; the workers read tiles or the store
  themselves. Large constants (a model, centroids) go to the cluster once
  (:meth:`Runner.constant`), not with every block.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import InvalidInputError

log = logging.getLogger(__name__)

EXTRA = "ml"


def connect(address: str, *, timeout_s: float = 5.0) -> Any:
    """A ``distributed.Client`` on the scheduler at ``address`` (``tcp://host:port`` or ``host:port``).

    Raises :class:`InvalidInputError` when nothing answers there within ``timeout_s``.
    """
    distributed = require("distributed", EXTRA)
    text = address.strip()
    if not text:
        raise InvalidInputError("the scheduler address is empty")
    if "://" not in text:
        text = f"tcp://{text}"
    try:
        return distributed.Client(text, timeout=timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidInputError(
            f"no Dask scheduler answers at {text} ({type(exc).__name__}: {exc}); "
            "start one with `dask scheduler` and workers with `dask worker ADDRESS`"
        ) from exc


class Runner:
    """Computes blocks of dask arrays (see the module docstring).

    Args:
        client: a ``distributed.Client``, or None for local threads.
        workers: local threads (default: the usable CPU cores).
        in_flight: blocks submitted at once (default: twice the threads of the pool or cluster).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        workers: int | None = None,
        in_flight: int | None = None,
        owns: bool = False,
    ):
        require("dask", EXTRA)
        self.client = client
        self.owns = owns
        if client is None:
            n = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
            self.threads = n
            self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
                n, thread_name_prefix="geotessera-block"
            )
        else:
            info = client.scheduler_info()
            self.threads = max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))
            self._pool = None
        self.in_flight = in_flight or 2 * self.threads

    def constant(self, value: Any) -> Any:
        """``value`` as a dask Delayed to pass to ``map_blocks``; on a cluster it is sent once."""
        require("dask", EXTRA)
        from dask import delayed

        d = delayed(value, pure=True, traverse=False)
        if self.client is not None:
            d = self.client.persist(d)
        return d

    def _submit(self, graph: dict[Any, Any], key: Any) -> Any:
        if self._pool is not None:
            require("dask", EXTRA)
            from dask.local import get_sync

            return self._pool.submit(get_sync, graph, key)
        return self.client.get(graph, key, sync=False)

    @staticmethod
    def _result(fut: Any) -> npt.NDArray[Any]:
        if isinstance(fut, Future):
            return np.asarray(fut.result())
        out = fut.result()
        fut.release()
        return np.asarray(out)

    def iter_blocks(
        self, array: Any, on_block: Callable[[int, int], None] | None = None
    ) -> Iterator[tuple[int, int, npt.NDArray[Any]]]:
        """Yield ``(row, col, block)`` of a 2-D or 3-D dask array (one chunk deep) in row-major order.

        ``row``/``col`` are the block's first pixel. Each block is computed from its own
        small task graph (a few tasks), so the cost per block does not grow with the region.
        ``on_block(done, total)`` is called after each block (for progress).
        """
        graph = dict(array.__dask_graph__())
        row_starts = np.cumsum((0, *array.chunks[0][:-1]))
        col_starts = np.cumsum((0, *array.chunks[1][:-1]))
        rows, cols = array.numblocks[0], array.numblocks[1]
        tail = (0,) * (array.ndim - 2)
        order = [(i, j) for i in range(rows) for j in range(cols)]
        total = len(order)
        pending: deque[tuple[int, int, Any]] = deque()
        it = iter(order)
        done = 0

        def fill() -> None:
            while len(pending) < self.in_flight:
                nxt = next(it, None)
                if nxt is None:
                    return
                i, j = nxt
                key = (array.name, i, j, *tail)
                pending.append((i, j, self._submit(_subgraph(graph, key), key)))

        fill()
        try:
            while pending:
                i, j, fut = pending.popleft()
                data = self._result(fut)
                fill()
                done += 1
                if on_block is not None:
                    on_block(done, total)
                yield int(row_starts[i]), int(col_starts[j]), data
        finally:
            for _, _, fut in pending:
                fut.cancel()

    def close(self) -> None:
        """Stop the local threads; close the cluster client when this runner opened it."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self.owns and self.client is not None:
            self.client.close()
            self.client = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _subgraph(graph: dict[Any, Any], key: Any) -> dict[Any, Any]:
    """The tasks ``key`` needs (itself and its dependencies, recursively)."""
    require("dask", EXTRA)
    from dask.core import get_dependencies

    out: dict[Any, Any] = {}
    stack = [key]
    while stack:
        k = stack.pop()
        if k in out:
            continue
        out[k] = graph[k]
        stack.extend(get_dependencies(graph, k))
    return out
