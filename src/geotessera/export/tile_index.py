"""Fill a sparse tiled TIFF with tiles encoded elsewhere.

GDAL writes a GeoTIFF's whole header (tags, georeferencing, band descriptions) when asked to
create it with ``SPARSE_OK=TRUE`` and given no pixels: every entry of its ``TileOffsets`` (324)
and ``TileByteCounts`` (325) arrays is 0. :class:`TileAppender` appends already compressed
tiles at the end of such a file, in tile order, then writes their offsets and sizes into those
two arrays in place. Classic TIFF and BigTIFF, either byte order, are understood; the arrays'
element type (SHORT, LONG or LONG8) is kept, and a value that would not fit it is refused.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from ..files.writeback import start_writeback

TILE_OFFSETS: Final = 324
TILE_BYTE_COUNTS: Final = 325
#: TIFF field types that can hold offsets and counts: code -> (struct format, size in bytes).
_INTEGER_TYPES: Final = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


class TiffLayoutError(ValueError):
    """The file is not a tiled TIFF whose tile arrays can be filled in place."""


@dataclass(frozen=True, slots=True)
class TileArray:
    """Where one array of a TIFF's first directory lives: byte offset, element format, count."""

    position: int
    fmt: str
    count: int

    @property
    def limit(self) -> int:
        """The largest value an element can hold."""
        return (1 << (8 * struct.calcsize(self.fmt))) - 1


@dataclass(frozen=True, slots=True)
class TileArrays:
    """The ``TileOffsets`` and ``TileByteCounts`` arrays of a TIFF's first directory."""

    endian: str
    offsets: TileArray
    byte_counts: TileArray


def read_tile_arrays(f: BinaryIO) -> TileArrays:
    """Locate the tile offset and byte-count arrays of the first directory of an open TIFF.

    Raises :class:`TiffLayoutError` when the file is not a TIFF, is cut short, has no tile
    arrays, or the two arrays differ in length.
    """
    try:
        return _read_tile_arrays(f)
    except struct.error as exc:
        raise TiffLayoutError(f"truncated TIFF header or directory ({exc})") from None


def _read_tile_arrays(f: BinaryIO) -> TileArrays:
    f.seek(0)
    head = f.read(16)
    if head[:2] not in (b"II", b"MM"):
        raise TiffLayoutError("not a TIFF file")
    e = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(e + "H", head[2:4])
    if version == 42:
        (ifd,) = struct.unpack(e + "I", head[4:8])
        count_fmt, entry_fmt, value_size = "H", "HHI", 4
    elif version == 43:
        (ifd,) = struct.unpack(e + "Q", head[8:16])
        count_fmt, entry_fmt, value_size = "Q", "HHQ", 8
    else:
        raise TiffLayoutError(f"unknown TIFF version {version}")
    f.seek(ifd)
    count_size = struct.calcsize(count_fmt)
    (n,) = struct.unpack(e + count_fmt, f.read(count_size))
    entry_size = struct.calcsize(e + entry_fmt) + value_size
    entries = f.read(n * entry_size)
    if len(entries) != n * entry_size:
        raise TiffLayoutError("truncated TIFF directory")
    found: dict[int, TileArray] = {}
    for k in range(n):
        raw = entries[k * entry_size : (k + 1) * entry_size]
        tag, typ, cnt = struct.unpack(e + entry_fmt, raw[: entry_size - value_size])
        if tag not in (TILE_OFFSETS, TILE_BYTE_COUNTS):
            continue
        if typ not in _INTEGER_TYPES:
            raise TiffLayoutError(f"tag {tag} has field type {typ}, not an integer array")
        fmt, size = _INTEGER_TYPES[typ]
        value_at = ifd + count_size + k * entry_size + (entry_size - value_size)
        if cnt * size <= value_size:  # stored in the entry itself
            position = value_at
        else:
            (position,) = struct.unpack(e + ("I" if value_size == 4 else "Q"), raw[entry_size - value_size :])
        found[tag] = TileArray(position, fmt, cnt)
    if set(found) != {TILE_OFFSETS, TILE_BYTE_COUNTS}:
        raise TiffLayoutError("not a tiled TIFF (no TileOffsets/TileByteCounts)")
    if found[TILE_OFFSETS].count != found[TILE_BYTE_COUNTS].count:
        raise TiffLayoutError("TileOffsets and TileByteCounts differ in length")
    return TileArrays(e, found[TILE_OFFSETS], found[TILE_BYTE_COUNTS])


class TileAppender:
    """Append encoded tiles, in tile order, to a sparse tiled TIFF, then record where they are.

    Use as a context manager around the appends; :meth:`finish` (called on a clean exit) checks
    that every tile was given and writes both arrays. The tiles must be appended in the order of
    the TIFF's tile arrays (row by row of tiles, then band planes if planar).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._f: BinaryIO = open(self.path, "r+b")  # noqa: SIM115 - closed in close()
        try:
            self.arrays = read_tile_arrays(self._f)
        except BaseException:
            self._f.close()
            raise
        self._end = self._f.seek(0, os.SEEK_END)
        self._offsets: list[int] = []
        self._sizes: list[int] = []

    @property
    def tile_count(self) -> int:
        """How many tiles the file holds."""
        return self.arrays.offsets.count

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Write the next tile's encoded bytes at the end of the file.

        The kernel is asked to start writing them to disk at once (Linux), so the fsync before
        the file is renamed into place finds little left to write.
        """
        if len(self._offsets) >= self.tile_count:
            raise TiffLayoutError(f"{self.path}: more than {self.tile_count} tiles appended")
        size = memoryview(data).nbytes  # len() of a typed buffer counts its items, not bytes
        self._f.seek(self._end)
        self._f.write(data)
        self._f.flush()
        start_writeback(self._f.fileno(), self._end, size)
        self._offsets.append(self._end)
        self._sizes.append(size)
        self._end += size

    def finish(self) -> None:
        """Write the tile offsets and byte counts; raises unless every tile was appended."""
        if len(self._offsets) != self.tile_count:
            raise TiffLayoutError(f"{self.path}: {len(self._offsets)} of {self.tile_count} tiles appended")
        for array, values in ((self.arrays.offsets, self._offsets), (self.arrays.byte_counts, self._sizes)):
            if max(values, default=0) > array.limit:
                raise TiffLayoutError(
                    f"{self.path}: a tile offset or size of {max(values)} bytes does not fit the TIFF's "
                    f"{8 * struct.calcsize(array.fmt)}-bit arrays"
                )
            self._f.seek(array.position)
            self._f.write(struct.pack(f"{self.arrays.endian}{len(values)}{array.fmt}", *values))
        self._f.flush()

    def close(self) -> None:
        """Close the file (without finishing)."""
        self._f.close()

    def __enter__(self) -> TileAppender:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.finish()
        finally:
            self.close()
