"""A thread-safe progress sink that records every event, for tests."""

from __future__ import annotations

import threading
from typing import Any

from geotessera.progress import Event


class Recorder:
    """A thread-safe progress sink."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        """The recorded events of one kind, in order."""
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]
