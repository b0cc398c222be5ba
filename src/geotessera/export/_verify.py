"""What a GeoTIFF writer must prove before its file may reach its final path.

GDAL writes through a block cache: on a full disk libtiff reports ``No space left on device``
but a write or a close may still return without an error, leaving an empty or cut-short file.
So a GeoTIFF is only moved into place after :func:`check_written_geotiff` has re-opened it
(its size, its header, its last block). :func:`reserve_space` refuses a write the disk cannot
hold before GDAL starts, so a full disk is said once per tile rather than by libtiff per block.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_reserved: dict[int, int] = {}  # bytes promised to writers in progress, per filesystem (st_dev)


def _disk_full(path: Path, need: int, free: int) -> OutputError:
    return OutputError(
        f"disk full ({errno.errorcode[errno.ENOSPC]}): writing {path} needs up to {need / 1e6:.1f} MB, "
        f"{max(free, 0) / 1e6:.1f} MB free"
    )


@contextlib.contextmanager
def reserve_space(path: str | os.PathLike[str], need: int) -> Iterator[None]:
    """Hold ``need`` bytes of the filesystem of ``path``'s directory while the block runs.

    Raises :class:`OutputError` ("disk full ...") when the free space, less what other writers
    of this process hold, is smaller than ``need``. Writers in other processes are not seen:
    for them the check after writing (:func:`check_written_geotiff`) stands.
    """
    directory = Path(path).parent
    try:
        dev = directory.stat().st_dev
        free = shutil.disk_usage(directory).free
    except OSError:  # cannot tell: let the writer find out
        yield
        return
    with _lock:
        available = free - _reserved.get(dev, 0)
        if available < need:
            raise _disk_full(Path(path), need, available)
        _reserved[dev] = _reserved.get(dev, 0) + need
    try:
        yield
    finally:
        with _lock:
            _reserved[dev] -= need


def check_written_geotiff(
    path: str | os.PathLike[str],
    *,
    count: int,
    height: int,
    width: int,
    name: object = None,
    needed: int = 1 << 20,
    decode_last_block: bool = True,
) -> None:
    """Raise :class:`OutputError` unless ``path`` is a whole GeoTIFF of ``count`` x ``height`` x ``width``.

    Checks, without reading the pixels: a non-empty file whose header and directory parse,
    the expected band count and shape, every block of the first and last bands present and
    inside the file (GDAL writes the directory first, so a file cut short still opens, and
    reads its missing blocks as nodata), and the last block of the last band decoding. A
    failure says "disk full" when the disk has less than ``needed`` bytes free (what the whole
    file might take); ``name`` (default ``path``) is the file the messages name (e.g. the final
    path of a temporary). ``decode_last_block=False`` skips the decoding, for a file whose
    blocks were written by our own checked writes rather than GDAL's cache (a pixel-interleaved
    block of 128 bands is 33 MB to decode).
    """
    import rasterio
    from rasterio.windows import Window

    p = Path(path)
    try:
        size = p.stat().st_size
        if size == 0:
            raise ValueError("the file is empty")
        with rasterio.open(p) as ds:
            if (ds.count, ds.height, ds.width) != (count, height, width):
                raise ValueError(
                    f"it holds {ds.count} x {ds.height} x {ds.width}, not {count} x {height} x {width}"
                )
            bh, bw = ds.block_shapes[-1]
            _check_blocks(ds, size, sorted({1, count}), -(-height // bh), -(-width // bw))
            if decode_last_block:
                row, col = (height - 1) // bh * bh, (width - 1) // bw * bw
                ds.read(count, window=Window(col, row, width - col, height - row))
    except (OSError, ValueError, rasterio.errors.RasterioError) as exc:
        shown = p if name is None else name
        free = _free_bytes(p)
        if free is not None and free < needed:
            raise OutputError(f"disk full ({errno.errorcode[errno.ENOSPC]}) writing {shown}: {exc}") from exc
        raise OutputError(f"{shown} was not written completely: {exc}") from exc


def _check_blocks(ds: Any, size: int, bands: list[int], rows: int, cols: int) -> None:
    """Every block of ``bands`` present and inside the file (a missing block reads as nodata)."""
    for b in bands:
        for y in range(rows):
            for x in range(cols):
                offset = ds.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=b)
                length = ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=b)
                if not offset or not length or int(offset) + int(length) > size:
                    raise ValueError(
                        f"block {x},{y} of band {b} was never written (the file ends at {size} bytes)"
                    )


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return None
