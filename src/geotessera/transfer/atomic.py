"""Atomic file creation and receipts.

Writing
    :func:`atomic_write` yields an :class:`AtomicFile`: bytes go to a uniquely named
    temporary file in the destination directory (``.{name}.{host}-{pid}-{random}.part``, same
    filesystem, so the final rename is atomic). On success the file is flushed,
    fsynced and moved into place with ``os.replace``; on any failure (including
    ``KeyboardInterrupt``) the temporary file is removed and the destination is left
    as it was. A full disk (ENOSPC, EDQUOT) becomes :class:`OutputError`.

Receipts
    A receipt is a small JSON sidecar written *after* its data file, one per file,
    beside it: ``{dir}/.{name}.receipt.json`` holding ``{"format", "size", "crc64nvme",
    "key", "written_at"}``. One file per data file (rather than one per directory)
    keeps concurrent writers in one directory independent and makes a receipt's
    lifetime that of its file. Before a data file is replaced its old receipt is
    deleted, so a crash between the data rename and the new receipt leaves a file
    without a receipt (downloaded again on rerun), never a stale receipt.

    :func:`is_complete` trusts a file when its receipt matches the file's current
    size (and the expected size / CRC when given) without reading the data; pass
    ``verify=True`` to re-hash it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

from ..errors import OutputError
from .checksum import Crc64Nvme, crc64nvme_file

__all__ = [
    "AtomicFile",
    "Receipt",
    "atomic_write",
    "is_complete",
    "read_receipt",
    "receipt_path",
    "remove_receipt",
    "write_receipt",
]

log = logging.getLogger(__name__)

RECEIPT_FORMAT: Final = "geotessera-receipt/1"
_DISK_FULL: Final = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def _output_error(exc: OSError, action: str, path: Path) -> OutputError:
    if exc.errno in _DISK_FULL:
        return OutputError(f"disk full ({errno.errorcode.get(exc.errno or 0, 'ENOSPC')}) {action} {path}")
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


class AtomicFile:
    """A temporary file that becomes ``path`` when its :func:`atomic_write` block succeeds.

    Tracks the number of bytes written and, optionally, their CRC64NVMe. Not thread-safe.
    """

    def __init__(self, path: Path, tmp_path: Path, fh: IO[bytes], *, checksum: bool) -> None:
        self.path = path
        """Final destination."""
        self.tmp_path = tmp_path
        """Temporary file the bytes are written to."""
        self._fh = fh
        self._size = 0
        self._crc: Crc64Nvme | None = Crc64Nvme() if checksum else None

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def crc(self) -> Crc64Nvme | None:
        """Running CRC64NVMe of the bytes written (``None`` if created with ``checksum=False``)."""
        return self._crc

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; a full disk raises :class:`OutputError`."""
        try:
            n = self._fh.write(data)
        except OSError as exc:
            raise _output_error(exc, "writing", self.path) from exc
        if self._crc is not None:
            self._crc.update(data)
        self._size += n
        return n

    def restart(self) -> None:
        """Discard everything written so far (start again from byte 0)."""
        try:
            self._fh.seek(0)
            self._fh.truncate(0)
        except OSError as exc:
            raise _output_error(exc, "rewinding", self.path) from exc
        self._size = 0
        if self._crc is not None:
            self._crc = Crc64Nvme()

    def _commit(self, *, fsync: bool) -> None:
        self._fh.flush()
        if fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()
        remove_receipt(self.path)
        os.replace(self.tmp_path, self.path)
        if fsync:
            _fsync_dir(self.path.parent)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_HOST: Final = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_OWNER = re.compile(r"\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.part$")


def _temp_name(path: Path) -> Path:
    """``.{name}.{host}-{pid}-{random}.part``: who writes it is in its name."""
    return path.with_name(f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.part")


def _writer_is_gone(name: str) -> bool:
    """True when the temporary file ``name`` was written by a process of this machine that has
    exited (a killed run's leftover, which nobody can complete)."""
    m = _OWNER.search(name)
    if m is None or m["host"] != _HOST or os.name == "nt":
        return False
    pid = int(m["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. EPERM: alive, someone else's
        return False
    return False


STALE_PART_S = 600.0


def remove_stale_parts(path: str | os.PathLike[str], *, older_than_s: float = STALE_PART_S) -> int:
    """Delete temporary ``.{name}.*.part`` siblings of ``path`` left by a killed process.

    Stale: written by a process of this machine that has exited, or untouched for
    ``older_than_s`` seconds (default 10 minutes); a writer still at work keeps its file.
    Returns how many were removed.
    """
    p = Path(path)
    removed = 0
    now = time.time()
    try:
        candidates = list(p.parent.glob(f".{glob.escape(p.name)}.*.part"))
    except OSError:
        return 0
    for part in candidates:
        try:
            if _writer_is_gone(part.name) or now - part.stat().st_mtime >= older_than_s:
                part.unlink()
                removed += 1
        except OSError:
            continue
    if removed:
        log.info("removed %d stale temporary file(s) of %s", removed, p)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that opens files by name (GDAL,
    Parquet); when the block succeeds the file is fsynced (if ``fsync``) and renamed into place.

    The temporary file is removed on any failure; write errors become :class:`OutputError`
    ("disk full ..." for ENOSPC/EDQUOT). The bytes-oriented twin is :func:`atomic_write`.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(exc, "creating the directory of", final) from exc
    remove_stale_parts(final)
    tmp = _temp_name(final)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, final)
        if fsync:
            _fsync_dir(final.parent)
    except OutputError:
        raise
    except OSError as exc:
        raise _output_error(exc, "writing", final) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, fsync: bool = True, checksum: bool = False
) -> Iterator[AtomicFile]:
    """Write ``path`` atomically: yield an :class:`AtomicFile`, rename it into place on success.

    The parent directory is created if needed. Exceptions raised inside the block
    propagate unchanged after the temporary file is removed; OS errors of the
    write/fsync/rename themselves become :class:`OutputError` ("disk full ..." for
    ENOSPC/EDQUOT). With ``checksum=True`` the file's ``crc`` tracks the bytes written.
    """
    final = Path(path)
    remove_stale_parts(final)
    tmp = _temp_name(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fh = open(tmp, "xb")  # noqa: SIM115 - closed by _commit or the finally below
    except OSError as exc:
        raise _output_error(exc, "creating", final) from exc
    out = AtomicFile(final, tmp, fh, checksum=checksum)
    committed = False
    try:
        yield out
        try:
            out._commit(fsync=fsync)
        except OSError as exc:
            raise _output_error(exc, "writing", final) from exc
        committed = True
    finally:
        if not committed:
            with contextlib.suppress(OSError):  # closing flushes: on a full disk that fails again
                fh.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            log.debug("discarded temporary file %s", tmp)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What was verified about a file when it was written."""

    size: int
    """File size in bytes."""
    crc64nvme: str
    """CRC64NVMe of the file, S3 header form (base64 of 8 big-endian bytes)."""
    key: str | None = None
    """Source object key the file came from, if any."""
    written_at: str = ""
    """ISO-8601 UTC time the receipt was written."""


def receipt_path(path: str | os.PathLike[str]) -> Path:
    """Path of the receipt sidecar of ``path``: ``{dir}/.{name}.receipt.json``."""
    p = Path(path)
    return p.with_name(f".{p.name}.receipt.json")


def read_receipt(path: str | os.PathLike[str]) -> Receipt | None:
    """The receipt of the file ``path``, or ``None`` if it is absent or unreadable."""
    rp = receipt_path(path)
    try:
        raw = json.loads(rp.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable receipt %s: %s", rp, exc)
        return None
    if (
        not isinstance(raw, dict)
        or raw.get("format") != RECEIPT_FORMAT
        or not isinstance(raw.get("size"), int)
        or not isinstance(raw.get("crc64nvme"), str)
    ):
        log.warning("ignoring receipt %s: unexpected content", rp)
        return None
    key = raw.get("key")
    return Receipt(
        size=raw["size"],
        crc64nvme=raw["crc64nvme"],
        key=key if isinstance(key, str) else None,
        written_at=str(raw.get("written_at", "")),
    )


def write_receipt(
    path: str | os.PathLike[str], *, size: int, crc64nvme: str, key: str | None = None
) -> Receipt:
    """Record (atomically) that ``path`` holds ``size`` bytes with checksum ``crc64nvme``.

    Call only after the data file itself is in place.
    """
    receipt = Receipt(
        size=size,
        crc64nvme=crc64nvme,
        key=key,
        written_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    body = {"format": RECEIPT_FORMAT, "size": size, "crc64nvme": crc64nvme, "key": key}
    body["written_at"] = receipt.written_at
    with atomic_write(receipt_path(path), fsync=False) as out:
        out.write(json.dumps(body, sort_keys=True).encode("utf-8"))
    return receipt


def remove_receipt(path: str | os.PathLike[str]) -> None:
    """Delete the receipt of ``path`` if there is one."""
    with contextlib.suppress(FileNotFoundError):
        receipt_path(path).unlink()


def is_complete(
    path: str | os.PathLike[str],
    expected_size: int | None = None,
    expected_crc: str | None = None,
    *,
    expected_key: str | None = None,
    verify: bool = False,
) -> bool:
    """Whether ``path`` is a complete, verified file that need not be fetched again.

    True only when the file exists and its receipt records the file's current size,
    and, when given, ``expected_size`` (bytes), ``expected_crc`` (S3 header form) and
    ``expected_key`` (the object it was fetched from: a tile of another dataset at the
    same local path is not complete).
    The data is not read unless ``verify=True``, which re-hashes the file and compares
    it with the receipt.
    """
    p = Path(path)
    receipt = read_receipt(p)
    if receipt is None:
        return False
    try:
        st = p.stat()
    except OSError:
        return False
    if st.st_size != receipt.size:
        log.debug("receipt of %s records %d bytes, file has %d", p, receipt.size, st.st_size)
        return False
    if expected_size is not None and receipt.size != expected_size:
        return False
    if expected_crc is not None and receipt.crc64nvme != expected_crc:
        return False
    if expected_key is not None and receipt.key != expected_key:
        log.info("%s was fetched from %s, not %s: fetching again", p, receipt.key, expected_key)
        return False
    if verify:
        actual = crc64nvme_file(p)
        if actual != receipt.crc64nvme:
            log.warning(
                "%s does not match its receipt (CRC64NVMe %s, recorded %s)", p, actual, receipt.crc64nvme
            )
            return False
    return True
