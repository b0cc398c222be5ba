"""Pixel-interleaved LZW tiles of an embedding GeoTIFF, encoded in parallel threads.

The default export (``--compress lzw``) has the published client's layout: float32,
pixel-interleaved, 256 x 256 tiles, LZW without a predictor. libtiff encodes LZW at about
50 MB/s per core here, which made it the slowest stage of an export. This module encodes the
same tiles with :mod:`geotessera.export._lzw` (a C encoder writing libtiff's bit stream byte
for byte, about 2.5 times faster, without the GIL) in a thread per core while the main thread
dequantises the next tiles, and appends them to a header GDAL wrote
(:mod:`~geotessera.export.tile_index`). The file is the one GDAL would write: same header,
same compressed tiles (partial tiles padded with zeros, as GDAL pads them).

Memory: one row of tiles being filled (256 rows x the width rounded up to 256 x bands x 4
bytes) plus at most two tiles per thread in flight. :func:`usable` refuses rows wider than
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
#: Largest row of tiles (bytes of float32) filled in memory; wider rows are left to GDAL.
TILE_ROW_BUDGET: Final = 768 << 20


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


def encode_tile(tile: npt.NDArray[np.float32]) -> bytes:
    """LZW-encode one C-contiguous tile as libtiff would (raises RuntimeError without the encoder)."""
    if _encoder is None:
        raise RuntimeError("geotessera.export._lzw is not built")
    data: bytes = _encoder.encode(tile)
    return data


def worker_count(threads: int | str) -> int:
    """Encoding threads for GDAL-style ``NUM_THREADS`` (a number or ``ALL_CPUS``)."""
    text = str(threads).strip().upper()
    if text == "ALL_CPUS":
        return max(1, os.cpu_count() or 1)
    try:
        return max(1, int(text))
    except ValueError:
        return 1


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
    strips: Iterable[tuple[int, npt.NDArray[np.int8], npt.NDArray[np.float32]]],
    *,
    bands: Sequence[int] | None,
    threads: int | str = "ALL_CPUS",
    name: str,
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

    Raises:
        OutputError: a strip out of order or of the wrong shape.
    """
    h, w = shape
    band_idx = None if bands is None else list(bands)
    nout = n_bands if band_idx is None else len(band_idx)
    n_cols = -(-w // BLOCK)
    workers = worker_count(threads)
    pending: deque[Future[bytes]] = deque()
    n_bad = 0
    row_tiles: list[npt.NDArray[np.float32]] = []
    next_row = 0
    with (
        TileAppender(path) as out,
        ThreadPoolExecutor(workers, thread_name_prefix="lzw") as pool,
        _cancelled_on_error(pool),
    ):
        if out.tile_count != -(-h // BLOCK) * n_cols:
            raise OutputError(
                f"{name}: the header holds {out.tile_count} tiles, not {-(-h // BLOCK) * n_cols}"
            )
        for r0, q, sc in strips:
            n = q.shape[0]
            if q.shape[1:] != (w, n_bands) or r0 != next_row or r0 + n > h:
                raise OutputError(
                    f"{name}: strip of {q.shape} at row {r0} does not follow row {next_row} of {h} x {w}"
                )
            lo = r0
            while lo < r0 + n:
                top = lo // BLOCK * BLOCK
                hi = min(r0 + n, top + BLOCK)
                if lo == top:  # a new row of tiles: zeros pad the last row and column, as GDAL pads
                    row_tiles = [np.zeros((BLOCK, BLOCK, nout), dtype=np.float32) for _ in range(n_cols)]
                for col, tile in enumerate(row_tiles):
                    c0, c1 = col * BLOCK, min(w, col * BLOCK + BLOCK)
                    _, bad = dequantize_counting(
                        q[lo - r0 : hi - r0, c0:c1],
                        sc[lo - r0 : hi - r0, c0:c1],
                        out=tile[lo - top : hi - top, : c1 - c0],
                        bands=band_idx,
                        threads=1,
                        name=name,
                    )
                    n_bad += bad
                if hi == min(h, top + BLOCK):  # the row of tiles is whole: encode it
                    for tile in row_tiles:
                        pending.append(pool.submit(encode_tile, tile))
                    row_tiles = []
                    while len(pending) > 2 * workers:
                        out.append(pending.popleft().result())
                lo = hi
            next_row = r0 + n
        if next_row != h:
            raise OutputError(f"{name}: strips ended at row {next_row} of {h}")
        while pending:
            out.append(pending.popleft().result())
    report_implausible(n_bad, name)
    log.debug("encoded %d LZW tiles of %s on %d threads", out.tile_count, Path(path).name, workers)
