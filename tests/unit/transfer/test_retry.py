"""RetryPolicy: validation, exponential backoff with jitter, Retry-After parsing and capping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from geotessera.errors import InvalidInputError
from geotessera.transfer import RetryPolicy, parse_retry_after


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"initial_backoff_s": -0.1},
        {"max_backoff_s": float("nan")},
        {"total_timeout_s": -1},
    ],
)
def test_invalid(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    p = RetryPolicy(initial_backoff_s=1.0, max_backoff_s=5.0)
    for retry, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        delays = [p.backoff_s(retry) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_retry_after_wins_but_is_capped() -> None:
    p = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=3.0)
    assert p.backoff_s(1, retry_after_s=2.0) == 2.0
    assert p.backoff_s(1, retry_after_s=3600.0) == 3.0
    assert p.backoff_s(1, retry_after_s=0.0) == 0.0


def test_parse_retry_after_seconds() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0


def test_parse_retry_after_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "Mon, 99 Foo 2025"])
def test_parse_retry_after_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None
