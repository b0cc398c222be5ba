"""The one HTTP client: pooled, retried downloads and ranged reads, verified by CRC64NVMe (urllib3).

One :class:`HttpClient` owns one ``urllib3.PoolManager`` (``maxsize`` = the number of
workers); everything geotessera fetches over HTTP goes through it: tiles, manifests and
Zarr chunks. A download is a GET with ``x-amz-checksum-mode: ENABLED``; the body is
streamed in ``chunk_size`` pieces into a sink (a temporary file or a buffer) while its
CRC64NVMe is computed, then compared with ``x-amz-checksum-crc64nvme``. Ranged reads
(:meth:`HttpClient.get_range`) carry no checksum (S3 sends none for a part of an object);
their callers check what they read (the Zarr shard index has its own crc32c).

Failure handling (:class:`RetryPolicy`, one loop in ``_failures.retrying``):

- retried, with exponential backoff and jitter, honouring ``Retry-After``: HTTP 429,
  500, 502, 503, 504, connection errors and resets, read timeouts, truncated bodies;
- after an interruption a download resumes with ``Range: bytes={done}-`` (guarded by
  ``If-Match: {etag}``) when the full-object checksum is already known, so the final
  CRC still covers the whole object; otherwise it restarts from byte 0;
- not retried: 403, 404 and other 4xx (:class:`SourceError` with ``status``), a
  checksum mismatch or a missing checksum header (:class:`IntegrityError`), a size
  that contradicts the caller's expected size (:class:`IntegrityError`).

Sinks, results and resume state live in ``_download.py``, the classification of failures
and the retry loop in ``_failures.py``; the public names are importable from here.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Final

import urllib3
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ..errors import IntegrityError, InvalidInputError
from ..progress import BytesReceived, ProgressSink, emit
from ._download import DownloadInfo, HeadInfo, MemorySink, ObjectState, Sink
from ._errors import TransferCancelledError
from ._failures import NETWORK_ERRORS, Transient, describe_network_error, retrying, status_error
from ._protocol import Validator
from .retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

__all__ = [
    "CHECKSUM_HEADER",
    "DEFAULT_CHUNK_SIZE",
    "RETRY_STATUSES",
    "DownloadInfo",
    "HttpClient",
    "MemorySink",
    "RetryPolicy",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

CHECKSUM_HEADER: Final = "x-amz-checksum-crc64nvme"
CHECKSUM_MODE_HEADER: Final = "x-amz-checksum-mode"
DEFAULT_CHUNK_SIZE: Final = 1024 * 1024
"""Bytes read from the socket per step (1 MiB): memory per download in flight. Measured on
loopback, 1 MiB reads sustain about 600-700 MB/s per stream through write + CRC, while 2-8 MiB
reads were often 2-3x slower (a fresh multi-MiB allocation per read)."""
_NO_RETRY: Final = RetryPolicy(max_retries=0)
FIRST_CONTACT_RETRIES: Final = 2
"""Retries of a refused connection, or a host name that does not resolve, to a host that has not
answered this client yet: a wrong or unreachable endpoint is reported in about a second, not
after the whole retry policy (8-15 s). Once a host has answered, its refusals are retried fully."""

_Slice = Callable[[bytes], bytes]
"""Cuts the requested range out of a whole-object answer (a server that ignored ``Range``)."""
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _refused(reason: BaseException) -> bool:
    """A connection refused, or a host name that does not resolve (not a timeout)."""
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return True
    seen: BaseException | None = reason
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Connection refused" in str(reason)


def _restart(sink: Sink, key: str, progress: ProgressSink | None) -> None:
    """Discard what was received of ``key``; progress sinks are told to take those bytes back."""
    if sink.size:
        emit(progress, BytesReceived(key=key, n=-sink.size))
    sink.restart()


class HttpClient:
    """A pooled, thread-safe HTTP client for verified downloads and ranged reads.

    ``pool_size`` is the number of connections kept per host (set it to the number of
    workers). Timeouts are in seconds: ``connect_timeout_s`` (default 5) to open a
    connection, ``timeout_s`` (default 60) between bytes while reading.
    """

    def __init__(
        self,
        *,
        pool_size: int = 8,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        headers: dict[str, str] | None = None,
    ) -> None:
        if pool_size < 1:
            raise InvalidInputError(f"pool_size must be >= 1, got {pool_size}")
        if chunk_size < 1:
            raise InvalidInputError(f"chunk_size must be >= 1 byte, got {chunk_size}")
        if not (timeout_s > 0 and connect_timeout_s > 0):
            raise InvalidInputError(
                f"timeouts must be > 0 seconds, got timeout_s={timeout_s!r}, "
                f"connect_timeout_s={connect_timeout_s!r}"
            )
        self.retry = retry or RetryPolicy()
        self.chunk_size = chunk_size
        self.timeout = urllib3.Timeout(connect=connect_timeout_s, read=timeout_s)
        base_headers = {"Accept-Encoding": "identity", "User-Agent": "geotessera"}
        base_headers.update(headers or {})
        self._headers = base_headers
        # urllib3 only follows redirects; every other retry is ours (so we can resume and emit events).
        self._redirects_only = urllib3.Retry(
            total=None,
            connect=0,
            read=0,
            other=0,
            status=0,
            redirect=5,
            raise_on_redirect=True,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self.pool = urllib3.PoolManager(num_pools=8, maxsize=pool_size, block=False, headers=base_headers)
        self._answered: set[str] = set()
        """Hosts (``host:port``) that have answered this client at least once."""

    def close(self) -> None:
        """Close pooled connections."""
        self.pool.clear()

    def _request(
        self, method: str, url: str, headers: dict[str, str], timeout_s: float | None = None
    ) -> urllib3.BaseHTTPResponse:
        host = urllib3.util.parse_url(url).netloc or ""
        try:
            resp = self.pool.request(
                method,
                url,
                headers={**self._headers, **headers},
                preload_content=False,
                decode_content=False,
                timeout=self.timeout if timeout_s is None else urllib3.Timeout(total=timeout_s),
                retries=self._redirects_only,
            )
        except MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
                cap = None if host in self._answered or not _refused(reason) else FIRST_CONTACT_RETRIES
                raise Transient(
                    f"cannot connect: {describe_network_error(exc)}", network=True, max_retries=cap
                ) from exc
            raise Transient(describe_network_error(exc), network=True) from exc
        except NETWORK_ERRORS as exc:
            raise Transient(describe_network_error(exc), network=True) from exc
        self._answered.add(host)
        return resp

    # -- HEAD -----------------------------------------------------------------------------

    def head(self, url: str, key: str) -> HeadInfo:
        """HEAD ``url`` (with retries); 404 and other errors raise :class:`SourceError`."""

        def attempt() -> HeadInfo:
            resp = self._request("HEAD", url, {CHECKSUM_MODE_HEADER: "ENABLED"})
            try:
                if resp.status != 200:
                    raise status_error(resp.status, url, key, resp)
                length = resp.headers.get("Content-Length")
                return HeadInfo(
                    size=int(length) if length and length.isdigit() else None,
                    crc64nvme=resp.headers.get(CHECKSUM_HEADER),
                    etag=resp.headers.get("ETag"),
                )
            finally:
                resp.release_conn()

        return retrying(self.retry, url, key, attempt)[0]

    # -- ranges ---------------------------------------------------------------------------

    def get_range(self, url: str, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` of the object (fewer at its end; ``b""`` past it)."""
        if length <= 0 or start < 0:
            if start < 0:
                raise InvalidInputError(f"range start must be >= 0, got {start}")
            return b""
        return self._ranged(
            url, key, f"bytes={start}-{start + length - 1}", lambda d: d[start : start + length]
        )

    def get_suffix(self, url: str, key: str, length: int) -> bytes:
        """The last ``length`` bytes of the object (all of it when shorter)."""
        if length <= 0:
            return b""
        return self._ranged(url, key, f"bytes=-{length}", lambda d: d[-length:])

    def _ranged(self, url: str, key: str, spec: str, from_whole: _Slice) -> bytes:
        """A ranged GET, retried; a server answering 200 (range ignored) is sliced here."""

        def attempt() -> bytes:
            resp = self._request("GET", url, {"Range": spec})
            complete = False
            try:
                if resp.status == 416:  # the range starts at or past the end of the object
                    complete = True
                    return b""
                if resp.status not in (200, 206):
                    raise status_error(resp.status, url, key, resp)
                try:
                    data = resp.read(decode_content=False)
                except NETWORK_ERRORS as exc:
                    raise Transient(
                        f"range read interrupted ({describe_network_error(exc)})", network=True
                    ) from exc
                length = resp.headers.get("Content-Length")
                if length is not None and length.strip().isdigit() and len(data) != int(length):
                    raise Transient(f"truncated body: received {len(data)} of {length} bytes", network=True)
                complete = True
                return data if resp.status == 206 else from_whole(data)
            finally:
                if not complete:
                    resp.close()
                resp.release_conn()

        return retrying(self.retry, url, key, attempt)[0]

    # -- GET ------------------------------------------------------------------------------

    def download(
        self,
        url: str,
        key: str,
        sink: Sink,
        *,
        expected_size: int | None = None,
        require_checksum: bool = True,
        progress: ProgressSink | None = None,
        cancel: threading.Event | None = None,
        validator: Validator | None = None,
        timeout_s: float | None = None,
    ) -> DownloadInfo:
        """Stream the object at ``url`` into ``sink`` and verify it.

        ``expected_size`` (bytes), when given, must equal the object's size. ``validator``
        makes the GET conditional: an unchanged object returns ``not_modified`` with nothing
        written. ``timeout_s``: one attempt bounded by it (no retries). Raises
        :class:`IntegrityError` on a checksum mismatch or (when ``require_checksum``) a
        missing checksum header, :class:`SourceError` on HTTP errors or when retries are
        exhausted, :class:`TransferCancelledError` when ``cancel`` is set.
        The sink then holds unverified bytes: the caller must discard them.
        """
        if sink.crc is None:
            raise InvalidInputError("download() needs a sink that computes CRC64NVMe (checksum=True)")
        state = ObjectState()
        policy = self.retry if timeout_s is None else _NO_RETRY

        def attempt() -> None:
            self._get_once(
                url, key, sink, state, expected_size, require_checksum, progress, cancel, validator, timeout_s
            )

        _, attempts = retrying(policy, url, key, attempt, progress=progress, cancel=cancel)
        crc = sink.crc
        actual = crc.b64 if crc is not None else ""
        if state.expected_crc is not None and actual != state.expected_crc and not state.not_modified:
            raise IntegrityError(
                f"CRC64NVMe mismatch for {key}: the server's checksum is {state.expected_crc}, "
                f"the {sink.size} bytes received hash to {actual}; the bytes were discarded. "
                "The data was corrupted in transit or changed during the download; try again."
            )
        return DownloadInfo(
            size=sink.size,
            crc64nvme=actual,
            verified=state.expected_crc is not None,
            attempts=attempts,
            resumed=state.resumed,
            etag=state.etag,
            last_modified=state.last_modified,
            not_modified=state.not_modified,
        )

    def _get_once(
        self,
        url: str,
        key: str,
        sink: Sink,
        state: ObjectState,
        expected_size: int | None,
        require_checksum: bool,
        progress: ProgressSink | None,
        cancel: threading.Event | None,
        validator: Validator | None,
        timeout_s: float | None,
    ) -> None:
        headers = {CHECKSUM_MODE_HEADER: "ENABLED"}
        if validator is not None and validator.etag:
            headers["If-None-Match"] = validator.etag
        elif validator is not None and validator.last_modified:  # RFC 9110: the ETag decides
            headers["If-Modified-Since"] = validator.last_modified
        offset = sink.size
        can_resume = state.known and (state.expected_crc is not None or state.etag is not None)
        if offset and not (can_resume and state.total is not None and offset < state.total):
            _restart(sink, key, progress)
            offset = 0
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if state.etag:
                headers["If-Match"] = state.etag
        resp = self._request("GET", url, headers, timeout_s)
        complete = False
        try:
            status = resp.status
            if status == 304 and validator:
                state.not_modified = True
                state.etag, state.last_modified = validator.etag, validator.last_modified
                complete = True
                return
            if status == 200:
                if offset:
                    log.debug("%s: server ignored the Range request; restarting from byte 0", key)
                    _restart(sink, key, progress)
                    offset = 0
                self._accept_full_response(key, resp, state, expected_size, require_checksum)
            elif status == 206 and offset:
                m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
                if (
                    not m
                    or int(m.group(1)) != offset
                    or (m.group(3) != "*" and int(m.group(3)) != state.total)
                ):
                    _restart(sink, key, progress)
                    state.forget()
                    raise Transient(f"unexpected Content-Range {resp.headers.get('Content-Range')!r}")
                state.resumed = True
                log.info("resuming %s at byte %d", key, offset)
            elif status in (412, 416) and offset:
                # The object changed (If-Match failed) or the range is invalid: start again.
                _restart(sink, key, progress)
                state.forget()
                raise Transient(f"HTTP {status} on resume; restarting from byte 0", retry_after_s=0.0)
            else:
                raise status_error(status, url, key, resp)

            self._stream_body(key, resp, sink, progress, cancel)
            if state.total is not None and sink.size != state.total:
                raise Transient(f"truncated body: received {sink.size} of {state.total} bytes", network=True)
            complete = True
        finally:
            if not complete:
                resp.close()  # the connection is in an unknown state: do not reuse it
            resp.release_conn()

    def _accept_full_response(
        self,
        key: str,
        resp: urllib3.BaseHTTPResponse,
        state: ObjectState,
        expected_size: int | None,
        require_checksum: bool,
    ) -> None:
        checksum = resp.headers.get(CHECKSUM_HEADER)
        if checksum is None and require_checksum:
            raise IntegrityError(
                f"no {CHECKSUM_HEADER} header in the response for {key}: the download cannot be "
                "verified, so it was rejected (the server may not be S3-compatible; "
                "pass require_checksum=False to accept unverified data)"
            )
        length = resp.headers.get("Content-Length")
        total = int(length) if length is not None and length.strip().isdigit() else None
        if expected_size is not None and total is not None and total != expected_size:
            raise IntegrityError(
                f"size mismatch for {key}: expected {expected_size} bytes, the server has {total}; "
                "nothing was written (the manifest may be out of date: refresh it)"
            )
        if checksum is None:
            log.debug("%s: no CRC64NVMe header; accepted unverified (this source does not send one)", key)
        state.expected_crc = checksum.strip() if checksum else None
        state.etag = resp.headers.get("ETag")
        state.last_modified = resp.headers.get("Last-Modified")
        state.total = total
        state.known = True

    def _stream_body(
        self,
        key: str,
        resp: urllib3.BaseHTTPResponse,
        sink: Sink,
        progress: ProgressSink | None,
        cancel: threading.Event | None,
    ) -> None:
        # read1 hands over what has arrived (up to chunk_size) at once: bytes received before a
        # reset reach the sink and its running checksum, so a retry resumes after them whatever
        # the object's size (a read of a whole chunk would lose them with the connection)
        chunk_size = self.chunk_size
        unreported = 0
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    raise TransferCancelledError(f"transfer of {key} cancelled")
                try:
                    data = resp.read1(chunk_size, decode_content=False)
                except NETWORK_ERRORS as exc:
                    raise Transient(
                        f"connection lost after {sink.size} bytes ({describe_network_error(exc)})",
                        network=True,
                    ) from exc
                if not data:
                    return
                sink.write(data)
                unreported += len(data)
                if unreported >= chunk_size:  # progress events stay one per chunk, not one per read
                    emit(progress, BytesReceived(key=key, n=unreported))
                    unreported = 0
        finally:
            if unreported:
                emit(progress, BytesReceived(key=key, n=unreported))
