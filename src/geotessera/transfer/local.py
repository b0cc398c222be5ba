"""A local mirror directory as a :class:`~.sources.Source`: :class:`LocalSource`.

Objects are files at ``{root}/{key}``, read in place (``local_path``), or copied
atomically, with a receipt, when a destination is given. Re-exported by
:mod:`geotessera.transfer.sources`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Protocol

from ..errors import IntegrityError, InvalidInputError, SourceError
from ..progress import BytesReceived, ProgressSink, emit
from ._errors import TransferCancelledError
from ._protocol import FetchResult, ObjectInfo, check_key
from .atomic import atomic_write, read_receipt, write_receipt
from .checksum import FILE_CHUNK_SIZE, Crc64Nvme

__all__ = ["LocalSource"]


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
