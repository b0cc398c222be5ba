"""The manifest cache: atomic writes, URL + ETag sidecars, conditional refresh of one object."""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CorruptDataError, SourceError
from ..files import write_atomic
from ..transfer import Source, Validator

log = logging.getLogger(__name__)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def read_sidecar(path: Path, url: str) -> Validator | None:
    """Validator of a cached file fetched from ``url``; None when absent, unreadable or of another URL."""
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("url") != url or not path.is_file():
        return None
    return Validator(meta.get("etag"), meta.get("last_modified"))


def _store(path: Path, url: str, data: bytes, validator: Validator) -> None:
    """Cache ``data`` fetched from ``url`` (checked to be Parquet first), then its sidecar."""
    try:
        pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise CorruptDataError(f"{url} is not a valid Parquet file ({exc}); not cached") from exc
    write_atomic(path, data)
    meta = {
        "url": url,
        "etag": validator.etag,
        "last_modified": validator.last_modified,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_atomic(_sidecar(path), json.dumps(meta, indent=1).encode())


@dataclass(frozen=True)
class Remote:
    """One remote manifest object: its source, key, URL and cache path."""

    source: Source
    key: str
    url: str
    cache: Path

    def refresh(self, timeout_s: float | None, *, force: bool = False) -> bool:
        """Fetch if changed (always, with ``force``) and update the cache; True when new bytes were cached.

        ``timeout_s``: one conditional attempt bounded by it (the freshness check); None: a
        GET retried under the source's policy, like every read (a first download).
        """
        validator = None if force else read_sidecar(self.cache, self.url)
        data, new = self.source.read_if_changed(self.key, validator, timeout_s=timeout_s)
        if data is None:
            log.debug("%s unchanged (%s)", self.url, validator)
            return False
        _store(self.cache, self.url, data, new)
        log.info("cached %s (%d bytes) at %s", self.url, len(data), self.cache)
        return True


def refresh_both(manifest: Remote, landmasks: Remote, timeout_s: float, out: dict[str, Any]) -> None:
    """Thread body of the freshness check; records outcomes in ``out``, never raises."""
    for name, remote in (("manifest", manifest), ("landmasks", landmasks)):
        try:
            out[name] = remote.refresh(timeout_s)
        except SourceError as exc:
            if name == "landmasks" and exc.status == 404:
                log.debug("no landmasks manifest at %s", remote.url)
            else:
                out.setdefault("errors", []).append(str(exc))
        except Exception as exc:  # a background check must never break start-up
            out.setdefault("errors", []).append(f"{remote.url}: {type(exc).__name__}: {exc}")
