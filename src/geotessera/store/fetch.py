"""Fetch and decode only the inner chunks a read needs, overlapping requests on a thread pool.

For each shard touched: read its index once (``index_nbytes`` from the end; cached
in memory and, for remote stores, on disk), then fetch the needed inner chunks
as byte ranges, merging neighbours that are close in the file into one request
(at most ``MAX_MERGED_BYTES``), and decode them with numcodecs. Chunks arrive
through a callback, one by one in the caller's thread (:meth:`ChunkReader.read_chunks`)
or a merged request's worth at once in the worker that decoded them, to be read by
position (:meth:`ChunkReader.read_chunk_groups`, :mod:`.picks`; a local store joins a
shard's consecutive requests into one such task), so memory stays proportional to the
chunks in flight plus the caller's output. :meth:`ChunkReader.run_each` runs whole tasks (e.g. one row of
inner chunks: fetch, decode, assemble) on the same threads. Layouts the direct
decoder does not handle go through zarr-python instead (``fallback``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from ..errors import CorruptDataError, SourceError
from ..transfer import Source
from .cache import DiskCache, LruBytes
from .chunks import EMPTY, ArrayLayout, decode_inner, index_entries, parse_shard_index
from .picks import ChunkGroup, DecodedGroup, group_of

log = logging.getLogger(__name__)

MERGE_GAP_BYTES = 64 * 1024
MAX_MERGED_BYTES = 2 * 2**20  # per request; with one range per worker in flight, bounds memory
MAX_DECODED_BYTES = 8 * 2**20  # decoded chunks handed over at once by read_chunk_groups
ChunkCallback = Callable[[tuple[int, ...], "npt.NDArray[Any] | None"], None]
T = TypeVar("T")
Into = Callable[[tuple[int, ...]], "npt.NDArray[Any]"]
GroupCallback = Callable[[list[tuple[int, ...]], "ChunkGroup | None"], None]
Fallback = Callable[[ArrayLayout, tuple[int, ...]], "npt.NDArray[Any]"]
Request = list[tuple[tuple[int, ...], int, int]]  # one merged range: (chunk, offset, nbytes), by offset


def _absent_as_none(read: Callable[..., bytes], *args: Any) -> bytes | None:
    """``read(*args)``, or None when the object does not exist (HTTP 404 or no such file)."""
    try:
        return read(*args)
    except SourceError as exc:
        if exc.status == 404:
            return None
        raise


def _chunks_per_call(layout: ArrayLayout) -> int:
    """Decoded inner chunks handed over at once (at least one): ``MAX_DECODED_BYTES`` of them."""
    return max(1, MAX_DECODED_BYTES // layout.inner_nbytes)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ChunkReader:
    """Reads inner chunks of arrays of one store (see module docstring)."""

    def __init__(
        self,
        source: Source,
        *,
        disk: DiskCache | None = None,
        workers: int = 8,
        fallback: Fallback | None = None,
        batch_requests: bool = False,
    ) -> None:
        """``batch_requests``: :meth:`read_chunk_groups` hands a shard's consecutive requests to
        one worker as one task (one decode and callback per ``MAX_DECODED_BYTES`` of chunks
        rather than per request). For local stores, where a request costs no waiting."""
        self.source = source
        self.batch_requests = batch_requests
        self.disk = disk
        self.workers = workers
        self.fallback = fallback
        self._index_cache = LruBytes(128 * 2**20)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zarr-read")
        # CPU work (decode, assembly) runs on at most one thread per core: more threads than
        # cores only evict each other's caches (requests still overlap on all workers).
        self.cpu = threading.BoundedSemaphore(usable_cores())

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- objects -----------------------------------------------------------------------
    def read_object(self, key: str) -> bytes | None:
        """The whole object ``key`` (from the disk cache when it holds it), or None when the store
        has no such object (absent reads as the fill value in Zarr); any other failure, a 403
        included, raises :class:`SourceError`."""
        data = self.disk.get(key, "all") if self.disk is not None else None
        if data is None:
            data = _absent_as_none(self.source.read_bytes, key)
            if data is not None and self.disk is not None:
                self.disk.put(key, "all", data)
        return data

    def _range(self, key: str, start: int, length: int) -> bytes | None:
        return _absent_as_none(self.source.get_range, key, start, length)

    # --- shard indexes -----------------------------------------------------------------
    def _index_bytes(self, layout: ArrayLayout, key: str) -> bytes | None:
        """A shard's index bytes, checked (length, crc32c) before they are cached."""
        found, data = self._index_cache.get(key)
        if found:
            return data
        if self.disk is not None:
            data = self.disk.get(key, "index")
            if data is not None:
                parse_shard_index(data, layout, key=key)
                self._index_cache.put(key, data)
                return data
        n = layout.index_nbytes
        data = (
            _absent_as_none(self.source.get_suffix, key, n) if layout.index_at_end else self._range(key, 0, n)
        )
        if data is not None and len(data) < n:
            raise CorruptDataError(f"{key}: shard object is shorter ({len(data)} bytes) than its index ({n})")
        if data is not None:
            parse_shard_index(data, layout, key=key)
        self._index_cache.put(key, data)
        if self.disk is not None and data is not None:
            self.disk.put(key, "index", data)
        return data

    def shard_index(self, layout: ArrayLayout, shard: tuple[int, ...]) -> npt.NDArray[np.uint64] | None:
        """(n_inner, 2) uint64 (offset, nbytes) of a shard, or None when the shard is absent."""
        data = self._index_bytes(layout, layout.shard_key(shard))
        return None if data is None else index_entries(data, layout)

    # --- chunks ------------------------------------------------------------------------
    def _read_range(self, key: str, start: int, length: int) -> bytes:
        tag = f"{start}_{length}"
        if self.disk is not None:
            hit = self.disk.get(key, tag)
            if hit is not None:
                return hit
        data = self._range(key, start, length)
        if data is None or len(data) != length:
            raise CorruptDataError(f"{key}: could not read bytes {start}..{start + length} of the shard")
        return data

    def _fetch_raw(self, key: str, items: Request) -> Iterator[tuple[tuple[int, ...], bytes | memoryview]]:
        """Encoded bytes of ``items`` (chunk, offset, nbytes): one merged range, or the disk cache."""
        if self.disk is not None:
            cached = [self.disk.get(key, f"{o}_{n}") for _, o, n in items]
            if all(c is not None for c in cached):
                for (c, _, _), b in zip(items, cached, strict=True):
                    yield c, cast(bytes, b)
                return
        start = items[0][1]
        end = max(o + n for _, o, n in items)
        blob = self._read_range(key, start, end - start) if len(items) > 1 or self.disk is None else None
        view = memoryview(blob) if blob is not None else None
        for coords, off, n in items:
            raw: bytes | memoryview
            raw = view[off - start : off - start + n] if view is not None else self._read_range(key, off, n)
            if self.disk is not None:
                self.disk.put(key, f"{off}_{n}", raw)
            yield coords, raw

    def _fetch_group(
        self, layout: ArrayLayout, key: str, items: Request
    ) -> list[tuple[tuple[int, ...], Any]]:
        """Fetch one merged range covering ``items`` (chunk, offset, nbytes) and decode each chunk."""
        return [(c, decode_inner(raw, layout)) for c, raw in self._fetch_raw(key, items)]

    def _fetch_group_picks(
        self,
        layout: ArrayLayout,
        key: str,
        groups: list[Request],
        on_group: GroupCallback,
    ) -> list[tuple[tuple[int, ...], Any]]:
        """Fetch merged ranges of one shard, decode their chunks into :class:`ChunkGroup` s of at
        most ``MAX_DECODED_BYTES`` (holding :attr:`cpu`) and hand each to ``on_group``."""
        fetched = [got for items in groups for got in self._fetch_raw(key, items)]  # outside the gate
        per_call = _chunks_per_call(layout)
        with self.cpu:  # well-compressed chunks: a 2 MiB request may hold far more decoded
            for i in range(0, len(fetched), per_call):
                part = fetched[i : i + per_call]
                on_group([c for c, _ in part], group_of([raw for _, raw in part], layout))
        return []

    def _batches(
        self, layout: ArrayLayout, plan: Iterable[tuple[str, Request]], join: bool
    ) -> Iterator[tuple[str, list[Request]]]:
        """The merged requests of ``plan``, one per task, or with ``join`` a shard's consecutive
        requests together, up to ``MAX_DECODED_BYTES`` of decoded chunks and as many bytes read."""
        if not join:
            for key, items in plan:
                yield key, [items]
            return
        per_task = _chunks_per_call(layout)
        key0, n, nbytes = "", 0, 0
        batch: list[Request] = []
        for key, items in plan:
            span = max(o + c for _, o, c in items) - items[0][1]  # the bytes its request reads
            if batch and (key != key0 or n + len(items) > per_task or nbytes + span > MAX_DECODED_BYTES):
                yield key0, batch
                batch, n, nbytes = [], 0, 0
            key0 = key
            batch.append(items)
            n += len(items)
            nbytes += span
        if batch:
            yield key0, batch

    def fetch_raw_here(
        self, layout: ArrayLayout, chunks: npt.NDArray[np.int64]
    ) -> list[tuple[tuple[int, ...], bytes | memoryview | None]]:
        """Encoded bytes of inner chunks of a direct sharded array (None: absent), in this thread."""
        if not (layout.direct and layout.sharded):
            raise ValueError(f"{layout.path}: raw chunk bytes need a direct sharded layout")
        out: list[tuple[tuple[int, ...], bytes | memoryview | None]] = []

        def absent(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
            out.append((c, None))

        for key, group in self._plan(layout, chunks, absent, parallel=False):
            out.extend(self._fetch_raw(key, group))
        return out

    def _whole(self, layout: ArrayLayout, coords: tuple[int, ...]) -> tuple[tuple[int, ...], Any]:
        """An unsharded chunk: the whole object (cached on disk for remote stores)."""
        data = self.read_object(layout.shard_key(coords))
        return coords, None if data is None else decode_inner(data, layout)

    def _plan(
        self,
        layout: ArrayLayout,
        chunks: npt.NDArray[np.int64],
        on_chunk: ChunkCallback,
        *,
        parallel: bool = True,
    ) -> Iterator[tuple[str, Request]]:
        """Group inner chunks by shard, resolve their byte ranges, merge close ones.

        ``parallel``: read the shard indexes on the pool (False inside a pool task).
        """
        per = np.asarray(layout.inner_per_shard, dtype=np.int64)
        shards: dict[tuple[int, ...], list[int]] = defaultdict(list)
        shard_of = chunks // per
        for i, s in enumerate(map(tuple, shard_of.tolist())):
            shards[s].append(i)
        keys = list(shards)
        if parallel and len(keys) > 1:
            indexes = list(self._pool.map(lambda s: self.shard_index(layout, s), keys))
        else:
            indexes = [self.shard_index(layout, s) for s in keys]
        for shard, index in zip(keys, indexes, strict=True):
            members = chunks[shards[shard]]
            if index is None:
                for c in members.tolist():
                    on_chunk(tuple(c), None)
                continue
            local = members - np.asarray(shard) * per
            ent = index[np.ravel_multi_index(tuple(local.T), layout.inner_per_shard)]  # (m, 2)
            absent = (ent[:, 0] == EMPTY) & (ent[:, 1] == EMPTY)
            if absent.any():
                for c in members[absent].tolist():
                    on_chunk(tuple(c), None)
                members, ent = members[~absent], ent[~absent]
            order = np.argsort(ent[:, 0], kind="stable")  # by offset in the shard
            key = layout.shard_key(shard)
            group: Request = []
            start = end = 0
            for c, off, n in zip(
                members[order].tolist(), ent[order, 0].tolist(), ent[order, 1].tolist(), strict=True
            ):
                if group and (off - end > MERGE_GAP_BYTES or off + n - start > MAX_MERGED_BYTES):
                    yield key, group
                    group = []
                if not group:
                    start = off
                group.append((tuple(c), off, n))
                end = off + n
            if group:
                yield key, group

    def read_chunks(
        self,
        layout: ArrayLayout,
        chunks: npt.NDArray[np.int64],
        on_chunk: ChunkCallback,
    ) -> None:
        """Call ``on_chunk(chunk_coords, array_or_None)`` for every inner chunk in ``chunks`` (K, ndim).

        None means the chunk is absent (all fill value). Calls happen in this thread; requests
        and decoding run on the pool, at most ``2 x workers`` merged requests in flight.
        """
        if len(chunks) == 0:
            return
        if not layout.direct:
            if self.fallback is None:
                raise CorruptDataError(f"{layout.path}: unsupported codecs and no fallback reader")
            for c in chunks.tolist():
                on_chunk(tuple(c), self.fallback(layout, tuple(c)))
            return
        if not layout.sharded:
            whole = [self._pool.submit(self._whole, layout, tuple(c)) for c in chunks.tolist()]
            for w in whole:
                on_chunk(*w.result())
            return
        self._submit_groups(layout, chunks, on_chunk, lambda k, reqs: self._fetch_group(layout, k, reqs[0]))

    def read_chunk_groups(
        self, layout: ArrayLayout, chunks: npt.NDArray[np.int64], on_group: GroupCallback
    ) -> None:
        """Like :meth:`read_chunks`, but called in the workers, once per request rather than per chunk.

        ``on_group(coords, group)``: chunks of one merged request, decoded into a
        :class:`~.picks.ChunkGroup` (at most ``MAX_DECODED_BYTES``) read by position with
        ``group.take(k, flat)``, called in the worker that decoded them (concurrently for
        different groups); ``on_group([c], None)`` for an absent chunk. Blosc/zstd chunks
        are left shuffled and unshuffled only where read (:mod:`.picks`).
        Per-chunk Python work (and the GIL hand-offs it costs) then stays out of scattered
        reads that touch many chunks.
        """
        if len(chunks) == 0:
            return

        def one(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
            on_group([c], None if arr is None else DecodedGroup(arr[None]))

        if not (layout.direct and layout.sharded):
            self.read_chunks(layout, chunks, one)
            return

        self._submit_groups(
            layout,
            chunks,
            one,
            lambda key, groups: self._fetch_group_picks(layout, key, groups, on_group),
            batch=True,
        )

    def _submit_groups(
        self,
        layout: ArrayLayout,
        chunks: npt.NDArray[np.int64],
        on_chunk: ChunkCallback,
        task: Callable[[str, list[Request]], list[tuple[tuple[int, ...], Any]]],
        *,
        batch: bool = False,
    ) -> None:
        """Plan the merged requests of a direct sharded layout and run ``task(key, groups)`` on
        the pool for each (``groups``: one request, or with ``batch`` and :attr:`batch_requests`
        those :meth:`_batches` joins), at most ``2 x workers`` in flight; ``on_chunk`` gets,
        here, each (chunk, array) pair a task returns and each absent chunk as (chunk, None)."""
        limit = self.workers * 2
        pending: set[Future[list[tuple[tuple[int, ...], Any]]]] = set()

        def drain() -> None:
            nonlocal pending
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                for coords, arr in fut.result():
                    on_chunk(coords, arr)

        try:
            plan = self._plan(layout, chunks, on_chunk)
            for key, groups in self._batches(layout, plan, batch and self.batch_requests):
                pending.add(self._pool.submit(task, key, groups))
                while len(pending) >= limit:
                    drain()
            while pending:
                drain()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise

    def read_chunks_here(
        self,
        layout: ArrayLayout,
        chunks: npt.NDArray[np.int64],
        on_chunk: ChunkCallback,
        *,
        into: Into | None = None,
    ) -> None:
        """:meth:`read_chunks` done entirely in the calling thread (for use inside :meth:`run_each` tasks).

        ``into(coords)``: an array to decode that chunk into (what ``on_chunk`` then receives).
        """
        if len(chunks) == 0:
            return

        def give(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
            if arr is not None and into is not None:
                dst = into(c)
                dst.reshape(arr.shape)[...] = arr
                arr = dst.reshape(arr.shape)
            on_chunk(c, arr)

        if not layout.direct:
            if self.fallback is None:
                raise CorruptDataError(f"{layout.path}: unsupported codecs and no fallback reader")
            for c in chunks.tolist():
                give(tuple(c), self.fallback(layout, tuple(c)))
            return
        if not layout.sharded:
            for c in chunks.tolist():
                give(*self._whole(layout, tuple(c)))
            return
        for key, group in self._plan(layout, chunks, on_chunk, parallel=False):
            for c, raw in list(self._fetch_raw(key, group)):
                on_chunk(c, decode_inner(raw, layout, out=into(c) if into is not None else None))

    def prefetch_indexes(self, layout: ArrayLayout, chunks: npt.NDArray[np.int64]) -> None:
        """Read (and cache) the shard indexes of the shards holding ``chunks``, concurrently."""
        if not (layout.direct and layout.sharded) or len(chunks) == 0:
            return
        shards = np.unique(chunks // np.asarray(layout.inner_per_shard, dtype=np.int64), axis=0)
        list(self._pool.map(lambda s: self.shard_index(layout, tuple(s)), shards.tolist()))

    def run_each(self, fn: Callable[[T], None], items: Iterable[T], *, limit: int | None = None) -> None:
        """Run ``fn(item)`` for every item on the worker threads, at most ``limit`` at a time.

        Returns when all are done; the first exception is raised (pending items are cancelled).
        ``fn`` must not wait on this reader's pool (use :meth:`read_chunks_here` inside it).
        """
        cap = max(1, limit if limit is not None else self.workers)
        pending: set[Future[None]] = set()
        try:
            for item in items:
                pending.add(self._pool.submit(fn, item))
                if len(pending) >= cap:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        fut.result()
            for fut in pending:
                fut.result()
            pending = set()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
