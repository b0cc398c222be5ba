"""Decoding inner chunks of sharded Zarr v3 arrays directly (numcodecs), with their checks.

zarr-python costs 0.5-1.4 ms per inner chunk; decoding one directly takes about 0.16 ms
(``performance-notes.md``). A Blosc chunk's header is checked against its buffer first (Blosc
itself would read past a truncated one); any codec failure is :class:`CorruptDataError` naming
the array.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from ..._optional import require
from ...errors import CorruptDataError
from ..layout import ArrayLayout

numcodecs = require("numcodecs", "zarr")
require("numcodecs.blosc", "zarr")  # used as numcodecs.blosc below


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
