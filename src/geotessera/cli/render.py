"""Rendering for the CLI: a rich progress sink and end-of-run summaries (stderr)."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from ..progress import BytesReceived, Event, ItemDone, ItemFailed, ItemSkipped, PlanReady, Retrying

stderr = Console(stderr=True, soft_wrap=True)
stdout = Console(soft_wrap=True)


class _Amount(ProgressColumn):
    """Bytes (with rate) for the download bar, a count for item bars."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes, self._speed, self._count = DownloadColumn(), TransferSpeedColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))
        return Text.assemble(self._count.render(task), " ", task.fields.get("unit", ""))


class ProgressBars:
    """A thread-safe progress sink: one bar for bytes (rate, ETA) and one for tiles.

    Use as a context manager and pass the instance as ``progress=``.
    """

    def __init__(self, label: str = "tiles", *, console: Console | None = None) -> None:
        self.console = console or stderr
        self.label = label
        self._progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            _Amount(),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._bytes: TaskID | None = None
        self._items: TaskID | None = None
        self.retries = 0
        self.failures = 0
        self.show_failures = 3

    def __enter__(self) -> ProgressBars:
        self._progress.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, PlanReady):
                if event.label == "transfer":
                    if self._bytes is None and event.bytes:
                        self._bytes = self._progress.add_task("download", total=event.bytes, unit="bytes")
                elif self._items is None and event.items:
                    self._items = self._progress.add_task(self.label, total=event.items, unit=self.label)
            elif isinstance(event, BytesReceived):
                if self._bytes is not None:
                    self._progress.advance(self._bytes, event.n)
            elif isinstance(event, ItemDone | ItemSkipped | ItemFailed):
                if isinstance(event, ItemSkipped) and self._bytes is not None:
                    self._progress.advance(self._bytes, event.bytes)
                if self._items is not None:
                    self._progress.advance(self._items, 1)
                if isinstance(event, ItemFailed):
                    self.failures += 1
                    if self.failures <= self.show_failures:
                        self._progress.console.print(
                            f"[red]failed[/red] {event.key}: {event.error}", highlight=False
                        )
                    elif self.failures == self.show_failures + 1:
                        self._progress.console.print("[red]more failures[/red]: listed at the end")
            elif isinstance(event, Retrying):
                self.retries += 1
                self._progress.console.print(
                    f"[yellow]retry[/yellow] {event.key} in {event.delay_s:.1f} s ({event.reason})",
                    highlight=False,
                )
