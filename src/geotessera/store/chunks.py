"""Direct access to sharded Zarr v3 chunks: shard index parsing, inner chunk decode and shard encode.

zarr-python costs 0.5-1.4 ms per inner chunk; decoding one directly takes about
0.16 ms (``performance-notes.md``). The ``sharding_indexed`` codec stores the
inner chunks back to back and, at the end (or start) of the shard object, an
index of ``(offset, nbytes)`` uint64 little-endian pairs, one per inner chunk in
C order, followed by a 4-byte crc32c; ``offset = nbytes = 2**64 - 1`` marks an
absent chunk (fill value). :class:`ArrayLayout` recognises the layouts this
module can decode; anything else returns ``None`` and callers fall back to zarr.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import CorruptDataError

numcodecs = require("numcodecs", "zarr")
require("numcodecs.blosc", "zarr")  # used as numcodecs.blosc below
google_crc32c = require("google_crc32c", "zarr")

EMPTY = np.uint64(2**64 - 1)
INDEX_ENTRY_BYTES = 16
CRC_BYTES = 4


@dataclass(frozen=True)
class ArrayLayout:
    """What the direct decoder needs to know about one Zarr v3 array.

    ``shard_shape`` equals ``inner_shape`` for an unsharded array (one chunk per object).
    """

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: float | int
    shard_shape: tuple[int, ...]
    inner_shape: tuple[int, ...]
    sharded: bool
    compressor: dict[str, Any] | None
    index_at_end: bool
    index_crc: bool
    separator: str
    v2_keys: bool
    dimension_names: tuple[str, ...] | None
    direct: bool = True  # False: the codecs need zarr-python (chunks are read through the fallback)

    @cached_property
    def codec(self) -> Any:
        """The numcodecs codec of the inner chunks (None: raw little-endian bytes)."""
        return codec_for(self)

    @cached_property
    def inner_size(self) -> int:
        """Values per inner chunk."""
        return math.prod(self.inner_shape)

    @cached_property
    def inner_nbytes(self) -> int:
        """Bytes of one decoded inner chunk."""
        return self.inner_size * self.dtype.itemsize

    @cached_property
    def inner_per_shard(self) -> tuple[int, ...]:
        """Number of inner chunks along each axis of a shard."""
        return tuple(s // i for s, i in zip(self.shard_shape, self.inner_shape, strict=True))

    @cached_property
    def n_inner(self) -> int:
        """Inner chunks per shard."""
        return math.prod(self.inner_per_shard)

    @cached_property
    def index_nbytes(self) -> int:
        """Size of the shard index in bytes (including the crc32c if present)."""
        return self.n_inner * INDEX_ENTRY_BYTES + (CRC_BYTES if self.index_crc else 0)

    @cached_property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of shards (objects) along each axis."""
        return tuple(-(-n // s) for n, s in zip(self.shape, self.shard_shape, strict=True))

    def shard_key(self, coords: tuple[int, ...]) -> str:
        """Object key of the shard at shard-grid ``coords`` (relative to the store root)."""
        if self.v2_keys:
            return f"{self.path}/" + self.separator.join(str(c) for c in coords)
        return f"{self.path}/c" + "".join(f"{self.separator}{c}" for c in coords)

    @classmethod
    def from_metadata(cls, path: str, meta: Mapping[str, Any]) -> ArrayLayout | None:
        """Layout from a ``zarr.json`` dict (``direct`` False: decode via zarr); None if irregular."""
        try:
            return _parse_layout(path, meta)
        except (KeyError, TypeError, ValueError):
            return None


_COMPRESSORS = {"blosc", "zstd", "gzip"}


def _compressor(codecs: list[Any]) -> tuple[bool, dict[str, Any] | None]:
    """(ok, compressor) for a codec list of the form [bytes, (compressor)?]."""
    if not codecs or codecs[0].get("name") != "bytes":
        return False, None
    endian = (codecs[0].get("configuration") or {}).get("endian", "little")
    if endian != "little":
        return False, None
    rest = codecs[1:]
    if not rest:
        return True, None
    if len(rest) == 1 and rest[0].get("name") in _COMPRESSORS:
        return True, dict(rest[0])
    return False, None


def _parse_layout(path: str, meta: Mapping[str, Any]) -> ArrayLayout | None:
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
        return None
    dtype = np.dtype(meta["data_type"])
    shape = tuple(int(s) for s in meta["shape"])
    grid = meta["chunk_grid"]
    if grid.get("name") != "regular":
        return None
    outer = tuple(int(s) for s in grid["configuration"]["chunk_shape"])
    enc = meta.get("chunk_key_encoding", {"name": "default"})
    v2_keys = enc.get("name") == "v2"
    sep = (enc.get("configuration") or {}).get("separator", "." if v2_keys else "/")
    codecs = list(meta["codecs"])
    fill = meta.get("fill_value", 0)
    fill_value: float | int = float(fill) if dtype.kind == "f" else int(fill)
    dims = meta.get("dimension_names")
    dim_names = tuple(dims) if dims else None
    direct = not meta.get("storage_transformers") and dtype.byteorder != ">"
    if len(codecs) == 1 and codecs[0].get("name") == "sharding_indexed":
        conf = codecs[0]["configuration"]
        inner = tuple(int(s) for s in conf["chunk_shape"])
        if any(o % i for o, i in zip(outer, inner, strict=True)):
            return None
        ok, comp = _compressor(list(conf.get("codecs", [{"name": "bytes"}])))
        default_index = [{"name": "bytes"}, {"name": "crc32c"}]
        index_codecs = [c.get("name") for c in conf.get("index_codecs", default_index)]
        direct = direct and ok and index_codecs in (["bytes"], ["bytes", "crc32c"])
        at_end = conf.get("index_location", "end") == "end"
        crc = index_codecs == ["bytes", "crc32c"]
        return ArrayLayout(
            path,
            shape,
            dtype,
            fill_value,
            outer,
            inner,
            True,
            comp,
            at_end,
            crc,
            sep,
            v2_keys,
            dim_names,
            direct,
        )
    ok, comp = _compressor(codecs)
    return ArrayLayout(
        path,
        shape,
        dtype,
        fill_value,
        outer,
        outer,
        False,
        comp,
        True,
        False,
        sep,
        v2_keys,
        dim_names,
        direct and ok,
    )


def _codec(config: dict[str, Any] | None) -> Any:
    if config is None:
        return None
    name = config["name"]
    conf = config.get("configuration") or {}
    if name == "blosc":
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}.get(conf.get("shuffle", "noshuffle"), 0)
        return numcodecs.Blosc(
            cname=conf.get("cname", "zstd"),
            clevel=int(conf.get("clevel", 5)),
            shuffle=shuffle,
            blocksize=int(conf.get("blocksize", 0)),
        )
    if name == "zstd":
        return numcodecs.Zstd(level=int(conf.get("level", 0)))
    if name == "gzip":
        return numcodecs.GZip(level=int(conf.get("level", 5)))
    raise ValueError(f"unsupported compressor {name!r}")


_CODEC_CACHE: dict[str, Any] = {}


def codec_for(layout: ArrayLayout) -> Any:
    """The numcodecs codec decoding ``layout``'s inner chunks (None: raw little-endian bytes)."""
    key = repr(layout.compressor)
    if key not in _CODEC_CACHE:
        _CODEC_CACHE[key] = _codec(layout.compressor)
    return _CODEC_CACHE[key]


def parse_shard_index(buf: bytes, layout: ArrayLayout, *, key: str = "shard") -> npt.NDArray[np.uint64]:
    """Shard index bytes -> (n_inner, 2) uint64 ``(offset, nbytes)``; checks the crc32c when present."""
    n = layout.n_inner * INDEX_ENTRY_BYTES
    if len(buf) != layout.index_nbytes:
        raise CorruptDataError(f"{key}: shard index is {len(buf)} bytes, expected {layout.index_nbytes}")
    if layout.index_crc:
        stored = bytes(buf[n:])
        got = np.uint32(google_crc32c.value(bytes(buf[:n]))).tobytes()
        if stored != got:
            raise CorruptDataError(
                f"{key}: shard index crc32c mismatch (stored {stored.hex()}, computed {got.hex()})"
            )
    return index_entries(buf, layout)


def index_entries(buf: bytes, layout: ArrayLayout) -> npt.NDArray[np.uint64]:
    """(n_inner, 2) uint64 ``(offset, nbytes)`` view of shard index bytes already checked by
    :func:`parse_shard_index`."""
    return np.frombuffer(buf, dtype="<u8", count=layout.n_inner * 2).reshape(-1, 2)


def decode_inner(
    buf: bytes | memoryview, layout: ArrayLayout, out: npt.NDArray[Any] | None = None
) -> npt.NDArray[Any]:
    """Decode one inner chunk's bytes into an array of ``layout.inner_shape``.

    ``out``: a C-contiguous array of the chunk's size and dtype to decode into (Blosc and raw
    chunks are decoded in place, others copied); it is returned reshaped.
    """
    codec = layout.codec
    size = layout.inner_size
    if out is not None and (out.dtype != layout.dtype or out.size != size or not out.flags.c_contiguous):
        raise ValueError(f"{layout.path}: output buffer {out.shape} {out.dtype} does not fit a chunk")
    blosc = isinstance(codec, numcodecs.Blosc)
    if blosc:
        _check_blosc_header(buf, layout, layout.inner_nbytes)
    if out is not None and (codec is None or blosc):
        if codec is None:
            if len(buf) != out.nbytes:
                raise CorruptDataError(
                    f"{layout.path}: inner chunk holds {len(buf)} bytes, expected {out.nbytes}"
                )
            out.reshape(-1).view(np.uint8)[:] = np.frombuffer(buf, dtype=np.uint8)
        else:
            _decoding(layout, numcodecs.blosc.decompress, buf, out)  # the codec's call, minus its checks
        return out.reshape(layout.inner_shape)
    raw = buf if codec is None else _decoding(layout, codec.decode, buf)
    if len(raw) % layout.dtype.itemsize:
        raise CorruptDataError(f"{layout.path}: inner chunk decodes to {len(raw)} bytes, not whole values")
    arr = np.frombuffer(raw, dtype=layout.dtype)
    if arr.size != size:
        raise CorruptDataError(f"{layout.path}: inner chunk decodes to {arr.size} values, expected {size}")
    if out is not None:
        out.reshape(-1)[:] = arr
        return out.reshape(layout.inner_shape)
    return arr.reshape(layout.inner_shape)


def decode_many(raws: list[bytes | memoryview], layout: ArrayLayout, out: npt.NDArray[Any]) -> None:
    """Decode inner chunks ``raws`` into ``out`` (K, *inner_shape), C-contiguous.

    Same checks and errors as :func:`decode_inner`; for Blosc, the headers are checked first
    and the chunks then decoded in a tight loop, so a thread holds the GIL only briefly
    between chunks (scattered reads decode tens of thousands of them).
    """
    fits = out.shape == (len(raws), *layout.inner_shape) and out.dtype == layout.dtype
    if not (fits and out.flags.c_contiguous):
        raise ValueError(f"{layout.path}: output {out.shape} {out.dtype} does not fit {len(raws)} chunks")
    if not isinstance(layout.codec, numcodecs.Blosc):
        for raw, dst in zip(raws, out, strict=True):
            decode_inner(raw, layout, out=dst)
        return
    nbytes = layout.inner_nbytes
    for raw in raws:
        _check_blosc_header(raw, layout, nbytes)
    decompress = numcodecs.blosc.decompress

    def loop() -> None:
        for raw, dst in zip(raws, out, strict=True):
            decompress(raw, dst)

    _decoding(layout, loop)


def _check_blosc_header(buf: bytes | memoryview, layout: ArrayLayout, nbytes: int) -> None:
    """A Blosc chunk must say it holds ``nbytes`` and be exactly as long as its header says
    (Blosc itself would read past a truncated buffer)."""
    if len(buf) < 16:
        raise CorruptDataError(
            f"{layout.path}: inner chunk of {len(buf)} bytes is shorter than a Blosc header"
        )
    held, cbytes = int.from_bytes(buf[4:8], "little"), int.from_bytes(buf[12:16], "little")
    if held != nbytes:
        raise CorruptDataError(f"{layout.path}: inner chunk holds {held} bytes, expected {nbytes}")
    if cbytes != len(buf):
        raise CorruptDataError(f"{layout.path}: inner chunk is {len(buf)} bytes, its header says {cbytes}")


def _decoding(layout: ArrayLayout, fn: Any, *args: Any) -> Any:
    """``fn(*args)``, a codec call; its failures (corrupt bytes) become :class:`CorruptDataError`."""
    try:
        return fn(*args)
    except (RuntimeError, ValueError, EOFError, OSError, zlib.error) as exc:  # gzip: EOFError, BadGzipFile
        raise CorruptDataError(f"{layout.path}: inner chunk cannot be decoded ({exc})") from exc


def inner_linear(layout: ArrayLayout, inner_coords: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Linear (C-order) index within a shard of inner-chunk coordinates (..., ndim) local to the shard."""
    return np.ravel_multi_index(tuple(np.moveaxis(inner_coords, -1, 0)), layout.inner_per_shard).astype(
        np.int64
    )


class ShardEncoder:
    """Streams inner chunks of one shard to a file, then appends the index (index at the end).

    Memory: one encoded inner chunk at a time plus the index (16 bytes per inner chunk).
    Chunks equal to the fill value everywhere are skipped (``write_empty_chunks=False``).
    """

    def __init__(self, layout: ArrayLayout, path: str | os.PathLike[str]) -> None:
        if not (layout.sharded and layout.index_at_end and layout.index_crc):
            raise ValueError("ShardEncoder writes sharded arrays with a crc32c index at the end")
        self.layout = layout
        self._codec = codec_for(layout)
        self._index = np.full((layout.n_inner, 2), EMPTY, dtype="<u8")
        self._file = open(path, "wb")  # noqa: SIM115 - closed in finish()/abort()
        self._offset = 0
        self.n_chunks = 0

    def add(self, linear: int, chunk: npt.NDArray[Any]) -> None:
        """Encode and append inner chunk ``linear`` (C order in the shard) unless it is all fill."""
        fill = self.layout.fill_value
        if isinstance(fill, float) and math.isnan(fill):
            empty = bool(np.isnan(chunk).all())
        else:
            empty = bool((chunk == fill).all())
        if empty:
            return
        data = np.ascontiguousarray(chunk, dtype=self.layout.dtype)
        enc = data.tobytes() if self._codec is None else bytes(self._codec.encode(data))
        self._file.write(enc)
        self._index[linear] = (self._offset, len(enc))
        self._offset += len(enc)
        self.n_chunks += 1

    def finish(self) -> int:
        """Write the index and close; returns the shard's size in bytes (0 chunks -> still a valid shard)."""
        ib = self._index.tobytes()
        self._file.write(ib)
        self._file.write(np.uint32(google_crc32c.value(ib)).tobytes())
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._offset + len(ib) + CRC_BYTES

    def abort(self) -> None:
        """Close without finishing (the caller deletes the partial file)."""
        self._file.close()
