"""How a failed HTTP attempt is classified (worth retrying, :class:`Transient`, or final) and the
one retry loop that acts on it (:func:`retrying`).

:class:`~.http.HttpClient` raises :class:`Transient` for network errors and retryable
statuses, which makes :func:`retrying` try again under the :class:`RetryPolicy`;
:func:`give_up` turns the last one into the error its caller sees.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ..errors import SourceError
from ..progress import ProgressSink, Retrying, emit
from ._errors import TransferCancelledError, UnreachableError
from .retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")


class Transient(Exception):
    """A failure worth retrying."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        network: bool = False,
        max_retries: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after_s = retry_after_s
        self.network = network
        self.max_retries = max_retries
        """At most this many retries for this failure, whatever the policy allows (None: no cap)."""


NETWORK_ERRORS = (Urllib3HTTPError, OSError, http.client.HTTPException)


def describe_network_error(exc: BaseException) -> str:
    """A short description of a urllib3 / socket error, for messages."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, NewConnectionError):
        # "...: Failed to establish a new connection: [Errno 111] Connection refused"
        text = str(exc)
        return text.split(": ", 1)[1] if ": " in text else text
    name = type(exc).__name__
    text = str(exc)
    return f"{name}: {text}" if text else name


def status_error(status: int, url: str, key: str, resp: urllib3.BaseHTTPResponse) -> Exception:
    """What HTTP ``status`` means: :class:`Transient` when worth retrying, else :class:`SourceError`."""
    if status in RETRY_STATUSES:
        return Transient(
            f"HTTP {status}",
            status=status,
            retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
        )
    if status == 404:
        return SourceError(f"{key} not found at {url} (HTTP 404)", status=404, url=url)
    if status == 403:
        return SourceError(
            f"access denied to {url} (HTTP 403): the object may not exist "
            "(S3 answers 403 for missing keys when listing is not public) or the bucket is not public",
            status=403,
            url=url,
        )
    return SourceError(f"unexpected HTTP {status} for {url}", status=status, url=url)


def give_up(url: str, key: str, exc: Transient, attempts: int, elapsed: float) -> SourceError:
    """The error raised when retrying ``key`` stops, after ``attempts`` attempts in ``elapsed`` s."""
    host = urlsplit(url).netloc
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.1f} s"
    if exc.network and exc.status is None and exc.reason.startswith("cannot connect"):
        return UnreachableError(
            f"cannot reach {host}: {exc.reason.removeprefix('cannot connect: ')} ({tries})", url=url
        )
    if exc.status is not None:
        return SourceError(
            f"{key}: server {host} answered HTTP {exc.status} ({tries}); try again later",
            status=exc.status,
            url=url,
        )
    return SourceError(f"download of {key} from {host} failed: {exc.reason} ({tries})", url=url)


def retrying(
    policy: RetryPolicy,
    url: str,
    key: str,
    attempt_fn: Callable[[], T],
    *,
    progress: ProgressSink | None = None,
    cancel: threading.Event | None = None,
) -> tuple[T, int]:
    """Call ``attempt_fn`` until it returns; ``(its result, attempts made)``.

    A :class:`Transient` failure is retried after ``policy``'s backoff (or the server's
    ``Retry-After``), with a ``Retrying`` event, until ``max_retries`` or ``total_timeout_s``
    runs out; then :func:`give_up`'s error is raised. Any other exception propagates at once.
    ``cancel`` set: :class:`TransferCancelledError` before the next attempt or during a wait.
    """
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        if cancel is not None and cancel.is_set():
            raise TransferCancelledError(f"transfer of {key} cancelled")
        try:
            return attempt_fn(), attempt
        except Transient as exc:
            retry = attempt  # this would be retry number `attempt`
            delay = policy.backoff_s(retry, exc.retry_after_s)
            elapsed = time.monotonic() - started
            limit = policy.max_retries
            if exc.max_retries is not None:
                limit = min(limit, exc.max_retries)
            if retry > limit or elapsed + delay > policy.total_timeout_s:
                raise give_up(url, key, exc, attempt, elapsed) from exc
            log.info("retrying %s in %.2f s (retry %d): %s", key, delay, retry, exc.reason)
            emit(progress, Retrying(key=key, attempt=retry, delay_s=delay, reason=exc.reason))
            if cancel is not None:
                if cancel.wait(delay):
                    raise TransferCancelledError(f"transfer of {key} cancelled") from exc
            elif delay > 0:
                time.sleep(delay)
