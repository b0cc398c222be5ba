"""Read-only object access for the Zarr reader: a local directory or an http(s) base URL.

Whole objects and byte ranges, with counters (requests, bytes) that
benchmarks report per point. A missing object is ``None``, never an exception,
because Zarr reads absent chunks as the fill value. Anonymous ``s3://`` URLs are
turned into path-style https URLs on the endpoint.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

from ..errors import InvalidInputError, SourceError

DEFAULT_S3_ENDPOINT = "https://s3.us-west-2.amazonaws.com"


class ObjectReader(Protocol):
    """Byte access to the objects of a store; thread-safe."""

    requests: int
    bytes_read: int

    def get(self, key: str) -> bytes | None:
        """The whole object, or None when it does not exist."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes | None:
        """``length`` bytes from ``start``, or None when the object does not exist."""
        ...

    def get_suffix(self, key: str, length: int) -> bytes | None:
        """The last ``length`` bytes, or None when the object does not exist."""
        ...

    def describe(self) -> str:
        """The store's location, for messages and cache keys."""
        ...

    def close(self) -> None:
        """Release what the reader keeps open (files, connections)."""
        ...


class _Counted:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes_read = 0
        self._lock = threading.Lock()

    def _count(self, n: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_read += n


MAX_OPEN_FILES = 64  # descriptors a local store keeps open between range reads


class _OpenFiles:
    """Open read-only descriptors by path, kept between reads (LRU, at most ``cap``).

    Scattered reads touch the same shard files thousands of times; opening each time costs
    more than the read. A descriptor in use is never closed (reference counts), so
    concurrent ``os.pread`` calls are safe. Stores are immutable: a file replaced on disk
    is still read through the descriptor opened before.
    """

    def __init__(self, cap: int = MAX_OPEN_FILES) -> None:
        self.cap = cap
        self._open: OrderedDict[str, list[int]] = OrderedDict()  # path -> [fd, users]
        self._lock = threading.Lock()

    def pread(self, path: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the file); OSError as ``open``."""
        with self._lock:
            entry = self._open.get(path)
            if entry is None:
                entry = self._open[path] = [os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)), 0]
            else:
                self._open.move_to_end(path)
            entry[1] += 1
        try:
            return os.pread(entry[0], length, start)
        finally:
            with self._lock:
                entry[1] -= 1
                self._evict()

    def _evict(self, keep: int | None = None) -> None:
        """Close least recently used idle descriptors beyond ``keep`` (default the cap)."""
        limit = self.cap if keep is None else keep
        for path in [p for p, (_, users) in self._open.items() if users == 0]:
            if len(self._open) <= limit:
                break
            os.close(self._open.pop(path)[0])

    def close(self) -> None:
        """Close every idle descriptor."""
        with self._lock:
            self._evict(keep=0)


class LocalObjects(_Counted):
    """Objects under a local directory (``key`` is a relative ``/`` path)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self.root = Path(root)
        self._files = _OpenFiles() if hasattr(os, "pread") else None  # no pread: open per read

    def _path(self, key: str) -> Path:
        return self.root / key

    def close(self) -> None:
        """Close the descriptors kept open between reads."""
        if self._files is not None:
            self._files.close()

    def get(self, key: str) -> bytes | None:
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        self._count(len(data))
        return data

    def get_range(self, key: str, start: int, length: int) -> bytes | None:
        try:
            if self._files is not None:
                data = self._files.pread(f"{self.root}/{key}", start, length)
            else:
                with open(self._path(key), "rb") as f:
                    f.seek(start)
                    data = f.read(length)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        self._count(len(data))
        return data

    def get_suffix(self, key: str, length: int) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(size - length, 0))
                data = f.read(length)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        self._count(len(data))
        return data

    def describe(self) -> str:
        return str(self.root.resolve())

    def __del__(self) -> None:
        self.close()


class HttpObjects(_Counted):
    """Objects under an http(s) base URL, fetched anonymously with urllib3 (pooled, retried)."""

    def __init__(self, base_url: str, *, pool_size: int = 16, timeout_s: float = 60.0) -> None:
        super().__init__()
        import urllib3

        self.base_url = base_url.rstrip("/")
        retry = urllib3.Retry(
            total=5,
            backoff_factor=0.2,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
        )
        self._http = urllib3.PoolManager(
            maxsize=pool_size, retries=retry, timeout=urllib3.Timeout(connect=5.0, read=timeout_s)
        )

    def url(self, key: str) -> str:
        """Full URL of ``key``."""
        return f"{self.base_url}/{quote(key, safe='/-_.~')}"

    def _request(self, key: str, range_header: str | None) -> bytes | None:
        import urllib3

        headers = {"Range": range_header} if range_header else {}
        url = self.url(key)
        try:
            resp = self._http.request("GET", url, headers=headers, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"cannot read {url}: {exc}", url=url) from exc
        if resp.status in (403, 404):  # anonymous S3 answers 403 for a missing key without list rights
            return None
        if resp.status == 416:
            return b""
        if resp.status not in (200, 206):
            raise SourceError(f"GET {url} answered HTTP {resp.status}", status=resp.status, url=url)
        data = bytes(resp.data)
        self._count(len(data))
        return data

    def get(self, key: str) -> bytes | None:
        return self._request(key, None)

    def get_range(self, key: str, start: int, length: int) -> bytes | None:
        if length <= 0:
            return b""
        return self._request(key, f"bytes={start}-{start + length - 1}")

    def get_suffix(self, key: str, length: int) -> bytes | None:
        return self._request(key, f"bytes=-{length}")

    def describe(self) -> str:
        return self.base_url

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.clear()


def objects_from_url(url: str | os.PathLike[str], *, endpoint_url: str | None = None) -> ObjectReader:
    """Resolve a store location: a local path, ``file://``, ``http(s)://`` or anonymous ``s3://bucket/path``."""
    text = os.fspath(url)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return HttpObjects(text)
    if scheme == "s3":
        parts = urlsplit(text)
        if not parts.netloc:
            raise InvalidInputError(f"s3 URL {text!r} has no bucket")
        endpoint = (endpoint_url or DEFAULT_S3_ENDPOINT).rstrip("/")
        return HttpObjects(f"{endpoint}/{parts.netloc}{parts.path}".rstrip("/"))
    if scheme == "file":
        text = urlsplit(text).path
    elif scheme:
        raise InvalidInputError(
            f"unsupported store URL scheme {scheme!r} in {text!r} (use https, s3 or a path)"
        )
    path = Path(text)
    if not path.is_dir():
        raise InvalidInputError(f"Zarr store {text!r} is not a directory or a URL")
    return LocalObjects(path)
