"""Pixel-interleaved LZW tiles of an embedding GeoTIFF, encoded in parallel threads.

The default export (``--compress lzw``) has the published client's layout: float32,
pixel-interleaved, 256 x 256 tiles, LZW without a predictor. libtiff encodes LZW at about
50 MB/s per core here, which made it the slowest stage of an export. This module encodes the
same tiles with :mod:`geotessera.export._lzw` (a C encoder that can write libtiff's bit stream
byte for byte, about 2.5 times faster, without the GIL) in a thread per core, each dequantising
its own tile while the main thread reads the next rows, and appends them to a header GDAL wrote
(:mod:`~geotessera.export.tile_index`). The file is the one GDAL would write (same header, same
pixels, partial tiles padded with zeros as GDAL pads a block written whole), except that its
tiles clear the LZW table sooner (:data:`SMALL_TABLE`): smaller and faster to write, and read
by any TIFF LZW decoder. With ``SMALL_TABLE = 4094`` it is GDAL's file byte for byte.

Each worker dequantises its tile itself, from views of the quantised rows: for per-pixel
scales inside the encoder, 16 KB of pixels at a time, each piece encoded while it is in the
L1 cache (the float32 tile is never whole in memory). Memory: a row of tiles of quantised
values when the strips are shorter than a row of tiles (256 rows x the width x bands bytes;
none when they are views of a whole tile), the output buffer of each tile being encoded (at
most 1.5 times the tile's 33.5 MB at 128 bands; the pages written are about 28 MB) and at
most two encoded tiles per thread waiting to be written. :func:`usable` refuses rows wider than
:data:`TILE_ROW_BUDGET`; the caller then lets GDAL write.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Final

import numpy as np
import numpy.typing as npt

from ..errors import OutputError
from ..tiles.dequantize import dequantize_counting, report_implausible
from .tile_index import TileAppender

log = logging.getLogger(__name__)

BLOCK: Final = 256
#: Largest row of tiles (counted as float32: 256 rows x width x bands x 4 bytes) the encoder
#: takes; wider rows (very wide Zarr regions) are left to GDAL, whose memory is one strip.
TILE_ROW_BUDGET: Final = 768 << 20
#: libtiff's table size (codes of up to 12 bits): with it the encoder writes libtiff's stream,
#: byte for byte.
LIBTIFF_TABLE: Final = 4094
#: Codes at which the encoder clears a table of short strings (see ``_lzw.c``). At 510 every
#: code has 9 bits, and on float32 embeddings with per-pixel scales the tiles come out about
#: 1.5% smaller than libtiff's and encode about a third faster (a table of 256 KB stays in the
#: L2 cache). A table after one of long strings (water, padding) grows to LIBTIFF_TABLE, and
#: so does one after large tables were tried and made 1/16 fewer bits (values repeating
#: across pixels).
SMALL_TABLE: Final = 510


def _load_encoder() -> ModuleType | None:
    try:
        from . import _lzw
    except ImportError:  # built without a C compiler: GDAL encodes instead
        return None
    return _lzw


_encoder = _load_encoder()


def usable(width: int, n_bands: int) -> bool:
    """Whether the parallel encoder is built and a row of tiles of this width fits the budget."""
    return _encoder is not None and BLOCK * (-(-width // BLOCK) * BLOCK) * n_bands * 4 <= TILE_ROW_BUDGET


def encode_tile(tile: npt.NDArray[np.float32], *, small: int = LIBTIFF_TABLE) -> bytes:
    """LZW-encode one C-contiguous tile (raises RuntimeError without the encoder).

    ``small``: see :data:`SMALL_TABLE`; the default writes libtiff's stream.
    """
    if _encoder is None:
        raise RuntimeError("geotessera.export._lzw is not built")
    data: bytes = _encoder.encode(tile, small)
    return data


def encode_quantized_tile(
    quantized: npt.NDArray[np.int8],
    scales: npt.NDArray[np.floating],
    bands: npt.NDArray[np.int32] | None,
    *,
    name: str = "tile",
    small: int = LIBTIFF_TABLE,
) -> tuple[bytes, int]:
    """Dequantise and LZW-encode one 256 x 256 pixel-interleaved float32 tile.

    Args:
        quantized: int8 (h, w, n), h and w at most 256 (a view of a larger tile is fine).
        scales: (h, w) per-pixel or (h, w, n) per-band scales.
        bands: int32 band indices to keep, or None for all n.
        name: the file named in messages.
        small: see :data:`SMALL_TABLE`; the default writes libtiff's stream.

    Returns:
        (the encoded tile, pixels with implausible scales). Pixels past (h, w) are zeros.
    """
    if _encoder is None:
        raise RuntimeError("geotessera.export._lzw is not built")
    if scales.ndim == 2:  # the published layout: dequantised inside the encoder, without the GIL
        data, bad = _encoder.encode_quantized(
            quantized, np.asarray(scales, dtype=np.float32), bands, BLOCK, small
        )
        return data, int(bad)
    nout = quantized.shape[2] if bands is None else len(bands)
    tile = np.zeros((BLOCK, BLOCK, nout), dtype=np.float32)
    h, w = quantized.shape[:2]
    _, bad = dequantize_counting(quantized, scales, out=tile[:h, :w], bands=bands, threads=1, name=name)
    return encode_tile(tile, small=small), bad


def worker_count(threads: int | str) -> int:
    """Encoding threads for GDAL-style ``NUM_THREADS`` (a number or ``ALL_CPUS``)."""
    text = str(threads).strip().upper()
    if text == "ALL_CPUS":
        return max(1, os.cpu_count() or 1)
    try:
        return max(1, int(text))
    except ValueError:
        return 1


Strip = tuple[int, npt.NDArray[np.int8], npt.NDArray[np.float32]]


def tile_rows(
    strips: Iterable[Strip], shape: tuple[int, int], n_bands: int, name: str, *, kept: bool = False
) -> Iterator[tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]]:
    """Regroup row strips into rows of tiles: ``(int8 (rows, W, n), scales (rows, W[, n]))``.

    Shorter strips are gathered into a new buffer per row of tiles. A strip that holds a whole
    row of tiles is passed on as views when ``kept`` (the strips' arrays stay unchanged until
    the file is written: no copy of the download's memory-mapped tile), else copied: the rows
    are still being encoded when the next strip is asked for, which may refill the same arrays.

    Raises:
        OutputError: a strip out of order, overlapping, of the wrong shape, or rows missing.
    """
    h, w = shape
    next_row = 0
    q_buf = s_buf = None
    for r0, q, sc in strips:
        n = q.shape[0]
        if q.shape[1:] != (w, n_bands) or sc.shape[:2] != q.shape[:2] or r0 != next_row or r0 + n > h:
            raise OutputError(
                f"{name}: strip of {q.shape} at row {r0} does not follow row {next_row} of {h} x {w}"
            )
        lo = r0
        while lo < r0 + n:
            top = lo // BLOCK * BLOCK
            bottom = min(h, top + BLOCK)
            hi = min(r0 + n, bottom)
            if lo == top and hi == bottom:
                rows = slice(top - r0, bottom - r0)
                yield (q[rows], sc[rows]) if kept else (q[rows].copy(), sc[rows].copy())
            else:
                if lo == top:
                    q_buf = np.empty((bottom - top, w, n_bands), dtype=q.dtype)
                    s_buf = np.empty((bottom - top, *sc.shape[1:]), dtype=sc.dtype)
                assert q_buf is not None and s_buf is not None
                q_buf[lo - top : hi - top] = q[lo - r0 : hi - r0]
                s_buf[lo - top : hi - top] = sc[lo - r0 : hi - r0]
                if hi == bottom:
                    yield q_buf, s_buf
            lo = hi
        next_row = r0 + n
    if next_row != h:
        raise OutputError(f"{name}: strips ended at row {next_row} of {h}")


@contextmanager
def _cancelled_on_error(pool: ThreadPoolExecutor) -> Iterator[None]:
    """On an error, a full disk or Ctrl-C, drop the queued tiles (up to a row of tiles, seconds
    of encoding) instead of encoding them for nothing before the error goes on."""
    try:
        yield
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def fill_lzw_tiles(
    path: str | os.PathLike[str],
    shape: tuple[int, int],
    n_bands: int,
    strips: Iterable[Strip],
    *,
    bands: Sequence[int] | None,
    threads: int | str = "ALL_CPUS",
    name: str,
    kept: bool = False,
) -> None:
    """Dequantise ``strips`` and append their LZW tiles to the sparse GeoTIFF at ``path``.

    Args:
        path: a pixel-interleaved, 256 x 256 tiled float32 GeoTIFF that GDAL created with
            ``SPARSE_OK`` and LZW and no pixels (every tile offset 0).
        shape: (H, W) pixels.
        n_bands: bands of the quantised strips (128).
        strips: ``(first row, int8 (h, W, n_bands), scales (h, W) or (h, W, n_bands))`` in row
            order, covering rows 0..H-1 without gaps.
        bands: 0-based bands to keep (None: all), as the file was created.
        threads: encoding threads (``ALL_CPUS`` or a number).
        name: the file named in messages.
        kept: each strip's arrays stay unchanged until this returns (see :func:`tile_rows`).

    Raises:
        OutputError: a strip out of order or of the wrong shape.
        TiffLayoutError: the header's tile count is not this image's (raised when finishing).
    """
    band_idx = None if bands is None else np.asarray(list(bands), dtype=np.int32)
    n_cols = -(-shape[1] // BLOCK)
    workers = worker_count(threads)
    pending: deque[Future[tuple[bytes, int]]] = deque()
    n_bad = 0
    with (
        TileAppender(path) as out,
        ThreadPoolExecutor(workers, thread_name_prefix="lzw") as pool,
        _cancelled_on_error(pool),
    ):

        def write_done(keep: int) -> None:  # in tile order, until at most ``keep`` are queued
            nonlocal n_bad
            while len(pending) > keep:
                data, bad = pending.popleft().result()
                out.append(data)
                n_bad += bad

        for q_rows, s_rows in tile_rows(strips, shape, n_bands, name, kept=kept):
            for col in range(n_cols):
                cols = slice(col * BLOCK, col * BLOCK + BLOCK)
                pending.append(
                    pool.submit(
                        encode_quantized_tile,
                        q_rows[:, cols],
                        s_rows[:, cols],
                        band_idx,
                        name=name,
                        small=SMALL_TABLE,
                    )
                )
            write_done(2 * workers)
        write_done(0)
    report_implausible(n_bad, name)
    log.debug("encoded %d LZW tiles of %s on %d threads", out.tile_count, Path(path).name, workers)
