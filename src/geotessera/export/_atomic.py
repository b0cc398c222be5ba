"""Atomic file creation for exporters: write under a temporary name, then rename."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` if the block succeeds.

    The temporary file is removed on any failure. A full disk becomes :class:`OutputError`.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise OutputError(f"disk full while writing {final}") from exc
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {final}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
