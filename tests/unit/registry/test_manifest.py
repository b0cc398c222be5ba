"""Manifest loading and caching with in-process fake sources (no sockets)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geotessera.datasets import DatasetId
from geotessera.errors import CorruptDataError, NotCoveredError, SourceError
from geotessera.registry import Registry, cached_manifest_paths, load_manifest
from geotessera.transfer import Validator

BASE = "https://example.invalid/tessera-embeddings"
V1 = DatasetId()


def manifest_table(years: tuple[int, ...] = (2024,), variant: str = "vultr", n: int = 3) -> pa.Table:
    rows = [(y, (10 * i + 5) / 100, 52.05) for y in years for i in range(n)]
    return pa.table(
        {
            "version": ["1.0"] * len(rows),
            "variant": [variant] * len(rows),
            "year": pa.array([r[0] for r in rows], pa.int64()),
            "lon": [r[1] for r in rows],
            "lat": [r[2] for r in rows],
            "grid_size": pa.array([100 + i for i in range(len(rows))], pa.int64()),
            "scales_size": pa.array([10 + i for i in range(len(rows))], pa.int64()),
        }
    )


def landmasks_table(n: int = 3) -> pa.Table:
    return pa.table({"lon": [(10 * i + 5) / 100 for i in range(n)], "lat": [52.05] * n, "file_size": [7] * n})


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


class FakeSource:
    """In-memory objects with ETags; records every call; can be made to hang or fail."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.etags = {k: f'"{i}"' for i, k in enumerate(objects)}
        self.calls: list[tuple[str, Validator | None]] = []
        self.hang = threading.Event()  # set: block until `release` is set
        self.release = threading.Event()
        self.fail = False

    def read_bytes(self, key: str) -> bytes:
        data, _ = self.read_if_changed(key)
        assert data is not None
        return data

    def read_if_changed(
        self, key: str, validator: Validator | None = None, *, timeout_s: float | None = None
    ) -> tuple[bytes | None, Validator]:
        self.calls.append((key, validator))
        if self.hang.is_set():
            self.release.wait(10)
        if self.fail:
            raise SourceError("connection refused (fake)")
        if key not in self.objects:
            raise SourceError(f"{key} not found", status=404)
        etag = self.etags[key]
        if validator is not None and validator.etag == etag:
            return None, validator
        return self.objects[key], Validator(etag, None)

    def replace(self, key: str, data: bytes) -> None:
        self.objects[key] = data
        self.etags[key] = f'"{self.etags[key].strip(chr(34))}x"'


@pytest.fixture
def source() -> FakeSource:
    return FakeSource(
        {
            "v1/manifest.parquet": parquet_bytes(manifest_table()),
            "v1/landmasks.parquet": parquet_bytes(landmasks_table()),
        }
    )


def load(source: object, cache: Path, **kw: object) -> object:
    return load_manifest(V1, base_url=BASE, source=source, cache_dir=cache, **kw)  # type: ignore[arg-type]


def test_first_load_fetches_and_caches(source: FakeSource, tmp_path: Path) -> None:
    m = load(source, tmp_path)
    reg = Registry.from_manifest(m)
    assert len(reg) == 3 and not m.from_cache
    assert reg.landmask_size(0.15, 52.05) == 7
    paths = cached_manifest_paths(V1, base_url=BASE, cache_dir=tmp_path)
    assert all(p.is_file() for p in paths)
    assert paths[0].parent.parent == tmp_path / "v1"  # a non-default base gets its own sub-directory
    meta = json.loads(paths[0].with_name("manifest.parquet.json").read_text())
    assert (
        meta["url"] == f"{BASE}/v1/manifest.parquet" and meta["etag"] == source.etags["v1/manifest.parquet"]
    )
    assert not list(paths[0].parent.glob("*.part"))


def test_default_remote_caches_under_vpath(tmp_path: Path) -> None:
    m, lm = cached_manifest_paths(V1, cache_dir=tmp_path)
    assert (m, lm) == (tmp_path / "v1" / "manifest.parquet", tmp_path / "v1" / "landmasks.parquet")
    m11, _ = cached_manifest_paths(DatasetId.parse("v1.1", "cambridge"), cache_dir=tmp_path)
    assert m11 == tmp_path / "v1.1" / "manifest.parquet"


def test_unchanged_etag_keeps_the_cache(source: FakeSource, tmp_path: Path) -> None:
    load(source, tmp_path)
    path = cached_manifest_paths(V1, base_url=BASE, cache_dir=tmp_path)[0]
    before = path.stat().st_mtime_ns
    source.calls.clear()
    m = load(source, tmp_path)
    assert m.from_cache
    assert path.stat().st_mtime_ns == before
    assert ("v1/manifest.parquet", Validator(source.etags["v1/manifest.parquet"], None)) in source.calls


def test_changed_manifest_is_used_and_cached(source: FakeSource, tmp_path: Path) -> None:
    load(source, tmp_path)
    source.replace("v1/manifest.parquet", parquet_bytes(manifest_table(years=(2023, 2024))))
    reg = Registry.from_manifest(load(source, tmp_path))
    assert reg.available_years() == [2023, 2024]
    reg = Registry.from_manifest(load(source, tmp_path, offline=True))
    assert reg.available_years() == [2023, 2024]


def test_offline_never_calls_the_source(source: FakeSource, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="offline and no cached manifest"):
        load(source, tmp_path, offline=True)
    assert source.calls == []
    load(source, tmp_path)
    source.calls.clear()
    m = load(source, tmp_path, offline=True)
    assert m.from_cache and len(Registry.from_manifest(m)) == 3
    assert source.calls == []


def test_hanging_check_does_not_block_start_up(
    source: FakeSource, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load(source, tmp_path)
    source.hang.set()
    try:
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="geotessera"):
            m = load(source, tmp_path, freshness_timeout_s=0.3)
        assert time.monotonic() - t0 < 2.0
        assert len(Registry.from_manifest(m)) == 3
        assert "could not check" in caplog.text
    finally:
        source.release.set()


def test_failing_check_warns_and_uses_the_cache(
    source: FakeSource, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load(source, tmp_path)
    source.fail = True
    with caplog.at_level(logging.WARNING, logger="geotessera"):
        m = load(source, tmp_path)
    assert m.from_cache and len(Registry.from_manifest(m)) == 3
    assert "connection refused (fake)" in caplog.text


def test_nothing_cached_and_source_down_is_a_source_error(source: FakeSource, tmp_path: Path) -> None:
    source.fail = True
    with pytest.raises(SourceError):
        load(source, tmp_path)


def test_corrupt_download_is_not_cached(source: FakeSource, tmp_path: Path) -> None:
    source.objects["v1/manifest.parquet"] = b"PAR1 definitely not parquet"
    with pytest.raises(CorruptDataError, match=r"manifest\.parquet"):
        load(source, tmp_path)
    assert not cached_manifest_paths(V1, base_url=BASE, cache_dir=tmp_path)[0].exists()


def test_corrupt_cache_is_fetched_again_online_and_an_error_offline(
    source: FakeSource, tmp_path: Path
) -> None:
    load(source, tmp_path)
    path = cached_manifest_paths(V1, base_url=BASE, cache_dir=tmp_path)[0]
    path.write_bytes(path.read_bytes()[:50])  # truncated
    with pytest.raises(CorruptDataError, match=re.escape(str(path))):
        load(source, tmp_path, offline=True)
    assert len(Registry.from_manifest(load(source, tmp_path))) == 3


def test_missing_landmasks_manifest_is_not_fatal(tmp_path: Path) -> None:
    src = FakeSource({"v1/manifest.parquet": parquet_bytes(manifest_table())})
    reg = Registry.from_manifest(load(src, tmp_path))
    assert len(reg) == 3 and reg.landmask_size(0.15, 52.05) is None


# --- local files ---------------------------------------------------------------------------
def test_registry_path_and_dir(tmp_path: Path) -> None:
    pq.write_table(manifest_table(), tmp_path / "manifest.parquet")
    pq.write_table(landmasks_table(), tmp_path / "landmasks.parquet")
    by_path = Registry.from_manifest(load_manifest(V1, registry_path=tmp_path / "manifest.parquet"))
    by_dir = Registry.from_manifest(load_manifest(V1, registry_dir=tmp_path))
    assert by_path.available_years() == by_dir.available_years() == [2024]
    assert by_dir.landmask_size(0.05, 52.05) == 7
    assert by_dir.file_sizes(by_dir.load_blocks_for_region((0, 52, 0.3, 52.1), 2024)) == (303, 33)


def test_registry_dir_falls_back_to_legacy_name(tmp_path: Path) -> None:
    pq.write_table(manifest_table(), tmp_path / "registry.parquet")
    assert len(Registry.from_manifest(load_manifest(V1, registry_dir=tmp_path))) == 3
    with pytest.raises(SourceError, match=r"neither manifest\.parquet nor registry\.parquet"):
        load_manifest(V1, registry_dir=tmp_path / "nowhere")


def test_priority_registry_path_first(tmp_path: Path) -> None:
    pq.write_table(manifest_table(n=2), tmp_path / "a.parquet")
    pq.write_table(manifest_table(n=5), tmp_path / "manifest.parquet")
    m = load_manifest(
        V1, registry_path=tmp_path / "a.parquet", registry_dir=tmp_path, registry_url="http://x/y"
    )
    assert m.tiles.num_rows == 2


def test_local_base_url_is_a_mirror(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    pq.write_table(manifest_table(), tmp_path / "v1" / "manifest.parquet")
    m = load_manifest(V1, base_url=tmp_path.as_uri(), cache_dir=tmp_path / "cache")
    assert m.tiles.num_rows == 3 and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("cut", [0, 10, 200])
def test_truncated_parquet_is_corrupt_data(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "manifest.parquet"
    pq.write_table(manifest_table(), path)
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(CorruptDataError, match=re.escape(str(path))):
        load_manifest(V1, registry_path=path)


def test_constant_other_variant_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    pq.write_table(manifest_table(variant="cambridge"), path)
    with pytest.raises(NotCoveredError, match=r"holds v1/cambridge"):
        load_manifest(V1, registry_path=path)
    m = load_manifest(DatasetId.parse("1.0", "cambridge"), registry_path=path)
    assert m.tiles.num_rows == 3


def test_mixed_variants_are_filtered(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    pq.write_table(pa.concat_tables([manifest_table(n=2), manifest_table(variant="cambridge", n=4)]), path)
    assert load_manifest(V1, registry_path=path).tiles.num_rows == 2
    assert load_manifest(DatasetId.parse("1.0", "cambridge"), registry_path=path).tiles.num_rows == 4
