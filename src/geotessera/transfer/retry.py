"""How transient failures are retried: :class:`RetryPolicy` and ``Retry-After`` parsing."""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ..errors import InvalidInputError

__all__ = ["RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth retrying."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried.

    - ``max_retries``: retries after the first attempt (default 5; 0 disables retrying);
    - ``initial_backoff_s``: delay before the first retry (default 0.5 s), doubled per retry,
      with jitter (each delay is drawn from [d/2, d]);
    - ``max_backoff_s``: cap on one delay, also on a server's ``Retry-After`` (default 20 s);
    - ``total_timeout_s``: no retry starts later than this after the first attempt (default 300 s).

    Retried: HTTP 429, 500, 502, 503, 504, connection errors and resets, read timeouts,
    truncated bodies. Never retried: 403, 404 and checksum failures.
    """

    max_retries: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    total_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InvalidInputError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("initial_backoff_s", "max_backoff_s", "total_timeout_s"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise InvalidInputError(f"{name} must be >= 0 seconds, got {value!r}")

    def backoff_s(self, retry: int, retry_after_s: float | None = None) -> float:
        """Delay in seconds before retry number ``retry`` (1-based).

        A server's ``Retry-After`` (seconds) wins over the computed backoff; both are capped
        at ``max_backoff_s``.
        """
        if retry_after_s is not None:
            return max(0.0, min(retry_after_s, self.max_backoff_s))
        base = min(self.max_backoff_s, self.initial_backoff_s * (2.0 ** max(0, retry - 1)))
        return random.uniform(base / 2.0, base)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (delta-seconds or HTTP date).

    Returns ``None`` when the header is absent or unparseable; never negative.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
