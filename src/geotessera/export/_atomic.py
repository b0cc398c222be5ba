"""Atomic file creation for exporters: write under a temporary name, then rename."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError
from ..transfer.atomic import remove_stale_parts

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _fsync(path: Path) -> None:
    """Flush a finished file to disk before it is renamed into place (GDAL does not)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def output_error(exc: BaseException, action: str) -> OutputError:
    """An :class:`OutputError` for a failed write: "disk full" when the cause is ENOSPC/EDQUOT."""
    if isinstance(exc, OutputError):
        return exc
    errno_ = getattr(exc, "errno", None)
    text = str(exc)
    if errno_ in _DISK_FULL or "No space left" in text or "Disk quota" in text:
        return OutputError(f"disk full while {action}")
    return OutputError(f"write failed while {action}: {' '.join(text.split())}")


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` if the block succeeds.

    The temporary file is removed on any failure. A full disk becomes :class:`OutputError`.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(final)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, final)
    except OSError as exc:
        raise output_error(exc, f"writing {final}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Check, without creating anything, that ``path`` is or can become a writable directory.

    Raises :class:`~geotessera.errors.InvalidInputError` for an empty path and
    :class:`OutputError` naming the problem (a file in the way, no permission).
    """
    from ..errors import InvalidInputError

    if not os.fspath(path).strip():
        raise InvalidInputError("the output directory is empty")
    p = Path(path)
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if p.exists() and not p.is_dir():
        raise OutputError(f"output directory {p} exists and is not a directory")
    if not probe.is_dir():
        raise OutputError(f"cannot create output directory {p}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create or write output directory {p}: {probe} is not writable")
    return p


def make_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output directory (and parents); one clear :class:`OutputError` if impossible."""
    p = check_output_dir(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".geotessera-write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise OutputError(f"disk full: cannot write in output directory {p}") from exc
        raise OutputError(f"cannot write in output directory {p}: {exc.strerror or exc}") from exc
    return p
