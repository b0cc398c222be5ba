"""Values at chosen positions of a group of inner chunks, without unshuffling whole Blosc chunks.

A point read needs one pixel of each chunk it touches: 128 of the 131,072 values of an
embeddings chunk. c-blosc 1 can only decode a chunk whole, and for the chunks Zarr
writers produce that costs more than the decompression itself: a fresh zstd context
per call (about 25 us) and, for bit-shuffled int8 embeddings, a scalar bit transpose
of the whole chunk (about 47 us against 60 us of zstd).

For the frames Zarr writers produce (Blosc 1 format 2, one block, one zstd stream),
:func:`group_of` keeps the decompressed but still shuffled bytes, decompressed with a
per-thread zstd context (python-zstandard), and :meth:`ShuffledGroup.take` undoes the
shuffle only at the positions asked for. Any other frame, codec or missing zstandard
decodes the chunks whole (:class:`DecodedGroup`); both give the same values.

Blosc 1 frame: a 16-byte header (version, version of the codec format, flags, typesize,
then int32 little-endian ``nbytes``, ``blocksize``, ``cbytes``), the int32 start of each
block, then per block and stream an int32 compressed size and the stream (stored raw when
that size equals the stream's decoded size). Flags: 0x01 byte shuffle, 0x02 stored
uncompressed, 0x04 bit shuffle, 0x10 one stream per block, bits 5-7 the codec (4: zstd).
"""

from __future__ import annotations

import functools
import struct
import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..._optional import require
from ...errors import CorruptDataError
from ..layout import ArrayLayout
from .decode import decode_many

numcodecs = require("numcodecs", "zarr")

try:
    import zstandard
except ImportError:  # pragma: no cover - an optional speed-up (installed with the zarr extra)
    zstandard = None  # type: ignore[assignment]

_FORMAT = 2
_BYTE_SHUFFLE, _MEMCPYED, _BIT_SHUFFLE, _ONE_STREAM = 0x01, 0x02, 0x04, 0x10
_ZSTD = 4
_ZSTD_FORMAT = 1  # header byte 1 for zstd: the version of c-blosc's zstd stream format
_KNOWN = _BYTE_SHUFFLE | _MEMCPYED | _BIT_SHUFFLE | _ONE_STREAM | 0xE0
_STREAM_AT = 24  # header (16) + one block start (4) + the stream's compressed size (4)
_HEADER = struct.Struct("<4B5i")  # the header, the first block's start and its stream's size
_local = threading.local()


def _strict() -> dict[str, bool]:
    """Keyword that makes python-zstandard refuse bytes after the frame, where it has it."""
    if zstandard is None:
        return {}
    frame = zstandard.ZstdCompressor().compress(b"")
    try:
        zstandard.ZstdDecompressor().decompress(frame, allow_extra_data=False)
    except TypeError:  # older python-zstandard: trailing bytes are ignored
        return {}
    return {"allow_extra_data": False}


_STRICT = _strict()


class ChunkGroup(Protocol):
    """Decoded inner chunks of one request, read by position."""

    def take(self, k: npt.NDArray[np.intp], flat: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        """Values of chunk ``k`` at C-order element index ``flat`` within the chunk.

        ``k`` and ``flat`` broadcast together; the result has their broadcast shape and the
        array's dtype.
        """
        ...


class DecodedGroup:
    """Chunks decoded whole: ``stack`` (K, *inner_shape)."""

    def __init__(self, stack: npt.NDArray[Any]) -> None:
        self.stack = stack
        self._flat = stack.reshape(len(stack), -1)

    def take(self, k: npt.NDArray[np.intp], flat: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        """See :meth:`ChunkGroup.take`."""
        return self._flat[k, flat]


class ShuffledGroup:
    """Chunks decompressed but still Blosc-shuffled: ``planes`` (K, chunk bytes) uint8.

    ``shuffle``: 0 none, 1 byte shuffle (byte j of value i at ``j * n + i``), 2 bit shuffle of
    one-byte values (bit b of value i at bit ``i % 8`` of byte ``b * n / 8 + i // 8``).
    """

    def __init__(self, planes: npt.NDArray[np.uint8], dtype: np.dtype[Any], shuffle: int) -> None:
        self.planes, self.dtype, self.shuffle = planes, dtype, shuffle

    def take(self, k: npt.NDArray[np.intp], flat: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        """See :meth:`ChunkGroup.take`."""
        k, flat = np.asarray(k), np.asarray(flat)
        size = self.dtype.itemsize
        n_chunks, nbytes = self.planes.shape
        n = nbytes // size
        if flat.size and (flat.min() < 0 or flat.max() >= n or k.min() < 0 or k.max() >= n_chunks):
            raise IndexError(f"positions outside the {n_chunks} chunks of {n} values")
        if self.shuffle == 0:
            return self.planes.view(self.dtype)[k, flat]
        flat_planes = self.planes.reshape(-1)
        if self.shuffle == 1:  # the value's bytes, one from each byte plane
            lin = (k * nbytes + flat)[..., None] + np.arange(size) * n
            return flat_planes.take(lin).view(self.dtype)[..., 0]
        # bit shuffle: the 8 bytes holding the value's bits, one from each bit row, as one
        # uint64; shift its bits to each byte's lowest bit and gather those into the top byte
        lin = (k * nbytes + (flat >> 3))[..., None] + np.arange(8) * (nbytes // 8)
        x = flat_planes.take(lin).view("<u8")[..., 0]
        x >>= (flat & 7).astype(np.uint64)
        x &= np.uint64(0x0101010101010101)
        x *= np.uint64(0x0102040810204080)  # byte r's low bit -> bit 56 + r, no carries
        x >>= np.uint64(56)
        return x.astype(np.uint8).view(self.dtype)


@functools.lru_cache(maxsize=64)
def _shuffle_mode(
    version: int,
    codec_version: int,
    flags: int,
    typesize: int,
    blocksize: int,
    first_block: int,
    nbytes: int,
    itemsize: int,
) -> int | None:
    """The shuffle of a frame :class:`ShuffledGroup` can read (one block, one zstd stream), else
    None; the arguments are header fields and the chunk's decoded size and value size."""
    shuffles = flags & (_BYTE_SHUFFLE | _BIT_SHUFFLE)
    if version != _FORMAT or flags & ~_KNOWN or shuffles == _BYTE_SHUFFLE | _BIT_SHUFFLE:
        return None  # another format, an unknown flag (e.g. delta), or a Blosc 2 extended header
    one_stream = bool(flags & _ONE_STREAM) or typesize == 1
    if flags >> 5 != _ZSTD or codec_version != _ZSTD_FORMAT or flags & _MEMCPYED or not one_stream:
        return None
    if blocksize != nbytes or first_block != _STREAM_AT - 4:
        return None  # more than one block
    if flags & _BIT_SHUFFLE:
        return 2 if typesize == 1 and itemsize == 1 and nbytes % 8 == 0 else None
    if flags & _BYTE_SHUFFLE and typesize > 1:
        return 1 if typesize == itemsize else None
    return 0


def _decompressor() -> Any:
    d = getattr(_local, "zstd", None)
    if d is None:
        d = _local.zstd = zstandard.ZstdDecompressor()
    return d


def _shuffled(
    raws: list[bytes | memoryview], layout: ArrayLayout, modes: tuple[int, ...] = (0, 1, 2)
) -> ShuffledGroup | None:
    """``raws`` decompressed but not unshuffled, or None unless all are well-formed frames of
    one shuffle in ``modes`` that :func:`_shuffle_mode` accepts (the caller then decodes them
    whole, which also reports what is wrong with a malformed one)."""
    nbytes = layout.inner_nbytes
    planes = np.empty((len(raws), nbytes), dtype=np.uint8)
    decompress = _decompressor().decompress
    mode = None
    for raw, into in zip(raws, planes, strict=True):
        if len(raw) < _STREAM_AT:
            return None
        version, codec_version, flags, typesize, held, block, cbytes, first, size = _HEADER.unpack_from(raw)
        if held != nbytes or cbytes != len(raw) or size != cbytes - _STREAM_AT:
            return None
        m = _shuffle_mode(
            version, codec_version, flags, typesize, block, first, nbytes, layout.dtype.itemsize
        )
        if m not in modes or (mode is not None and m != mode):
            return None
        mode = m
        stream = memoryview(raw)[_STREAM_AT:]
        if size == nbytes:  # stored raw
            into[:] = np.frombuffer(stream, dtype=np.uint8)
            continue
        try:  # the frame's own size first: python-zstandard allocates what it says
            said = zstandard.frame_content_size(stream)
            if said == -1:
                return None  # not recorded (c-blosc records it): c-blosc decodes into a bounded buffer
            if said != nbytes:
                raise CorruptDataError(f"{layout.path}: inner chunk's stream says {said} bytes, not {nbytes}")
            data = decompress(stream, max_output_size=nbytes, **_STRICT)
        except zstandard.ZstdError as exc:
            raise CorruptDataError(f"{layout.path}: inner chunk cannot be decoded ({exc})") from exc
        if len(data) != nbytes:
            raise CorruptDataError(f"{layout.path}: inner chunk decodes to {len(data)} bytes, not {nbytes}")
        into[:] = np.frombuffer(data, dtype=np.uint8)
    return None if mode is None else ShuffledGroup(planes, layout.dtype, mode)


def group_of(raws: list[bytes | memoryview], layout: ArrayLayout) -> ChunkGroup:
    """Decode the inner chunks ``raws`` of ``layout`` for reading by position.

    Raises :class:`CorruptDataError` for a chunk that cannot be decoded.
    """
    if zstandard is not None and raws and isinstance(layout.codec, numcodecs.Blosc):
        group = _shuffled(raws, layout)
        if group is not None:
            return group
    stack = np.empty((len(raws), *layout.inner_shape), dtype=layout.dtype)
    decode_many(raws, layout, stack)
    return DecodedGroup(stack)


def decode_into(raws: list[bytes | memoryview], layout: ArrayLayout, out: npt.NDArray[Any]) -> None:
    """Decode the inner chunks ``raws`` whole into ``out`` (K, *inner_shape), C-contiguous.

    Byte-shuffled or unshuffled zstd frames (the scales of formats.md) are decompressed with
    python-zstandard and unshuffled by one transpose (c-blosc costs about 25 us per call
    more); others go through :func:`~.decode.decode_many`. Same errors as that.
    """
    k = len(raws)
    if out.shape != (k, *layout.inner_shape) or out.dtype != layout.dtype or not out.flags.c_contiguous:
        raise ValueError(f"{layout.path}: output {out.shape} {out.dtype} does not fit {k} chunks")
    if zstandard is not None and raws and isinstance(layout.codec, numcodecs.Blosc):
        group = _shuffled(raws, layout, modes=(0, 1))
        if group is not None:
            planes = group.planes.reshape(k, layout.dtype.itemsize if group.shuffle else 1, -1)
            out_bytes = out.reshape(k, -1).view(np.uint8).reshape(k, -1, planes.shape[1])
            out_bytes[...] = planes.transpose(0, 2, 1)  # (K, values, bytes of a value)
            return
    decode_many(raws, layout, out)
