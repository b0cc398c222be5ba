"""The :class:`Source` protocol and what it returns (:class:`FetchResult`, :class:`ObjectInfo`).

Shared by both implementations, :class:`~.sources.HttpSource` and :class:`~.local.LocalSource`;
re-exported by :mod:`geotessera.transfer.sources`.
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
