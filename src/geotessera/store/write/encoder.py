"""Streaming one shard of a sharded Zarr v3 array to a file: :class:`ShardEncoder`."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from ..._optional import require
from ..layout import CRC_BYTES, EMPTY, ArrayLayout, codec_for

google_crc32c = require("google_crc32c", "zarr")


class ShardEncoder:
    """Streams inner chunks of one shard to a file, then appends the index (index at the end).

    Memory: one encoded inner chunk at a time plus the index (16 bytes per inner chunk).
    Chunks equal to the fill value everywhere are skipped (``write_empty_chunks=False``); each
    chunk ends with its crc32c when the array's inner chain closes with the ``crc32c`` codec.
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
        if self.layout.inner_crc:  # the crc32c codec closing the inner chain
            enc += google_crc32c.value(enc).to_bytes(CRC_BYTES, "little")
        self._file.write(enc)
        self._index[linear] = (self._offset, len(enc))
        self._offset += len(enc)
        self.n_chunks += 1

    def finish(self) -> int:
        """Write the index and close; returns the shard's size in bytes (0 chunks -> still a valid shard)."""
        ib = self._index.tobytes()
        self._file.write(ib)
        self._file.write(np.uint32(google_crc32c.value(ib)).tobytes())
        self._file.close()  # made durable by the caller's atomic_path
        return self._offset + len(ib) + CRC_BYTES

    def abort(self) -> None:
        """Close without finishing (the caller deletes the partial file)."""
        self._file.close()
