"""A filesystem that fills up, for full-disk tests.

As root (and where ``unshare`` works) it is a real tmpfs of the given size, mounted in a private
mount namespace held open by a sleeping process: commands run inside it through ``nsenter``
and the test reads its files through ``/proc/PID/root``, so nothing is ever mounted on the host
and the mount vanishes with its holder, even when the test dies. Elsewhere the same tests run
under ``RLIMIT_FSIZE`` (each file may hold only so many bytes; a write beyond gets EFBIG).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def tmpfs_possible() -> bool:
    """Whether this process can mount a tmpfs in a private mount namespace."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


class SmallFilesystem:
    """Where the command writes (:attr:`cli_path`), how it is run, and how the test sees it."""

    def __init__(self, cli_path: Path, view: Path, prefix: list[str], limit: Callable[[], None] | None):
        self.cli_path = cli_path
        """The directory as the command sees it."""
        self.view = view
        """The same directory as this process sees it."""
        self.prefix = prefix
        """Command prefix that runs a program where the filesystem is small."""
        self.preexec_fn = limit
        """Set in the child before exec (the RLIMIT_FSIZE variant)."""
        self._holder: subprocess.Popen[str] | None = None

    def grow(self, size: str = "1g") -> None:
        """Give the filesystem room (remount bigger, or lift the file size limit)."""
        if self._holder is not None:
            subprocess.run(
                [*self.prefix, "mount", "-o", f"remount,size={size}", str(self.cli_path)], check=True
            )
        else:
            self.preexec_fn = None


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec: writes past the limit fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@contextmanager
def small_filesystem(kind: str, directory: Path, size_mb: int) -> Iterator[SmallFilesystem]:
    """A ``size_mb`` MB filesystem at ``directory`` (``kind`` "tmpfs"), or files limited to that
    size (``kind`` "fsize")."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "fsize":
        yield SmallFilesystem(directory, directory, [], _limit_file_size(size_mb * 1_000_000))
        return
    holder = subprocess.Popen(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'mount -t tmpfs -o size={size_mb}m tmpfs "$0" && echo ready && exec sleep 3600',
            str(directory),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "ready":
            raise RuntimeError("could not mount a tmpfs")
        fs = SmallFilesystem(
            directory,
            Path(f"/proc/{holder.pid}/root{directory}"),
            ["nsenter", "-t", str(holder.pid), "-m", "--"],
            None,
        )
        fs._holder = holder
        yield fs
    finally:
        holder.kill()
        holder.wait()
