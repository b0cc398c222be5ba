"""The moto S3 server behind :class:`~geotessera.sample.serve.SampleServer`.

- :class:`_QuietMotoServer` wraps moto's ``ThreadedMotoServer``: it binds its socket first
  (so a bind error is raised instead of hanging), routes werkzeug's request log to the
  ``geotessera.sample.serve`` logger, serves moto's S3 application alone (no other AWS
  service is reachable through it) and refuses every method but GET and HEAD
  (:func:`_read_only`), whatever the request's headers or signature.
- :func:`register_file` puts a file into a moto bucket *without reading it*: the object is a
  :class:`FakeKey` whose value is a :class:`FileBody`, a byte range of the file that is read
  in 1 MiB pieces only while a response streams it. moto still answers every request (its
  headers, ranges, conditional requests, listings, errors); it just never holds the bytes.
  Size, CRC64NVMe and ETag come from the caller, computed once (see ``_checksums``).

Needs the ``sample`` extra.
"""

from __future__ import annotations

import base64
import functools
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import SourceError

# The request log keeps the logger name it had when this code lived in serve.py.
_log = logging.getLogger("geotessera.sample.serve")

_READ_METHODS = frozenset({"GET", "HEAD"})
READ_CHUNK = 1024 * 1024

_ACCESS_DENIED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>This bucket is read-only: only GET and HEAD requests are served</Message></Error>"
)


def _read_only(app: Callable[..., Any]) -> Callable[..., Any]:
    """WSGI wrapper: any method other than GET/HEAD gets 403, signed or not, whatever its headers."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = str(environ.get("REQUEST_METHOD", "")).upper()
        if method not in _READ_METHODS:
            start_response(
                "403 Forbidden",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(_ACCESS_DENIED_XML)))],
            )
            return [_ACCESS_DENIED_XML]
        return app(environ, start_response)

    return wrapped


class FileBody:
    """``length`` bytes of the file at ``path`` from ``start``: a response body read while iterated.

    moto treats it as the object's value: ``len()`` gives the size, a slice gives a sub-range
    (moto's Range handling), iterating yields the bytes in 1 MiB pieces. A file that has
    become shorter than registered ends the iteration with an ``OSError`` (the connection is
    cut rather than a short body sent as complete).
    """

    __slots__ = ("_length", "_path", "_start")

    def __init__(self, path: Path, start: int, length: int) -> None:
        self._path, self._start, self._length = path, start, max(0, length)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, item: slice) -> FileBody:
        if not isinstance(item, slice):
            raise TypeError("a FileBody is sliced by byte ranges only")
        start, stop, step = item.indices(self._length)
        if step != 1:
            raise ValueError("a FileBody slice must be contiguous")
        return FileBody(self._path, self._start + start, stop - start)

    def __iter__(self) -> Iterator[bytes]:
        if not self._length:
            return
        left = self._length
        with open(self._path, "rb", buffering=0) as fh:
            fh.seek(self._start)
            while left:
                piece = fh.read(min(READ_CHUNK, left))
                if not piece:
                    raise OSError(f"{self._path} is shorter than when it was registered")
                left -= len(piece)
                yield piece

    def __bytes__(self) -> bytes:
        return b"".join(self)


def _etag(crc64nvme: str, size: int) -> str:
    """A content ETag without hashing the file again: CRC64NVMe and size as 32 hex digits."""
    crc = int.from_bytes(base64.b64decode(crc64nvme), "big")
    return f"{crc:016x}{size:016x}"


@functools.cache
def _disk_key_class() -> type[Any]:
    fake_key: type[Any] = require("moto.s3.models", "sample").FakeKey

    class DiskKey(fake_key):
        """A moto object whose bytes stay in a file (see :class:`FileBody`)."""

        def __init__(self, path: Path, size: int, **kwargs: Any) -> None:
            self._path, self._size = path, size
            super().__init__(value=b"", **kwargs)
            self.contentsize = size

        @property
        def value(self) -> FileBody:
            return FileBody(self._path, 0, self._size)

        @value.setter
        def value(self, new_value: bytes) -> None:
            if new_value:  # moto's constructor sets b""; anything else would be a write
                raise PermissionError("sample store objects are read-only")

        @property
        def size(self) -> int:
            return self._size

    return DiskKey


def _s3_backend() -> Any:
    account: str = require("moto.core", "sample").DEFAULT_ACCOUNT_ID
    models = require("moto.s3.models", "sample")
    return models.s3_backends[account]["aws"]


def create_bucket(bucket: str, region: str, policy: str) -> Any:
    """Create ``bucket`` in moto's backend (in this process) with a bucket policy; returns it."""
    backend = _s3_backend()
    try:
        backend.create_bucket(bucket, region)
    except Exception as exc:  # moto's BucketAlreadyExists: a server of this process was not stopped
        if type(exc).__name__ != "BucketAlreadyExists":
            raise SourceError(f"creating bucket {bucket!r} failed: {exc}") from exc
        _log.warning("bucket %s already existed in this process; emptying it", bucket)
        delete_bucket(bucket)
        backend.create_bucket(bucket, region)
    backend.put_bucket_policy(bucket, policy.encode("utf-8"))
    return backend.get_bucket(bucket)


def delete_bucket(bucket: str) -> None:
    """Remove ``bucket`` and its objects from moto's backend (nothing is read or written on disk)."""
    backend = _s3_backend()
    for key in list(backend.get_bucket(bucket).keys):
        backend.delete_object(bucket, key)
    backend.delete_bucket(bucket)


def register_file(
    bucket: Any, key: str, path: Path, size: int, crc64nvme: str, mtime: float, content_type: str
) -> None:
    """Serve ``path`` (``size`` bytes, CRC64NVMe in header form) as object ``key`` of ``bucket``."""
    obj = _disk_key_class()(
        path,
        size,
        name=key,
        account_id=bucket.account_id,
        region_name=bucket.region_name,
        bucket_name=bucket.name,
        etag=_etag(crc64nvme, size),
    )
    obj.last_modified = datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)  # moto keeps naive UTC
    obj.checksum_algorithm = "CRC64NVME"
    obj.checksum_value = crc64nvme
    obj.checksum_type = "FULL_OBJECT"
    obj.set_metadata({"Content-Type": content_type})
    bucket.keys.setlist(key, [obj])


def _moto_server_class() -> type[Any]:
    server_class: type[Any] = require("moto.server", "sample").ThreadedMotoServer
    return server_class


class _QuietMotoServer:
    """moto's ``ThreadedMotoServer`` serving S3 only, with logging routed to our logger, bind
    errors raised (instead of a hang) and every method but GET/HEAD refused."""

    def __init__(self, host: str, port: int) -> None:
        base = _moto_server_class()
        require("moto.moto_server.werkzeug_app", "sample")
        require("werkzeug.serving", "sample")
        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class _Handler(MotoRequestHandler):
            def log(self, type: str, message: str, *args: Any) -> None:
                level = logging.WARNING if type == "error" else logging.DEBUG
                _log.log(level, "%s " + message, self.address_string(), *args)

        self._host, self._port = host, port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            listener = socket.create_server((host, port), family=family)
        except OSError as exc:
            raise SourceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self._listener = listener
        startup_error: list[BaseException] = []

        class _Server(base):  # type: ignore[misc, valid-type]
            def _server_entry(self) -> None:
                # As moto's, but on our pre-bound socket (werkzeug would print and sys.exit on a
                # bind error, and moto's start() would then wait forever), with our handler and app.
                try:
                    app = _read_only(create_backend_app("s3"))
                    self._server = make_server(
                        self._ip_address,
                        self._port,
                        app,
                        True,
                        request_handler=_Handler,
                        fd=listener.fileno(),
                    )
                except BaseException as exc:
                    startup_error.append(exc)
                    self._server_ready_event.set()
                    return
                self._server_ready_event.set()
                self._server.serve_forever()

        self._startup_error = startup_error
        self._moto = _Server(ip_address=host, port=port, verbose=False)

    def start(self) -> None:
        try:
            self._moto.start()
        finally:
            self._listener.close()  # werkzeug serves on a duplicate of it
        if self._startup_error:
            exc = self._startup_error[0]
            raise SourceError(f"cannot start the sample server on {self._host}:{self._port}: {exc}") from exc

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._moto.get_host_and_port()
        return str(host), int(port)

    def stop(self) -> None:
        self._moto.stop()
