"""A static file server for generated web maps: 127.0.0.1 only, nothing outside its directory.

Requests are resolved against the served root after percent-decoding; any path whose
real location (symbolic links followed) is not inside the root is answered 404, as are
``..`` segments, encoded or not, and absolute paths. Directory listings are given for
directories inside the root only. A request naming another host (``Host:`` other than
127.0.0.1, localhost or [::1]) is answered 403: a web page whose name was re-pointed at
127.0.0.1 (DNS rebinding) cannot read the served files. The standard library's threading
HTTP server does the rest.
"""

from __future__ import annotations

import errno
import http.server
import logging
import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, OutputError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def _local_host(header: str | None) -> bool:
    """Whether a ``Host`` header names this machine's loopback (absent: HTTP/1.0, allowed)."""
    if header is None:
        return True
    name = header.strip().lower()
    if name.startswith("["):  # [::1]:port
        name = name.split("]", 1)[0] + "]"
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    return name.rstrip(".") in _LOCAL_NAMES


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves ``self.directory``; refuses anything that resolves outside it."""

    root: Path

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(self.root), **kwargs)

    def _inside(self, raw_path: str) -> Path | None:
        path = urllib.parse.urlsplit(raw_path).path
        decoded = urllib.parse.unquote(path)
        parts = [p for p in decoded.split("/") if p]
        if any(p in ("..", ".") or "\\" in p or "\x00" in p for p in parts):
            return None
        target = self.root.joinpath(*parts) if parts else self.root
        try:
            real = target.resolve(strict=False)
        except (OSError, RuntimeError):
            return None
        if real != self.root and self.root not in real.parents:
            return None
        return real

    def send_head(self) -> Any:
        if not _local_host(self.headers.get("Host")):
            self.send_error(403, "Only requests for 127.0.0.1 or localhost are served")
            return None
        if self._inside(self.path) is None:
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class StaticServer:
    """Serve ``root`` on ``127.0.0.1:port`` (0 = any free port) from a background thread.

    ``start()`` binds (raising :class:`InvalidInputError` when the port is taken or
    invalid), ``url`` gives the address, ``stop()`` shuts down. Also a context manager.
    """

    def __init__(self, root: str | os.PathLike[str], port: int = 8000) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidInputError(f"{root} is not a directory")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidInputError(f"port must be a whole number in 0..65535, got {port!r}")
        self.requested_port = port
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``"""
        return f"http://{HOST}:{self.port}/"

    def bind(self) -> None:
        """Bind the socket without serving yet."""
        handler = type("Handler", (_Handler,), {"root": self.root})
        try:
            self._httpd = http.server.ThreadingHTTPServer((HOST, self.requested_port), handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInputError(
                    f"port {self.requested_port} on {HOST} is already in use; choose another with --port"
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise InvalidInputError(
                    f"not allowed to listen on port {self.requested_port}; use a port above 1023"
                ) from None
            raise OutputError(f"cannot listen on {HOST}:{self.requested_port}: {exc}") from exc
        self._httpd.daemon_threads = True

    def start(self) -> StaticServer:
        """Bind and serve from a daemon thread."""
        httpd = self._bound()
        self._thread = threading.Thread(target=httpd.serve_forever, name="geotessera-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind if needed and serve in this thread until :meth:`stop` or KeyboardInterrupt."""
        self._bound().serve_forever()

    def _bound(self) -> http.server.ThreadingHTTPServer:
        if self._httpd is None:
            self.bind()
        if self._httpd is None:  # pragma: no cover - bind() raises instead
            raise RuntimeError("server not bound")
        return self._httpd

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._thread is not None:
            httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        httpd.server_close()

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
