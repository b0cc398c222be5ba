"""Files (layer L0): atomic writes, receipts, one temporary-name pattern, stale-temporary cleanup,
and the CRC64NVMe that receipts and downloads record.

Every writer of the package goes through here: downloaded tiles (:func:`atomic_write` with a
running checksum, then :func:`write_receipt`), exports and manifests (:func:`atomic_path` for
writers that open by name), the registry cache, Zarr shards and receipts, the Zarr chunk cache
and the sample store. See :mod:`.atomic` and :mod:`.receipts`. Writers of one directory in
several processes take :func:`directory_lock` (:mod:`.locks`).
"""

from __future__ import annotations

from ._names import STALE_AFTER_S, receipt_path
from .atomic import (
    AtomicFile,
    atomic_path,
    atomic_write,
    begin_path,
    commit_path,
    remove_stale_temps,
    remove_stale_temps_under,
    write_atomic,
)
from .checksum import Crc64Nvme, crc64nvme_b64, crc64nvme_file
from .locks import directory_lock
from .receipts import Receipt, is_complete, read_receipt, remove_receipt, write_receipt

__all__ = [
    "STALE_AFTER_S",
    "AtomicFile",
    "Crc64Nvme",
    "Receipt",
    "atomic_path",
    "atomic_write",
    "begin_path",
    "commit_path",
    "crc64nvme_b64",
    "crc64nvme_file",
    "directory_lock",
    "is_complete",
    "read_receipt",
    "receipt_path",
    "remove_receipt",
    "remove_stale_temps",
    "remove_stale_temps_under",
    "write_atomic",
    "write_receipt",
]
