"""Caches for the Zarr reader: shard indexes in memory and on disk, inner chunks on disk.

Published stores are immutable, so entries are keyed by store location, object key
and byte range, and never expire; a rebuilt store gets a fresh ``cache_dir``
(or delete the directory). Writes are atomic (:func:`geotessera.files.write_atomic`, no
fsync: a lost entry is fetched again), so concurrent readers never see a partial entry;
a directory's stale temporary files are swept the first time this process writes there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from ...errors import OutputError
from ...files import remove_stale_temps_under, write_atomic

log = logging.getLogger(__name__)


class DiskCache:
    """Byte ranges of a store's objects under ``cache_dir/{hash of the store location}/``."""

    def __init__(self, cache_dir: str | os.PathLike[str], location: str) -> None:
        digest = hashlib.sha256(location.encode()).hexdigest()[:16]
        self.root = Path(cache_dir) / digest
        self.hits = 0
        self.misses = 0
        self._swept: set[Path] = set()
        self._lock = threading.Lock()

    def _path(self, key: str, tag: str) -> Path:
        return self.root / key / tag

    def get(self, key: str, tag: str) -> bytes | None:
        """Cached bytes of (object ``key``, range ``tag``), or None."""
        try:
            data = self._path(key, tag).read_bytes()
        except OSError:
            with self._lock:
                self.misses += 1
            return None
        with self._lock:
            self.hits += 1
        return data

    def put(self, key: str, tag: str, data: bytes | memoryview) -> None:
        """Store bytes atomically; cache write failures are logged, never raised."""
        path = self._path(key, tag)
        with self._lock:
            sweep = path.parent not in self._swept
            self._swept.add(path.parent)
        try:
            if sweep and path.parent.is_dir():
                remove_stale_temps_under(path.parent)
            write_atomic(path, data, fsync=False, clean=False)
        except (OSError, OutputError) as exc:
            log.warning("cannot write cache entry %s: %s", path, exc)


class LruBytes:
    """A thread-safe in-memory LRU of bytes values, bounded by total size (``max_bytes``)."""

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes | None] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, bytes | None]:
        """(found, value); a cached None means "known absent"."""
        with self._lock:
            if key not in self._data:
                return False, None
            self._data.move_to_end(key)
            return True, self._data[key]

    def put(self, key: str, value: bytes | None) -> None:
        """Insert and evict the least recently used entries beyond ``max_bytes``."""
        with self._lock:
            old = self._data.pop(key, None)
            self._size -= len(old) if old else 0
            self._data[key] = value
            self._size += len(value) if value else 0
            while self._size > self.max_bytes and len(self._data) > 1:
                _, v = self._data.popitem(last=False)
                self._size -= len(v) if v else 0
