"""The :class:`Source` protocol and what it returns (:class:`FetchResult`, :class:`ObjectInfo`,
:class:`Validator`).

Every byte geotessera reads comes through a :class:`Source`: tiles (the transfer engine),
manifests (the registry) and Zarr chunks (the store). Implementations:
:class:`~.sources.HttpSource` (one pooled, retried HTTP client) and
:class:`~.local.LocalSource` (a directory read in place); wrappers such as
:class:`~.wrappers.CountingSource` add behaviour around either. ``tests/contract`` runs the
same cases against each. Re-exported by :mod:`geotessera.transfer.sources`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import InvalidInputError
from ..progress import ProgressSink


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


@dataclass(frozen=True, slots=True)
class Validator:
    """Cache validators of one version of an object: ``ETag`` and/or ``Last-Modified`` (header text)."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


@runtime_checkable
class Source(Protocol):
    """Where objects are read from, by key. Implementations are thread-safe.

    Errors: a missing object is :class:`SourceError` with ``status=404`` (never ``None``); a
    forbidden one (HTTP 403) is :class:`SourceError` with ``status=403``, never "absent";
    transient failures (429, 5xx, resets, timeouts) are retried by the source's
    :class:`~geotessera.config.RetryPolicy` before an error is raised.
    """

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

    def read_if_changed(
        self, key: str, validator: Validator | None = None, *, timeout_s: float | None = None
    ) -> tuple[bytes | None, Validator]:
        """The whole object, unless it still matches ``validator``: ``(None, validator)``.

        Otherwise ``(bytes, its validator)``, verified like :meth:`read_bytes`. With
        ``timeout_s`` (seconds) one attempt bounded by it (a freshness check must never stall);
        without, retried like every read.
        """
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` of ``key`` (fewer at the end of the object; ``b""``
        from or past its end, or for ``length <= 0``)."""
        ...

    def get_suffix(self, key: str, length: int) -> bytes:
        """The last ``length`` bytes of ``key`` (the whole object when it is shorter)."""
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
