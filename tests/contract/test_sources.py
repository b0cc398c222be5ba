"""One contract for every :class:`~geotessera.transfer.Source`: the same cases, the same outcomes.

:class:`SourceContract` holds the cases; each implementation subclasses it and supplies the
``source`` fixture (serving :data:`OBJECTS`) and ``replace`` (changes an object in place):

- :class:`TestLocalDirectory`: :class:`LocalSource` over a directory (with receipts, as a
  mirror geotessera filled itself);
- :class:`TestMotoS3`: :class:`HttpSource` on the sample store's moto S3 endpoint;
- :class:`TestFaultServer`: :class:`HttpSource` on the fault-injecting server, which adds the
  cases only a misbehaving server can produce (403, 503, resets, corruption).

Every server binds 127.0.0.1 on port 0 and is stopped in ``finally``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from geotessera.errors import IntegrityError, SourceError
from geotessera.files import crc64nvme_b64, is_complete, read_receipt, write_receipt
from geotessera.progress import BytesReceived, Retrying
from geotessera.sample.serve import SampleServer
from geotessera.transfer import CountingSource, HttpSource, LocalSource, RetryPolicy, Source, Validator
from support.fault_server import Fault, FaultServer
from support.recorder import Recorder

FAST = RetryPolicy(max_retries=3, initial_backoff_s=0.01, max_backoff_s=0.05, total_timeout_s=10)
SMALL = "v1/small.json"
LARGE = "v1/global_0.1_degree_representation/2024/grid_0.15_52.05/grid_0.15_52.05.npy"
EMPTY = "v1/empty.bin"
OBJECTS = {
    SMALL: b'{"zarr_format": 3, "node_type": "group"}',
    LARGE: os.urandom(64) + bytes(range(256)) * 8_000,  # about 2 MB: several 1 MiB reads
    EMPTY: b"",
}
MISSING = "v1/not/here.npy"
RANGES = [(0, 10), (5, 1), (100, 5000), (len(OBJECTS[LARGE]) - 7, 7), (len(OBJECTS[LARGE]) - 7, 100)]
RANGES += [(len(OBJECTS[LARGE]), 10), (len(OBJECTS[LARGE]) + 50, 10), (3, 0), (0, len(OBJECTS[LARGE]))]

Replace = Callable[[str, bytes], None]


def _parts(directory: Path) -> list[Path]:
    return list(directory.rglob("*.part"))


class SourceContract:
    """The cases every source passes. Subclasses provide the ``source`` and ``replace`` fixtures."""

    # -- whole objects to a file ----------------------------------------------------------
    @pytest.mark.parametrize("key", [SMALL, LARGE, EMPTY])
    def test_get_writes_the_bytes_with_their_receipt(self, source: Source, tmp_path: Path, key: str) -> None:
        dest = tmp_path / "out" / "t.bin"
        result = source.get(key, dest_path=dest, expected_size=len(OBJECTS[key]))
        assert dest.read_bytes() == OBJECTS[key]
        assert (result.key, result.path, result.size) == (key, dest, len(OBJECTS[key]))
        assert result.verified and result.crc64nvme == crc64nvme_b64(OBJECTS[key])
        receipt = read_receipt(dest)
        assert receipt is not None and (receipt.key, receipt.crc64nvme) == (key, result.crc64nvme)
        assert is_complete(dest, expected_size=len(OBJECTS[key]), expected_key=key)
        assert _parts(tmp_path) == []

    def test_get_reports_the_bytes_it_receives(self, source: Source, tmp_path: Path) -> None:
        rec = Recorder()
        source.get(LARGE, dest_path=tmp_path / "t", progress=rec)
        assert sum(e.n for e in rec.of(BytesReceived)) == len(OBJECTS[LARGE])

    def test_get_of_the_wrong_size_writes_nothing(self, source: Source, tmp_path: Path) -> None:
        dest = tmp_path / "t.npy"
        dest.write_bytes(b"previous content")
        with pytest.raises(IntegrityError, match="size mismatch"):
            source.get(LARGE, dest_path=dest, expected_size=123)
        assert dest.read_bytes() == b"previous content" and _parts(tmp_path) == []

    def test_a_missing_object_is_a_404_everywhere(self, source: Source, tmp_path: Path) -> None:
        calls: list[Callable[[], object]] = [
            lambda: source.get(MISSING, dest_path=tmp_path / "m"),
            lambda: source.read_bytes(MISSING),
            lambda: source.read_if_changed(MISSING),
            lambda: source.get_range(MISSING, 0, 10),
            lambda: source.get_suffix(MISSING, 10),
            lambda: source.head(MISSING),
        ]
        for call in calls:
            with pytest.raises(SourceError) as info:
                call()
            assert info.value.status == 404 and MISSING in str(info.value)
        assert not source.exists(MISSING) and source.exists(LARGE)
        assert not (tmp_path / "m").exists() and _parts(tmp_path) == []

    # -- whole objects in memory ------------------------------------------------------------
    @pytest.mark.parametrize("key", [SMALL, LARGE, EMPTY])
    def test_read_bytes(self, source: Source, key: str) -> None:
        assert source.read_bytes(key) == OBJECTS[key]

    def test_read_if_changed_follows_the_object(self, source: Source, replace: Replace) -> None:
        data, v1 = source.read_if_changed(SMALL)
        assert data == OBJECTS[SMALL] and v1
        assert source.read_if_changed(SMALL, v1) == (None, v1)
        assert source.read_if_changed(SMALL, v1, timeout_s=5.0) == (None, v1)  # one bounded attempt
        replace(SMALL, b'{"zarr_format": 3, "changed": true}')
        data, v2 = source.read_if_changed(SMALL, v1, timeout_s=5.0)
        assert data == b'{"zarr_format": 3, "changed": true}' and v2 and v2 != v1
        assert source.read_if_changed(SMALL, Validator())[0] == data  # an empty validator: a plain GET

    # -- parts of objects -------------------------------------------------------------------
    @pytest.mark.parametrize(("start", "length"), RANGES)
    def test_get_range_is_python_slicing(self, source: Source, start: int, length: int) -> None:
        assert source.get_range(LARGE, start, length) == OBJECTS[LARGE][start : start + length]

    @pytest.mark.parametrize("length", [0, 1, 20, len(OBJECTS[LARGE]), len(OBJECTS[LARGE]) + 10])
    def test_get_suffix(self, source: Source, length: int) -> None:
        expected = OBJECTS[LARGE][-length:] if length else b""
        assert source.get_suffix(LARGE, length) == expected

    def test_concurrent_ranges_are_right(self, source: Source) -> None:
        data, errors = OBJECTS[LARGE], []

        def work(seed: int) -> None:
            for i in range(25):
                start = (seed * 7919 + i * 104_729) % len(data)
                got = source.get_range(LARGE, start, 3000)
                if got != data[start : start + 3000]:
                    errors.append((start, len(got)))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    # -- metadata and life cycle ------------------------------------------------------------
    def test_head(self, source: Source) -> None:
        info = source.head(LARGE)
        assert (info.key, info.size, info.crc64nvme) == (
            LARGE,
            len(OBJECTS[LARGE]),
            crc64nvme_b64(OBJECTS[LARGE]),
        )

    def test_a_counting_wrapper_sees_what_passes(self, source: Source, tmp_path: Path) -> None:
        counted = CountingSource(source)
        counted.get_range(LARGE, 0, 100)
        counted.read_bytes(SMALL)
        counted.get(LARGE, dest_path=tmp_path / "t")
        assert counted.requests == 3
        assert counted.bytes_read == 100 + len(OBJECTS[SMALL]) + len(OBJECTS[LARGE])
        assert counted.describe() == source.describe() and counted.head(SMALL).size == len(OBJECTS[SMALL])

    def test_close_keeps_the_source_usable(self, source: Source) -> None:
        assert isinstance(source, Source) and source.describe()
        source.close()
        source.close()
        assert source.get_range(SMALL, 0, 4) == OBJECTS[SMALL][:4]


# -- implementations ---------------------------------------------------------------------------
def _write_tree(root: Path, objects: dict[str, bytes], *, receipts: bool) -> None:
    for key, data in objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if receipts:
            write_receipt(path, size=len(data), crc64nvme=crc64nvme_b64(data), key=key)


class TestLocalDirectory(SourceContract):
    @pytest.fixture
    def root(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        root = tmp_path_factory.mktemp("mirror")
        _write_tree(root, OBJECTS, receipts=True)
        return root

    @pytest.fixture
    def source(self, root: Path) -> Iterator[Source]:
        with LocalSource(root) as src:
            yield src

    @pytest.fixture
    def replace(self, root: Path) -> Replace:
        def put(key: str, data: bytes) -> None:
            _write_tree(root, {key: data}, receipts=True)

        return put

    def test_a_damaged_mirror_file_is_refused(self, source: LocalSource, root: Path, tmp_path: Path) -> None:
        path = root / LARGE
        damaged = bytearray(path.read_bytes())
        damaged[1000] ^= 0xFF
        path.write_bytes(bytes(damaged))  # same size: only the receipt's checksum can tell
        for call in (lambda: source.read_bytes(LARGE), lambda: source.get(LARGE, dest_path=tmp_path / "t")):
            with pytest.raises(IntegrityError, match="CRC64NVMe mismatch"):
                call()
        assert not (tmp_path / "t").exists()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleServer]:
    """The sample store's moto S3 endpoint, serving :data:`OBJECTS` (bucket ``contract``)."""
    root = tmp_path_factory.mktemp("moto-contract")
    _write_tree(root, OBJECTS, receipts=False)
    server = SampleServer(root, bucket="contract")
    try:
        server.start()
        yield server
    finally:
        server.stop()


class TestMotoS3(SourceContract):
    @pytest.fixture
    def source(self, moto: SampleServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
        fresh = tmp_path_factory.mktemp("moto-reset")
        _write_tree(fresh, {SMALL: OBJECTS[SMALL]}, receipts=False)
        moto.upload_tree(fresh)  # undo a replace() of an earlier case
        with HttpSource(moto.base_url, retry=FAST) as src:
            yield src

    @pytest.fixture
    def replace(self, moto: SampleServer, tmp_path_factory: pytest.TempPathFactory) -> Replace:
        def put(key: str, data: bytes) -> None:
            staging = tmp_path_factory.mktemp("moto-put")
            _write_tree(staging, {key: data}, receipts=False)
            moto.upload_tree(staging)

        return put


class TestFaultServer(SourceContract):
    @pytest.fixture
    def server(self) -> Iterator[FaultServer]:
        srv = FaultServer(OBJECTS)
        try:
            srv.start()
            yield srv
        finally:
            srv.stop()

    @pytest.fixture
    def source(self, server: FaultServer) -> Iterator[HttpSource]:
        with HttpSource(
            server.url, retry=FAST, chunk_size=256 * 1024, timeout_s=5, connect_timeout_s=1
        ) as src:
            yield src

    @pytest.fixture
    def replace(self, server: FaultServer) -> Replace:
        return server.put

    def test_every_read_asks_for_the_checksum_and_every_whole_read_checks_it(
        self, server: FaultServer, source: HttpSource, tmp_path: Path
    ) -> None:
        source.get(LARGE, dest_path=tmp_path / "t")
        source.read_bytes(SMALL)
        assert all(r.headers.get("x-amz-checksum-mode") == "ENABLED" for r in server.requests if not r.range)
        for call in (lambda: source.read_bytes(LARGE), lambda: source.get(LARGE, dest_path=tmp_path / "c")):
            server.script(LARGE, Fault.corrupt())
            with pytest.raises(IntegrityError, match="CRC64NVMe mismatch"):
                call()
        assert not (tmp_path / "c").exists() and _parts(tmp_path) == []

    def test_403_is_an_error_everywhere_and_never_retried(
        self, server: FaultServer, source: HttpSource, tmp_path: Path
    ) -> None:
        server.script(LARGE, Fault.http_status(403, times=None))
        calls: list[Callable[[], object]] = [
            lambda: source.get(LARGE, dest_path=tmp_path / "f"),
            lambda: source.read_bytes(LARGE),
            lambda: source.read_if_changed(LARGE),
            lambda: source.get_range(LARGE, 0, 10),
            lambda: source.get_suffix(LARGE, 10),
            lambda: source.head(LARGE),
            lambda: source.exists(LARGE),
        ]
        for call in calls:
            with pytest.raises(SourceError, match="access denied") as info:
                call()
            assert info.value.status == 403
        assert len(server.requests_for(LARGE)) + len(server.requests_for(LARGE, "HEAD")) == len(calls)

    def test_503_is_retried_by_every_read(
        self, server: FaultServer, source: HttpSource, tmp_path: Path
    ) -> None:
        rec = Recorder()
        calls: list[Callable[[], object]] = [
            lambda: source.get(LARGE, dest_path=tmp_path / "r", progress=rec),
            lambda: source.read_bytes(LARGE),
            lambda: source.read_if_changed(LARGE),
            lambda: source.get_range(LARGE, 10, 10),
            lambda: source.get_suffix(LARGE, 10),
        ]
        for call in calls:
            server.script(LARGE, Fault.http_status(503, times=2))
            call()
        assert len(server.requests_for(LARGE)) == 3 * len(calls)
        assert len(rec.of(Retrying)) == 2 and (tmp_path / "r").read_bytes() == OBJECTS[LARGE]

    def test_a_bounded_conditional_read_is_not_retried(self, server: FaultServer, source: HttpSource) -> None:
        server.script(SMALL, Fault.http_status(503, times=1))
        with pytest.raises(SourceError) as info:
            source.read_if_changed(SMALL, timeout_s=2.0)
        assert info.value.status == 503 and len(server.requests_for(SMALL)) == 1

    def test_interrupted_ranges_are_retried(self, server: FaultServer, source: HttpSource) -> None:
        server.script(LARGE, Fault.reset(fraction=0.3), Fault.truncate(fraction=0.5))
        assert source.get_range(LARGE, 1000, 200_000) == OBJECTS[LARGE][1000:201_000]
        assert len(server.requests_for(LARGE)) == 3

    def test_a_server_ignoring_ranges_still_gives_the_range(
        self, server: FaultServer, source: HttpSource
    ) -> None:
        server.script(LARGE, Fault.ignore_range(times=None))
        assert source.get_range(LARGE, 1000, 50) == OBJECTS[LARGE][1000:1050]
        assert source.get_suffix(LARGE, 50) == OBJECTS[LARGE][-50:]
