"""Atomic file creation: every writer's bytes reach their final name whole or not at all.

- :func:`atomic_write` yields an :class:`AtomicFile` (bytes written by us, optionally with a
  running CRC64NVMe); :func:`atomic_path` yields a temporary path for writers that open files by
  name (GDAL, Parquet, the Zarr shard encoder); :func:`write_atomic` writes a bytes value.
- All three write a temporary file beside the destination (``_names.temp_path``), flush and
  fsync it (unless ``fsync=False``), then move it into place with the one ``os.replace`` of the
  package and fsync the directory. On any failure (including ``KeyboardInterrupt``) the temporary
  file is removed and the destination is left as it was. A full disk (ENOSPC, EDQUOT) becomes
  :class:`OutputError` ("disk full ..."), other write errors too.
- Temporary files of the same destination left by a killed process are removed before a write
  (:func:`remove_stale_temps`); :func:`remove_stale_temps_under` sweeps a whole tree.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final

from ..errors import OutputError
from ._names import STALE_AFTER_S, is_temp_name, receipt_path, temp_glob, temp_path, writer_is_gone
from .checksum import Crc64Nvme
from .writeback import WRITEBACK_STEP, start_writeback

__all__ = [
    "AtomicFile",
    "atomic_path",
    "atomic_write",
    "begin_path",
    "commit_path",
    "output_error",
    "remove_stale_temps",
    "remove_stale_temps_under",
    "write_atomic",
]

log = logging.getLogger(__name__)

_DISK_FULL: Final = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def output_error(exc: OSError, action: str, path: Path) -> OutputError:
    """The :class:`OutputError` for an OS error while ``action`` (e.g. "writing") ``path``."""
    if exc.errno in _DISK_FULL:
        return OutputError(f"disk full ({errno.errorcode.get(exc.errno or 0, 'ENOSPC')}) {action} {path}")
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


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


def _replace(tmp: Path, final: Path, *, fsync: bool) -> None:
    """Move the finished temporary file onto its destination (the package's one rename)."""
    os.replace(tmp, final)
    if fsync:
        _fsync_dir(final.parent)


def _stale(path: Path, now: float, older_than_s: float) -> bool:
    if older_than_s <= 0 or writer_is_gone(path.name):
        return True
    try:
        return now - path.stat().st_mtime >= older_than_s
    except OSError:
        return False


def _unlink_stale(candidates: list[Path], older_than_s: float) -> int:
    now = time.time()
    removed = 0
    for part in candidates:
        if _stale(part, now, older_than_s):
            with contextlib.suppress(OSError):
                if part.is_dir() and not part.is_symlink():  # a writer's work directory
                    shutil.rmtree(part)
                else:
                    part.unlink()
                removed += 1
    return removed


def remove_stale_temps(path: str | os.PathLike[str], *, older_than_s: float = STALE_AFTER_S) -> int:
    """Delete temporary files of ``path`` left by writers that can never finish them (and the work
    directories of such writers, named the same way: :func:`begin_path`, then ``mkdir``).

    Stale: written by a process of this machine that has exited, or untouched for
    ``older_than_s`` seconds (default 10 minutes); a writer still at work keeps its file.
    Returns how many were removed.
    """
    p = Path(path)
    try:
        candidates = list(p.parent.glob(temp_glob(p)))
    except OSError:
        return 0
    removed = _unlink_stale(candidates, older_than_s)
    if removed:
        log.info("removed %d stale temporary file(s) of %s", removed, p)
    return removed


def remove_stale_temps_under(
    root: str | os.PathLike[str],
    *,
    older_than_s: float = STALE_AFTER_S,
    foreign: Callable[[str], bool] | None = None,
    foreign_older_than_s: float | None = None,
) -> int:
    """Delete the stale temporary files (see :func:`remove_stale_temps`) anywhere under ``root``.

    ``foreign(name)``: also temporary files another library names its own way (e.g. zarr-python's
    ``*.partial``); having no writer in their name, they are stale once untouched
    ``foreign_older_than_s`` seconds (default ``older_than_s``). A caller holding the lock that
    every such writer takes passes ``0``: whoever wrote them can no longer be writing.
    """
    ours: list[Path] = []
    theirs: list[Path] = []
    for d, _, names in os.walk(root):
        for name in names:
            if is_temp_name(name):
                ours.append(Path(d, name))
            elif foreign is not None and foreign(name):
                theirs.append(Path(d, name))
    removed = _unlink_stale(ours, older_than_s)
    removed += _unlink_stale(theirs, older_than_s if foreign_older_than_s is None else foreign_older_than_s)
    if removed:
        log.info("removed %d stale temporary file(s) under %s", removed, root)
    return removed


class AtomicFile:
    """A temporary file that becomes ``path`` when its :func:`atomic_write` block succeeds.

    Tracks the number of bytes written and, optionally, their CRC64NVMe. With ``writeback``
    (a file that will be fsynced), the kernel is asked to start writing it to disk every
    ``WRITEBACK_STEP`` bytes (:mod:`.writeback`), so the fsync has little left. Not thread-safe.
    """

    def __init__(
        self, path: Path, tmp_path: Path, fh: IO[bytes], *, checksum: bool, writeback: bool = False
    ) -> None:
        self.path = path
        """Final destination."""
        self.tmp_path = tmp_path
        """Temporary file the bytes are written to."""
        self._fh = fh
        self._size = 0
        self._crc: Crc64Nvme | None = Crc64Nvme() if checksum else None
        self._writeback = writeback
        self._written_back = 0
        """Bytes whose writeback has been started."""

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
            raise output_error(exc, "writing", self.path) from exc
        if self._crc is not None:
            self._crc.update(data)
        self._size += n
        if self._writeback and self._size - self._written_back >= WRITEBACK_STEP:
            self._start_writeback()
        return n

    def _start_writeback(self) -> None:
        try:
            self._fh.flush()
        except OSError as exc:
            raise output_error(exc, "writing", self.path) from exc
        start_writeback(self._fh.fileno(), self._written_back, self._size - self._written_back)
        self._written_back = self._size

    def restart(self) -> None:
        """Discard everything written so far (start again from byte 0)."""
        try:
            self._fh.seek(0)
            self._fh.truncate(0)
        except OSError as exc:
            raise output_error(exc, "rewinding", self.path) from exc
        self._size = self._written_back = 0
        if self._crc is not None:
            self._crc = Crc64Nvme()

    def _commit(self, *, fsync: bool) -> None:
        self._fh.flush()
        if fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()
        # a receipt vouches for the old bytes: gone before they are (a crash in between leaves
        # a file without a receipt, fetched again; never a stale receipt)
        with contextlib.suppress(FileNotFoundError):
            receipt_path(self.path).unlink()
        _replace(self.tmp_path, self.path, fsync=fsync)


def _mkdir(final: Path) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, "creating the directory of", final) from exc


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, fsync: bool = True, checksum: bool = False, clean: bool = True
) -> Iterator[AtomicFile]:
    """Write ``path`` atomically: yield an :class:`AtomicFile`, rename it into place on success.

    The parent directory is created if needed and a receipt of the old file is removed first.
    Exceptions raised inside the block propagate unchanged after the temporary file is removed;
    OS errors of the write/fsync/rename themselves become :class:`OutputError`. With
    ``checksum=True`` the file's ``crc`` tracks the bytes written. ``clean``: first remove stale
    temporary files of ``path`` (a directory listing; writers of many small files in one
    directory, such as a cache, sweep once instead).
    """
    final = Path(path)
    _mkdir(final)
    if clean:
        remove_stale_temps(final)
    tmp = temp_path(final)
    try:
        fh = open(tmp, "xb")  # noqa: SIM115 - closed by _commit or the finally below
    except OSError as exc:
        raise output_error(exc, "creating", final) from exc
    out = AtomicFile(final, tmp, fh, checksum=checksum, writeback=fsync)
    committed = False
    try:
        yield out
        try:
            out._commit(fsync=fsync)
        except OSError as exc:
            raise output_error(exc, "writing", final) from exc
        committed = True
    finally:
        if not committed:
            with contextlib.suppress(OSError):  # closing flushes: on a full disk that fails again
                fh.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            log.debug("discarded temporary file %s", tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that opens files by name; when the
    block succeeds the file is fsynced (if ``fsync``) and renamed into place.

    The temporary file is removed on any failure; write errors become :class:`OutputError`
    ("disk full ..." for ENOSPC/EDQUOT). The bytes-oriented twin is :func:`atomic_write`.
    """
    final = Path(path)
    tmp = begin_path(final)
    try:
        yield tmp
        commit_path(tmp, final, fsync=fsync)
    except OutputError:
        raise
    except OSError as exc:
        raise output_error(exc, "writing", final) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def begin_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path beside ``path`` (its directory created, stale temporaries of it
    removed), for a writer whose file stays open across calls; finish with :func:`commit_path`,
    or unlink it to abandon. :func:`atomic_path` is the same as a ``with`` block."""
    final = Path(path)
    _mkdir(final)
    remove_stale_temps(final)
    return temp_path(final)


def commit_path(tmp: str | os.PathLike[str], path: str | os.PathLike[str], *, fsync: bool = True) -> None:
    """Move the finished temporary file ``tmp`` (from :func:`begin_path`) onto ``path``: fsynced
    first (if ``fsync``), then renamed. OS errors propagate (callers say what they were writing)."""
    tmp, final = Path(tmp), Path(path)
    if fsync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _replace(tmp, final, fsync=fsync)


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | bytearray | memoryview,
    *,
    fsync: bool = True,
    clean: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, fsync=fsync, clean=clean) as out:
        out.write(data)
