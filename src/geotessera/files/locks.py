"""Advisory locks between processes writing one directory (two downloads into one output, say).

:func:`directory_lock` takes an exclusive ``flock`` on a directory itself, so no lock file is
left behind; the kernel releases it when its holder exits, even when killed. Where directories
cannot be locked (a platform without ``fcntl``, some network filesystems) the block runs
unlocked and the writes stay atomic: only concurrent writers lose their coordination.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["directory_lock"]

log = logging.getLogger(__name__)

_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _in_process_lock(path: str) -> threading.Lock:
    # flock is per open file description: two threads of one process, each with its own
    # descriptor, exclude each other too; this lock just spares them a kernel round trip
    with _guard:
        return _thread_locks.setdefault(path, threading.Lock())


@contextlib.contextmanager
def directory_lock(path: str | os.PathLike[str], *, poll_s: float = 0.05) -> Iterator[bool]:
    """Hold an exclusive lock on the directory ``path`` (created if missing) while the block runs.

    Waits for the holder (another thread or process) to release it; ``poll_s`` is the interval
    between attempts. Raises :class:`OSError` only when the directory cannot be created. Gives
    True when other processes are locked out, False when the directory could not be locked
    (the block runs anyway).
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    key = os.path.abspath(directory)
    with _in_process_lock(key):
        if fcntl is None:
            yield False
            return
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError as exc:
            log.debug("cannot open %s to lock it (%s): going on unlocked", directory, exc)
            yield False
            return
        try:
            if not _acquire(fd, directory, poll_s):
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _acquire(fd: int, directory: Path, poll_s: float) -> bool:
    """Block until the lock is ours (True); False when the filesystem cannot lock at all."""
    assert fcntl is not None
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not waited:
                log.info("waiting for another process writing %s", directory)
                waited = True
            time.sleep(poll_s)
        except OSError as exc:  # e.g. ENOLCK, EBADF on a network filesystem
            log.debug("cannot lock %s (%s): going on unlocked", directory, exc)
            return False
