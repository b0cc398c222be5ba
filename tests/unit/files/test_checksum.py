"""Streaming CRC64NVMe: check vectors, and any split of a stream gives the one-shot value."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import pytest
from awscrt.checksums import crc64nvme
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.files.checksum import Crc64Nvme, crc64nvme_b64, crc64nvme_file, crc64nvme_to_b64


def test_check_vector() -> None:
    crc = Crc64Nvme()
    crc.update(b"123456789")
    assert crc.value == 0xAE8B14860A799888
    assert crc.b64 == "rosUhgp5mIg="
    assert crc64nvme_b64(b"123456789") == "rosUhgp5mIg="


def test_empty() -> None:
    assert Crc64Nvme().b64 == "AAAAAAAAAAA="
    assert crc64nvme_b64(b"") == "AAAAAAAAAAA="
    assert Crc64Nvme().value == 0


def test_b64_is_big_endian() -> None:
    assert base64.b64decode(crc64nvme_to_b64(0x0102030405060708)) == bytes(range(1, 9))


def test_accepts_bytearray_and_memoryview() -> None:
    data = bytearray(b"123456789")
    crc = Crc64Nvme()
    crc.update(memoryview(data)[:4])
    crc.update(data[4:])
    assert crc.value == 0xAE8B14860A799888
    assert crc.nbytes == 9


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4096), cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=12))
def test_streamed_in_random_chunks_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    crc = Crc64Nvme()
    for start, end in itertools.pairwise(points):
        crc.update(memoryview(data)[start:end])
    assert crc.value == crc64nvme(data)
    assert crc.b64 == crc64nvme_b64(data)
    assert crc.nbytes == len(data)


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=2048), chunk=st.integers(min_value=1, max_value=300))
def test_file_in_any_chunk_size(tmp_path_factory: pytest.TempPathFactory, data: bytes, chunk: int) -> None:
    path = tmp_path_factory.mktemp("crc") / "blob"
    path.write_bytes(data)
    assert crc64nvme_file(path, chunk_size=chunk) == crc64nvme_b64(data)


def test_file_default_chunking(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: more than one 8 MiB chunk
    path = tmp_path / "big"
    path.write_bytes(data)
    assert crc64nvme_file(path) == crc64nvme_b64(data)
