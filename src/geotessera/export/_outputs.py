"""Output directories of exports: checked before work starts, created, and write errors explained."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import OutputError
from ..files import begin_path

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def output_error(exc: BaseException, action: str) -> OutputError:
    """An :class:`OutputError` for a failed write: "disk full" when the cause is ENOSPC/EDQUOT."""
    if isinstance(exc, OutputError):
        return exc
    errno_ = getattr(exc, "errno", None)
    text = str(exc)
    if errno_ in _DISK_FULL or "No space left" in text or "Disk quota" in text:
        return OutputError(f"disk full while {action}")
    return OutputError(f"write failed while {action}: {' '.join(text.split())}")


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
        # a temporary name of the package's (writer's host and pid): the probe of a run killed
        # while probing is removed by the next one, never left in the directory
        probe = begin_path(p / ".geotessera-write-test")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise OutputError(f"disk full: cannot write in output directory {p}") from exc
        raise OutputError(f"cannot write in output directory {p}: {exc.strerror or exc}") from exc
    return p
