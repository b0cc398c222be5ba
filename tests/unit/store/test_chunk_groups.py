"""Values picked from still-shuffled Blosc chunks equal those of a whole decode."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from geotessera.errors import CorruptDataError
from geotessera.store.layout import ArrayLayout
from geotessera.store.read.chunk_groups import DecodedGroup, ShuffledGroup, decode_into, group_of
from geotessera.store.read.decode import decode_inner


def _layout(dtype: str, inner: tuple[int, ...], cname: str = "zstd", shuffle: str = "bitshuffle",
            blocksize: int = 0) -> ArrayLayout:  # fmt: skip
    comp = {"name": "blosc", "configuration": {"cname": cname, "clevel": 3, "shuffle": shuffle,
                                               "blocksize": blocksize}}  # fmt: skip
    return ArrayLayout("a", inner, np.dtype(dtype), 0, inner, inner, True, comp, True, True, "/", False, None)


def _chunks(layout: ArrayLayout, n: int, seed: int) -> list[np.ndarray]:
    """Compressible chunks (smooth, with extreme values), one constant chunk."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if layout.dtype.kind == "f":
            a = rng.normal(0.01, 0.002, layout.inner_shape).astype(layout.dtype)
            odd = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 2.0, -1, 7]
            a.reshape(-1)[rng.integers(0, a.size, len(odd))] = odd
        else:
            a = (rng.integers(-3, 4, layout.inner_shape) * 8).astype(layout.dtype)
            a.reshape(-1)[rng.integers(0, a.size, 4)] = [-128, 127, -1, 1]
        out.append(np.full_like(a, 5) if i == 1 else a)
    return out


def _check(layout: ArrayLayout, raws: list[bytes], kind: type, seed: int = 0) -> None:
    group = group_of(raws, layout)
    assert type(group) is kind
    whole = np.stack([decode_inner(r, layout) for r in raws]).reshape(len(raws), -1)
    rng = np.random.default_rng(seed)
    size = layout.inner_size
    k = rng.integers(0, len(raws), 50)[:, None]
    flat = np.c_[rng.integers(0, size, (50, 5)), np.zeros(50, int), np.full(50, size - 1)]
    got = group.take(k, flat)
    assert got.dtype == layout.dtype and got.shape == flat.shape
    np.testing.assert_array_equal(got.view(np.uint8), whole[k, flat].view(np.uint8))  # bit for bit


@pytest.mark.parametrize(
    ("dtype", "inner", "cname", "shuffle", "kind"),
    [
        ("int8", (1, 16, 32, 32), "zstd", "bitshuffle", ShuffledGroup),  # formats.md embeddings
        ("float32", (1, 32, 32), "zstd", "shuffle", ShuffledGroup),  # formats.md scales
        ("float32", (1, 32, 32), "zstd", "noshuffle", ShuffledGroup),
        ("int8", (1, 8, 16, 16), "zstd", "shuffle", ShuffledGroup),  # byte shuffle of bytes: none
        ("int16", (3, 40), "zstd", "shuffle", ShuffledGroup),
        ("float32", (1, 32, 32), "zstd", "bitshuffle", DecodedGroup),  # bit shuffle of 4-byte values
        ("int8", (1, 16, 32, 32), "lz4", "bitshuffle", DecodedGroup),
    ],
)
def test_take_matches_whole_decode(dtype: str, inner: tuple[int, ...], cname: str, shuffle: str,
                                   kind: type) -> None:  # fmt: skip
    layout = _layout(dtype, inner, cname, shuffle)
    raws = [bytes(layout.codec.encode(a)) for a in _chunks(layout, 6, 1)]
    _check(layout, raws, kind)


def test_frames_it_cannot_read_are_decoded_whole() -> None:
    layout = _layout("int8", (1, 16, 32, 32), blocksize=4096)  # several blocks
    _check(layout, [bytes(layout.codec.encode(a)) for a in _chunks(layout, 3, 2)], DecodedGroup)
    layout = _layout("int8", (1, 16, 32, 32))
    noise = np.random.default_rng(3).integers(-128, 128, layout.inner_shape, dtype=np.int8)
    stored = bytes(layout.codec.encode(noise))  # incompressible: Blosc stores it (flag 0x02)
    assert stored[2] & 0x02
    fine = [bytes(layout.codec.encode(a)) for a in _chunks(layout, 2, 4)]
    _check(layout, [fine[0], stored, fine[1]], DecodedGroup)  # one such chunk: the group is decoded whole
    _check(layout, fine, ShuffledGroup)
    unshuffled = _layout("int8", (1, 16, 32, 32), shuffle="noshuffle").codec
    plain = bytes(unshuffled.encode(_chunks(layout, 1, 8)[0]))
    _check(layout, [fine[0], plain], DecodedGroup)  # two shuffles in one group: decoded whole


def test_a_stream_stored_raw_is_read_as_is() -> None:
    """A block whose stream did not compress is stored with its size equal to the block's."""
    layout = _layout("int8", (1, 16, 32, 32))
    chunk = _chunks(layout, 1, 5)[0]
    frame = bytes(layout.codec.encode(chunk))
    shuffled = zstandard.ZstdDecompressor().decompress(frame[24:])
    n = len(shuffled)
    raw = frame[:4] + struct.pack("<3i", n, n, 24 + n) + struct.pack("<2i", 20, n) + shuffled
    np.testing.assert_array_equal(decode_inner(raw, layout), chunk)  # Blosc itself agrees
    _check(layout, [raw, frame], ShuffledGroup)


@settings(max_examples=60, deadline=None)
@given(
    chunk=hnp.arrays(np.int8, (1, 8, 16, 16), elements=st.integers(-128, 127)),
    pixels=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), min_size=1, max_size=8),
)
def test_bit_shuffled_pixels_match(chunk: np.ndarray, pixels: list[tuple[int, int]]) -> None:
    layout = _layout("int8", chunk.shape)
    raw = bytes(layout.codec.encode(chunk))
    group = group_of([raw], layout)
    bands = np.arange(8)
    flat = np.array([bands * 256 + r * 16 + c for r, c in pixels])
    want = np.array([chunk[0, :, r, c] for r, c in pixels])
    np.testing.assert_array_equal(group.take(np.zeros((len(pixels), 1), dtype=np.intp), flat), want)


@pytest.mark.parametrize("damage", ["garble", "truncate", "grow"])
def test_damaged_chunks_raise_corrupt_data(damage: str) -> None:
    layout = _layout("int8", (1, 16, 32, 32))
    good, raw = (bytearray(layout.codec.encode(a)) for a in _chunks(layout, 3, 6)[::2])
    if damage == "garble":
        raw[30:60] = bytes(30)
    elif damage == "truncate":
        raw = raw[:-9]
    else:
        raw += b"\0" * 5
    with pytest.raises(CorruptDataError, match="a: inner chunk"):
        group_of([bytes(good), bytes(raw)], layout)


def test_group_of_decoded_stack_round_trips() -> None:
    layout = _layout("int8", (2, 3), "lz4", "noshuffle")
    chunks: Any = _chunks(layout, 2, 7)
    group = group_of([bytes(layout.codec.encode(a)) for a in chunks], layout)
    assert isinstance(group, DecodedGroup)
    np.testing.assert_array_equal(group.stack, np.stack(chunks))


@pytest.mark.parametrize(
    ("dtype", "inner", "cname", "shuffle"),
    [
        ("float32", (1, 32, 32), "zstd", "shuffle"),  # formats.md scales: python-zstandard
        ("float32", (1, 32, 32), "zstd", "noshuffle"),
        ("int16", (3, 40), "zstd", "shuffle"),
        ("int8", (1, 16, 32, 32), "zstd", "bitshuffle"),  # through c-blosc
        ("float32", (1, 32, 32), "lz4", "shuffle"),
    ],
)
def test_decode_into_matches_whole_decode(
    dtype: str, inner: tuple[int, ...], cname: str, shuffle: str
) -> None:
    layout = _layout(dtype, inner, cname, shuffle)
    chunks = _chunks(layout, 4, 9)
    out = np.full((4, *inner), 3, dtype=dtype)
    decode_into([bytes(layout.codec.encode(a)) for a in chunks], layout, out)
    np.testing.assert_array_equal(out.view(np.uint8), np.stack(chunks).view(np.uint8))
    with pytest.raises(ValueError, match="does not fit"):
        decode_into([bytes(layout.codec.encode(chunks[0]))], layout, out)
    raw = bytearray(layout.codec.encode(chunks[0]))
    with pytest.raises(CorruptDataError, match="a: inner chunk"):
        decode_into([bytes(raw[:-3])], layout, out[:1])


def _frame_with(layout: ArrayLayout, chunk: np.ndarray, stream: bytes) -> bytes:
    """``chunk``'s Blosc frame with its zstd stream replaced (sizes adjusted to match)."""
    frame = bytes(layout.codec.encode(chunk))
    n, m = chunk.nbytes, len(stream)
    return frame[:4] + struct.pack("<3i", n, n, 24 + m) + struct.pack("<2i", 20, m) + stream


def test_streams_are_trusted_only_for_the_chunks_size() -> None:
    layout = _layout("int8", (1, 16, 32, 32))
    chunk = _chunks(layout, 1, 10)[0]
    shuffled = zstandard.ZstdDecompressor().decompress(bytes(layout.codec.encode(chunk))[24:])
    bomb = _frame_with(layout, chunk, zstandard.ZstdCompressor(level=19).compress(bytes(2**28)))
    with pytest.raises(CorruptDataError, match="stream says 268435456 bytes, not 16384"):
        group_of([bomb], layout)  # refused before decompressing 256 MiB
    extra = _frame_with(layout, chunk, zstandard.ZstdCompressor().compress(shuffled) + b"tail")
    with pytest.raises(CorruptDataError, match="a: inner chunk"):
        group_of([extra], layout)  # c-blosc refuses bytes after the stream too
    no_size = zstandard.ZstdCompressor(write_content_size=False)
    unsized = _frame_with(layout, chunk, no_size.compress(shuffled))
    _check(layout, [unsized], DecodedGroup)  # size not recorded: c-blosc decodes it, bounded
    other = bytearray(layout.codec.encode(chunk))
    other[1] = 7  # an unknown version of the codec's stream format: left to c-blosc, which refuses it
    with pytest.raises(CorruptDataError, match="a: inner chunk"):
        group_of([bytes(other)], layout)


def test_a_garbled_stream_of_scales_raises_corrupt_data() -> None:
    layout = _layout("float32", (1, 32, 32), shuffle="shuffle")
    raw = bytearray(layout.codec.encode(_chunks(layout, 1, 11)[0]))
    raw[24:28] = bytes(4)  # the zstd frame's magic number (Blosc has no checksum of the data itself)
    with pytest.raises(CorruptDataError, match="cannot be decoded"):
        decode_into([bytes(raw)], layout, np.empty((1, 1, 32, 32), dtype=np.float32))


@pytest.mark.parametrize("shuffle", ["bitshuffle", "noshuffle"])
def test_take_refuses_positions_outside_the_chunks(shuffle: str) -> None:
    layout = _layout("int8", (1, 4, 8, 8), shuffle=shuffle)
    group = group_of([bytes(layout.codec.encode(a)) for a in _chunks(layout, 2, 12)], layout)
    assert isinstance(group, ShuffledGroup)
    for k, flat in ((0, 256), (0, -1), (2, 0), (-1, 3)):
        with pytest.raises(IndexError):
            group.take(np.array(k), np.array(flat))
