"""Filling a sparse tiled TIFF with tiles encoded elsewhere (geotessera.export.tile_index)."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geotessera.export.lzw_tiles import encode_tile
from geotessera.export.tile_index import TiffLayoutError, TileAppender, read_tile_arrays


def _sparse(path: Path, h: int, w: int, bands: int, **options: object) -> None:
    profile = {
        "driver": "GTiff", "height": h, "width": w, "count": bands, "dtype": "float32",
        "compress": "lzw", "tiled": True, "blockxsize": 256, "blockysize": 256,
        "interleave": "pixel", "sparse_ok": True, **options,
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.update_tags(NOTE="header only")


@pytest.mark.parametrize(
    "options",
    [{}, {"bigtiff": "YES"}, {"endianness": "BIG"}, {"bigtiff": "YES", "endianness": "BIG"}],
    ids=["classic", "bigtiff", "big-endian", "bigtiff-big-endian"],
)
@pytest.mark.parametrize("shape", [(100, 100), (300, 520)], ids=["one-tile", "six-tiles"])
def test_appended_tiles_read_back(tmp_path: Path, options: dict[str, object], shape: tuple[int, int]) -> None:
    h, w = shape
    rng = np.random.default_rng(1)
    image = rng.standard_normal((h, w, 3)).astype(np.float32)
    path = tmp_path / "t.tif"
    _sparse(path, h, w, 3, **options)
    big_endian = options.get("endianness") == "BIG"
    with TileAppender(path) as out:
        assert out.tile_count == -(-h // 256) * -(-w // 256)
        for r in range(0, h, 256):
            for c in range(0, w, 256):
                tile = np.zeros((256, 256, 3), dtype=">f4" if big_endian else "<f4")
                tile[: min(256, h - r), : min(256, w - c)] = image[r : r + 256, c : c + 256]
                out.append(encode_tile(tile))
    with rasterio.open(path) as ds:
        assert ds.tags()["NOTE"] == "header only"
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), image)


def test_too_few_or_too_many_tiles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.tif"
    _sparse(path, 300, 300, 1)
    tile = encode_tile(np.zeros((256, 256, 1), dtype=np.float32))
    with pytest.raises(TiffLayoutError, match="3 of 4 tiles"), TileAppender(path) as out:
        for _ in range(3):
            out.append(tile)
    with pytest.raises(TiffLayoutError, match="more than 4 tiles"), TileAppender(path) as out:
        for _ in range(5):
            out.append(tile)
    with rasterio.open(path) as ds:  # the header was never patched: the tiles are still missing
        assert ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1) in (None, "", "0")


def _handmade_tiff(path: Path, field_type: int, count: int) -> None:
    """A minimal little-endian classic TIFF directory with tile arrays of ``field_type``."""
    fmt = {3: "H", 4: "I"}[field_type]
    size = struct.calcsize(fmt) * count
    ifd = 8
    entries = [(322, 3, 1, 256), (323, 3, 1, 256)]
    array_at = ifd + 2 + 12 * 4 + 4
    entries += [(324, field_type, count, array_at), (325, field_type, count, array_at + size)]
    body = struct.pack("<2sHI", b"II", 42, ifd) + struct.pack("<H", len(entries))
    for tag, typ, cnt, val in entries:
        body += struct.pack("<HHII", tag, typ, cnt, val)
    body += struct.pack("<I", 0) + bytes(2 * size)
    path.write_bytes(body)


def test_short_arrays_refuse_values_that_do_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "short.tif"
    _handmade_tiff(path, 3, 2)
    with open(path, "rb") as f:
        arrays = read_tile_arrays(f)
    assert arrays.offsets.fmt == "H" and arrays.offsets.count == 2 and arrays.offsets.limit == 65535
    with pytest.raises(TiffLayoutError, match="does not fit"), TileAppender(path) as out:
        out.append(b"x" * 70_000)
        out.append(b"y")


def test_short_arrays_are_written_when_they_fit(tmp_path: Path) -> None:
    path = tmp_path / "short.tif"
    _handmade_tiff(path, 3, 2)
    with TileAppender(path) as out:
        out.append(b"abc")
        out.append(b"de")
    data = path.read_bytes()
    with open(path, "rb") as f:
        arrays = read_tile_arrays(f)
    offsets = struct.unpack_from("<2H", data, arrays.offsets.position)
    sizes = struct.unpack_from("<2H", data, arrays.byte_counts.position)
    assert sizes == (3, 2)
    assert data[offsets[0] : offsets[0] + 3] == b"abc" and data[offsets[1] : offsets[1] + 2] == b"de"


def test_inline_arrays_of_one_tile(tmp_path: Path) -> None:
    """One LONG tile: the offset lives in the directory entry itself."""
    path = tmp_path / "one.tif"
    _handmade_tiff(path, 4, 1)
    with open(path, "rb") as f:
        arrays = read_tile_arrays(f)
    assert arrays.offsets.position == 8 + 2 + 12 * 2 + 8  # the value field of the third entry
    with TileAppender(path) as out:
        out.append(b"tile")
    data = path.read_bytes()
    (offset,) = struct.unpack_from("<I", data, arrays.offsets.position)
    assert data[offset:] == b"tile"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"PK\x03\x04 not a tiff", "not a TIFF"),
        (b"II\x2b\x00\x08\x00\x00\x00", "truncated"),
        (struct.pack("<2sHIH", b"II", 42, 8, 20), "truncated"),
        (struct.pack("<2sHI", b"II", 7, 8), "unknown TIFF version"),
    ],
)
def test_other_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.tif"
    path.write_bytes(content)
    with pytest.raises(TiffLayoutError, match=message), TileAppender(path):
        pass


def test_a_striped_tiff_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "striped.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", height=10, width=10, count=1, dtype="uint8") as dst:
            dst.write(np.zeros((1, 10, 10), np.uint8))
    with pytest.raises(TiffLayoutError, match="not a tiled TIFF"), TileAppender(path):
        pass


def test_a_tile_given_as_a_typed_buffer_is_recorded_at_its_size_in_bytes(tmp_path: Path) -> None:
    """append takes any bytes-like object: a memoryview of a non-byte array has fewer elements
    than bytes, and its byte count is what the file must record."""
    path = tmp_path / "t.tif"
    _sparse(path, 100, 100, 1)
    encoded = np.frombuffer(encode_tile(np.ones((256, 256, 1), dtype=np.float32)), dtype=np.uint8)
    padded = np.concatenate([encoded, np.zeros(-len(encoded) % 4, np.uint8)]).view(np.uint32)
    with TileAppender(path) as out:
        out.append(memoryview(padded))
    with rasterio.open(path) as ds:
        assert int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1)) == padded.nbytes
        np.testing.assert_array_equal(ds.read(1), np.ones((100, 100), np.float32))
