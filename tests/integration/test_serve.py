"""The loopback S3 endpoint: anonymous reads with CRC64NVMe, listing, exclusions, loopback only, CLI."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
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


def test_add_tree_adds_objects_later(tmp_path: Path, http: urllib3.PoolManager) -> None:
    extra = tmp_path / "store.zarr"
    (extra / "utm31" / "embeddings").mkdir(parents=True)
    (extra / "zarr.json").write_text('{"zarr_format": 3}')
    payload = os.urandom(300_000)
    (extra / "utm31" / "embeddings" / "c0").write_bytes(payload)
    (extra / "empty").write_bytes(b"")
    with SampleServer(None, bucket="upload-tree-test") as server:
        assert server.base_url.endswith("/upload-tree-test")
        summary = server.add_tree(extra, prefix="zarr/store.zarr/")
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


# --- read-only, whatever the signature (issue 11, item 5) ----------------------------------
FORGED_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAINVENTED000000/20250101/us-west-2/s3/aws4_request, "
    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "ab" * 32
)


def _small_store(src: Path, dest: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Copy one file per suffix of ``src`` into ``dest`` (same keys); returns key -> copied file."""
    files = _store_files(src)
    out = {}
    for suffix in suffixes:
        key = next(k for k in files if k.endswith(suffix))
        (dest / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[key], dest / key)
        out[key] = dest / key
    return out


@pytest.fixture
def write_target(tiny_store: Path, tmp_path: Path) -> Iterator[tuple[SampleServer, str, bytes]]:
    """A server of its own (a forged write must never reach the shared one) and one tile key."""
    picked = _small_store(tiny_store, tmp_path / "store", ("_scales.npy", "manifest.parquet"))
    key = next(k for k in picked if k.endswith("_scales.npy"))
    with SampleServer(tmp_path / "store", bucket="write-test") as server:
        yield server, key, picked[key].read_bytes()


def _unchanged(
    server: SampleServer, http: urllib3.PoolManager, key: str, body: bytes, keys: list[str]
) -> None:
    resp = http.request("GET", f"{server.base_url}/{key}", headers=CHECKSUM_MODE)
    assert resp.status == 200 and resp.data == body
    assert resp.headers["x-amz-checksum-crc64nvme"] == _crc_header(body)
    assert sorted(_list_keys(http, server.base_url)) == keys


def test_forged_signatures_cannot_write(
    write_target: tuple[SampleServer, str, bytes], http: urllib3.PoolManager
) -> None:
    server, key, body = write_target
    keys = sorted(_list_keys(http, server.base_url))
    forged = {
        "Authorization": FORGED_AUTH,
        "x-amz-date": "20250101T000000Z",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    }
    url = f"{server.base_url}/{key}"
    attempts = [
        ("PUT", url, b"forged bytes"),
        ("PUT", f"{server.base_url}/new-object.bin", b"forged bytes"),
        ("POST", f"{url}?uploads", b""),
        ("DELETE", url, None),
        ("PUT", f"{server.base_url}?policy", b'{"Version": "2012-10-17", "Statement": []}'),
        ("DELETE", server.base_url, None),
        ("PATCH", url, b"x"),
        ("OPTIONS", url, None),
    ]
    for method, target, data in attempts:
        for headers in (forged, {}):
            resp = http.request(method, target, body=data, headers=headers)
            assert resp.status == 403, (method, target, headers, resp.data[:200])
    presigned = f"{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAINVENTED&X-Amz-Signature=00"
    assert http.request("PUT", presigned, body=b"forged").status == 403
    _unchanged(server, http, key, body, keys)


def test_boto3_with_invented_keys_cannot_write(
    write_target: tuple[SampleServer, str, bytes], http: urllib3.PoolManager
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    server, key, body = write_target
    keys = sorted(_list_keys(http, server.base_url))
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-west-2",
        aws_access_key_id="AKIAINVENTED000000",
        aws_secret_access_key="invented-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    bucket = server.bucket
    writes = [
        lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"forged bytes", ChecksumAlgorithm="CRC64NVME"),
        lambda: s3.put_object(Bucket=bucket, Key="new-object.bin", Body=b"forged"),
        lambda: s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": keys[0]}),
        lambda: s3.delete_object(Bucket=bucket, Key=key),
        lambda: s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}]}),
        lambda: s3.create_multipart_upload(Bucket=bucket, Key=key),
        lambda: s3.put_bucket_policy(Bucket=bucket, Policy='{"Version": "2012-10-17", "Statement": []}'),
        lambda: s3.delete_bucket(Bucket=bucket),
    ]
    for write in writes:
        with pytest.raises(ClientError) as info:
            write()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body  # reads still work, signed too
    _unchanged(server, http, key, body, keys)


# --- objects are served from their files ---------------------------------------------------
def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def test_large_object_streams_from_disk(tmp_path: Path, http: urllib3.PoolManager) -> None:
    size = 512 * 2**20
    big = tmp_path / "store" / "v1" / "big.npy"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as fh:  # sparse: no disk space, reads as zeros
        fh.truncate(size)
        fh.seek(size - 4)
        fh.write(b"tail")
    with SampleServer(tmp_path / "store", bucket="big-test") as server:
        url = f"{server.base_url}/v1/big.npy"
        tail = http.request("GET", url, headers={"Range": f"bytes={size - 10}-"})
        assert tail.status == 206 and tail.data == bytes(6) + b"tail"
        base = _rss_mib()
        peak, got, crc = base, 0, 0
        resp = http.request("GET", url, headers=CHECKSUM_MODE, preload_content=False)
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == size
        for piece in resp.stream(4 * 2**20):
            crc = crc64nvme(piece, crc)
            got += len(piece)
            peak = max(peak, _rss_mib())
        resp.release_conn()
        assert got == size
        assert resp.headers["x-amz-checksum-crc64nvme"] == base64.b64encode(crc.to_bytes(8, "big")).decode()
        assert peak - base < 128, f"serving a {size >> 20} MiB object grew memory by {peak - base:.0f} MiB"


def test_checksum_sidecar_is_reused_and_follows_changes(
    tiny_store: Path, tmp_path: Path, http: urllib3.PoolManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geotessera.sample import _checksums

    store = tmp_path / "store"
    picked = _small_store(tiny_store, store, ("_scales.npy", "manifest.parquet", ".tiff"))
    hashed: list[Path] = []
    real = _checksums.crc64nvme_file

    def counting(path: Path) -> str:
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(_checksums, "crc64nvme_file", counting)
    with SampleServer(store, bucket="sidecar-test"):
        pass
    assert sorted(hashed) == sorted(picked.values())
    assert (store / _checksums.SIDECAR).is_file()

    hashed.clear()
    with SampleServer(store, bucket="sidecar-test"):  # unchanged: nothing is hashed again
        pass
    assert hashed == []

    key = next(k for k in picked if k.endswith("_scales.npy"))
    changed = bytearray(picked[key].read_bytes())
    changed[-1] ^= 0xFF  # same size, other bytes, a new file
    picked[key].unlink()
    picked[key].write_bytes(bytes(changed))
    gone = next(k for k in picked if k.endswith(".tiff"))
    picked[gone].unlink()
    with SampleServer(store, bucket="sidecar-test") as server:
        assert hashed == [picked[key]]
        resp = http.request("GET", f"{server.base_url}/{key}", headers=CHECKSUM_MODE)
        assert resp.data == bytes(changed)
        assert resp.headers["x-amz-checksum-crc64nvme"] == _crc_header(bytes(changed))
    doc = json.loads((store / _checksums.SIDECAR).read_text())
    assert gone not in doc["files"] and len(doc["files"]) == 2

    (store / _checksums.SIDECAR).write_text("{not json")
    hashed.clear()
    with SampleServer(store, bucket="sidecar-test"):
        assert len(hashed) == 2
    assert json.loads((store / _checksums.SIDECAR).read_text())["files"].keys() == doc["files"].keys()


def test_datasets_serves_a_subset(tiny_store: Path, tmp_path: Path, http: urllib3.PoolManager) -> None:
    store = tmp_path / "store"
    picked = _small_store(tiny_store, store, ("v1/manifest.parquet", "v1.1/manifest.parquet"))
    for name in ("v1.zarr", "v1.1-cambridge.zarr", "v1-cambridge.zarr"):
        (store / "zarr" / name).mkdir(parents=True)
        (store / "zarr" / name / "zarr.json").write_text('{"zarr_format": 3}')
    with SampleServer(store, bucket="subset-test", datasets=["v1"]) as server:
        keys = sorted(_list_keys(http, server.base_url))
        assert keys == ["v1/manifest.parquet", "zarr/v1-cambridge.zarr/zarr.json", "zarr/v1.zarr/zarr.json"]
        assert server.served.objects == 3
        assert http.request("GET", f"{server.base_url}/v1.1/manifest.parquet").status == 404
    with SampleServer(store, bucket="subset-test", datasets=["1.1"]) as server:
        assert sorted(_list_keys(http, server.base_url)) == [
            "v1.1/manifest.parquet",
            "zarr/v1.1-cambridge.zarr/zarr.json",
        ]
        resp = http.request("GET", f"{server.base_url}/v1.1/manifest.parquet", headers=CHECKSUM_MODE)
        assert resp.data == picked["v1.1/manifest.parquet"].read_bytes()
    with pytest.raises(InvalidInputError, match="holds no dataset v2"):
        SampleServer(store, bucket="subset-test", datasets=["v2"]).start()
    with pytest.raises(InvalidInputError, match="unknown dataset version"):
        SampleServer(store, datasets=["latest"])


@pytest.mark.parametrize(
    ("datasets", "message"), [("v2", "holds no dataset v2"), ("latest", "unknown dataset version"), (",", "")]
)
def test_cli_serve_bad_datasets_is_one_line_exit_2(
    cli_runner: CliRunner, tiny_store: Path, datasets: str, message: str
) -> None:
    result = cli_runner.invoke(cli, ["sample", "serve", str(tiny_store), "--datasets", datasets])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output
