"""Progress events emitted by long operations, and the sink type that receives them.

Every long operation takes ``progress: ProgressSink | None``. Events may be
emitted from worker threads, so sinks must be thread-safe. The library never
imports a progress-bar library; the CLI renders events with rich.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlanReady:
    """Work is planned: ``items`` units (tiles, files) totalling ``bytes`` bytes (0 if unknown)."""

    items: int
    bytes: int
    label: str = ""


@dataclass(frozen=True, slots=True)
class BytesReceived:
    """``n`` more bytes were received or written for ``key`` (negative: bytes discarded for a restart)."""

    key: str
    n: int


@dataclass(frozen=True, slots=True)
class ItemDone:
    """One unit of work finished (``key`` names it, e.g. a tile or an object key)."""

    key: str
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class ItemSkipped:
    """One unit was already complete (``reason`` says why it was skipped)."""

    key: str
    reason: str
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class ItemFailed:
    """One unit failed; the batch goes on. ``error`` is a one-line message."""

    key: str
    error: str


@dataclass(frozen=True, slots=True)
class Retrying:
    """A request for ``key`` is retried after ``delay_s`` seconds because of ``reason``."""

    key: str
    attempt: int
    delay_s: float
    reason: str


Event = PlanReady | BytesReceived | ItemDone | ItemSkipped | ItemFailed | Retrying
ProgressSink = Callable[[Event], None]


def null_sink(event: Event) -> None:
    """A sink that ignores every event."""


def emit(progress: ProgressSink | None, event: Event) -> None:
    """Send ``event`` to ``progress`` if a sink was given."""
    if progress is not None:
        progress(event)
