"""Window reads of one zone: copy a rectangle of the zone grid into a pixel-major output.

``scales`` are read first, so inner chunks with no usable pixel (water, no data)
are never fetched. Then one task per row of inner chunks runs on the reader's
threads: fetch and decode the row's chunks into a band-major buffer (K, B, ih, iw),
turn it pixel-major a few image rows at a time and dequantise straight into the
output. Transposing (B, ih, iw) chunks one at a time and multiplying per chunk
costs more than decoding them (``performance-notes.md``); here the band-major ->
pixel-major step is an 8 x 8 byte-block transpose done on uint64 words (three
masked swap stages) over L2-sized row blocks, about 4x numpy's strided int8 copy.
Pixels whose scale is not usable become NaN through the multiply itself (their
effective scale is NaN), so there is no separate masking pass and no NaN prefill.
"""

from __future__ import annotations

import queue
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from .chunks import ArrayLayout, decode_inner
from .fetch import ChunkReader
from .sampling import NODATA, VALID, Zone, classify, gather

ROW_ROWS = 2  # image rows turned pixel-major and dequantised at once (stay in L2 with their output)
_STAGES = (
    (4, np.uint64(32), np.uint64(0x00000000FFFFFFFF)),
    (2, np.uint64(16), np.uint64(0x0000FFFF0000FFFF)),
    (1, np.uint64(8), np.uint64(0x00FF00FF00FF00FF)),
)


class PixelMajor:
    """Turns rows of a band-major chunk row (K, B, ih, iw) int8 pixel-major, ``rows`` at a time.

    Output row ``r`` holds pixel (r, x) of chunk k at ``k * iw + x``. With B and iw multiples
    of 8 (little-endian), 8 bands x 8 pixels byte blocks are transposed as uint64 words:
    gather the words (one per band, 8 pixels each) band-group last, three masked swap stages
    over long contiguous runs, then place the words (one per pixel, 8 bands each). Otherwise
    numpy copies element by element. Scratch arrays are reused (one instance per thread).
    """

    def __init__(self, shape: tuple[int, int, int, int], rows: int) -> None:
        k, nb, _, iw = shape
        self.shape, self.rows = shape, rows
        self.words = sys.byteorder == "little" and nb % 8 == 0 and iw % 8 == 0
        if self.words:
            g, p = nb // 8, iw // 8
            self._x = np.empty((8, rows, k, p, g), dtype=np.uint64)
            self._tmp = np.empty(self._x.size // 2, dtype=np.uint64)
            self._out = np.empty((rows, k, p, 8, g), dtype=np.uint64)

    def __call__(self, buf: npt.NDArray[np.int8], lr0: int, lr1: int) -> npt.NDArray[np.int8]:
        """Rows [lr0, lr1) (at most ``rows``) of ``buf`` as pixel-major (n, K * iw, B) int8."""
        k, nb, ih, iw = buf.shape
        n = lr1 - lr0
        if not (self.words and buf.flags.c_contiguous and buf.shape == self.shape and n <= self.rows):
            return np.ascontiguousarray(buf[:, :, lr0:lr1, :].transpose(2, 0, 3, 1)).reshape(n, k * iw, nb)
        g, p = nb // 8, iw // 8
        words = buf.view(np.uint64).reshape(k, g, 8, ih, p)  # word: 8 pixels of one band
        x = self._x[:, :n]
        x[...] = words[:, :, :, lr0:lr1, :].transpose(2, 3, 0, 4, 1)  # (band in group, row, k, p, g)
        m = n * k * p * g
        flat = x.reshape(8, m)
        for half, shift, mask in _STAGES:  # swap off-diagonal sub-blocks of 4, 2, then 1 byte(s)
            v = flat.reshape(4 // half, 2 * half, m)
            a, b = v[:, :half], v[:, half:]
            t = self._tmp[: 4 * m].reshape(4 // half, half, m)
            np.right_shift(a, shift, out=t)
            t ^= b
            t &= mask
            b ^= t
            t <<= shift
            a ^= t
        out = self._out[:n]
        out[...] = x.transpose(1, 2, 3, 0, 4)  # word: 8 bands of one pixel
        return out.view(np.int8).reshape(n, k * iw, nb)


def read_window(
    reader: ChunkReader,
    zone: Zone,
    t: int,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    out: npt.NDArray[np.float32],
    have: npt.NDArray[np.bool_],
    allow: npt.NDArray[np.bool_] | None = None,
) -> int:
    """Copy zone window rows [r0, r1) x cols [c0, c1) into ``out`` (h, w, B), except blocked pixels.

    Blocked pixels (``have`` set, or ``allow`` (h, w) False when given) are left alone. Every
    other pixel is written: its value, or NaN (water, no data, implausible scale, outside the
    zone grid), so ``out`` needs no initialisation -- except for the rare (time, y, x, band)
    layout, gathered pixel by pixel, which needs ``out`` NaN where not blocked. ``have`` is set
    where the zone has data (valid or water). Returns the implausible-scale count.
    """
    H, W = zone.info.shape
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, H), max(c0, 0), min(c1, W)
    if not zone.band_axis_first:
        return _gather_window(reader, zone, t, (r0, r1, c0, c1), (rr0, rr1, cc0, cc1), out, have, allow)
    blocked = have.copy() if allow is None else (have | ~allow)
    outside = ~blocked
    if rr0 < rr1 and cc0 < cc1:
        outside[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = False
    if outside.any():
        out[outside] = np.nan
    if rr0 >= rr1 or cc0 >= cc1:
        return 0
    # -- scales of the window part inside the grid ------------------------------------------
    win = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    _, ih, iw = zone.scales.inner_shape
    s = np.empty((rr1 - rr0, cc1 - cc0), dtype=np.float32)
    scrs, sccs = _chunk_span(rr0, rr1, ih), _chunk_span(cc0, cc1, iw)
    grid = np.stack(np.meshgrid([t], scrs, sccs, indexing="ij"), -1).reshape(-1, 3).astype(np.int64)

    def on_scale(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        a0, a1 = max(c[1] * ih, rr0), min((c[1] + 1) * ih, rr1)
        b0, b1 = max(c[2] * iw, cc0), min((c[2] + 1) * iw, cc1)
        dst = s[a0 - rr0 : a1 - rr0, b0 - cc0 : b1 - cc0]  # chunks are disjoint: safe from threads
        if arr is None:
            dst[...] = zone.scales.fill_value
        else:
            dst[...] = arr[0, a0 - c[1] * ih : a1 - c[1] * ih, b0 - c[2] * iw : b1 - c[2] * iw]

    reader.read_chunks(zone.scales, grid, on_scale, threaded=True)
    status, n_bad = classify(s, zone.scale_nodata)
    blk = blocked[win]
    status[blk] = NODATA  # already filled, or left to the owning zone
    have[win] |= status != NODATA  # taken: water and the like stay NaN
    usable = status == VALID
    seff = np.where(usable, s, np.float32(np.nan))  # NaN scale -> NaN value, no masking pass
    # -- embeddings, one task per row of inner chunks ----------------------------------------
    el = zone.embeddings
    _, nb, eh, ew = el.inner_shape
    crs, ccs = _chunk_span(rr0, rr1, eh), _chunk_span(cc0, cc1, ew)
    pad = np.zeros((len(crs) * eh, len(ccs) * ew), dtype=bool)
    y0, x0 = int(crs[0]) * eh, int(ccs[0]) * ew  # zone pixel of buffer (0, 0)
    pad[rr0 - y0 : rr1 - y0, cc0 - x0 : cc1 - x0] = usable
    need: npt.NDArray[np.bool_] = np.asarray(pad.reshape(len(crs), eh, len(ccs), ew).any(axis=(1, 3)))
    del pad, usable
    todo = np.argwhere(need)
    coords = np.c_[np.full(len(todo), t), np.zeros(len(todo), np.int64), crs[todo[:, 0]], ccs[todo[:, 1]]]
    reader.prefetch_indexes(el, coords)
    row_blocked: npt.NDArray[np.bool_] = np.asarray(blk.any(axis=1))
    step = ROW_ROWS
    spare: queue.SimpleQueue[tuple[npt.NDArray[np.int8], PixelMajor]] = queue.SimpleQueue()

    def task(i: int) -> None:
        cr = int(crs[i])
        a0, a1 = max(cr * eh, rr0), min((cr + 1) * eh, rr1)
        rows = slice(a0 - rr0, a1 - rr0)
        dst_rows = out[a0 - r0 : a1 - r0, cc0 - c0 : cc1 - c0]
        if not need[i].any():  # nothing usable: NaN where not blocked
            if row_blocked[rows].any():
                dst_rows[~blk[rows]] = np.nan
            else:
                dst_rows[...] = np.nan
            return
        mine = coords[todo[:, 0] == i]
        raws = reader.fetch_raw_here(el, mine) if el.direct and el.sharded else None  # I/O, ungated
        with reader.cpu:  # decode and assembly: one task per core
            try:
                buf, turn = spare.get_nowait()
            except queue.Empty:
                buf = np.empty((len(ccs), nb, eh, ew), dtype=np.int8)
                turn = PixelMajor(buf.shape, step)
            try:  # chunks not fetched keep old bytes: their pixels have a NaN scale
                _decode_row(reader, el, mine, raws, buf, int(ccs[0]))
                for b0 in range(a0, a1, step):
                    b1 = min(b0 + step, a1)
                    q = turn(buf, b0 - cr * eh, b1 - cr * eh)[:, cc0 - x0 : cc1 - x0]
                    dst = out[b0 - r0 : b1 - r0, cc0 - c0 : cc1 - c0]
                    sc = seff[b0 - rr0 : b1 - rr0, :, None]
                    if row_blocked[b0 - rr0 : b1 - rr0].any():
                        np.copyto(dst, q * sc, where=~blk[b0 - rr0 : b1 - rr0, :, None])
                    else:  # int8 -> float32 copy, then an in-place multiply: both in cache
                        dst[...] = q
                        dst *= sc
            finally:
                spare.put((buf, turn))

    reader.run_each(task, range(len(crs)))
    return n_bad


def _decode_row(
    reader: ChunkReader,
    el: ArrayLayout,
    chunks: npt.NDArray[np.int64],
    raws: list[tuple[tuple[int, ...], bytes | memoryview | None]] | None,
    buf: npt.NDArray[np.int8],
    cc_first: int,
) -> None:
    """Decode a row's inner chunks into ``buf[chunk col - cc_first]`` (absent: the fill value)."""
    fill = np.int8(el.fill_value)
    if raws is None:  # layouts without raw access: through the reader, in this thread

        def on_emb(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
            if arr is None:  # decoded chunks are in buf already
                buf[c[3] - cc_first] = fill

        reader.read_chunks_here(el, chunks, on_emb, into=lambda c: buf[c[3] - cc_first])
        return
    for c, raw in raws:
        if raw is None:
            buf[c[3] - cc_first] = fill
        else:
            decode_inner(raw, el, out=buf[c[3] - cc_first])


def _chunk_span(lo: int, hi: int, size: int) -> npt.NDArray[np.int64]:
    """Indices of the chunks of ``size`` covering [lo, hi)."""
    return np.arange(lo // size, (hi - 1) // size + 1, dtype=np.int64)


def _gather_window(
    reader: ChunkReader,
    zone: Zone,
    t: int,
    window: tuple[int, int, int, int],
    inner: tuple[int, int, int, int],
    out: npt.NDArray[np.float32],
    have: npt.NDArray[np.bool_],
    allow: npt.NDArray[np.bool_] | None,
) -> int:
    """A (time, y, x, band) zone: gather the window pixel by pixel (``out`` NaN where not blocked)."""
    r0, _, c0, _ = window
    rr0, rr1, cc0, cc1 = inner
    if rr0 >= rr1 or cc0 >= cc1:
        return 0
    rr, cc = np.meshgrid(np.arange(rr0, rr1), np.arange(cc0, cc1), indexing="ij")
    vals, st, bad = gather(reader, zone, t, rr.ravel(), cc.ravel())
    win = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    sub = out[win]
    m = (st != NODATA).reshape(rr.shape) & ~have[win]
    if allow is not None:
        m &= allow[win]
    sub[m] = vals.reshape(*rr.shape, -1)[m]
    have[win] |= m
    return bad
