"""Receipts: what was verified about a file when it was written, so a rerun need not re-read it.

A receipt is a small JSON sidecar written *after* its data file, one per file, beside it:
``{dir}/.{name}.receipt.json`` holding ``{"format", "size", "crc64nvme", "key", "written_at"}``.
One file per data file (rather than one per directory) keeps concurrent writers in one
directory independent and makes a receipt's lifetime that of its file. Before a data file is
replaced its old receipt is deleted (:func:`~.atomic.atomic_write` does it), so a crash between
the data rename and the new receipt leaves a file without a receipt (fetched again on rerun),
never a stale receipt.

:func:`is_complete` trusts a file when its receipt matches the file's current size (and the
expected size / CRC / key when given) without reading the data; ``verify=True`` re-hashes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from ._names import receipt_path
from .atomic import write_atomic
from .checksum import crc64nvme_file

__all__ = ["Receipt", "is_complete", "read_receipt", "receipt_path", "remove_receipt", "write_receipt"]

log = logging.getLogger(__name__)

RECEIPT_FORMAT: Final = "geotessera-receipt/1"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What was verified about a file when it was written."""

    size: int
    """File size in bytes."""
    crc64nvme: str
    """CRC64NVMe of the file, S3 header form (base64 of 8 big-endian bytes)."""
    key: str | None = None
    """Source object key the file came from, if any."""
    written_at: str = ""
    """ISO-8601 UTC time the receipt was written."""


def read_receipt(path: str | os.PathLike[str]) -> Receipt | None:
    """The receipt of the file ``path``, or ``None`` if it is absent or unreadable."""
    rp = receipt_path(path)
    try:
        raw = json.loads(rp.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable receipt %s: %s", rp, exc)
        return None
    if (
        not isinstance(raw, dict)
        or raw.get("format") != RECEIPT_FORMAT
        or not isinstance(raw.get("size"), int)
        or not isinstance(raw.get("crc64nvme"), str)
    ):
        log.warning("ignoring receipt %s: unexpected content", rp)
        return None
    key = raw.get("key")
    return Receipt(
        size=raw["size"],
        crc64nvme=raw["crc64nvme"],
        key=key if isinstance(key, str) else None,
        written_at=str(raw.get("written_at", "")),
    )


def write_receipt(
    path: str | os.PathLike[str], *, size: int, crc64nvme: str, key: str | None = None
) -> Receipt:
    """Record (atomically) that ``path`` holds ``size`` bytes with checksum ``crc64nvme``.

    Call only after the data file itself is in place.
    """
    receipt = Receipt(
        size=size,
        crc64nvme=crc64nvme,
        key=key,
        written_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    body = {"format": RECEIPT_FORMAT, "size": size, "crc64nvme": crc64nvme, "key": key}
    body["written_at"] = receipt.written_at
    write_atomic(receipt_path(path), json.dumps(body, sort_keys=True).encode("utf-8"), fsync=False)
    return receipt


def remove_receipt(path: str | os.PathLike[str]) -> None:
    """Delete the receipt of ``path`` if there is one."""
    with contextlib.suppress(FileNotFoundError):
        receipt_path(path).unlink()


def is_complete(
    path: str | os.PathLike[str],
    expected_size: int | None = None,
    expected_crc: str | None = None,
    *,
    expected_key: str | None = None,
    verify: bool = False,
) -> bool:
    """Whether ``path`` is a complete, verified file that need not be fetched again.

    True only when the file exists and its receipt records the file's current size,
    and, when given, ``expected_size`` (bytes), ``expected_crc`` (S3 header form) and
    ``expected_key`` (the object it was fetched from: a tile of another dataset at the
    same local path is not complete).
    The data is not read unless ``verify=True``, which re-hashes the file and compares
    it with the receipt.
    """
    p = Path(path)
    receipt = read_receipt(p)
    if receipt is None:
        return False
    try:
        st = p.stat()
    except OSError:
        return False
    if st.st_size != receipt.size:
        log.debug("receipt of %s records %d bytes, file has %d", p, receipt.size, st.st_size)
        return False
    if expected_size is not None and receipt.size != expected_size:
        return False
    if expected_crc is not None and receipt.crc64nvme != expected_crc:
        return False
    if expected_key is not None and receipt.key != expected_key:
        log.info("%s was fetched from %s, not %s: fetching again", p, receipt.key, expected_key)
        return False
    if verify:
        actual = crc64nvme_file(p)
        if actual != receipt.crc64nvme:
            log.warning(
                "%s does not match its receipt (CRC64NVMe %s, recorded %s)", p, actual, receipt.crc64nvme
            )
            return False
    return True
