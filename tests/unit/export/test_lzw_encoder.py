"""Our TIFF LZW encoder writes libtiff's bit stream, byte for byte (geotessera.export._lzw).

The reference is libtiff itself: GDAL writes the same bytes as one strip of a 1-band uint8 TIFF,
and the encoded strip is read back from the file. Any difference in where a string ends, when a
Clear comes (table full, compression ratio no longer improving), when the code width grows, or
how the last bits are padded shows up as a different stream.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geotessera.export import lzw_tiles
from geotessera.export.lzw_tiles import encode_tile


def _libtiff_lzw(data: bytes, tmp: Path) -> bytes:
    """libtiff's LZW stream of ``data``, as one strip of a 1 x len(data) uint8 TIFF."""
    arr = np.frombuffer(data, dtype=np.uint8).reshape(1, 1, len(data))
    path = tmp / "ref.tif"
    profile = {
        "driver": "GTiff", "height": 1, "width": len(data), "count": 1, "dtype": "uint8",
        "compress": "lzw", "tiled": False, "blockysize": 1,
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr)
        with rasterio.open(path) as ds:
            offset = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
            size = int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def _segments(data: st.DataObject) -> bytes:
    """Bytes made of segments that stress every branch: zero runs (short and long), random bytes,
    small alphabets (long strings, early table fills), runs of one other value, float32 values
    sharing a scale (the embeddings' shape)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    parts: list[bytes] = []
    for _ in range(data.draw(st.integers(1, 8))):
        n = data.draw(st.sampled_from([1, 2, 7, 8, 9, 15, 16, 17, 100, 1000, 9_999, 10_001, 30_000, 70_000]))
        kind = data.draw(st.sampled_from(["zeros", "random", "binary", "run", "floats"]))
        if kind == "zeros":
            parts.append(bytes(n))
        elif kind == "random":
            parts.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        elif kind == "binary":
            parts.append(rng.integers(0, 2, n, dtype=np.uint8).tobytes())
        elif kind == "run":
            parts.append(bytes([int(rng.integers(1, 256))]) * n)
        else:
            q = rng.integers(-128, 128, -(-n // 4), dtype=np.int8).astype(np.float32)
            parts.append((q * np.float32(rng.uniform(0.01, 0.1))).tobytes()[:n])
    return b"".join(parts)


@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_stream_is_libtiffs(data: st.DataObject, tmp_path: Path) -> None:
    raw = _segments(data)
    assert encode_tile(np.frombuffer(raw, dtype=np.uint8)) == _libtiff_lzw(raw, tmp_path)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00",
        b"\x07",
        b"ab",
        bytes(8),  # the shortest zero run taken whole
        bytes(9),
        bytes(8_000_000),  # zeros past one full table (3,836 codes of growing runs)
        bytes(range(256)) * 4000,  # no string repeats for a while, then the table fills
        b"\x00\x01" * 50_000,
    ],
    ids=["zero", "one-byte", "two-bytes", "8-zeros", "9-zeros", "8M-zeros", "ramp", "alternating"],
)
def test_edge_streams_are_libtiffs(raw: bytes, tmp_path: Path) -> None:
    assert encode_tile(np.frombuffer(raw, dtype=np.uint8)) == _libtiff_lzw(raw, tmp_path)


def test_noise_resets_on_ratio_and_full_table(tmp_path: Path) -> None:
    """Random bytes grow under LZW: the ratio check clears the table before it fills; a switch
    from compressible to random data clears it when the ratio stops improving."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    mixed = b"".join(
        [bytes([i % 3]) * 20_000 + rng.integers(0, 256, 15_000, dtype=np.uint8).tobytes() for i in range(6)]
    )
    for raw in (noise, mixed):
        assert encode_tile(np.frombuffer(raw, dtype=np.uint8)) == _libtiff_lzw(raw, tmp_path)


def test_a_real_looking_tile_matches_and_decodes(tmp_path: Path) -> None:
    """A 256 x 256 x 128 float32 tile, partly padding, as the export encodes it."""
    rng = np.random.default_rng(3)
    tile = np.zeros((256, 256, 128), dtype=np.float32)
    tile[:200, :90] = rng.integers(-128, 128, (200, 90, 128)).astype(np.float32) * rng.uniform(
        0.01, 0.1, (200, 90, 1)
    ).astype(np.float32)
    tile[10:20, 10:20] = np.nan
    raw = tile.tobytes()
    assert encode_tile(tile) == _libtiff_lzw(raw, tmp_path)


def test_the_encoder_is_built() -> None:
    """The C extension is part of every install this project makes (make install, the wheel):
    without it the export silently falls back to GDAL's slower encoder."""
    assert lzw_tiles.usable(1100, 128)


def test_non_contiguous_input_is_refused() -> None:
    tile = np.zeros((4, 4, 2), dtype=np.float32)
    with pytest.raises((BufferError, ValueError, TypeError)):
        encode_tile(tile[:, ::2])
