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
from support.lzw import lzw_decode


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
    sharing a scale (the embeddings' shape), runs of a repeated 4-byte word (NaN nodata, words
    with zero bytes) starting at any phase."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    parts: list[bytes] = []
    for _ in range(data.draw(st.integers(1, 8))):
        n = data.draw(st.sampled_from([1, 2, 7, 8, 9, 15, 16, 17, 100, 1000, 9_999, 10_001, 30_000, 70_000]))
        kind = data.draw(st.sampled_from(["zeros", "random", "binary", "run", "floats", "nan", "word"]))
        if kind == "zeros":
            parts.append(bytes(n))
        elif kind == "nan":  # nodata pixels: one 4-byte word repeated, cut anywhere
            parts.append((np.full(-(-n // 4), np.nan, dtype=np.float32).tobytes())[:n])
        elif kind == "word":
            parts.append((rng.integers(0, 4, 4, dtype=np.uint8).tobytes() * -(-n // 4))[:n])
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


def test_a_nodata_tile_is_libtiffs(tmp_path: Path) -> None:
    """Water is NaN: long runs of one 4-byte word, entered at every phase, across table fills."""
    tile = np.full((256, 64, 128), np.nan, dtype=np.float32)
    rng = np.random.default_rng(9)
    tile[100:130, 5:40] = rng.uniform(-1, 1, (30, 35, 128)).astype(np.float32)
    tile[200:, :, 3] = 0.0
    assert encode_tile(tile) == _libtiff_lzw(tile.tobytes(), tmp_path)


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


def test_the_reference_decoder_reads_libtiffs_streams(tmp_path: Path) -> None:
    """The decoder the small-table tests rely on, checked against libtiff's encoder first."""
    rng = np.random.default_rng(12)
    floats = (rng.integers(-128, 128, 40_000).astype(np.float32) * np.float32(0.03)).tobytes()
    for raw in (b"\x00", bytes(100_000), rng.integers(0, 256, 60_000, dtype=np.uint8).tobytes(), floats):
        assert lzw_decode(_libtiff_lzw(raw, tmp_path)) == raw


@given(
    data=st.data(), small=st.sampled_from([384, 509, 510, 511, 512, 700, 1022, 1024, 2047, 2048, 3000, 4094])
)
@settings(max_examples=40, deadline=None)
def test_small_tables_decode_to_the_input(data: st.DataObject, small: int) -> None:
    """A table cleared at ``small`` codes (the default export's 510, codes of 9 bits only) and
    grown to 4,094 after a table of long strings: any TIFF LZW decoder must read it back."""
    raw = _segments(data)
    assert lzw_decode(encode_tile(np.frombuffer(raw, dtype=np.uint8), small=small)) == raw


@pytest.mark.parametrize("small", [512, 1024, 2048])
def test_a_table_of_a_power_of_two_codes_decodes(small: int) -> None:
    """When the table fills at 2**k codes, the decoder's table (one entry behind) has just
    reached 2**k - 1 entries and reads the next code with k + 1 bits (early change): the Clear
    then, and the Clear before EOI when the last code fills the table, must have k + 1 bits.
    Every input length from before the first Clear to past the second, so that the last code
    lands on the full table too; libtiff's own decoder and imagecodecs' must read them."""
    import imagecodecs

    rng = np.random.default_rng(small)
    noise = rng.integers(0, 256, 2 * small, dtype=np.uint8).tobytes()
    for n in range(small - 300, 2 * small):
        stream = encode_tile(np.frombuffer(noise[:n], dtype=np.uint8), small=small)
        assert lzw_decode(stream) == noise[:n], n
        assert imagecodecs.lzw_decode(stream) == noise[:n], n


def test_a_small_table_is_smaller_on_embeddings_and_not_larger_on_water() -> None:
    """Why the export clears at 510 codes: on float32 values of int8 x a per-pixel scale most
    strings are a byte or two, and 9-bit codes beat libtiff's 12; runs of NaN (water) and zero
    padding fill a small table with long strings, so the next one grows to 4,094 as libtiff's."""
    rng = np.random.default_rng(21)
    q = rng.integers(-128, 128, (64, 256, 128)).astype(np.float32)
    land = (q * rng.uniform(0.01, 0.1, (64, 256, 1)).astype(np.float32)).tobytes()
    water = np.full((64, 256, 128), np.nan, dtype=np.float32).tobytes()
    small, libtiff = (
        encode_tile(np.frombuffer(land, np.uint8), small=510),
        encode_tile(np.frombuffer(land, np.uint8)),
    )
    assert len(small) < 0.99 * len(libtiff)
    small, libtiff = (
        encode_tile(np.frombuffer(water, np.uint8), small=510),
        encode_tile(np.frombuffer(water, np.uint8)),
    )
    assert len(small) < 1.02 * len(libtiff)
    assert lzw_decode(small) == water


def test_values_repeating_across_pixels_switch_to_the_large_table() -> None:
    """One scale for many pixels: only 256 float32 words recur across the whole tile, and
    libtiff's large table learns strings of them that a small one cannot hold. The encoder
    tries a large table after 1,024 small ones, keeps it while it makes 1/16 fewer bits per
    byte, and tries a small one again now and then: the stream is then about libtiff's size
    (1.008 times it here, the first small tables included; it was 1.54
    times it with small tables only), and goes back to small tables when the data does."""
    import imagecodecs

    rng = np.random.default_rng(22)
    q = rng.integers(-128, 128, (256, 256, 128), dtype=np.int8)
    one_scale = np.full((256, 256), 0.05, dtype=np.float32)
    per_pixel = rng.uniform(0.01, 0.1, (256, 256)).astype(np.float32)
    for scales, most in ((one_scale, 1.01), (per_pixel, 0.99)):
        tile = q.astype(np.float32) * scales[..., None]
        ours, libtiff = encode_tile(tile, small=510), encode_tile(tile)
        assert len(ours) < most * len(libtiff)
        assert imagecodecs.lzw_decode(ours) == tile.tobytes()
    mixed = np.concatenate(
        [q[:128].astype(np.float32) * 0.05, q[128:].astype(np.float32) * per_pixel[128:, :, None]]
    )
    ours = encode_tile(mixed, small=510)
    assert len(ours) < 0.995 * len(encode_tile(mixed)) and imagecodecs.lzw_decode(ours) == mixed.tobytes()


@pytest.mark.parametrize("small", [383, 4095, 0, -1, 2**32 + 510, 600 - 2**32, 2**64 + 510])
def test_a_table_size_outside_the_bound_is_refused(small: int) -> None:
    with pytest.raises(ValueError, match="small must be"):
        encode_tile(np.zeros(16, np.uint8), small=small)


def test_the_encoder_is_built() -> None:
    """The C extension is part of every install this project makes (make install, the wheel):
    without it the export silently falls back to GDAL's slower encoder."""
    assert lzw_tiles.usable(1100, 128), "geotessera.export._lzw is not built: is a C compiler installed?"


def test_non_contiguous_input_is_refused() -> None:
    tile = np.zeros((4, 4, 2), dtype=np.float32)
    with pytest.raises((BufferError, ValueError, TypeError)):
        encode_tile(tile[:, ::2])


def _numpy_tile(q: np.ndarray, s: np.ndarray, bands: np.ndarray | None) -> tuple[np.ndarray, int]:
    from geotessera.tiles.dequantize import dequantize_counting

    nout = q.shape[2] if bands is None else len(bands)
    tile = np.zeros((256, 256, nout), dtype=np.float32)
    _, bad = dequantize_counting(q, s, out=tile[: q.shape[0], : q.shape[1]], bands=bands, threads=1)
    return tile, bad


@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(1, 256),
    w=st.integers(1, 256),
    n=st.sampled_from([1, 3, 128]),
    subset=st.booleans(),
    offset=st.integers(0, 3),
)
@settings(max_examples=40, deadline=None)
def test_dequantising_inside_the_encoder_is_numpys(
    seed: int, h: int, w: int, n: int, subset: bool, offset: int
) -> None:
    """float32(q) * scale per pixel; NaN for a scale that is not finite or outside [0, 1) (the
    latter counted); zeros past (h, w); views with strides (a window of a larger tile)."""
    from geotessera.export.lzw_tiles import encode_quantized_tile

    rng = np.random.default_rng(seed)
    big_q = rng.integers(-128, 128, (h + offset, w + offset, n), dtype=np.int8)
    big_s = rng.uniform(0.0, 0.2, (h + offset, w + offset)).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 1.0, -0.5, 3e38, -0.0, 0.0, 0.9999999], dtype=np.float32)
    where = rng.random(big_s.shape) < 0.05
    big_s[where] = rng.choice(specials, int(where.sum()))
    q, s = big_q[offset:, offset:], big_s[offset:, offset:]  # strided views
    bands = np.asarray(rng.choice(n, size=max(1, n // 2), replace=False), dtype=np.int32) if subset else None
    data, bad = encode_quantized_tile(q, s, bands)
    want, want_bad = _numpy_tile(q, s, bands)
    assert bad == want_bad
    assert data == encode_tile(want)


@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(1, 256),
    w=st.integers(1, 256),
    boxes=st.lists(
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(1, 256), st.integers(1, 256)),
        max_size=3,
    ),
    zeros=st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_water_and_zero_regions_encode_as_numpys_tile(
    seed: int, h: int, w: int, boxes: list[tuple[int, int, int, int]], zeros: bool
) -> None:
    """The encoder dequantises a piece of a row at a time (32 pixels at 128 bands) and feeds the
    pieces in turn: regions of NaN (water) or of zeros (zero scales), and the zero padding past
    (h, w), make runs that cross pieces and rows at any column; the tile must still be the
    stream of numpy's whole tile, with libtiff's table and with the export's (whose table
    sizes, chosen as the pieces go, must not depend on where they are cut)."""
    from geotessera.export.lzw_tiles import LIBTIFF_TABLE, SMALL_TABLE, encode_quantized_tile

    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, (h, w, 128), dtype=np.int8)
    s = rng.uniform(0.0, 0.2, (h, w)).astype(np.float32)
    for r, c, bh, bw in boxes:
        s[r : r + bh, c : c + bw] = 0.0 if zeros else np.nan
    want, want_bad = _numpy_tile(q, s, None)
    for small in (LIBTIFF_TABLE, SMALL_TABLE):
        data, bad = encode_quantized_tile(q, s, None, small=small)
        assert (data, bad) == (encode_tile(want, small=small), want_bad)


def test_per_band_scales_go_through_numpy() -> None:
    from geotessera.export.lzw_tiles import encode_quantized_tile

    rng = np.random.default_rng(5)
    q = rng.integers(-128, 128, (100, 70, 4), dtype=np.int8)
    s = rng.uniform(0.0, 0.2, (100, 70, 4)).astype(np.float32)
    s[3, 4, 2] = 7.0
    data, bad = encode_quantized_tile(q, s, None)
    want, want_bad = _numpy_tile(q, s, None)
    assert (data, bad) == (encode_tile(want), want_bad) and bad == 1


@pytest.mark.parametrize(
    "q, s, bands, error",
    [
        (np.zeros((4, 4, 2), np.int16), np.zeros((4, 4), np.float32), None, TypeError),
        (np.zeros((4, 4, 2), np.int8), np.zeros((4, 4), np.float64), None, TypeError),
        (np.zeros((4, 4, 2), np.int8), np.zeros((4, 5), np.float32), None, ValueError),
        (np.zeros((300, 4, 2), np.int8), np.zeros((300, 4), np.float32), None, ValueError),
        (np.zeros((4, 4, 2), np.int8), np.zeros((4, 4), np.float32), np.array([2], np.int32), ValueError),
        (np.zeros((4, 4, 2), np.int8), np.zeros((4, 4), np.float32), np.array([0], np.int64), TypeError),
    ],
    ids=["int16", "float64-scales", "shapes", "too-tall", "band-outside", "int64-bands"],
)
def test_the_encoder_refuses_what_it_cannot_read(
    q: np.ndarray, s: np.ndarray, bands: np.ndarray | None, error: type[Exception]
) -> None:
    assert lzw_tiles._encoder is not None
    with pytest.raises(error):
        lzw_tiles._encoder.encode_quantized(q, s, bands, 256)
