"""Where objects come from: the :class:`Source` protocol and its two implementations.

- :class:`HttpSource`: an HTTP(S) base URL (the public S3 bucket, a moto server, any
  S3-compatible endpoint, or ``s3://bucket/prefix`` read anonymously, path-style), read with
  pooled, retried, CRC64NVMe-verified GETs and ranged reads.
- :class:`LocalSource`: a local mirror directory read in place (``local_path``), or
  copied atomically when a destination is given.

Keys are relative, ``/``-separated object keys such as
``v1/global_0.1_degree_representation/2024/grid_0.15_52.05/grid_0.15_52.05.npy``.
:func:`source_from_url` picks the implementation from a URL or path.

The protocol and its result types live in ``_protocol.py``, :class:`LocalSource` in
``local.py``; all are importable from here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from ..errors import InvalidInputError, SourceError
from ..files import atomic_write, write_receipt
from ..progress import ProgressSink
from ._protocol import FetchResult, ObjectInfo, Source, Validator, check_key
from .http import DEFAULT_CHUNK_SIZE, HttpClient, MemorySink, RetryPolicy
from .local import LocalSource

__all__ = [
    "FetchResult",
    "HttpSource",
    "LocalSource",
    "ObjectInfo",
    "Source",
    "Validator",
    "check_key",
    "source_from_url",
]

log = logging.getLogger(__name__)

DEFAULT_S3_ENDPOINT = "https://s3.us-west-2.amazonaws.com"
"""Where ``s3://bucket/prefix`` URLs are read (anonymously, path-style) unless told otherwise."""


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


class HttpSource:
    """Objects under an HTTP(S) base URL, fetched as ``{base_url}/{key}``.

    - ``pool_size``: connections kept open (set it to the number of workers);
    - ``retry``: a :class:`RetryPolicy` (default: 5 retries, 0.5 s to 20 s backoff);
    - ``timeout_s``: read timeout in seconds (default 60), ``connect_timeout_s`` (default 5);
    - ``require_checksum``: reject responses without ``x-amz-checksum-crc64nvme``
      (default True; set False for servers that do not send it, e.g. Source Cooperative);
    - ``chunk_size``: bytes per read (default 1 MiB); memory per download in flight.
    """

    def __init__(
        self,
        base_url: str,
        *,
        pool_size: int = 8,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        require_checksum: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError(f"not an http(s) URL: {base_url!r}")
        if parts.query or parts.fragment:
            raise InvalidInputError(f"base URL must not have a query or fragment: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.require_checksum = require_checksum
        self._client = HttpClient(
            pool_size=pool_size,
            retry=retry,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            chunk_size=chunk_size,
            headers=headers,
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in use."""
        return self._client.retry

    def url(self, key: str) -> str:
        """Full URL of ``key``."""
        return f"{self.base_url}/{quote(check_key(key), safe='/-_.~')}"

    def get(
        self,
        key: str,
        *,
        dest_path: str | os.PathLike[str],
        expected_size: int | None = None,
        progress: ProgressSink | None = None,
        cancel: threading.Event | None = None,
    ) -> FetchResult:
        """Download ``key`` to ``dest_path`` (see :meth:`Source.get`)."""
        url = self.url(key)
        started = time.monotonic()
        with atomic_write(dest_path, checksum=True) as out:
            info = self._client.download(
                url,
                key,
                out,
                expected_size=expected_size,
                require_checksum=self.require_checksum,
                progress=progress,
                cancel=cancel,
            )
        write_receipt(dest_path, size=info.size, crc64nvme=info.crc64nvme, key=key)
        seconds = time.monotonic() - started
        log.debug("fetched %s (%d bytes, %d attempts, %.2f s)", key, info.size, info.attempts, seconds)
        return FetchResult(
            key=key,
            path=Path(dest_path),
            size=info.size,
            crc64nvme=info.crc64nvme,
            verified=info.verified,
            attempts=info.attempts,
            resumed=info.resumed,
            seconds=seconds,
        )

    def read_bytes(self, key: str) -> bytes:
        """Download a small object into memory, verified (see :meth:`Source.read_bytes`)."""
        sink = MemorySink()
        self._client.download(self.url(key), key, sink, require_checksum=self.require_checksum)
        return sink.getvalue()

    def read_if_changed(
        self, key: str, validator: Validator | None = None, *, timeout_s: float | None = None
    ) -> tuple[bytes | None, Validator]:
        """A conditional GET (If-None-Match, If-Modified-Since): see :meth:`Source.read_if_changed`."""
        sink = MemorySink()
        info = self._client.download(
            self.url(key),
            key,
            sink,
            require_checksum=self.require_checksum,
            validator=validator if validator else None,
            timeout_s=timeout_s,
        )
        new = Validator(info.etag, info.last_modified)
        if info.not_modified:
            return None, validator or new
        return sink.getvalue(), new

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` (see :meth:`Source.get_range`); retried, not checksummed."""
        return self._client.get_range(self.url(key), key, start, length)

    def get_suffix(self, key: str, length: int) -> bytes:
        """The last ``length`` bytes (see :meth:`Source.get_suffix`)."""
        return self._client.get_suffix(self.url(key), key, length)

    def head(self, key: str) -> ObjectInfo:
        """HEAD the object (S3 may answer 403 to anonymous HEADs even for public objects)."""
        info = self._client.head(self.url(key), key)
        return ObjectInfo(key=key, size=info.size, crc64nvme=info.crc64nvme, etag=info.etag)

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists (False on 404; other errors raise :class:`SourceError`)."""
        try:
            self.head(key)
        except SourceError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def describe(self) -> str:
        """``HTTP source <base_url>``."""
        return f"HTTP source {self.base_url}"

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> HttpSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpSource({self.base_url!r})"


# --------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------


def source_from_url(
    url_or_path: str | os.PathLike[str],
    *,
    pool_size: int = 8,
    retry: RetryPolicy | None = None,
    timeout_s: float = 60.0,
    connect_timeout_s: float = 5.0,
    require_checksum: bool = True,
    s3_endpoint: str | None = None,
) -> HttpSource | LocalSource:
    """Make the source named by ``url_or_path``.

    ``http://`` / ``https://`` -> :class:`HttpSource` (the keyword arguments apply to it);
    ``s3://bucket/prefix`` -> :class:`HttpSource` on ``{s3_endpoint}/bucket/prefix``
    (anonymous, path-style; default endpoint :data:`DEFAULT_S3_ENDPOINT`);
    ``file://`` URL or an existing directory -> :class:`LocalSource`; anything else
    raises :class:`InvalidInputError`.
    """
    if isinstance(url_or_path, os.PathLike):
        text = os.fspath(url_or_path)
    elif isinstance(url_or_path, str):
        text = url_or_path
    else:
        raise InvalidInputError(f"source must be a URL or a directory path, got {url_or_path!r}")
    if not text.strip():
        raise InvalidInputError("source must be a URL or a directory path, got an empty string")
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "s3":
        parts = urlsplit(text)
        if not parts.netloc:
            raise InvalidInputError(f"s3 URL {text!r} has no bucket")
        text = f"{(s3_endpoint or DEFAULT_S3_ENDPOINT).rstrip('/')}/{parts.netloc}{parts.path}".rstrip("/")
        scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        return HttpSource(
            text,
            pool_size=pool_size,
            retry=retry,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            require_checksum=require_checksum,
        )
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise InvalidInputError(f"file:// URL with a remote host is not supported: {text!r}")
        path = Path(url2pathname(parts.path))
        if not path.is_dir():
            raise InvalidInputError(f"source {text!r}: {path} is not an existing directory")
        return LocalSource(path)
    if scheme:
        raise InvalidInputError(
            f"unsupported source URL scheme {scheme!r} in {text!r}: use http(s)://, s3:// or a directory"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        return LocalSource(path)
    if path.exists():
        raise InvalidInputError(f"source {text!r} is a file; a local mirror must be a directory")
    raise InvalidInputError(f"source {text!r} is neither an http(s):// URL nor an existing directory")
