"""What is retried (:data:`RETRY_STATUSES`) and ``Retry-After`` parsing; the policy itself,
:class:`~geotessera.config.RetryPolicy`, comes with the settings."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Final

from ..config import RetryPolicy

__all__ = ["RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth retrying."""


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
