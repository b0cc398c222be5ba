"""The moto S3 server behind :class:`~geotessera.sample.serve.SampleServer`.

:class:`_QuietMotoServer` wraps moto's ``ThreadedMotoServer``: it binds its socket first
(so a bind error is raised instead of hanging), routes werkzeug's request log to the
``geotessera.sample.serve`` logger, and answers unsigned writes 403 as a public-read
S3 bucket does (:func:`_deny_anonymous_writes`). Needs the ``sample`` extra.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from .._optional import require
from ..errors import SourceError

# The request log keeps the logger name it had when this code lived in serve.py.
_log = logging.getLogger("geotessera.sample.serve")

_ANONYMOUS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


_ACCESS_DENIED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Anonymous requests may only read this bucket</Message></Error>"
)


def _deny_anonymous_writes(app: Callable[..., Any]) -> Callable[..., Any]:
    """WSGI wrapper: an unsigned request other than GET/HEAD/OPTIONS gets 403, as on public-read S3."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        signed = "HTTP_AUTHORIZATION" in environ or "X-Amz-Signature=" in str(environ.get("QUERY_STRING", ""))
        if method not in _ANONYMOUS_METHODS and not signed:
            start_response(
                "403 Forbidden",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(_ACCESS_DENIED_XML)))],
            )
            return [_ACCESS_DENIED_XML]
        return app(environ, start_response)

    return wrapped


def _moto_server_class() -> type[Any]:
    server_class: type[Any] = require("moto.server", "sample").ThreadedMotoServer
    return server_class


class _QuietMotoServer:
    """moto's ``ThreadedMotoServer`` with logging routed to our logger, bind errors raised
    (instead of a hang) and anonymous writes refused."""

    def __init__(self, host: str, port: int) -> None:
        base = _moto_server_class()
        require("moto.moto_server.werkzeug_app", "sample")
        require("werkzeug.serving", "sample")
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
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
                    app = _deny_anonymous_writes(DomainDispatcherApplication(create_backend_app))
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
