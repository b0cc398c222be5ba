"""Behaviour added to any :class:`~.sources.Source` by wrapping it, never by subclassing one.

- :class:`CountingSource` counts requests and bytes (benchmarks report them per point);
- :class:`OfflineSource` refuses every read at once (``offline=True`` with a remote store:
  what a cache does not hold is an error, not a wait for the network).

A wrapper forwards to ``inner`` what it does not change; a fault-injecting or latency-adding
wrapper follows the same shape.
"""

from __future__ import annotations

import os
import threading

from ..errors import SourceError
from ..progress import ProgressSink
from ._protocol import FetchResult, ObjectInfo, Source, Validator

__all__ = ["CountingSource", "OfflineSource"]


class CountingSource:
    """Forwards to ``inner``; ``requests`` and ``bytes_read`` count the reads that returned data.

    Counted: :meth:`get`, :meth:`read_bytes`, :meth:`read_if_changed` (unless unchanged),
    :meth:`get_range`, :meth:`get_suffix`. Thread-safe.
    """

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.requests = 0
        self.bytes_read = 0
        self._lock = threading.Lock()

    def _count(self, n: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_read += n

    def get(
        self,
        key: str,
        *,
        dest_path: str | os.PathLike[str],
        expected_size: int | None = None,
        progress: ProgressSink | None = None,
        cancel: threading.Event | None = None,
    ) -> FetchResult:
        """See :meth:`Source.get`."""
        result = self.inner.get(
            key, dest_path=dest_path, expected_size=expected_size, progress=progress, cancel=cancel
        )
        self._count(result.size)
        return result

    def read_bytes(self, key: str) -> bytes:
        """See :meth:`Source.read_bytes`."""
        data = self.inner.read_bytes(key)
        self._count(len(data))
        return data

    def read_if_changed(
        self, key: str, validator: Validator | None = None, *, timeout_s: float | None = None
    ) -> tuple[bytes | None, Validator]:
        """See :meth:`Source.read_if_changed`."""
        data, new = self.inner.read_if_changed(key, validator, timeout_s=timeout_s)
        if data is not None:
            self._count(len(data))
        return data, new

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """See :meth:`Source.get_range`."""
        data = self.inner.get_range(key, start, length)
        self._count(len(data))
        return data

    def get_suffix(self, key: str, length: int) -> bytes:
        """See :meth:`Source.get_suffix`."""
        data = self.inner.get_suffix(key, length)
        self._count(len(data))
        return data

    def head(self, key: str) -> ObjectInfo:
        """See :meth:`Source.head`."""
        return self.inner.head(key)

    def exists(self, key: str) -> bool:
        """See :meth:`Source.exists`."""
        return self.inner.exists(key)

    def describe(self) -> str:
        """The wrapped source's description."""
        return self.inner.describe()

    def close(self) -> None:
        """Close the wrapped source."""
        self.inner.close()

    def __repr__(self) -> str:
        return f"CountingSource({self.inner!r})"


class OfflineSource:
    """A source that never reads: every call raises :class:`SourceError` naming the key and
    ``describe`` of the source it stands for (``status`` None: not "absent")."""

    def __init__(self, description: str) -> None:
        self.description = description

    def _refuse(self, key: str) -> SourceError:
        return SourceError(f"offline: {key} of {self.description} is not cached; go online to read it")

    def get(
        self,
        key: str,
        *,
        dest_path: str | os.PathLike[str],
        expected_size: int | None = None,
        progress: ProgressSink | None = None,
        cancel: threading.Event | None = None,
    ) -> FetchResult:
        """Refused."""
        raise self._refuse(key)

    def read_bytes(self, key: str) -> bytes:
        """Refused."""
        raise self._refuse(key)

    def read_if_changed(
        self, key: str, validator: Validator | None = None, *, timeout_s: float | None = None
    ) -> tuple[bytes | None, Validator]:
        """Refused."""
        raise self._refuse(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Refused."""
        raise self._refuse(key)

    def get_suffix(self, key: str, length: int) -> bytes:
        """Refused."""
        raise self._refuse(key)

    def head(self, key: str) -> ObjectInfo:
        """Refused."""
        raise self._refuse(key)

    def exists(self, key: str) -> bool:
        """Refused."""
        raise self._refuse(key)

    def describe(self) -> str:
        """The offline source's description."""
        return self.description

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"OfflineSource({self.description!r})"
