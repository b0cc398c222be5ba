"""Verified bytes (layer L3): sources, CRC64NVMe, atomic writes with receipts, the transfer engine.

Typical use::

    from geotessera.transfer import TransferItem, run, source_from_url

    with source_from_url("https://s3.us-west-2.amazonaws.com/tessera-embeddings") as src:
        report = run(src, [TransferItem(key, dest, expected_size=size)], workers=8)
    report.raise_for_failures()
"""

from __future__ import annotations

from ._errors import TransferCancelledError, UnreachableError
from .atomic import AtomicFile, Receipt, atomic_write, is_complete, read_receipt, receipt_path, write_receipt
from .checksum import Crc64Nvme, crc64nvme_b64, crc64nvme_file
from .engine import FailedItem, TransferError, TransferItem, TransferReport, run
from .http import RetryPolicy, parse_retry_after
from .sources import FetchResult, HttpSource, LocalSource, ObjectInfo, Source, source_from_url

__all__ = [
    "AtomicFile",
    "Crc64Nvme",
    "FailedItem",
    "FetchResult",
    "HttpSource",
    "LocalSource",
    "ObjectInfo",
    "Receipt",
    "RetryPolicy",
    "Source",
    "TransferCancelledError",
    "TransferError",
    "TransferItem",
    "TransferReport",
    "UnreachableError",
    "atomic_write",
    "crc64nvme_b64",
    "crc64nvme_file",
    "is_complete",
    "parse_retry_after",
    "read_receipt",
    "receipt_path",
    "run",
    "source_from_url",
    "write_receipt",
]
