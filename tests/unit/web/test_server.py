"""The static server answers inside its directory only, on 127.0.0.1."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

import pytest

from geotessera.errors import InvalidInputError
from geotessera.web import StaticServer


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)  # sent as written, not normalised
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "tiles" / "8").mkdir(parents=True)
    (root / "index.html").write_text("<html>map</html>")
    (root / "tiles" / "8" / "1.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inside_link").symlink_to(root / "index.html")
    return root


def test_files_inside_are_served(site: Path) -> None:
    with StaticServer(site, 0) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        assert _get(srv.port, "/")[0] == 200
        assert _get(srv.port, "/index.html") == (200, b"<html>map</html>")
        assert _get(srv.port, "/tiles/8/1.png") == (200, b"png")
        assert _get(srv.port, "/inside_link") == (200, b"<html>map</html>")
        status, body = _get(srv.port, "/tiles/")
        assert status == 200 and b"8/" in body  # a listing inside the root


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/tiles/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/%252e%252e/secret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        "/escape",
        "/escape_dir/",
        "/escape_dir/secret.txt",
        "/nothing-here.png",
    ],
)
def test_nothing_outside_is_served_or_listed(site: Path, path: str) -> None:
    with StaticServer(site, 0) as srv:
        status, body = _get(srv.port, path)
    assert (
        status == 404 and b"outside" not in body and b"passwd" not in body.lower().replace(b"etc/passwd", b"")
    )


def test_it_listens_on_loopback_only(site: Path) -> None:
    with StaticServer(site, 0) as srv:
        assert srv._httpd is not None and srv._httpd.server_address[0] == "127.0.0.1"


def test_a_taken_port_and_a_bad_port_are_input_errors(site: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(InvalidInputError, match="already in use"):
            StaticServer(site, s.getsockname()[1]).start()
    with pytest.raises(InvalidInputError, match="port"):
        StaticServer(site, 70000)
    with pytest.raises(InvalidInputError, match="not a directory"):
        StaticServer(site / "index.html", 0)


def test_stop_is_clean_and_idempotent(site: Path) -> None:
    srv = StaticServer(site, 0).start()
    port = srv.port
    srv.stop()
    srv.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def _get_host(port: int, host: str | None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/index.html", skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST", 200),
        ("[::1]:{port}", 200),
        (None, 200),  # HTTP/1.0 style: no Host
        ("evil.example:{port}", 403),  # DNS rebinding: a page of another site re-pointed here
        ("127.0.0.1.evil.example", 403),
        ("localhost.evil.example:{port}", 403),
        ("", 403),
    ],
)
def test_only_requests_for_the_loopback_host_are_served(site: Path, host: str | None, status: int) -> None:
    with StaticServer(site, 0) as srv:
        assert _get_host(srv.port, None if host is None else host.format(port=srv.port)) == status
