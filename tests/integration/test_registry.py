"""Registry over real HTTP on loopback: caching, conditional GET, offline-first; ``registry build``."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from geotessera.cli.registry import command as registry_command
from geotessera.datasets import DatasetId
from geotessera.errors import SourceError
from geotessera.registry import Registry, cached_manifest_paths, load_manifest
from support.fault_server import crc64nvme_header

V1 = DatasetId()


def manifest_table(years: tuple[int, ...] = (2024,)) -> pa.Table:
    return pa.table(
        {
            "version": ["1.0"] * (3 * len(years)),
            "variant": ["vultr"] * (3 * len(years)),
            "year": [y for y in years for _ in range(3)],
            "lon": [0.05, 0.15, 0.25] * len(years),
            "lat": [52.05] * (3 * len(years)),
            "grid_size": [100, 200, 300] * len(years),
            "scales_size": [1, 2, 3] * len(years),
        }
    )


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.root`` like S3: content ETags, ``If-None-Match`` -> 304, and the
    CRC64NVMe header when asked for it; logs requests."""

    server: _Server

    def do_GET(self) -> None:
        path = self.server.root / self.path.lstrip("/")
        self.server.log.append((self.path, self.headers.get("If-None-Match")))
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        if self.headers.get("x-amz-checksum-mode") == "ENABLED":
            self.send_header("x-amz-checksum-crc64nvme", crc64nvme_header(data))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.log: list[tuple[str, str | None]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/bucket"


@pytest.fixture
def http_bucket(tmp_path: Path) -> Iterator[_Server]:
    """A stdlib HTTP server on 127.0.0.1 (port 0) serving ``tmp_path/www`` as ``/bucket``."""
    root = tmp_path / "www"
    (root / "bucket" / "v1").mkdir(parents=True)
    pq.write_table(manifest_table(), root / "bucket" / "v1" / "manifest.parquet")
    pq.write_table(
        pa.table({"lon": [0.15], "lat": [52.05], "file_size": [5]}),
        root / "bucket" / "v1" / "landmasks.parquet",
    )
    server = _Server(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_conditional_get_with_unchanged_etag_keeps_the_cache(http_bucket: _Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_manifest(V1, base_url=http_bucket.base_url, cache_dir=cache)
    assert not first.from_cache
    path = cached_manifest_paths(V1, base_url=http_bucket.base_url, cache_dir=cache)[0]
    stamp = path.stat().st_mtime_ns
    http_bucket.log.clear()
    again = load_manifest(V1, base_url=http_bucket.base_url, cache_dir=cache)
    assert again.from_cache
    assert path.stat().st_mtime_ns == stamp
    conditional = [etag for p, etag in http_bucket.log if p == "/bucket/v1/manifest.parquet"]
    assert conditional and conditional[0] is not None  # If-None-Match was sent
    reg = Registry.from_manifest(again)
    assert len(reg) == 3 and reg.landmask_size(0.15, 52.05) == 5


def test_changed_manifest_replaces_the_cache(http_bucket: _Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_manifest(V1, base_url=http_bucket.base_url, cache_dir=cache)
    pq.write_table(manifest_table((2023, 2024)), http_bucket.root / "bucket" / "v1" / "manifest.parquet")
    reg = Registry.from_manifest(load_manifest(V1, base_url=http_bucket.base_url, cache_dir=cache))
    assert reg.available_years() == [2023, 2024]


def test_registry_url(http_bucket: _Server, tmp_path: Path) -> None:
    url = f"{http_bucket.base_url}/v1/manifest.parquet"
    reg = Registry.from_manifest(load_manifest(V1, registry_url=url, cache_dir=tmp_path / "c"))
    assert reg.load_blocks_for_region((0.1, 52.0, 0.2, 52.1), 2024) == [(2024, 0.15, 52.05)]
    assert reg.landmask_size(0.15, 52.05) == 5  # landmasks.parquet beside the manifest


def test_404_is_a_source_error(http_bucket: _Server, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="HTTP 404") as exc:
        load_manifest(DatasetId.parse("1.1", "cambridge"), base_url=http_bucket.base_url, cache_dir=tmp_path)
    assert exc.value.status == 404


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cached_manifest_with_unreachable_base_loads_fast(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    root = tmp_path / "www"
    (root / "bucket" / "v1").mkdir(parents=True)
    pq.write_table(manifest_table(), root / "bucket" / "v1" / "manifest.parquet")
    server = _Server(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = server.base_url
        load_manifest(V1, base_url=base, cache_dir=cache)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    # the port is closed now: connections are refused
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="geotessera"):
        m = load_manifest(V1, base_url=base, cache_dir=cache)
    assert time.monotonic() - t0 < 3.0
    assert m.from_cache and len(Registry.from_manifest(m)) == 3
    assert "using the cached manifest" in caplog.text
    # nothing cached for a never-seen unreachable base: a clear error once the retries are spent
    from geotessera.config import RetryPolicy

    one_retry = RetryPolicy(max_retries=1, initial_backoff_s=0.01)
    with pytest.raises(SourceError, match=r"cannot reach 127\.0\.0\.1"):
        load_manifest(V1, base_url=f"http://127.0.0.1:{_closed_port()}/b", cache_dir=cache, retry=one_retry)


def test_offline_never_touches_the_network(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{_closed_port()}/bucket"
    with pytest.raises(SourceError, match="offline"):
        load_manifest(V1, base_url=base, cache_dir=tmp_path, offline=True)


# --- the sample store: its published manifests, its S3 endpoint, and `registry build` ----------
def test_scan_of_the_sample_store_equals_its_manifests(tiny_store: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(registry_command, ["build", str(tiny_store), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    cols = ["version", "variant", "year", "lon_i", "lat_i", "grid_size", "scales_size"]
    keys = [(c, "ascending") for c in cols[:5]]
    for vpath in ("v1", "v1.1"):
        published = pq.read_table(tiny_store / vpath / "manifest.parquet", columns=cols).sort_by(keys)
        version = published.column("version")[0].as_py()
        ours = pq.read_table(tmp_path / "manifest.parquet", columns=cols)
        ours = ours.filter(pc.equal(ours["version"], version)).sort_by(keys)
        assert ours.equals(published), vpath
    lm_cols = ["lon_i", "lat_i", "file_size"]
    published_lm = pq.read_table(tiny_store / "v1" / "landmasks.parquet", columns=lm_cols)
    ours_lm = pq.read_table(tmp_path / "landmasks.parquet")
    ours_lm = ours_lm.filter(pc.equal(ours_lm["version"], "1.0")).select(lm_cols)
    lm_keys = [("lon_i", "ascending"), ("lat_i", "ascending")]
    assert ours_lm.sort_by(lm_keys).equals(published_lm.sort_by(lm_keys))


def test_registry_over_the_sample_s3_endpoint(s3_endpoint: object, tiny_store: Path, tmp_path: Path) -> None:
    base = s3_endpoint.base_url  # type: ignore[attr-defined]
    remote = Registry.from_manifest(load_manifest(V1, base_url=base, cache_dir=tmp_path))
    local = Registry.from_manifest(load_manifest(V1, registry_path=tiny_store / "v1" / "manifest.parquet"))
    assert remote.tile_counts_by_year() == local.tile_counts_by_year()
    again = load_manifest(V1, base_url=base, cache_dir=tmp_path)  # conditional GET against moto
    assert again.from_cache
    year = remote.available_years()[-1]
    tiles = remote.load_blocks_for_region((-180, -90, 180, 90), year)
    assert remote.file_sizes(tiles) == local.file_sizes(tiles)


def test_a_manifest_without_its_checksum_is_rejected(tiny_store: Path, tmp_path: Path) -> None:
    from geotessera.errors import IntegrityError
    from support.fault_server import Fault, FaultServer

    data = (tiny_store / "v1" / "manifest.parquet").read_bytes()
    with FaultServer({"v1/manifest.parquet": data}) as server:
        server.script("v1/manifest.parquet", Fault.no_checksum(times=None))
        with pytest.raises(IntegrityError, match="no x-amz-checksum-crc64nvme"):
            load_manifest(DatasetId(), base_url=server.url, cache_dir=tmp_path)
    assert not list(tmp_path.rglob("manifest.parquet"))  # nothing unverified was cached


def test_a_503_on_the_first_manifest_fetch_is_retried(tiny_store: Path, tmp_path: Path) -> None:
    from geotessera import GeoTessera
    from geotessera.config import RetryPolicy
    from support.fault_server import Fault, FaultServer

    key = "v1/manifest.parquet"
    fast = RetryPolicy(max_retries=3, initial_backoff_s=0.01, max_backoff_s=0.05)
    with FaultServer({key: (tiny_store / key).read_bytes()}) as server:
        server.script(key, Fault.http_status(503, times=2))
        m = load_manifest(V1, base_url=server.url, cache_dir=tmp_path / "a", retry=fast)
        assert len(server.requests_for(key)) == 3 and not m.from_cache
        # the client takes its policy from its settings (retries=, or GEOTESSERA_RETRIES)
        server.script(key, Fault.http_status(503, times=2))
        gt = GeoTessera(base_url=server.url, cache_dir=tmp_path / "b", retries=fast)
        assert gt.registry.available_years() == [2023, 2024]
        server.script(key, Fault.http_status(503, times=1))
        with pytest.raises(SourceError, match="HTTP 503") as info:
            GeoTessera(base_url=server.url, cache_dir=tmp_path / "c", retries=0).registry  # noqa: B018
        assert info.value.status == 503
