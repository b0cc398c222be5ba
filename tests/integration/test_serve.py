"""The loopback S3 endpoint: anonymous reads with CRC64NVMe, listing, exclusions, loopback only, CLI."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest
import urllib3
from awscrt.checksums import crc64nvme
from click.testing import CliRunner

from geotessera.cli import cli
from geotessera.errors import InvalidInputError, SourceError
from geotessera.sample.build import NON_STORE_ENTRIES
from geotessera.sample.serve import SampleServer

CHECKSUM_MODE = {"x-amz-checksum-mode": "ENABLED"}
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _crc_header(body: bytes) -> str:
    """Expected ``x-amz-checksum-crc64nvme``: base64 of the big-endian 8-byte CRC, computed here."""
    return base64.b64encode(crc64nvme(body).to_bytes(8, "big")).decode("ascii")


def _store_files(root: Path) -> dict[str, Path]:
    """Object key -> file for everything that should be served (NON_STORE_ENTRIES left out)."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] not in NON_STORE_ENTRIES:
            out[rel.as_posix()] = path
    return out


def _list_keys(http: urllib3.PoolManager, base_url: str, prefix: str = "") -> list[str]:
    """All keys of the bucket through anonymous ListObjectsV2 (following continuation tokens)."""
    keys: list[str] = []
    fields = {"list-type": "2", "max-keys": "50", "prefix": prefix}
    while True:
        resp = http.request("GET", base_url, fields=fields)
        assert resp.status == 200, resp.data[:300]
        doc = ET.fromstring(resp.data)
        keys += [el.text or "" for el in doc.iter(f"{S3_NS}Key")]
        token = doc.findtext(f"{S3_NS}NextContinuationToken")
        if doc.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
            return keys
        fields = {**fields, "continuation-token": token}


@pytest.fixture(scope="module")
def http() -> urllib3.PoolManager:
    """A plain urllib3 pool: no credentials, no signing."""
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=30))


def test_store_is_not_trivial(tiny_store: Path) -> None:
    files = _store_files(tiny_store)
    assert any(k.endswith("_scales.npy") for k in files)
    assert any(k.endswith("manifest.parquet") for k in files)
    assert any(k.endswith(".tiff") for k in files)


def test_every_object_round_trips_with_crc64nvme(
    s3_endpoint: SampleServer, tiny_store: Path, http: urllib3.PoolManager
) -> None:
    files = _store_files(tiny_store)
    for key, path in files.items():
        resp = http.request("GET", f"{s3_endpoint.base_url}/{key}", headers=CHECKSUM_MODE)
        assert resp.status == 200, key
        body = path.read_bytes()
        assert resp.data == body, key
        assert resp.headers.get("x-amz-checksum-crc64nvme") == _crc_header(body), key


def test_anonymous_head_returns_size_and_checksum(
    s3_endpoint: SampleServer, tiny_store: Path, http: urllib3.PoolManager
) -> None:
    key, path = next((k, p) for k, p in _store_files(tiny_store).items() if k.endswith(".npy"))
    resp = http.request("HEAD", f"{s3_endpoint.base_url}/{key}", headers=CHECKSUM_MODE)
    assert resp.status == 200
    assert int(resp.headers["Content-Length"]) == path.stat().st_size
    assert resp.headers.get("x-amz-checksum-crc64nvme") == _crc_header(path.read_bytes())


def test_listing_matches_store(
    s3_endpoint: SampleServer, tiny_store: Path, http: urllib3.PoolManager
) -> None:
    keys = _list_keys(http, s3_endpoint.base_url)
    assert sorted(keys) == sorted(_store_files(tiny_store))
    some_dir = next(iter(_store_files(tiny_store))).split("/")[0]
    assert all(k.startswith(f"{some_dir}/") for k in _list_keys(http, s3_endpoint.base_url, f"{some_dir}/"))


def test_non_store_entries_are_not_uploaded(
    s3_endpoint: SampleServer, tiny_store: Path, http: urllib3.PoolManager
) -> None:
    assert (tiny_store / "ground_truth").is_dir()  # present locally...
    keys = _list_keys(http, s3_endpoint.base_url)
    for name in NON_STORE_ENTRIES:  # ...but never served
        assert not any(k == name or k.startswith(f"{name}/") for k in keys)
    resp = http.request("GET", f"{s3_endpoint.base_url}/sample_store.json")
    assert resp.status == 404
    one_truth = next(p for p in (tiny_store / "ground_truth").rglob("*") if p.is_file())
    resp = http.request("GET", f"{s3_endpoint.base_url}/{one_truth.relative_to(tiny_store).as_posix()}")
    assert resp.status == 404


def test_ranged_get_carries_no_checksum(
    s3_endpoint: SampleServer, tiny_store: Path, http: urllib3.PoolManager
) -> None:
    key, path = next((k, p) for k, p in _store_files(tiny_store).items() if k.endswith(".npy"))
    resp = http.request(
        "GET", f"{s3_endpoint.base_url}/{key}", headers={**CHECKSUM_MODE, "Range": "bytes=0-127"}
    )
    assert resp.status == 206
    assert resp.data == path.read_bytes()[:128]
    assert "x-amz-checksum-crc64nvme" not in resp.headers


def test_anonymous_writes_are_refused(s3_endpoint: SampleServer, http: urllib3.PoolManager) -> None:
    key = next(iter(_list_keys(http, s3_endpoint.base_url)))
    assert http.request("PUT", f"{s3_endpoint.base_url}/intruder.bin", body=b"x").status == 403
    assert http.request("DELETE", f"{s3_endpoint.base_url}/{key}").status == 403
    assert http.request("HEAD", f"{s3_endpoint.base_url}/{key}").status == 200
    assert http.request("HEAD", f"{s3_endpoint.base_url}/intruder.bin").status == 404


def test_binds_loopback_only(s3_endpoint: SampleServer) -> None:
    assert s3_endpoint.host == "127.0.0.1"
    assert s3_endpoint.endpoint_url == f"http://127.0.0.1:{s3_endpoint.port}"
    assert s3_endpoint.base_url == f"http://127.0.0.1:{s3_endpoint.port}/tessera-embeddings"
    listening = [c for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    ours = [c for c in listening if c.laddr.port == s3_endpoint.port]
    assert [c.laddr.ip for c in ours] == ["127.0.0.1"]
    # Through any non-loopback address of this machine, the port is closed.
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                with pytest.raises(OSError):
                    socket.create_connection((addr.address, s3_endpoint.port), timeout=2).close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", ""])
def test_non_loopback_host_is_refused(tiny_store: Path, host: str) -> None:
    with pytest.raises(InvalidInputError, match="loopback"):
        SampleServer(tiny_store, host=host)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        SampleServer(tmp_path / "missing")
    with pytest.raises(InvalidInputError):
        SampleServer(tmp_path, port=70000)


def test_same_bucket_twice_in_one_process_is_refused(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    second = SampleServer(tmp_path)
    with pytest.raises(InvalidInputError, match="already served"):
        second.start()
    second.stop()  # stopping the refused one must not release the running server's bucket
    with pytest.raises(InvalidInputError, match="already served"):
        SampleServer(tmp_path).start()
    with pytest.raises(SourceError):  # a busy port is an error, not a hang
        SampleServer(tmp_path, port=s3_endpoint.port, bucket="another-bucket").start()
    assert s3_endpoint.running


def test_upload_tree_adds_objects_later(tmp_path: Path, http: urllib3.PoolManager) -> None:
    extra = tmp_path / "store.zarr"
    (extra / "utm31" / "embeddings").mkdir(parents=True)
    (extra / "zarr.json").write_text('{"zarr_format": 3}')
    payload = os.urandom(300_000)
    (extra / "utm31" / "embeddings" / "c0").write_bytes(payload)
    (extra / "empty").write_bytes(b"")
    with SampleServer(None, bucket="upload-tree-test") as server:
        assert server.base_url.endswith("/upload-tree-test")
        summary = server.upload_tree(extra, prefix="zarr/store.zarr/")
        assert (summary.objects, summary.bytes) == (3, len(payload) + len('{"zarr_format": 3}'))
        resp = http.request(
            "GET", f"{server.base_url}/zarr/store.zarr/utm31/embeddings/c0", headers=CHECKSUM_MODE
        )
        assert resp.status == 200 and resp.data == payload
        assert resp.headers["x-amz-checksum-crc64nvme"] == _crc_header(payload)
        resp = http.request("GET", f"{server.base_url}/zarr/store.zarr/empty", headers=CHECKSUM_MODE)
        assert resp.status == 200 and resp.data == b""
        assert resp.headers["x-amz-checksum-crc64nvme"] == "AAAAAAAAAAA="
        port = server.port
    assert not server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_cli_serve_help(cli_runner: CliRunner) -> None:
    result = cli_runner.invoke(cli, ["sample", "serve", "--help"])
    assert result.exit_code == 0
    assert "--ready-file" in result.output and "--port" in result.output


def test_cli_serve_missing_directory_is_usage_error(cli_runner: CliRunner, tmp_path: Path) -> None:
    result = cli_runner.invoke(cli, ["sample", "serve", str(tmp_path / "nope")])
    assert result.exit_code == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_serve_runs_until_signalled(
    tiny_store: Path, tmp_path: Path, http: urllib3.PoolManager, sig: signal.Signals
) -> None:
    # A small copy of the store (one object per kind, plus a non-store entry) keeps start-up short.
    store = tmp_path / "store"
    files = _store_files(tiny_store)
    picked = [next(k for k in files if k.endswith(suffix)) for suffix in ("manifest.parquet", "_scales.npy")]
    for key in picked:
        (store / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[key], store / key)
    shutil.copytree(tiny_store / "ground_truth", store / "ground_truth")
    ready = tmp_path / "ready.txt"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from geotessera.cli import main; main()",
            "sample",
            "serve",
            str(store),
            "--port",
            "0",
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.05)
        base_url = ready.read_text().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/tessera-embeddings")
        for key in picked:
            resp = http.request("GET", f"{base_url}/{key}", headers=CHECKSUM_MODE)
            assert resp.status == 200 and resp.data == files[key].read_bytes()
            assert resp.headers["x-amz-checksum-crc64nvme"] == _crc_header(resp.data)
        assert sorted(_list_keys(http, base_url)) == sorted(picked)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"GEOTESSERA_BASE_URL={base_url}" in out.splitlines()
    assert base_url in out.splitlines()
    assert not ready.exists()
