"""A SIGKILL at each file-system moment of a run, in turn: deterministic where a timer is luck.

A timed kill lands where the run spends its time (transfers, shard writes) and only rarely in
the milliseconds of a metadata write, a rename or a receipt. Here a run (a ``geotessera``
command line, in a forked process) numbers each moment it changes the file system: just before
and just after every rename into place of :mod:`geotessera.files` (the temporary whole beside
its final path / the file in place and nothing after it done), and just before every unlink of
a file that is there. :func:`run_killed_at` kills the run with SIGKILL at moment ``n``: no
``finally`` block runs, temporaries stay, locks are released by the kernel alone, as a real
kill leaves them. The moments of a run are counted by a run to its end (:func:`count_moments`).
Runs with threads number their moments in the order they come, which may differ between runs;
every moment is still a moment of the run.

The processes are forked from multiprocessing's *forkserver*: a clean process that imported
geotessera and ran none of it, so no thread of GDAL, Arrow or a test server is lost in a fork,
and a run starts in milliseconds.
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRELOAD = [
    *("geotessera.cli", "geotessera.cli.render", "geotessera.client", "geotessera.regions"),
    *("rasterio", "pyarrow.parquet", "pandas", "rich.progress", "dateutil.parser", "encodings.idna"),
    *("zarr", "geotessera.store", "geotessera.cli.zarr_store", "geotessera.sample.build"),
    *("zoneinfo", "_strptime", "tarfile", "difflib", "support.killpoints"),
]
"""Imported once by the forkserver: what every run would import otherwise (half a second)."""
_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(PRELOAD)


def _make_shared_locks() -> None:
    """Numcodecs' Blosc makes a multiprocessing lock (a semaphore the resource tracker follows)
    at its first use; made once here, in the forkserver, it is not left behind by every run
    killed while encoding (the tracker would warn of them when the tests end)."""
    try:
        import numcodecs.blosc

        numcodecs.blosc.get_mutex()
    except (ImportError, AttributeError):  # another numcodecs: at worst, that warning
        pass


_make_shared_locks()


@dataclass(frozen=True)
class Run:
    """How a run ended: its exit code (``-9``: killed), its moments, its output."""

    code: int | None
    moments: int
    """Moments passed (the last one the kill, when killed)."""
    moment: str
    """What the moment of the kill was (``""`` when not killed)."""
    trace: list[str]
    """Every moment, in order (a run to its end only)."""
    log: str

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL


class _Moments:
    """Counts the moments (and, with ``trace``, lists them); at moment ``at`` the process writes
    what the moment is to ``said`` and kills itself."""

    def __init__(self, at: int | None, said: Path, trace: bool) -> None:
        self.at = at
        self.n = 0
        self.said = said
        self.trace: list[str] | None = [] if trace else None
        self._lock = threading.Lock()

    def __call__(self, what: str) -> None:
        with self._lock:
            self.n += 1
            if self.trace is not None:
                self.trace.append(what)
            if self.n == self.at:
                self.said.write_text(what)
                os.kill(os.getpid(), signal.SIGKILL)


def _install(moments: _Moments) -> None:
    import geotessera.files.atomic as atomic

    replace = atomic._replace
    unlink = pathlib.Path.unlink

    def replace_at_moments(tmp: Path, final: Path, *, fsync: bool) -> None:
        moments(f"before the rename of {final}")  # the temporary is whole, the final path untouched
        replace(tmp, final, fsync=fsync)
        moments(f"after the rename of {final}")  # the file in place, whatever follows it not done

    def unlink_at_moments(self: pathlib.Path, missing_ok: bool = False) -> None:
        if os.path.lexists(self):  # (removing what is not there changes nothing)
            moments(f"before the unlink of {self}")
        unlink(self, missing_ok=missing_ok)

    atomic._replace = replace_at_moments  # type: ignore[assignment]
    pathlib.Path.unlink = unlink_at_moments  # type: ignore[method-assign]


def _child(args: Sequence[str], at: int | None, scratch: Path) -> None:
    fd = os.open(scratch / "log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    for name in [k for k in os.environ if k.startswith("GEOTESSERA_")]:
        del os.environ[name]
    moments = _Moments(at, scratch / "moment", trace=at is None)
    _install(moments)
    from geotessera.cli import cli

    try:
        cli.main(list(args), prog_name="geotessera", standalone_mode=True)
    finally:
        told = moments.trace if moments.trace is not None else [str(moments.n)]
        (scratch / "moments").write_text("".join(f"{line}\n" for line in told))


def run_killed_at(args: Sequence[str], at: int | None, scratch: Path, *, timeout: float = 300) -> Run:
    """Run ``geotessera ARGS`` in a forked process, killed at moment ``at`` (``None``: never);
    ``scratch`` is a directory for its output and what it tells."""
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("log", "moment", "moments"):
        (scratch / name).unlink(missing_ok=True)
    proc: Any = _ctx.Process(target=_child, args=(list(args), at, scratch))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise AssertionError(f"geotessera {' '.join(args)} still running after {timeout} s")

    def read(name: str) -> str:
        p = scratch / name
        return p.read_text(errors="replace") if p.exists() else ""

    moment = read("moment")
    trace = read("moments").splitlines() if at is None else []
    return Run(proc.exitcode, at if moment else len(trace), moment, trace, read("log"))


def count_moments(args: Sequence[str], scratch: Path) -> Run:
    """Run ``geotessera ARGS`` to its end, listing its moments; it must succeed."""
    run = run_killed_at(args, None, scratch)
    assert run.code == 0, run.log
    return run
