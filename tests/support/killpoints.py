"""A SIGKILL at each file-system moment of a run, in turn: deterministic where a timer is luck.

A timed kill lands where the run spends its time (transfers, shard writes) and only rarely in
the milliseconds of a metadata write, a rename or a receipt. Here a run (a ``geotessera``
command line, in a forked process) numbers each moment it changes the file system: just before
and just after every rename into place of :mod:`geotessera.files` (the temporary whole beside
its final path / the file in place and nothing after it done), and just before every unlink of
a file that is there. :func:`run_killed_at` kills the run with SIGKILL at moment ``n``: no
``finally`` block runs, temporaries stay, locks are released by the kernel alone, as a real
kill leaves them; :class:`Started` with ``stop`` stops the run there instead (SIGSTOP), for
another run to work meanwhile, then resumes it. The moments of a run are counted by a run to its
end (:func:`count_moments`).
Runs with threads number their moments in the order they come, which may differ between runs;
every moment is still a moment of the run.

The processes are forked from multiprocessing's *forkserver*: a clean process that imported
geotessera and ran none of it, so no thread of GDAL, Arrow or a test server is lost in a fork,
and a run starts in milliseconds.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRELOAD = [
    *("geotessera.cli", "geotessera.cli.render", "geotessera.client", "geotessera.regions"),
    *("rasterio", "pyarrow.parquet", "pandas", "rich.progress", "dateutil.parser", "encodings.idna"),
    *("zarr", "geotessera.store", "geotessera.cli.zarr_store", "geotessera.sample.build"),
    *("geotessera.analysis.models", "sklearn.neighbors", "skops.io", "geotessera.web", "rio_tiler.io"),
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
    what the moment is to ``said`` and kills itself (``stop``: stops, until a SIGCONT)."""

    def __init__(self, at: int | None, said: Path, trace: bool, stop: bool = False) -> None:
        self.at = at
        self.n = 0
        self.said = said
        self.trace: list[str] | None = [] if trace else None
        self.signal = signal.SIGSTOP if stop else signal.SIGKILL
        self._lock = threading.Lock()

    def __call__(self, what: str) -> None:
        with self._lock:
            self.n += 1
            if self.trace is not None:
                self.trace.append(what)
            if self.n == self.at:
                self.said.write_text(what)
                os.kill(os.getpid(), self.signal)


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


@dataclass(frozen=True)
class Call:
    """A run that is a call of a function (``"module:name"``, importable by the forkserver's
    children) with ``args``, instead of a ``geotessera`` command line; it ends with exit 0."""

    target: str
    args: tuple[Any, ...] = ()

    def __str__(self) -> str:
        return self.target


def _child(args: Sequence[str] | Call, at: int | None, scratch: Path, stop: bool) -> None:
    fd = os.open(scratch / "log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    for name in [k for k in os.environ if k.startswith("GEOTESSERA_")]:
        del os.environ[name]
    moments = _Moments(at, scratch / "moment", trace=at is None, stop=stop)
    _install(moments)
    try:
        if isinstance(args, Call):
            module, _, name = args.target.partition(":")
            getattr(importlib.import_module(module), name)(*args.args)
        else:
            from geotessera.cli import cli

            cli.main(list(args), prog_name="geotessera", standalone_mode=True)
    finally:
        told = moments.trace if moments.trace is not None else [str(moments.n)]
        (scratch / "moments").write_text("".join(f"{line}\n" for line in told))


class Started:
    """``geotessera ARGS`` (or a :class:`Call`) running in a forked process, stopped or killed at
    moment ``at`` (``None``: never); ``scratch`` is a directory of its own for its output and what
    it tells."""

    def __init__(
        self, args: Sequence[str] | Call, at: int | None, scratch: Path, *, stop: bool = False
    ) -> None:
        self.args = args if isinstance(args, Call) else list(args)
        self.at, self.scratch = at, scratch
        scratch.mkdir(parents=True, exist_ok=True)
        for name in ("log", "moment", "moments"):
            (scratch / name).unlink(missing_ok=True)
        self._proc: Any = _ctx.Process(target=_child, args=(self.args, at, scratch, stop))
        self._proc.start()

    def __str__(self) -> str:
        return str(self.args) if isinstance(self.args, Call) else f"geotessera {' '.join(self.args)}"

    def read(self, name: str) -> str:
        p = self.scratch / name
        return p.read_text(errors="replace") if p.exists() else ""

    @property
    def running(self) -> bool:
        return bool(self._proc.is_alive())

    @property
    def stopped(self) -> bool:
        """True while the process is stopped (at its moment)."""
        try:
            stat = Path(f"/proc/{self._proc.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rpartition(")")[2].split()[0] in ("T", "t")

    def resume(self) -> None:
        os.kill(self._proc.pid, signal.SIGCONT)

    def wait(self, timeout: float = 300) -> Run:
        """Wait for the end of the run; how it ended."""
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
            raise AssertionError(f"{self} still running after {timeout} s")
        moment = self.read("moment")
        trace = self.read("moments").splitlines() if self.at is None else []
        code = self._proc.exitcode
        return Run(code, (self.at or 0) if moment else len(trace), moment, trace, self.read("log"))


def until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Wait (polling) until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.005)


def run_killed_at(args: Sequence[str] | Call, at: int | None, scratch: Path, *, timeout: float = 300) -> Run:
    """Run ``geotessera ARGS`` (or a :class:`Call`) in a forked process, killed at moment ``at``
    (``None``: never); ``scratch`` is a directory for its output and what it tells."""
    return Started(args, at, scratch).wait(timeout)


def count_moments(args: Sequence[str] | Call, scratch: Path) -> Run:
    """Run ``geotessera ARGS`` to its end, listing its moments; it must succeed."""
    run = run_killed_at(args, None, scratch)
    assert run.code == 0, run.log
    return run


def run_beside_stopped(
    args: Sequence[str], at: int, other: Sequence[str], scratch: Path, *, waits: str
) -> tuple[Run, Run]:
    """Run ``args`` stopped at its moment ``at``; meanwhile run ``other`` until it ends or logs
    ``waits`` (it waits for a lock the stopped run holds); then let the first go on. Returns
    both runs (the first one's ``moment`` says where it was stopped)."""
    first = Started(args, at, scratch / "first", stop=True)
    until(lambda: first.stopped or not first.running, f"moment {at}")
    second = Started(other, None, scratch / "second")
    until(lambda: not second.running or waits in second.read("log"), "the other run to end or wait")
    moment = first.read("moment")
    first.resume()
    ran = first.wait()
    return Run(ran.code, ran.moments, moment, ran.trace, ran.log), second.wait()
