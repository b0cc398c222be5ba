"""CRC-64/NVME check vectors of formats.md section 3, through every entry point we rely on."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from awscrt.checksums import crc64nvme

from geotessera.files.checksum import Crc64Nvme, crc64nvme_b64, crc64nvme_file

CHECK_VALUE = 0xAE8B14860A799888
VECTORS = [(b"123456789", "rosUhgp5mIg="), (b"", "AAAAAAAAAAA=")]


def test_check_value() -> None:
    assert crc64nvme(b"123456789") == CHECK_VALUE
    assert base64.b64encode(CHECK_VALUE.to_bytes(8, "big")).decode() == "rosUhgp5mIg="


@pytest.mark.parametrize(("data", "header"), VECTORS, ids=["check", "empty"])
def test_header_form(data: bytes, header: str) -> None:
    assert crc64nvme_b64(data) == header


@pytest.mark.parametrize(("data", "header"), VECTORS, ids=["check", "empty"])
def test_file_form(tmp_path: Path, data: bytes, header: str) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert crc64nvme_file(path) == header
    assert crc64nvme_file(path, chunk_size=2) == header


def test_streaming_in_any_split_matches() -> None:
    crc = Crc64Nvme()
    for piece in (b"1", b"", b"2345", memoryview(b"6789")):
        crc.update(piece)
    assert crc.value == CHECK_VALUE
    assert crc.b64 == "rosUhgp5mIg="
    assert crc.nbytes == 9
