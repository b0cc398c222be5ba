"""A local directory as a :class:`~.sources.Source`: :class:`LocalSource`.

Objects are files at ``{root}/{key}``, read in place (``local_path``), or copied
atomically, with a receipt, when a destination is given. Ranged reads go through
descriptors kept open between reads (:class:`_OpenFiles`): scattered Zarr reads touch the
same shard files thousands of times, and opening each time costs more than the read.
Re-exported by :mod:`geotessera.transfer.sources`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from ..errors import IntegrityError, InvalidInputError, SourceError
from ..files import atomic_write, read_receipt, write_receipt
from ..files.checksum import FILE_CHUNK_SIZE, Crc64Nvme
from ..progress import BytesReceived, ProgressSink, emit
from ._errors import TransferCancelledError
from ._protocol import FetchResult, ObjectInfo, Validator, check_key

__all__ = ["LocalSource"]

MAX_OPEN_FILES = 64
"""Descriptors a :class:`LocalSource` keeps open between range reads."""
MAX_CACHED_PATHS = 65536
"""Checked paths of keys a :class:`LocalSource` remembers for ranged reads."""
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class _OpenFiles:
    """Open read-only descriptors by path, kept between reads (LRU, at most ``cap``).

    A descriptor in use is never closed (reference counts), so concurrent ``os.pread`` calls
    are safe. A file replaced on disk is still read through the descriptor opened before
    (objects are immutable once written).
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
        self._files = _OpenFiles() if hasattr(os, "pread") else None  # no pread: open per read
        self._paths: dict[str, str] = {}  # key -> checked path, for ranged reads (thousands per read)

    def local_path(self, key: str) -> Path:
        """Path of ``key`` inside the mirror (no copy, no existence check)."""
        return self.root.joinpath(*check_key(key).split("/"))

    def _missing(self, key: str) -> SourceError:
        return SourceError(f"{key} not found in local mirror {self.root} (HTTP 404 equivalent)", status=404)

    def _existing(self, key: str) -> Path:
        path = self.local_path(key)
        if not path.is_file():
            raise self._missing(key)
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

    def read_if_changed(
        self, key: str, validator: Validator | None = None, *, timeout_s: float | None = None
    ) -> tuple[bytes | None, Validator]:
        """The file unless its size and modification time still match ``validator``."""
        st = self._existing(key).stat()
        now = Validator(etag=f'"{st.st_size}-{st.st_mtime_ns}"')
        if validator is not None and validator.etag == now.etag:
            return None, validator
        return self.read_bytes(key), now

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` of the file (see :meth:`Source.get_range`)."""
        if start < 0:
            raise InvalidInputError(f"range start must be >= 0, got {start}")
        if length <= 0:
            return b""
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= MAX_CACHED_PATHS:
                self._paths.clear()
            path = self._paths[key] = str(self.local_path(key))
        try:
            if self._files is not None:
                return self._files.pread(path, start, length)
            with open(path, "rb") as f:
                f.seek(start)
                return f.read(length)
        except _MISSING as exc:
            raise self._missing(key) from exc
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def get_suffix(self, key: str, length: int) -> bytes:
        """The last ``length`` bytes of the file (see :meth:`Source.get_suffix`)."""
        if length <= 0:
            return b""
        path = self.local_path(key)
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(size - length, 0))
                return f.read(length)
        except _MISSING as exc:
            raise self._missing(key) from exc
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc

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
        """Close the descriptors kept open between range reads (reads still work after)."""
        if self._files is not None:
            self._files.close()

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
