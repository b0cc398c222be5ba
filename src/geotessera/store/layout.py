"""What the reader and the builder know about a Zarr v3 array: :class:`ArrayLayout`, its codec,
and the shard index of the ``sharding_indexed`` codec.

The ``sharding_indexed`` codec stores the inner chunks back to back and, at the end (or start)
of the shard object, an index of ``(offset, nbytes)`` uint64 little-endian pairs, one per inner
chunk in C order, followed by a 4-byte crc32c; ``offset = nbytes = 2**64 - 1`` marks an absent
chunk (fill value). :class:`ArrayLayout` recognises the layouts the direct decoder handles;
anything else is marked ``direct=False`` (read through zarr-python) or gives ``None``.
Decoding inner chunks is :mod:`.read.decode`; writing shards :mod:`.write.encoder`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import CorruptDataError

numcodecs = require("numcodecs", "zarr")
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
    inner_crc: bool = False
    """Each inner chunk ends with the crc32c of the bytes before it (a ``crc32c`` codec closing
    the inner chain, as stores geotessera writes have): checked, then stripped, before decoding."""

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


def _compressor(codecs: list[Any]) -> tuple[bool, dict[str, Any] | None, bool]:
    """(ok, compressor, crc) for a codec list of the form [bytes, (compressor)?, (crc32c)?]."""
    if not codecs or codecs[0].get("name") != "bytes":
        return False, None, False
    endian = (codecs[0].get("configuration") or {}).get("endian", "little")
    if endian != "little":
        return False, None, False
    rest = codecs[1:]
    crc = bool(rest) and rest[-1].get("name") == "crc32c"
    if crc:
        rest = rest[:-1]
    if not rest:
        return True, None, crc
    if len(rest) == 1 and rest[0].get("name") in _COMPRESSORS:
        return True, dict(rest[0]), crc
    return False, None, crc


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
        ok, comp, inner_crc = _compressor(list(conf.get("codecs", [{"name": "bytes"}])))
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
            inner_crc,
        )
    ok, comp, crc = _compressor(codecs)
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
        direct and ok and not crc,  # a whole-object chunk with a crc32c: zarr-python reads it
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


@functools.lru_cache(maxsize=64)
def _codec_of(config: str) -> Any:
    return _codec(json.loads(config))


def codec_for(layout: ArrayLayout) -> Any:
    """The numcodecs codec of ``layout``'s inner chunks (None: raw little-endian bytes); built once
    per configuration (thread-safe)."""
    return _codec_of(json.dumps(layout.compressor, sort_keys=True))


def inner_payload(raw: bytes | memoryview, layout: ArrayLayout, chunk: object) -> bytes | memoryview:
    """An inner chunk's encoded bytes without its crc32c, checked (when ``layout.inner_crc``).

    A mismatch is :class:`CorruptDataError` naming the array and ``chunk`` (its coordinates).
    """
    if not layout.inner_crc:
        return raw
    if len(raw) < CRC_BYTES:
        raise CorruptDataError(
            f"{layout.path}: inner chunk {chunk} is {len(raw)} bytes, shorter than its crc32c"
        )
    body = raw[:-CRC_BYTES]
    stored = bytes(raw[-CRC_BYTES:])
    got = google_crc32c.value(body if isinstance(body, bytes) else bytes(body)).to_bytes(CRC_BYTES, "little")
    if stored != got:
        raise CorruptDataError(
            f"{layout.path}: inner chunk {chunk} is damaged (crc32c {got.hex()}, recorded {stored.hex()})"
        )
    return body


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


def inner_linear(layout: ArrayLayout, inner_coords: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Linear (C-order) index within a shard of inner-chunk coordinates (..., ndim) local to the shard."""
    return np.ravel_multi_index(tuple(np.moveaxis(inner_coords, -1, 0)), layout.inner_per_shard).astype(
        np.int64
    )
