"""Direct shard encode/decode agrees with zarr-python; index corruption is caught."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from geotessera.errors import CorruptDataError
from geotessera.store.layout import ArrayLayout, parse_shard_index
from geotessera.store.read.decode import decode_inner, decode_many
from geotessera.store.write.encoder import ShardEncoder


def _array(tmp_path: Path) -> tuple[Path, ArrayLayout]:
    root = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    root.create_array(
        "a",
        shape=(1, 4, 128, 128),
        dtype="int8",
        chunks=(1, 4, 32, 32),
        shards=(1, 4, 64, 64),
        compressors=zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
        fill_value=0,
    )
    meta = json.loads((tmp_path / "s.zarr" / "a" / "zarr.json").read_text())
    layout = ArrayLayout.from_metadata("a", meta)
    assert layout is not None and layout.direct and layout.n_inner == 4
    return tmp_path / "s.zarr", layout


def test_encoded_shard_reads_back_through_zarr(tmp_path: Path) -> None:
    store, layout = _array(tmp_path)
    rng = np.random.default_rng(1)
    chunks = {
        1: rng.integers(-127, 128, (1, 4, 32, 32), dtype=np.int8),
        3: rng.integers(-127, 128, (1, 4, 32, 32), dtype=np.int8),
    }
    path = store / layout.shard_key((0, 0, 1, 0))
    path.parent.mkdir(parents=True)
    enc = ShardEncoder(layout, path)
    enc.add(0, np.zeros((1, 4, 32, 32), np.int8))  # all fill: skipped
    for k, c in chunks.items():
        enc.add(k, c)
    enc.finish()
    assert enc.n_chunks == 2
    a = zarr.open_group(store, mode="r")["a"]
    np.testing.assert_array_equal(a[0, :, 64:96, 32:64], chunks[1][0])
    np.testing.assert_array_equal(a[0, :, 96:128, 32:64], chunks[3][0])
    assert not a[0, :, 64:96, 0:32].any()
    blob = path.read_bytes()
    index = parse_shard_index(blob[-layout.index_nbytes :], layout)
    off, n = index[3]
    np.testing.assert_array_equal(decode_inner(blob[off : off + n], layout), chunks[3])
    bad = bytearray(blob[-layout.index_nbytes :])
    bad[0] ^= 1
    with pytest.raises(CorruptDataError, match="crc32c"):
        parse_shard_index(bytes(bad), layout)
    out = np.empty((1, 4, 32, 32), np.int8)
    np.testing.assert_array_equal(decode_inner(memoryview(blob)[off : off + n], layout, out=out), chunks[3])
    torn = blob[off : off + n // 2]  # a truncated chunk: one clear error, into a buffer or not
    for dst in (None, out):  # caught by the header check, before Blosc could read past the end
        with pytest.raises(CorruptDataError, match="its header says"):
            decode_inner(torn, layout, out=dst)
    raws = [blob[o : o + k] for o, k in index[[1, 3]].tolist()]
    stack = np.empty((2, 1, 4, 32, 32), np.int8)
    decode_many(raws, layout, stack)  # several chunks at once, as point sampling decodes them
    np.testing.assert_array_equal(stack, np.stack([chunks[1], chunks[3]]))
    with pytest.raises(CorruptDataError, match="its header says"):
        decode_many([raws[0], torn], layout, stack)
    garbled = bytearray(blob[off : off + n])
    garbled[0] = 255  # a Blosc format version that does not exist: the codec's own error, reworded
    with pytest.raises(CorruptDataError, match="cannot be decoded"):
        decode_inner(bytes(garbled), layout, out=out)
    with pytest.raises(CorruptDataError, match="cannot be decoded"):
        decode_many([raws[0], bytes(garbled)], layout, stack)


def test_unusual_codecs_are_not_direct(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "t.zarr", mode="w", zarr_format=3)
    root.create_array(
        "b",
        shape=(64,),
        dtype="float32",
        chunks=(32,),
        filters=[zarr.codecs.TransposeCodec(order=(0,))],
        compressors=None,
    )
    meta = json.loads((tmp_path / "t.zarr" / "b" / "zarr.json").read_text())
    layout = ArrayLayout.from_metadata("b", meta)
    assert layout is not None and not layout.direct


@pytest.mark.parametrize(
    ("codec", "compressor"),
    [
        ("zstd", {"name": "zstd", "configuration": {"level": 3}}),
        ("gzip", {"name": "gzip", "configuration": {"level": 5}}),
        ("raw", None),
    ],
)
def test_corrupt_chunks_of_other_codecs_raise_corrupt_data(codec: str, compressor: dict | None) -> None:
    codecs: list[dict] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if compressor is not None:
        codecs.append(compressor)
    meta = {
        "zarr_format": 3, "node_type": "array", "shape": [64, 64], "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [32, 32]}},
        "chunk_key_encoding": {"name": "default"}, "fill_value": 0.0, "codecs": codecs,
    }  # fmt: skip
    layout = ArrayLayout.from_metadata("s", meta)
    assert layout is not None and layout.direct
    values = np.arange(32 * 32, dtype=np.float32).reshape(32, 32)
    good = values.tobytes() if layout.codec is None else bytes(layout.codec.encode(values))
    np.testing.assert_array_equal(decode_inner(good, layout), values)
    out = np.empty((32, 32), np.float32)
    bad_inputs = [good[: len(good) // 2], good[:-1]]  # truncated
    if codec != "raw":  # raw bytes of the right length are always some valid values
        bad_inputs += [bytes(len(good)), bytes(b ^ 0x5A for b in good)]
    for bad in bad_inputs:
        for dst in (None, out):
            with pytest.raises(CorruptDataError, match="inner chunk"):
                decode_inner(bad, layout, out=dst)
