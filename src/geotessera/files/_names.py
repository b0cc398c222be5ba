"""The names of the files beside a data file: its temporary twin while it is written, its receipt.

One pattern for every writer: ``.{name}.{host}-{pid}-{random}.part`` in the destination's own
directory (same filesystem, so the final rename is atomic). The host tag and process id say who
is writing it, so a leftover of a killed process on this machine is recognised at once; anything
else is stale only once untouched for :data:`STALE_AFTER_S`.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Final

TEMP_SUFFIX: Final = ".part"
STALE_AFTER_S: Final = 600.0
"""A temporary file untouched this long (seconds) is stale whoever wrote it."""

_HOST: Final = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_OWNER = re.compile(r"\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.part$")


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.{name}.{host}-{pid}-{random}.part``."""
    return path.with_name(f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def temp_glob(path: Path) -> str:
    """Glob (relative to ``path.parent``) of the temporary files of ``path``, any writer."""
    from glob import escape

    return f".{escape(path.name)}.*{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    """Whether a file name is a temporary file of some data file."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def writer_is_gone(name: str) -> bool:
    """True when the temporary file ``name`` was written by a process of this machine that has
    exited (its data can never be completed)."""
    m = _OWNER.search(name)
    if m is None or m["host"] != _HOST or os.name == "nt":  # os.kill(pid, 0) is no probe on Windows
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


def receipt_path(path: str | os.PathLike[str]) -> Path:
    """Path of the receipt sidecar of ``path``: ``{dir}/.{name}.receipt.json``."""
    p = Path(path)
    return p.with_name(f".{p.name}.receipt.json")
