"""Verified bytes (layer L3): the one :class:`Source` protocol, its HTTP and local-directory
implementations on one HTTP client, and the transfer engine.

Typical use::

    from geotessera.transfer import TransferItem, run, source_from_url

    with source_from_url("https://s3.us-west-2.amazonaws.com/tessera-embeddings") as src:
        report = run(src, [TransferItem(key, dest, expected_size=size)], workers=8)
    report.raise_for_failures()

Atomic writes, receipts and CRC64NVMe live in :mod:`geotessera.files`.
"""

from __future__ import annotations

from ._errors import TransferCancelledError, UnreachableError
from .engine import FailedItem, TransferError, TransferItem, TransferReport, run
from .http import RetryPolicy, parse_retry_after
from .order import queue_order, queue_windows
from .sources import (
    DEFAULT_S3_ENDPOINT,
    FetchResult,
    HttpSource,
    LocalSource,
    ObjectInfo,
    Source,
    Validator,
    source_from_url,
)
from .wrappers import CountingSource, OfflineSource

__all__ = [
    "DEFAULT_S3_ENDPOINT",
    "CountingSource",
    "FailedItem",
    "FetchResult",
    "HttpSource",
    "LocalSource",
    "ObjectInfo",
    "OfflineSource",
    "RetryPolicy",
    "Source",
    "TransferCancelledError",
    "TransferError",
    "TransferItem",
    "TransferReport",
    "UnreachableError",
    "Validator",
    "parse_retry_after",
    "queue_order",
    "queue_windows",
    "run",
    "source_from_url",
]
