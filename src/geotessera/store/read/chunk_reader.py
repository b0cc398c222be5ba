"""Fetch and decode only the inner chunks a read needs, on a thread pool: :class:`ChunkReader`.

For each shard touched: read its index once (``index_nbytes`` from the end; checked, then
cached in memory and, for remote stores, on disk), then fetch the needed inner chunks as byte
ranges merged by :mod:`.requests`, and decode them (:mod:`.decode`, or as
:class:`~.chunk_groups.ChunkGroup` s read by position). Layouts the direct decoder does not
handle go through zarr-python instead (``fallback``). Memory stays proportional to the
requests in flight (at most ``2 x workers``) plus the caller's output.

Threading contract, the same for every method:

- called from outside the reader, a method spreads its requests and decoding over the
  reader's ``workers`` threads and returns once all is done, re-raising the first error;
- callbacks (``on_chunk``, ``on_group``) and :meth:`ChunkReader.run_each` tasks run on those
  threads (an absent chunk's callback on the calling thread, while planning), concurrently for
  different chunks or items: they must write disjoint data or lock;
- called from one of the reader's own threads (inside a callback or a task), a method does its
  work right there, sequentially: nested calls never wait on the pool, so they cannot deadlock;
- CPU-heavy decoding holds :attr:`ChunkReader.cpu`, one permit per usable core; a thread that
  already holds it passes through.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from ...errors import CorruptDataError, SourceError
from ...tasks import map_bounded
from ...transfer import Source
from ..layout import ArrayLayout, index_entries, inner_payload, parse_shard_index
from .cache import DiskCache, LruBytes
from .chunk_groups import ChunkGroup, DecodedGroup, group_of
from .decode import decode_inner
from .requests import Chunk, Request, chunks_per_call, join_requests, plan_requests

log = logging.getLogger(__name__)

T = TypeVar("T")
ChunkCallback = Callable[[Chunk, "npt.NDArray[Any] | None"], None]
"""``on_chunk(coords, array)``: a decoded inner chunk, or None when it is absent (all fill)."""
GroupCallback = Callable[[list[Chunk], "ChunkGroup | None"], None]
"""``on_group(coords, group)``: chunks decoded together, or ``([c], None)`` for an absent one."""
Into = Callable[[Chunk], "npt.NDArray[Any]"]
Fallback = Callable[[ArrayLayout, Chunk], "npt.NDArray[Any]"]
Raw = list[tuple[Chunk, "bytes | memoryview | None"]]


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _absent_as_none(read: Callable[..., bytes], *args: Any) -> bytes | None:
    """``read(*args)``, or None when the object does not exist (HTTP 404 or no such file)."""
    try:
        return read(*args)
    except SourceError as exc:
        if exc.status == 404:
            return None
        raise


class CpuGate:
    """At most ``permits`` threads at once in CPU-heavy sections; re-entering is free."""

    def __init__(self, permits: int) -> None:
        self._sem = threading.BoundedSemaphore(permits)
        self._held = threading.local()

    def __enter__(self) -> CpuGate:
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            self._sem.acquire()
        self._held.depth = depth + 1
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._held.depth -= 1
        if self._held.depth == 0:
            self._sem.release()


class ChunkReader:
    """Reads inner chunks of the arrays of one store (see the module docstring for threads).

    ``batch_requests``: :meth:`read_chunk_groups` hands a shard's consecutive requests to one
    task (one decode and callback per ``MAX_DECODED_BYTES`` of chunks rather than per request);
    for local stores, where a request costs no waiting.
    """

    def __init__(
        self,
        source: Source,
        *,
        disk: DiskCache | None = None,
        workers: int = 8,
        fallback: Fallback | None = None,
        batch_requests: bool = False,
    ) -> None:
        self.source = source
        self.batch_requests = batch_requests
        self.disk = disk
        self.workers = workers
        self.fallback = fallback
        self._index_cache = LruBytes(128 * 2**20)
        self._recorded: dict[str, frozenset[Chunk]] = {}
        self._own = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="zarr-read", initializer=self._mark)
        # CPU work (decode, assembly) on at most one thread per core: more threads than cores
        # only evict each other's caches (requests still overlap on all workers)
        self.cpu = CpuGate(usable_cores())

    def _mark(self) -> None:
        self._own.thread = True

    def _inline(self) -> bool:
        """True on one of the reader's own threads: work is then done right here."""
        return bool(getattr(self._own, "thread", False))

    def _each(self, fn: Callable[[T], None], items: Iterable[T], limit: int) -> None:
        """``fn(item)`` for every item: here when on a reader thread, else on the pool."""
        if self._inline():
            for item in items:
                fn(item)
        else:
            map_bounded(self._pool, fn, items, limit=limit)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- objects and shard indexes -------------------------------------------------------
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
        if layout.index_at_end:
            data = _absent_as_none(self.source.get_suffix, key, n)
        else:
            data = _absent_as_none(self.source.get_range, key, 0, n)
        if data is not None and len(data) < n:
            raise CorruptDataError(f"{key}: shard object is shorter ({len(data)} bytes) than its index ({n})")
        if data is not None:
            parse_shard_index(data, layout, key=key)
        self._index_cache.put(key, data)
        if self.disk is not None and data is not None:
            self.disk.put(key, "index", data)
        return data

    def record_shards(self, layout: ArrayLayout, shards: Iterable[Chunk]) -> None:
        """Shards of ``layout``'s array the store records as holding data: never read as absent."""
        self._recorded[layout.path] = frozenset(tuple(int(i) for i in s) for s in shards)

    def shard_index(self, layout: ArrayLayout, shard: Chunk) -> npt.NDArray[np.uint64] | None:
        """(n_inner, 2) uint64 (offset, nbytes) of a shard, or None when the shard is absent.

        A shard the store records as holding data (:meth:`record_shards`) that is absent is
        :class:`CorruptDataError`: a lost shard would otherwise read as the fill value.
        """
        key = layout.shard_key(shard)
        data = self._index_bytes(layout, key)
        if data is None:
            if tuple(int(i) for i in shard) in self._recorded.get(layout.path, ()):
                raise CorruptDataError(
                    f"{layout.path}: shard {tuple(shard)} ({key}) is missing, though the store records "
                    "that it holds data; the store is damaged (rebuild it, or fetch it again)"
                )
            return None
        return index_entries(data, layout)

    def _shard_indexes(self, layout: ArrayLayout, shards: list[Chunk]) -> list[npt.NDArray[np.uint64] | None]:
        if self._inline() or len(shards) < 2:
            return [self.shard_index(layout, s) for s in shards]
        return list(self._pool.map(lambda s: self.shard_index(layout, s), shards))

    def prefetch_indexes(self, layout: ArrayLayout, chunks: npt.NDArray[np.int64]) -> None:
        """Read (and cache) the shard indexes of the shards holding ``chunks``, concurrently."""
        if not (layout.direct and layout.sharded) or len(chunks) == 0:
            return
        shards = np.unique(chunks // np.asarray(layout.inner_per_shard, dtype=np.int64), axis=0)
        self._shard_indexes(layout, [tuple(s) for s in shards.tolist()])

    def _plan(
        self, layout: ArrayLayout, chunks: npt.NDArray[np.int64], on_absent: Callable[[Chunk], None]
    ) -> Iterator[tuple[str, Request]]:
        return plan_requests(layout, chunks, lambda shards: self._shard_indexes(layout, shards), on_absent)

    # --- bytes -----------------------------------------------------------------------------
    def _read_range(self, key: str, start: int, length: int) -> bytes:
        if self.disk is not None:
            hit = self.disk.get(key, f"{start}_{length}")
            if hit is not None:
                return hit
        data = _absent_as_none(self.source.get_range, key, start, length)
        if data is None or len(data) != length:
            raise CorruptDataError(f"{key}: could not read bytes {start}..{start + length} of the shard")
        return data

    def _fetch_raw(
        self, layout: ArrayLayout, key: str, items: Request
    ) -> Iterator[tuple[Chunk, bytes | memoryview]]:
        """Encoded bytes of ``items`` (chunk, offset, nbytes): one merged range, or the disk cache;
        each checked against its crc32c (and stripped of it) when the array has them, before it
        is cached: a damaged chunk is :class:`CorruptDataError` naming the array and the chunk."""
        if self.disk is not None:
            cached = [self.disk.get(key, f"{o}_{n}") for _, o, n in items]
            if all(c is not None for c in cached):
                for (c, _, _), b in zip(items, cached, strict=True):
                    yield c, inner_payload(cast(bytes, b), layout, c)
                return
        start = items[0][1]
        end = max(o + n for _, o, n in items)
        blob = self._read_range(key, start, end - start) if len(items) > 1 or self.disk is None else None
        view = memoryview(blob) if blob is not None else None
        for coords, off, n in items:
            raw: bytes | memoryview
            raw = view[off - start : off - start + n] if view is not None else self._read_range(key, off, n)
            payload = inner_payload(raw, layout, coords)
            if self.disk is not None:
                self.disk.put(key, f"{off}_{n}", raw)
            yield coords, payload

    def fetch_raw(self, layout: ArrayLayout, chunks: npt.NDArray[np.int64]) -> Raw:
        """Encoded bytes of inner chunks (K, ndim) of a direct sharded array (None: absent), in
        request order; the requests are made by the calling thread (one request per merged range)."""
        if not (layout.direct and layout.sharded):
            raise ValueError(f"{layout.path}: raw chunk bytes need a direct sharded layout")
        out: Raw = []
        for key, items in self._plan(layout, chunks, lambda c: out.append((c, None))):
            out.extend(self._fetch_raw(layout, key, items))
        return out

    def _whole(self, layout: ArrayLayout, coords: Chunk) -> npt.NDArray[Any] | None:
        """An unsharded chunk: the whole object (cached on disk for remote stores)."""
        data = self.read_object(layout.shard_key(coords))
        return None if data is None else decode_inner(data, layout)

    # --- chunks ------------------------------------------------------------------------------
    def read_chunks(
        self,
        layout: ArrayLayout,
        chunks: npt.NDArray[np.int64],
        on_chunk: ChunkCallback,
        *,
        into: Into | None = None,
    ) -> None:
        """Call ``on_chunk(coords, array_or_None)`` for every inner chunk in ``chunks`` (K, ndim).

        None means the chunk is absent (all fill value). ``into(coords)``: a C-contiguous array
        of the chunk's size to decode that chunk into (what ``on_chunk`` then receives).
        """
        if len(chunks) == 0:
            return

        def give(c: Chunk, arr: npt.NDArray[Any] | None) -> None:
            if arr is not None and into is not None:
                dst = into(c).reshape(arr.shape)
                dst[...] = arr
                arr = dst
            on_chunk(c, arr)

        if not (layout.direct and layout.sharded):
            if not layout.direct and self.fallback is None:
                raise CorruptDataError(f"{layout.path}: unsupported codecs and no fallback reader")
            fallback = self.fallback

            def one(c: Chunk) -> None:
                give(c, fallback(layout, c) if not layout.direct and fallback else self._whole(layout, c))

            self._each(one, [tuple(c) for c in chunks.tolist()], 2 * self.workers)
            return

        def request(job: tuple[str, list[Request]]) -> None:
            key, (items,) = job
            for c, raw in self._fetch_raw(layout, key, items):
                on_chunk(c, decode_inner(raw, layout, out=into(c) if into is not None else None))

        plan = self._plan(layout, chunks, lambda c: on_chunk(c, None))
        self._each(request, join_requests(layout, plan, False), 2 * self.workers)

    def read_chunk_groups(
        self, layout: ArrayLayout, chunks: npt.NDArray[np.int64], on_group: GroupCallback
    ) -> None:
        """Like :meth:`read_chunks`, but once per merged request rather than per chunk.

        ``on_group(coords, group)``: chunks of one merged request (or, with ``batch_requests``,
        of a shard's consecutive requests), decoded into a :class:`~.chunk_groups.ChunkGroup` of
        at most ``MAX_DECODED_BYTES`` read by position with ``group.take(k, flat)``;
        ``on_group([c], None)`` for an absent chunk. Blosc/zstd chunks are left shuffled and
        unshuffled only where read (:mod:`.chunk_groups`), so per-chunk Python work (and the GIL
        hand-offs it costs) stays out of scattered reads that touch many chunks.
        """
        if len(chunks) == 0:
            return
        if not (layout.direct and layout.sharded):

            def one(c: Chunk, arr: npt.NDArray[Any] | None) -> None:
                on_group([c], None if arr is None else DecodedGroup(arr[None]))

            self.read_chunks(layout, chunks, one)
            return
        per_call = chunks_per_call(layout)

        def requests(job: tuple[str, list[Request]]) -> None:
            key, groups = job
            fetched = [
                got for items in groups for got in self._fetch_raw(layout, key, items)
            ]  # outside the gate
            with self.cpu:
                for i in range(0, len(fetched), per_call):
                    part = fetched[i : i + per_call]
                    on_group([c for c, _ in part], group_of([raw for _, raw in part], layout))

        plan = self._plan(layout, chunks, lambda c: on_group([c], None))
        self._each(requests, join_requests(layout, plan, self.batch_requests), 2 * self.workers)

    def run_each(self, fn: Callable[[T], None], items: Iterable[T], *, limit: int | None = None) -> None:
        """Run ``fn(item)`` for every item on the reader's threads, at most ``limit`` (default
        ``workers``) at a time; returns when all are done, raising the first error."""
        self._each(fn, items, max(1, limit if limit is not None else self.workers))
