"""A small S3-like HTTP server with scripted faults, for tests on loopback.

It serves a dict of objects at ``{url}/{key}``, answering like S3 does for anonymous,
path-style GETs: ``Content-Length``, ``ETag``, ``x-amz-checksum-crc64nvme`` when the
request carries ``x-amz-checksum-mode: ENABLED`` (not on ranged responses), ``Range``
(``bytes=a-b``, ``bytes=a-``, ``bytes=-n``: 206 + ``Content-Range``), ``If-Match`` (412) and
``If-None-Match`` (304) support, HEAD.

Faults are scripted per key and consumed in order; each applies to ``times``
requests (``None``: every request from then on)::

    with FaultServer({"a": data}) as server:
        server.script("a", Fault.status(503, times=2))   # two 503s, then the object
        server.script("b", Fault.corrupt(times=None))    # always a flipped byte

Faults: ``corrupt`` (a flipped byte), ``no_checksum`` and ``bad_checksum`` (the checksum header
dropped or altered), ``truncate`` (cut short under a correct ``Content-Length``), ``short`` (cut
short with a ``Content-Length`` that agrees), ``http_status`` (e.g. 500, 503 with ``Retry-After``),
``reset`` (TCP RST mid-body), ``stall`` (silent mid-body), ``trickle`` (slow pieces), ``slow``
(a delay before answering), ``ignore_range``. :meth:`FaultServer.from_tree` serves a directory.

Every request is recorded (``server.requests``), with the maximum number of requests
handled at once (``server.max_concurrent``).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import logging
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from awscrt.checksums import crc64nvme

log = logging.getLogger(__name__)


def crc64nvme_header(data: bytes) -> str:
    """The ``x-amz-checksum-crc64nvme`` value of ``data`` (computed independently of the library)."""
    return base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode("ascii")


@dataclass
class Fault:
    """One scripted misbehaviour; build with the class methods."""

    kind: str
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    delay_s: float = 0.0
    fraction: float = 0.5

    @classmethod
    def corrupt(cls, *, times: int | None = 1) -> Fault:
        """Correct headers, one byte of the body flipped."""
        return cls("corrupt", times=times)

    @classmethod
    def no_checksum(cls, *, times: int | None = 1) -> Fault:
        """The object without its ``x-amz-checksum-crc64nvme`` header."""
        return cls("no_checksum", times=times)

    @classmethod
    def http_status(cls, status: int, *, times: int | None = 1, retry_after: str | None = None) -> Fault:
        """An error status (e.g. 404, 403, 503, 429 with ``Retry-After``)."""
        return cls("status", times=times, status=status, retry_after=retry_after)

    @classmethod
    def reset(cls, *, fraction: float = 0.5, times: int | None = 1) -> Fault:
        """Send ``fraction`` of the body, then reset the connection (TCP RST)."""
        return cls("reset", times=times, fraction=fraction)

    @classmethod
    def truncate(cls, *, fraction: float = 0.5, times: int | None = 1) -> Fault:
        """Send the full ``Content-Length`` but only ``fraction`` of the body, then close."""
        return cls("truncate", times=times, fraction=fraction)

    @classmethod
    def slow(cls, delay_s: float, *, times: int | None = None) -> Fault:
        """Wait ``delay_s`` seconds before answering normally."""
        return cls("slow", times=times, delay_s=delay_s)

    @classmethod
    def bad_checksum(cls, *, times: int | None = 1) -> Fault:
        """The body intact, its ``x-amz-checksum-crc64nvme`` header that of other bytes."""
        return cls("bad_checksum", times=times)

    @classmethod
    def short(cls, *, fraction: float = 0.5, times: int | None = 1) -> Fault:
        """A complete-looking response of only ``fraction`` of the body (``Content-Length`` says so)."""
        return cls("short", times=times, fraction=fraction)

    @classmethod
    def stall(cls, delay_s: float, *, fraction: float = 0.5, times: int | None = 1) -> Fault:
        """Send ``fraction`` of the body, then nothing for ``delay_s`` seconds, then close."""
        return cls("stall", times=times, delay_s=delay_s, fraction=fraction)

    @classmethod
    def trickle(cls, delay_s: float, *, pieces: int = 20, times: int | None = None) -> Fault:
        """Send the body in ``pieces`` parts, ``delay_s`` seconds apart (slow but never silent for long)."""
        return cls("trickle", times=times, delay_s=delay_s, fraction=1 / pieces)

    @classmethod
    def ignore_range(cls, *, times: int | None = None) -> Fault:
        """Answer a Range request with the whole object (200), as some servers do."""
        return cls("ignore_range", times=times)


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received."""

    method: str
    key: str
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    @property
    def range(self) -> str | None:
        """The ``Range`` header, if any."""
        return self.headers.get("range")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fault server: " + format, *args)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    # -- plumbing ---------------------------------------------------------------------

    def _handle(self, *, head: bool) -> None:
        owner = self.server.owner
        key = unquote(urlsplit(self.path).path).lstrip("/")
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner._record(RequestRecord(self.command, key, headers))
        owner._enter()
        try:
            self._serve(owner, key, headers, head=head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            owner._leave()

    def _send_status(self, status: int, retry_after: str | None = None) -> None:
        body = f"<Error><Code>{status}</Code></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, owner: FaultServer, key: str, headers: dict[str, str], *, head: bool) -> None:
        fault = owner._next_fault(key)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay_s)
            fault = None
        if fault is not None and fault.kind == "status":
            self._send_status(fault.status, fault.retry_after)
            return
        data = owner.objects.get(key)
        if data is None:
            self._send_status(404)
            return
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        if headers.get("if-none-match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        start, status = 0, 200
        rng = headers.get("range")
        if rng and not (fault is not None and fault.kind == "ignore_range"):
            if headers.get("if-match") not in (None, etag):
                self._send_status(412)
                return
            spec = rng.removeprefix("bytes=")
            first, _, last = spec.partition("-")
            if first:
                start = int(first)
                end = int(last) if last else len(data) - 1
            else:  # a suffix: the last n bytes
                start, end = max(len(data) - int(last), 0), len(data) - 1
            if start >= len(data):
                self._send_status(416)
                return
            data = data[start : end + 1]
            status = 206
        full = owner.objects[key]
        if fault is not None and fault.kind == "short":
            data = data[: int(len(data) * fault.fraction)]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + len(data) - 1}/{len(full)}")
        wants_checksum = headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
        if status == 200 and wants_checksum and not (fault is not None and fault.kind == "no_checksum"):
            forged = fault is not None and fault.kind == "bad_checksum"
            self.send_header("x-amz-checksum-crc64nvme", crc64nvme_header(full + b"x" if forged else full))
        self.end_headers()
        if head:
            return
        if fault is not None and fault.kind == "corrupt" and data:
            body = bytearray(data)
            body[len(body) // 2] ^= 0xFF
            data = bytes(body)
        if fault is not None and fault.kind == "stall":
            self.wfile.write(data[: int(len(data) * fault.fraction)])
            self.wfile.flush()
            time.sleep(fault.delay_s)  # silent: the client's read timeout must fire first
            self.close_connection = True
            return
        if fault is not None and fault.kind == "trickle":
            step = max(1, int(len(data) * fault.fraction))
            for i in range(0, len(data), step):
                self.wfile.write(data[i : i + step])
                self.wfile.flush()
                time.sleep(fault.delay_s)
            return
        if fault is not None and fault.kind in ("reset", "truncate"):
            part = data[: max(1, int(len(data) * fault.fraction))]  # some progress, however little
            self.wfile.write(part)
            self.wfile.flush()
            if fault.kind == "reset":
                time.sleep(0.05)  # let the client read what was sent
                self._reset_connection()
            self.close_connection = True
            return
        self.wfile.write(data)

    def _reset_connection(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0, then close)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.wfile.close()
        self.rfile.close()
        self.connection.close()
        # The base class flushes and closes these after the request: give it harmless ones.
        self.wfile = io.BytesIO()
        self.rfile = io.BytesIO()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FaultServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fault server: error while handling %s", client_address, exc_info=True)


class FaultServer:
    """The server; use as a context manager (``start`` / ``stop``). Binds 127.0.0.1, port 0."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.requests: list[RequestRecord] = []
        self.max_concurrent = 0
        self._active = 0
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_tree(cls, root: Path, *, under: str = "") -> FaultServer:
        """A server of every file under ``root / under``, keyed by its path relative to ``root``."""
        base = root / under if under else root
        return cls({p.relative_to(root).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()})

    # -- configuration ----------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Serve ``data`` at ``key``."""
        self.objects[key] = data

    def script(self, key: str, *faults: Fault) -> None:
        """Queue ``faults`` for ``key`` (after any already queued)."""
        with self._lock:
            self._faults.setdefault(key, deque()).extend(faults)

    def clear_faults(self, key: str | None = None) -> None:
        """Forget queued faults (for ``key``, or all)."""
        with self._lock:
            if key is None:
                self._faults.clear()
            else:
                self._faults.pop(key, None)

    def requests_for(self, key: str, method: str = "GET") -> list[RequestRecord]:
        """Requests received for ``key``."""
        with self._lock:
            return [r for r in self.requests if r.key == key and r.method == method]

    # -- state used by the handler ----------------------------------------------------

    def _next_fault(self, key: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(key)
            if not queue:
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.popleft()
            return fault

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _enter(self) -> None:
        with self._lock:
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1

    # -- lifecycle --------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:{port}``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fault-server"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
