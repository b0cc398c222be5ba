"""A TCP proxy on loopback that makes a local endpoint behave like a remote object store.

Every accepted connection is forwarded to ``upstream`` (host, port) by two threads:

- client -> upstream: each burst of request bytes (one HTTP request) is held for
  ``latency_s`` before it is forwarded: the request round trip (time to first byte) of a
  remote store, about 30 ms;
- upstream -> client: the response is paced to ``rate_bps`` bytes per second *per
  connection* (about 60 MB/s, what one S3 GET stream sustains), in blocks of up to 128 KiB.
  A late wake-up (sleep overshoot on a busy machine) is caught up, but idle time of more
  than 20 ms gives no burst credit. Binds 127.0.0.1 only (port 0 picks a free port).

Use it in-process (``with ThrottleProxy(("127.0.0.1", port)) as proxy: proxy.port``) or as
a separate process, which is what the benchmarks do so that the relay does not share the
GIL with the client being measured::

    python -m benchmarks.throttle_proxy --upstream 127.0.0.1:PORT --ready-file F

which writes the proxy's port to ``F`` once listening and runs until SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

BLOCK = 128 * 1024
IDLE_S = 0.02


class ThrottleProxy:
    """Forward connections on ``127.0.0.1:port`` to ``upstream`` with latency and a per-connection rate."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        latency_s: float = 0.030,
        rate_bps: float = 60e6,
        port: int = 0,
    ) -> None:
        if rate_bps <= 0 or latency_s < 0:
            raise ValueError("rate_bps must be > 0 and latency_s >= 0")
        self.upstream = upstream
        self.latency_s = latency_s
        self.rate_bps = rate_bps
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.port = 0
        self.connections = 0

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        """Listen on 127.0.0.1 and start accepting; returns self."""
        self._listener = socket.create_server(("127.0.0.1", self._requested_port), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept_loop, "throttle-accept")
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and join the threads. Idempotent."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            _close(s)
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- relaying -----------------------------------------------------------------------------
    def _spawn(self, target: object, name: str, *args: object) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, "throttle-conn", client)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.update((client, upstream))
            self.connections += 1
        back = threading.Thread(target=self._downstream, args=(upstream, client), daemon=True)
        back.start()
        try:
            self._upstream(client, upstream)
        finally:
            back.join()
            with self._lock:
                self._sockets.difference_update((client, upstream))
            _close(client)
            _close(upstream)

    def _upstream(self, client: socket.socket, upstream: socket.socket) -> None:
        """Request bytes: each burst waits ``latency_s`` (the round trip), then goes on."""
        try:
            while data := client.recv(BLOCK):
                if self.latency_s:
                    time.sleep(self.latency_s)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown_write(upstream)

    def _downstream(self, upstream: socket.socket, client: socket.socket) -> None:
        """Response bytes, paced to ``rate_bps`` on this connection."""
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        due = time.monotonic()
        try:
            while n := upstream.recv_into(buf):
                now = time.monotonic()
                if now - due > IDLE_S:  # idle (between responses): no burst credit
                    due = now
                due += n / self.rate_bps  # sleep overshoot within IDLE_S is caught up
                client.sendall(view[:n])
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        except OSError:
            pass
        finally:
            _shutdown_write(client)


def _shutdown_write(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_WR)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


def main(argv: list[str] | None = None) -> int:
    """Run a proxy until SIGTERM / SIGINT (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throttle_proxy")
    parser.add_argument("--upstream", required=True, help="HOST:PORT to forward to (loopback)")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--rate-mbps", type=float, default=60.0, help="MB/s (1e6 bytes) per connection")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, help="write the listening port here once ready")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        parser.error("upstream must be on 127.0.0.1")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    proxy = ThrottleProxy(
        ("127.0.0.1", int(port)),
        latency_s=args.latency_ms / 1000,
        rate_bps=args.rate_mbps * 1e6,
        port=args.port,
    )
    proxy.start()
    try:
        if args.ready_file is not None:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(f"{proxy.port}\n")
            os.replace(tmp, args.ready_file)
        while not stop.wait(0.5):
            pass
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
