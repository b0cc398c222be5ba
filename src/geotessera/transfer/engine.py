"""Run a plan of transfers on a thread pool: plan -> :func:`run` -> :class:`TransferReport`.

- Concurrency is bounded by ``workers``; at most ``2 * workers`` items are queued on the
  pool at any time (items are fed lazily), and each running item streams in chunks, so
  memory is about ``workers * chunk size`` whatever the number of items.
- Items whose destination has a matching receipt are skipped without being read
  (``verify_existing=True`` re-hashes them first).
- One failed item never stops the others: failures are collected in the report. The
  exception is an unreachable host (connection refused / timed out after all
  retries): items not yet started then fail at once instead of each retrying.
- Ctrl-C (``KeyboardInterrupt``) cancels queued items, makes running ones stop at their
  next chunk (their temporary files are removed) and is re-raised.

Progress events: ``PlanReady`` first, then per item ``BytesReceived`` / ``Retrying``
(from worker threads) and one of ``ItemDone``, ``ItemSkipped``, ``ItemFailed``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import GeoTesseraError, InvalidInputError
from ..files import is_complete
from ..progress import ItemDone, ItemFailed, ItemSkipped, PlanReady, ProgressSink, emit
from ..tasks import map_bounded
from ._errors import TransferCancelledError, UnreachableError
from .sources import FetchResult, Source

__all__ = ["FailedItem", "TransferError", "TransferItem", "TransferReport", "run"]

log = logging.getLogger(__name__)

_MAX_KEYS_IN_MESSAGE = 20


@dataclass(frozen=True, slots=True)
class TransferItem:
    """One object to fetch: ``key`` from the source to the local file ``dest``.

    ``expected_size`` (bytes, e.g. from the manifest) is checked against the object and
    summed for the plan's total; ``label`` names the item for people (e.g. a tile).
    """

    key: str
    dest: Path
    expected_size: int | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dest, Path):
            object.__setattr__(self, "dest", Path(self.dest))
        if self.expected_size is not None and self.expected_size < 0:
            raise InvalidInputError(f"expected_size of {self.key} must be >= 0, got {self.expected_size}")

    @property
    def name(self) -> str:
        """``label`` if given, else ``key``."""
        return self.label or self.key


class FailedItem(NamedTuple):
    """A failed item: the item, a one-line message and the exception."""

    item: TransferItem
    message: str
    exception: BaseException


class TransferError(GeoTesseraError):
    """Some items of a transfer failed; ``failed`` lists them (item, message, exception)."""

    def __init__(self, message: str, failed: list[FailedItem]) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass
class TransferReport:
    """Outcome of :func:`run`: per-item results and totals."""

    done: list[TransferItem] = field(default_factory=list)
    """Items fetched and verified in this run."""
    skipped: list[TransferItem] = field(default_factory=list)
    """Items already complete (matching receipt)."""
    failed: list[FailedItem] = field(default_factory=list)
    """Items that failed, with a message and the exception."""
    results: list[FetchResult] = field(default_factory=list)
    """One :class:`FetchResult` per done item."""
    bytes_transferred: int = 0
    """Bytes written by this run."""
    bytes_skipped: int = 0
    """Bytes already present in skipped items."""
    seconds: float = 0.0
    """Wall-clock duration of the run."""

    @property
    def ok(self) -> bool:
        """True when no item failed."""
        return not self.failed

    @property
    def total(self) -> int:
        """Number of items in the plan."""
        return len(self.done) + len(self.skipped) + len(self.failed)

    @property
    def retries(self) -> int:
        """Requests retried over all done items."""
        return sum(r.attempts - 1 for r in self.results)

    def summary(self) -> str:
        """One line: counts, bytes, time and rate."""
        mb = self.bytes_transferred / 1e6
        rate = mb / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{len(self.done)} fetched, {len(self.skipped)} already complete, {len(self.failed)} failed; "
            f"{mb:.1f} MB in {self.seconds:.1f} s ({rate:.1f} MB/s)"
        )

    def raise_for_failures(self) -> None:
        """Raise :class:`TransferError` naming the failed keys if any item failed."""
        if not self.failed:
            return
        shown = [f"{f.item.key} ({f.message})" for f in self.failed[:_MAX_KEYS_IN_MESSAGE]]
        more = len(self.failed) - len(shown)
        tail = f"; and {more} more" if more > 0 else ""
        raise TransferError(
            f"{len(self.failed)} of {self.total} transfers failed: "
            + "; ".join(shown)
            + tail
            + ". Completed files are kept: rerun to fetch only the missing ones.",
            list(self.failed),
        )


class _Done(NamedTuple):
    result: FetchResult


class _Skipped(NamedTuple):
    size: int
    reason: str


class _Failed(NamedTuple):
    message: str
    exception: BaseException


_Outcome = _Done | _Skipped | _Failed


class _Run:
    """State shared by the workers of one :func:`run` call."""

    def __init__(self, source: Source, progress: ProgressSink | None, verify_existing: bool) -> None:
        self.source = source
        self.progress = progress
        self.verify_existing = verify_existing
        self.cancel = threading.Event()
        self._lock = threading.Condition()
        self._active = 0
        self.unreachable: UnreachableError | None = None

    def wait_idle(self) -> None:
        """Block until no item is being worked on (used after setting ``cancel``)."""
        with self._lock:
            self._lock.wait_for(lambda: self._active == 0)

    def transfer_one(self, item: TransferItem) -> _Outcome:
        """Skip, fetch or fail one item; never raises except on cancellation."""
        with self._lock:
            self._active += 1
        try:
            return self._transfer_one(item)
        finally:
            with self._lock:
                self._active -= 1
                self._lock.notify_all()

    def _transfer_one(self, item: TransferItem) -> _Outcome:
        try:
            if self.cancel.is_set():
                raise TransferCancelledError(f"transfer of {item.key} cancelled")
            with self._lock:
                unreachable = self.unreachable
            if unreachable is not None:
                return _Failed(f"not attempted: {unreachable}", unreachable)
            if is_complete(item.dest, item.expected_size, expected_key=item.key, verify=self.verify_existing):
                reason = "verified against its receipt" if self.verify_existing else "receipt matches"
                return _Skipped(item.dest.stat().st_size, reason)
            result = self.source.get(
                item.key,
                dest_path=item.dest,
                expected_size=item.expected_size,
                progress=self.progress,
                cancel=self.cancel,
            )
            return _Done(result)
        except TransferCancelledError:
            raise
        except UnreachableError as exc:
            with self._lock:
                if self.unreachable is None:
                    self.unreachable = exc
            return _Failed(str(exc), exc)
        except (GeoTesseraError, OSError) as exc:
            message = str(exc) if isinstance(exc, GeoTesseraError) else f"{type(exc).__name__}: {exc}"
            return _Failed(message, exc)
        except Exception as exc:  # a bug: keep the batch going, but log the traceback
            log.exception("unexpected error transferring %s", item.key)
            return _Failed(f"unexpected {type(exc).__name__}: {exc}", exc)


def _check_plan(items: list[TransferItem], workers: int) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    seen: dict[str, str] = {}
    for item in items:
        if not isinstance(item, TransferItem):
            raise InvalidInputError(f"plan items must be TransferItem, got {type(item).__name__}")
        dest = os.path.abspath(item.dest)
        if dest in seen and seen[dest] != item.key:
            raise InvalidInputError(f"two objects ({seen[dest]}, {item.key}) would be written to {item.dest}")
        seen[dest] = item.key


def _dedupe(items: list[TransferItem]) -> list[TransferItem]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in items:
        ident = (item.key, os.path.abspath(item.dest))
        if ident not in seen:
            seen.add(ident)
            unique.append(item)
    return unique


def run(
    source: Source,
    items: Iterable[TransferItem],
    *,
    workers: int = 8,
    progress: ProgressSink | None = None,
    verify_existing: bool = False,
) -> TransferReport:
    """Fetch every item of the plan from ``source``, ``workers`` at a time.

    Returns a :class:`TransferReport`; failures are reported, not raised (call
    ``report.raise_for_failures()`` for an exception). Raises :class:`InvalidInputError`
    for an invalid plan (bad ``workers``, two keys to one destination) and re-raises
    ``KeyboardInterrupt`` after cancelling.
    """
    plan = list(items)
    _check_plan(plan, workers)
    plan = _dedupe(plan)
    emit(
        progress, PlanReady(items=len(plan), bytes=sum(i.expected_size or 0 for i in plan), label="transfer")
    )
    report = TransferReport()
    started = time.monotonic()
    if not plan:
        return report
    state = _Run(source, progress, verify_existing)
    pool = ThreadPoolExecutor(max_workers=min(workers, len(plan)), thread_name_prefix="geotessera-transfer")
    try:
        map_bounded(
            pool,
            state.transfer_one,
            plan,
            limit=2 * workers,
            on_result=lambda item, outcome: _record(report, item, outcome, progress),
            poll_s=0.25,
        )
    except BaseException:
        # Ctrl-C (or an exception from the progress sink): stop queued items, let running
        # ones stop at their next chunk (their temporary files are removed), then re-raise.
        # Waiting on our own counter is robust even if the interrupt hit inside submit().
        state.cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        log.warning("transfer interrupted: stopping running downloads")
        state.wait_idle()
        raise
    finally:
        pool.shutdown(wait=True)
        report.seconds = time.monotonic() - started
    log.info("transfer finished: %s", report.summary())
    return report


def _record(
    report: TransferReport, item: TransferItem, outcome: _Outcome, progress: ProgressSink | None
) -> None:
    if isinstance(outcome, _Done):
        report.done.append(item)
        report.results.append(outcome.result)
        report.bytes_transferred += outcome.result.size
        emit(progress, ItemDone(key=item.key, bytes=outcome.result.size))
    elif isinstance(outcome, _Skipped):
        report.skipped.append(item)
        report.bytes_skipped += outcome.size
        emit(progress, ItemSkipped(key=item.key, reason=outcome.reason, bytes=outcome.size))
    else:
        report.failed.append(FailedItem(item, outcome.message, outcome.exception))
        # Failures are the caller's to report (the report lists them all): log at INFO only.
        log.info("failed %s: %s", item.name, outcome.message)
        emit(progress, ItemFailed(key=item.key, error=outcome.message))
