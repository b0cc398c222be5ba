"""CRC64NVMe of every file of a sample store, computed once and kept beside it.

The sidecar ``DIR/sample_checksums.json`` maps each file (its path relative to ``DIR``) to
its size, modification and change times (nanoseconds) and CRC64NVMe (S3 header form). An
entry is trusted only while the file's size and both times are unchanged: a rebuilt, edited
or replaced file gets new times and is hashed again, so a rebuilt store recomputes. ``sample
build`` writes the sidecar as its last step; ``sample serve`` reuses it, hashes what is new
or changed (a Zarr store built into ``DIR`` later, say) and writes it back when it can.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..files import crc64nvme_file
from ._writers import _atomic

log = logging.getLogger(__name__)

SIDECAR: Final = "sample_checksums.json"
FORMAT: Final = "geotessera-sample-checksums/1"
_HASH_WORKERS: Final = 2


@dataclass(frozen=True, slots=True)
class StoreFile:
    """One file to serve: its object key relative to the tree, path, size, mtime and CRC64NVMe."""

    rel: str
    path: Path
    size: int
    mtime: float
    crc64nvme: str


def iter_files(directory: Path, exclude: Collection[str] = ()) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every regular file under ``directory`` as (relative posix path, path, stat), sorted.

    Top-level entries named in ``exclude`` are skipped (and so are their contents).
    """
    for top in sorted(directory.iterdir()):
        if top.name in exclude:
            continue
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in paths:
            yield path.relative_to(directory).as_posix(), path, path.stat()


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _read_sidecar(path: Path) -> dict[str, list[Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable checksum sidecar %s: %s", path, exc)
        return {}
    files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
    return files if isinstance(files, dict) else {}


def _write_sidecar(path: Path, files: dict[str, list[Any]]) -> None:
    doc = {"format": FORMAT, "fields": ["size", "mtime_ns", "ctime_ns", "crc64nvme"], "files": files}
    try:
        with _atomic(path) as tmp:
            tmp.write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:  # a read-only store is still served; it is hashed again next time
        log.warning("could not write the checksum sidecar %s: %s", path, exc)


def checksums(
    directory: Path,
    files: Iterable[tuple[str, Path, os.stat_result]],
    *,
    sidecar: Path | None = None,
    workers: int = _HASH_WORKERS,
) -> list[StoreFile]:
    """The CRC64NVMe of ``files`` (from :func:`iter_files` on ``directory``), in their order.

    With ``sidecar``, entries whose size and times still match are reused, the others are
    computed (``workers`` threads, 8 MiB reads) and the sidecar is rewritten if anything
    changed; entries of files that no longer exist are dropped from it.
    """
    listed = list(files)
    known = _read_sidecar(sidecar) if sidecar is not None else {}
    todo = [(rel, path, st) for rel, path, st in listed if known.get(rel, [None])[:3] != _stamp(st)]
    if todo:
        log.info("computing CRC64NVMe of %d files (%d bytes)", len(todo), sum(st.st_size for *_, st in todo))
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="sample-crc") as pool:
        fresh = dict(
            zip((rel for rel, *_ in todo), pool.map(crc64nvme_file, (p for _, p, _ in todo)), strict=True)
        )
    entries = dict(known)
    for rel, _, st in todo:
        entries[rel] = [*_stamp(st), fresh[rel]]
    listed_rels = {rel for rel, *_ in listed}
    gone = [rel for rel in entries if rel not in listed_rels and not (directory / rel).is_file()]
    for rel in gone:
        del entries[rel]
    if sidecar is not None and (todo or gone):
        _write_sidecar(sidecar, entries)
    return [StoreFile(rel, path, st.st_size, st.st_mtime, entries[rel][3]) for rel, path, st in listed]


def write_store_checksums(root: Path, exclude: Collection[str]) -> int:
    """Hash every file of the store at ``root`` into its sidecar (``sample build``); returns the count."""
    return len(checksums(root, iter_files(root, exclude), sidecar=root / SIDECAR))
