"""Where objects come from: the :class:`Source` protocol and its two implementations.

- :class:`HttpSource`: an HTTP(S) base URL (the public S3 bucket, a moto server, any
  S3-compatible endpoint), read with pooled, retried, CRC64NVMe-verified GETs.
- :class:`LocalSource`: a local mirror directory read in place (``local_path``), or
  copied atomically when a destination is given.

Keys are relative, ``/``-separated object keys such as
``v1/global_0.1_degree_representation/2024/grid_0.15_52.05/grid_0.15_52.05.npy``.
:func:`source_from_url` picks the implementation from a URL or path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from ..errors import IntegrityError, InvalidInputError, SourceError
from ..progress import BytesReceived, ProgressSink, emit
from ._errors import TransferCancelledError
from .atomic import atomic_write, read_receipt, write_receipt
from .checksum import FILE_CHUNK_SIZE, Crc64Nvme
from .http import DEFAULT_CHUNK_SIZE, HttpClient, MemorySink, RetryPolicy

__all__ = [
    "FetchResult",
    "HttpSource",
    "LocalSource",
    "ObjectInfo",
    "Source",
    "check_key",
    "source_from_url",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Outcome of :meth:`Source.get`."""

    key: str
    """Object key fetched."""
    path: Path
    """Where the verified bytes are now (the destination, or the mirror file itself)."""
    size: int
    """Object size in bytes."""
    crc64nvme: str | None
    """CRC64NVMe of the bytes (S3 header form), recorded in the file's receipt; ``None`` when not
    computed (a mirror file used in place that has no receipt)."""
    verified: bool
    """True when the bytes were checked against a checksum provided by the source."""
    attempts: int = 1
    """Requests made (more than 1 when retried)."""
    resumed: bool = False
    """True when an interrupted download was continued with a Range request."""
    seconds: float = 0.0
    """Wall-clock duration of the fetch."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Metadata of an object without its bytes."""

    key: str
    size: int | None
    """Bytes, when known."""
    crc64nvme: str | None = None
    """CRC64NVMe (S3 header form), when the source knows it."""
    etag: str | None = None


@runtime_checkable
class Source(Protocol):
    """Where tile objects are read from. Implementations are thread-safe."""

    def get(
        self,
        key: str,
        *,
        dest_path: str | os.PathLike[str],
        expected_size: int | None = None,
        progress: ProgressSink | None = None,
        cancel: threading.Event | None = None,
    ) -> FetchResult:
        """Stream object ``key`` to ``dest_path`` atomically and verified, then write its receipt.

        Emits :class:`~geotessera.progress.BytesReceived` (and ``Retrying``) events.
        Raises :class:`SourceError` (``status=404`` when the object does not exist),
        :class:`IntegrityError` when verification fails (nothing reaches ``dest_path``),
        :class:`OutputError` when the destination cannot be written.
        """
        ...

    def read_bytes(self, key: str) -> bytes:
        """The whole (small) object ``key``, verified like :meth:`get`."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """Metadata of ``key``; :class:`SourceError` (status 404) when it does not exist."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def describe(self) -> str:
        """One line naming the source, for logs and output metadata."""
        ...

    def close(self) -> None:
        """Release connections and other resources."""
        ...


def check_key(key: str) -> str:
    """Validate an object key: relative, ``/``-separated, no empty, ``.`` or ``..`` segments."""
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"object key must be a non-empty string, got {key!r}")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidInputError(f"object key must be relative and use '/', got {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInputError(f"object key has an empty, '.' or '..' segment: {key!r}")
    return key


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
# Local mirror
# --------------------------------------------------------------------------------------


class LocalSource:
    """A local mirror: objects are files at ``{root}/{key}``, read in place.

    When the mirror has receipts (it was filled by geotessera), copies are checked
    against them; otherwise a copy is checked against ``expected_size`` only.
    """

    def __init__(self, root: str | os.PathLike[str], *, chunk_size: int = FILE_CHUNK_SIZE) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InvalidInputError(f"local mirror {str(self.root)!r} is not an existing directory")
        self.chunk_size = chunk_size

    def local_path(self, key: str) -> Path:
        """Path of ``key`` inside the mirror (no copy, no existence check)."""
        return self.root.joinpath(*check_key(key).split("/"))

    def _existing(self, key: str) -> Path:
        path = self.local_path(key)
        if not path.is_file():
            raise SourceError(
                f"{key} not found in local mirror {self.root} (HTTP 404 equivalent)", status=404
            )
        return path

    def get(
        self,
        key: str,
        *,
        dest_path: str | os.PathLike[str] | None = None,
        expected_size: int | None = None,
        progress: ProgressSink | None = None,
        cancel: threading.Event | None = None,
    ) -> FetchResult:
        """Copy ``key`` to ``dest_path`` atomically; with no ``dest_path``, return it in place."""
        started = time.monotonic()
        src = self._existing(key)
        size = src.stat().st_size
        if expected_size is not None and size != expected_size:
            raise IntegrityError(
                f"size mismatch for {key}: expected {expected_size} bytes, the mirror file {src} has {size}"
            )
        receipt = read_receipt(src)
        trusted = receipt if receipt is not None and receipt.size == size else None
        if dest_path is None or _same_file(src, Path(dest_path)):
            crc = trusted.crc64nvme if trusted else None
            return FetchResult(key, src, size, crc, verified=trusted is not None)
        with atomic_write(dest_path, checksum=True) as out:
            self._copy(key, src, out.write, progress, cancel)
            actual = out.crc.b64 if out.crc is not None else ""
            if out.size != size:
                raise IntegrityError(f"{src} changed while being copied ({size} -> {out.size} bytes)")
            if trusted is not None and actual != trusted.crc64nvme:
                raise IntegrityError(
                    f"CRC64NVMe mismatch for {key}: the mirror's receipt records {trusted.crc64nvme}, "
                    f"{src} hashes to {actual}; the copy was discarded (the mirror file is damaged)"
                )
        write_receipt(dest_path, size=size, crc64nvme=actual, key=key)
        return FetchResult(
            key,
            Path(dest_path),
            size,
            actual,
            verified=trusted is not None,
            seconds=time.monotonic() - started,
        )

    def _copy(
        self,
        key: str,
        src: Path,
        write: _Writer,
        progress: ProgressSink | None,
        cancel: threading.Event | None,
    ) -> None:
        view = memoryview(bytearray(self.chunk_size))  # one buffer reused for every chunk
        try:
            with open(src, "rb", buffering=0) as fh:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise TransferCancelledError(f"transfer of {key} cancelled")
                    n = fh.readinto(view)
                    if not n:
                        return
                    write(view[:n])
                    emit(progress, BytesReceived(key=key, n=n))
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise SourceError(f"cannot read {src}: {exc.strerror or exc}") from exc

    def read_bytes(self, key: str) -> bytes:
        """The whole file of ``key``, checked against the mirror's receipt when there is one."""
        src = self._existing(key)
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {src}: {exc.strerror or exc}") from exc
        receipt = read_receipt(src)
        if receipt is not None and receipt.size == len(data):
            crc = Crc64Nvme()
            crc.update(data)
            if crc.b64 != receipt.crc64nvme:
                raise IntegrityError(
                    f"CRC64NVMe mismatch for {key}: the mirror's receipt records {receipt.crc64nvme}, "
                    f"{src} hashes to {crc.b64} (the mirror file is damaged)"
                )
        return data

    def head(self, key: str) -> ObjectInfo:
        """Size (and CRC, when the mirror has a receipt) of ``key``."""
        src = self._existing(key)
        size = src.stat().st_size
        receipt = read_receipt(src)
        crc = receipt.crc64nvme if receipt is not None and receipt.size == size else None
        return ObjectInfo(key=key, size=size, crc64nvme=crc)

    def exists(self, key: str) -> bool:
        """Whether ``{root}/{key}`` is a file."""
        return self.local_path(key).is_file()

    def describe(self) -> str:
        """``local mirror <root>``."""
        return f"local mirror {self.root}"

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalSource({str(self.root)!r})"


class _Writer(Protocol):
    def __call__(self, data: bytes | bytearray | memoryview, /) -> int: ...


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


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
) -> HttpSource | LocalSource:
    """Make the source named by ``url_or_path``.

    ``http://`` / ``https://`` -> :class:`HttpSource` (the keyword arguments apply to it);
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
    if scheme == "s3":
        raise InvalidInputError(
            f"s3:// URLs are not supported directly ({text!r}); use the bucket's HTTPS URL, e.g. "
            "https://s3.us-west-2.amazonaws.com/tessera-embeddings"
        )
    if scheme:
        raise InvalidInputError(
            f"unsupported source URL scheme {scheme!r} in {text!r}: use http(s):// or a directory"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        return LocalSource(path)
    if path.exists():
        raise InvalidInputError(f"source {text!r} is a file; a local mirror must be a directory")
    raise InvalidInputError(f"source {text!r} is neither an http(s):// URL nor an existing directory")
