"""Rendering for the CLI: a rich progress sink and end-of-run summaries (stderr)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Column
from rich.text import Text

from ..progress import BytesReceived, Event, ItemDone, ItemFailed, ItemSkipped, PlanReady, Retrying

stderr = Console(stderr=True, soft_wrap=True)
stdout = Console(soft_wrap=True)


def plural(n: int, word: str) -> str:
    """``1 tile``, ``2 tiles``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    return str(timedelta(seconds=max(0, int(seconds))))


class _Amount(ProgressColumn):
    """Bytes with rate (and retries) for the download bar; done/total, failures for item bars."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self._bytes, self._speed = DownloadColumn(), TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            text = Text.assemble(self._bytes.render(task), " ", self._speed.render(task))
            retries = task.fields.get("retries", 0)
            if retries:
                text.append(f" {retries} {'retry' if retries == 1 else 'retries'}", "yellow")
            return text
        total = "?" if task.total is None else f"{task.total:.0f}"
        text = Text(f"{task.completed:.0f}/{total} {task.fields.get('unit', '')}")
        failed = task.fields.get("failed", 0)
        if failed:
            text.append(f" ({failed} failed)", "red")
        return text


class _Elapsed(ProgressColumn):
    """``elapsed 0:01:23``: time since the bar started, frozen when it completes."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))

    def render(self, task: Task) -> Text:
        return Text(f"elapsed {_clock(task.finished_time if task.finished else task.elapsed)}", "cyan")


class _Remaining(ProgressColumn):
    """``eta 0:00:12``: estimated time left (``eta -:--:--`` until a rate is known)."""

    max_refresh = 0.5

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))

    def render(self, task: Task) -> Text:
        left = 0.0 if task.finished else task.time_remaining
        return Text(f"eta {_clock(left)}", "cyan")


class ProgressBars:
    """A thread-safe progress sink: one bar for bytes (rate, retries) and one for items (tiles, shards).

    An item counts when it is complete (for a download: its files verified, and for
    GeoTIFF output converted); failures are counted on the bar and reported by the
    caller at the end, one line per cause, and retries are counted (logged with ``-v``).
    The display starts with the first bar, so a run that fails before any work
    prints nothing. Use as a context manager and pass the instance as ``progress=``.
    """

    def __init__(
        self,
        label: str = "tiles",
        *,
        console: Console | None = None,
        get_time: Callable[[], float] | None = None,
    ) -> None:
        self.console = console or stderr
        self.label = label
        self._progress = Progress(
            TextColumn("{task.description:<8}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=None),
            _Amount(),
            _Elapsed(),
            _Remaining(),
            console=self.console,
            transient=False,
            get_time=get_time,
        )
        self._lock = threading.Lock()
        self._started = False
        self._bytes: TaskID | None = None
        self._items: TaskID | None = None
        self.retries = 0
        self.failures = 0

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started:
            self._progress.stop()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._progress.start()

    def _bytes_bar(self) -> TaskID:
        if self._bytes is None:  # created first (hidden until its size is known): it sits on top
            self._bytes = self._progress.add_task("download", total=None, visible=False, unit="bytes")
        return self._bytes

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, PlanReady):  # (nothing to do: no bar)
                if event.label == "transfer":
                    if event.bytes:
                        self._start()
                        self._progress.reset(self._bytes_bar(), total=event.bytes, visible=True)
                elif self._items is None and event.items:
                    self._start()
                    self._bytes_bar()
                    self._items = self._progress.add_task(
                        self.label, total=event.items, unit=self.label, failed=0
                    )
            elif isinstance(event, BytesReceived):
                if self._bytes is not None:
                    self._progress.advance(self._bytes, event.n)
            elif isinstance(event, ItemDone | ItemSkipped):
                if isinstance(event, ItemSkipped) and self._bytes is not None:
                    self._progress.advance(self._bytes, event.bytes)
                if self._items is not None:
                    self._progress.advance(self._items, 1)
            elif isinstance(event, ItemFailed):
                self.failures += 1
                if self._items is not None:
                    self._progress.update(self._items, failed=self.failures)
            elif isinstance(event, Retrying):
                self.retries += 1
                if self._bytes is not None:
                    self._progress.update(self._bytes, retries=self.retries)
