"""What one download writes into and reports: sinks, results, and its state for resuming.

Used by :class:`~.http.HttpClient`; the public names are re-exported by
:mod:`geotessera.transfer.http`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..files.checksum import Crc64Nvme


class Sink(Protocol):
    """Where downloaded bytes go: an :class:`~.atomic.AtomicFile` or a :class:`MemorySink`."""

    @property
    def size(self) -> int: ...
    @property
    def crc(self) -> Crc64Nvme | None: ...
    def write(self, data: bytes | bytearray | memoryview) -> int: ...
    def restart(self) -> None: ...


class MemorySink:
    """A :class:`Sink` collecting bytes in memory (for small objects such as manifests)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._crc = Crc64Nvme()

    @property
    def size(self) -> int:
        """Bytes collected so far."""
        return len(self._buf)

    @property
    def crc(self) -> Crc64Nvme:
        """Running CRC64NVMe of the bytes collected."""
        return self._crc

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``."""
        self._buf += data
        self._crc.update(data)
        return len(data)

    def restart(self) -> None:
        """Discard everything collected so far."""
        self._buf.clear()
        self._crc = Crc64Nvme()

    def getvalue(self) -> bytes:
        """The bytes collected."""
        return bytes(self._buf)


@dataclass(frozen=True, slots=True)
class DownloadInfo:
    """Outcome of one verified download."""

    size: int
    """Bytes of the object."""
    crc64nvme: str
    """CRC64NVMe of the bytes received (S3 header form)."""
    verified: bool
    """True when the server sent a checksum and it matched."""
    attempts: int
    """Requests made (1 when nothing was retried)."""
    resumed: bool
    """True when at least one retry continued with a Range request."""
    etag: str | None = None
    """The object's ``ETag`` header."""
    last_modified: str | None = None
    """The object's ``Last-Modified`` header."""
    not_modified: bool = False
    """True when a conditional GET found the object unchanged (HTTP 304; nothing was written)."""


@dataclass(frozen=True, slots=True)
class HeadInfo:
    """Metadata of an object from a HEAD request."""

    size: int | None
    crc64nvme: str | None
    etag: str | None


@dataclass
class ObjectState:
    """What the first full response told us about the object (for resuming)."""

    expected_crc: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None
    resumed: bool = False
    not_modified: bool = False
    known: bool = field(default=False)

    def forget(self) -> None:
        self.expected_crc = None
        self.etag = None
        self.last_modified = None
        self.total = None
        self.known = False
