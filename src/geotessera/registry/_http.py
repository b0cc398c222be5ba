"""Tiny manifest fetchers: conditional HTTP GET (urllib3) and a local directory.

These exist so the registry's freshness check can make a bounded conditional GET
(``If-None-Match`` / ``If-Modified-Since``), which the transfer engine does not offer;
the checksum is the transfer layer's CRC64NVMe.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import urllib3

from ..errors import IntegrityError, SourceError
from ..transfer._failures import describe_network_error
from ..transfer.checksum import crc64nvme_b64

log = logging.getLogger(__name__)

#: Connect / read timeouts (seconds) of a first, unconditional manifest download.
FETCH_CONNECT_TIMEOUT_S = 10.0
FETCH_READ_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Validator:
    """HTTP cache validators of one object: ``ETag`` and/or ``Last-Modified`` (verbatim header text)."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


class ManifestSource(Protocol):
    """What the registry needs from a source: whole small objects by key (relative to a base)."""

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes (verified when the source can verify); raises SourceError."""
        ...


@runtime_checkable
class ConditionalSource(Protocol):
    """Optional hook of a source: a conditional GET bounded by ``timeout_s`` seconds.

    Returns ``(None, validator)`` when the object is unchanged (HTTP 304), else
    ``(bytes, new validator)``. ``validator=None`` makes it an ordinary GET.
    """

    def fetch_if_modified(
        self, key: str, validator: Validator | None, timeout_s: float
    ) -> tuple[bytes | None, Validator]: ...


def is_http_url(url: str) -> bool:
    """True for ``http://`` and ``https://`` URLs."""
    return urlsplit(url).scheme in ("http", "https")


def local_path_of(url: str) -> Path | None:
    """The filesystem path of a plain path or ``file://`` URL; ``None`` for other schemes."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):  # C:\...
        return Path(url)
    return None


def _header(headers: urllib3.HTTPHeaderDict, name: str) -> str | None:
    value = headers.get(name)
    return str(value) if value else None


def _check_crc(url: str, data: bytes, headers: urllib3.HTTPHeaderDict, *, require: bool) -> None:
    """Verify ``x-amz-checksum-crc64nvme``; a missing header is rejected when ``require`` (S3)."""
    expected = _header(headers, "x-amz-checksum-crc64nvme")
    if expected is None:
        if require:
            raise IntegrityError(
                f"{url}: the response carries no x-amz-checksum-crc64nvme header, so it cannot be "
                "verified; not cached"
            )
        log.info("%s: no CRC64NVMe header; accepted unverified (this source does not send one)", url)
        return
    got = crc64nvme_b64(data)
    if got != expected:
        raise IntegrityError(f"{url}: CRC64NVMe mismatch (expected {expected}, got {got}); not cached")


class HttpManifestSource:
    """Manifest objects under an HTTP(S) base URL, fetched with urllib3.

    ``read_bytes`` retries transient failures (429, 5xx, resets) a few times;
    ``fetch_if_modified`` makes one attempt bounded by its ``timeout_s``.
    The CRC64NVMe header is verified; without ``require_checksum`` (servers that send
    none, such as Source Cooperative) a response lacking it is accepted.
    """

    def __init__(
        self, base_url: str, *, pool: urllib3.PoolManager | None = None, require_checksum: bool = True
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.require_checksum = require_checksum
        self._pool = pool or urllib3.PoolManager(num_pools=2, maxsize=2)

    def url_for(self, key: str) -> str:
        """Full URL of ``key``."""
        return f"{self.base_url}/{key.lstrip('/')}"

    def read_bytes(self, key: str) -> bytes:
        data, _ = self._get(key, None, None)
        if data is None:  # a 304 without a validator: a misbehaving server
            raise SourceError(f"GET {self.url_for(key)} answered 304 to an unconditional request")
        return data

    def fetch_if_modified(
        self, key: str, validator: Validator | None, timeout_s: float
    ) -> tuple[bytes | None, Validator]:
        return self._get(key, validator, timeout_s)

    def _get(
        self, key: str, validator: Validator | None, timeout_s: float | None
    ) -> tuple[bytes | None, Validator]:
        url = self.url_for(key)
        headers = {"x-amz-checksum-mode": "ENABLED"}
        if validator is not None and validator.etag:
            headers["If-None-Match"] = validator.etag
        if validator is not None and validator.last_modified:
            headers["If-Modified-Since"] = validator.last_modified
        if timeout_s is None:
            timeout = urllib3.Timeout(connect=FETCH_CONNECT_TIMEOUT_S, read=FETCH_READ_TIMEOUT_S)
            retries: urllib3.Retry | bool = urllib3.Retry(
                total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504), redirect=3
            )
        else:
            timeout = urllib3.Timeout(total=timeout_s)
            retries = urllib3.Retry(total=0, redirect=3, raise_on_status=False)
        try:
            resp = self._pool.request("GET", url, headers=headers, timeout=timeout, retries=retries)
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"cannot reach {url}: {describe_network_error(exc)}", url=url) from exc
        new = Validator(_header(resp.headers, "ETag"), _header(resp.headers, "Last-Modified"))
        if resp.status == 304:
            return None, validator or new
        if resp.status != 200:
            raise SourceError(f"GET {url} answered HTTP {resp.status}", status=resp.status, url=url)
        _check_crc(url, resp.data, resp.headers, require=self.require_checksum)
        return resp.data, new


class LocalManifestSource:
    """Manifest objects under a local directory (a mirror of the bucket layout)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def url_for(self, key: str) -> str:
        return str(self.root / key)

    def read_bytes(self, key: str) -> bytes:
        path = self.root / key
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise SourceError(f"{path} does not exist", status=404, url=str(path)) from exc
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}", url=str(path)) from exc
