"""Fetch and decode only the inner chunks a read needs, overlapping requests on a thread pool.

For each shard touched: read its index once (``index_nbytes`` from the end; cached
in memory and, for remote stores, on disk), then fetch the needed inner chunks
as byte ranges, merging neighbours that are close in the file into one request
(at most ``MAX_MERGED_BYTES``), and decode them with numcodecs. Chunks arrive in
the caller's thread through a callback, so memory stays proportional to the
chunks in flight plus the caller's output. Layouts the direct decoder does not
handle go through zarr-python instead (``fallback``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from ..errors import CorruptDataError
from .cache import DiskCache, LruBytes
from .chunks import EMPTY, ArrayLayout, decode_inner, parse_shard_index

log = logging.getLogger(__name__)

MERGE_GAP_BYTES = 64 * 1024
MAX_MERGED_BYTES = 8 * 2**20
ChunkCallback = Callable[[tuple[int, ...], "npt.NDArray[Any] | None"], None]
Fallback = Callable[[ArrayLayout, tuple[int, ...]], "npt.NDArray[Any]"]


class ChunkReader:
    """Reads inner chunks of arrays of one store (see module docstring)."""

    def __init__(
        self,
        objects: Any,
        *,
        disk: DiskCache | None = None,
        workers: int = 8,
        fallback: Fallback | None = None,
    ) -> None:
        self.objects = objects
        self.disk = disk
        self.workers = workers
        self.fallback = fallback
        self._index_cache = LruBytes(128 * 2**20)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zarr-read")

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- shard indexes -----------------------------------------------------------------
    def _index_bytes(self, layout: ArrayLayout, key: str) -> bytes | None:
        found, data = self._index_cache.get(key)
        if found:
            return data
        if self.disk is not None:
            data = self.disk.get(key, "index")
            if data is not None:
                self._index_cache.put(key, data)
                return data
        n = layout.index_nbytes
        data = self.objects.get_suffix(key, n) if layout.index_at_end else self.objects.get_range(key, 0, n)
        if data is not None and len(data) < n:
            raise CorruptDataError(f"{key}: shard object is shorter ({len(data)} bytes) than its index ({n})")
        self._index_cache.put(key, data)
        if self.disk is not None and data is not None:
            self.disk.put(key, "index", data)
        return data

    def shard_index(self, layout: ArrayLayout, shard: tuple[int, ...]) -> npt.NDArray[np.uint64] | None:
        """(n_inner, 2) uint64 (offset, nbytes) of a shard, or None when the shard is absent."""
        key = layout.shard_key(shard)
        data = self._index_bytes(layout, key)
        return None if data is None else parse_shard_index(data, layout, key=key)

    # --- chunks ------------------------------------------------------------------------
    def _read_range(self, key: str, start: int, length: int) -> bytes:
        tag = f"{start}_{length}"
        if self.disk is not None:
            hit = self.disk.get(key, tag)
            if hit is not None:
                return hit
        data = self.objects.get_range(key, start, length)
        if data is None or len(data) != length:
            raise CorruptDataError(f"{key}: could not read bytes {start}..{start + length} of the shard")
        return data

    def _fetch_group(
        self, layout: ArrayLayout, key: str, items: list[tuple[tuple[int, ...], int, int]]
    ) -> list[tuple[tuple[int, ...], Any]]:
        """Fetch one merged range covering ``items`` (chunk, offset, nbytes) and decode each chunk."""
        if self.disk is not None:
            cached = [self.disk.get(key, f"{o}_{n}") for _, o, n in items]
            if all(c is not None for c in cached):
                return [
                    (c, decode_inner(cast(bytes, b), layout))
                    for (c, _, _), b in zip(items, cached, strict=True)
                ]
        start = items[0][1]
        end = max(o + n for _, o, n in items)
        blob = self._read_range(key, start, end - start) if len(items) > 1 or self.disk is None else None
        out = []
        for coords, off, n in items:
            if blob is not None:
                raw = blob[off - start : off - start + n]
            else:
                raw = self._read_range(key, off, n)
            if self.disk is not None:
                self.disk.put(key, f"{off}_{n}", raw)
            out.append((coords, decode_inner(raw, layout)))
        return out

    def _whole(self, layout: ArrayLayout, coords: tuple[int, ...]) -> tuple[tuple[int, ...], Any]:
        """An unsharded chunk: the whole object (cached on disk for remote stores)."""
        key = layout.shard_key(coords)
        data = self.disk.get(key, "all") if self.disk is not None else None
        if data is None:
            data = self.objects.get(key)
            if data is not None and self.disk is not None:
                self.disk.put(key, "all", data)
        return coords, None if data is None else decode_inner(data, layout)

    def _plan(
        self, layout: ArrayLayout, chunks: npt.NDArray[np.int64], on_chunk: ChunkCallback
    ) -> Iterator[tuple[str, list[tuple[tuple[int, ...], int, int]]]]:
        """Group inner chunks by shard, resolve their byte ranges, merge close ones."""
        per = np.asarray(layout.inner_per_shard, dtype=np.int64)
        shards: dict[tuple[int, ...], list[int]] = defaultdict(list)
        shard_of = chunks // per
        for i, s in enumerate(map(tuple, shard_of.tolist())):
            shards[s].append(i)
        keys = list(shards)
        indexes = list(self._pool.map(lambda s: self.shard_index(layout, s), keys))
        for shard, index in zip(keys, indexes, strict=True):
            members = chunks[shards[shard]]
            if index is None:
                for c in members.tolist():
                    on_chunk(tuple(c), None)
                continue
            local = members - np.asarray(shard) * per
            linear = np.ravel_multi_index(tuple(local.T), layout.inner_per_shard)
            entries = []
            for c, lin in zip(members.tolist(), linear.tolist(), strict=True):
                off, n = index[lin]
                if off == EMPTY and n == EMPTY:
                    on_chunk(tuple(c), None)
                else:
                    entries.append((tuple(c), int(off), int(n)))
            entries.sort(key=lambda e: e[1])
            key = layout.shard_key(shard)
            group: list[tuple[tuple[int, ...], int, int]] = []
            for e in entries:
                if group and (
                    e[1] - (group[-1][1] + group[-1][2]) > MERGE_GAP_BYTES
                    or e[1] + e[2] - group[0][1] > MAX_MERGED_BYTES
                ):
                    yield key, group
                    group = []
                group.append(e)
            if group:
                yield key, group

    def read_chunks(
        self, layout: ArrayLayout, chunks: npt.NDArray[np.int64], on_chunk: ChunkCallback
    ) -> None:
        """Call ``on_chunk(chunk_coords, array_or_None)`` for every inner chunk in ``chunks`` (K, ndim).

        None means the chunk is absent (all fill value). Calls happen in this thread.
        """
        if len(chunks) == 0:
            return
        if not layout.direct:
            if self.fallback is None:
                raise CorruptDataError(f"{layout.path}: unsupported codecs and no fallback reader")
            for c in chunks.tolist():
                on_chunk(tuple(c), self.fallback(layout, tuple(c)))
            return
        limit = self.workers * 2
        if not layout.sharded:
            whole = [self._pool.submit(self._whole, layout, tuple(c)) for c in chunks.tolist()]
            for w in whole:
                on_chunk(*w.result())
            return
        pending: set[Future[list[tuple[tuple[int, ...], Any]]]] = set()

        def drain(block: bool) -> None:
            nonlocal pending
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED) if block else (set(), pending)
            for fut in done:
                for coords, arr in fut.result():
                    on_chunk(coords, arr)

        try:
            for key, group in self._plan(layout, chunks, on_chunk):
                pending.add(self._pool.submit(self._fetch_group, layout, key, group))
                while len(pending) >= limit:
                    drain(True)
            while pending:
                drain(True)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
