"""Progress of the visual functions: the published ``progress_callback(current, total, status)``
and the project's ``progress=`` events, fed from one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..progress import ItemDone, PlanReady, ProgressSink, emit

ProgressCallback = Callable[[float, float, str], object]


@dataclass
class Reporter:
    """Reports steps to a published-style callback and to a progress sink (either may be None).

    ``plan(n, label)`` announces ``n`` items; ``done(key, status)`` reports one finished.
    """

    callback: ProgressCallback | None = None
    sink: ProgressSink | None = None
    total: int = 0
    current: int = 0

    def plan(self, items: int, label: str) -> None:
        self.total, self.current = items, 0
        emit(self.sink, PlanReady(items, 0, label))
        self.status(f"{label}: 0/{items}")

    def done(self, key: str, status: str | None = None) -> None:
        self.current += 1
        emit(self.sink, ItemDone(key))
        self.status(status or f"{key} ({self.current}/{self.total})")

    def status(self, text: str) -> None:
        if self.callback is not None:
            self.callback(self.current, max(self.total, 1), text)
