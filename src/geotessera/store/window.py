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
from collections.abc import Callable
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
    win = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    job = _Window(reader, zone, t, (rr0, rr1, cc0, cc1), out[win], have[win], blocked[win])
    reader.run_each(job.row, range(len(job.crs)))
    return sum(job.bad)


class _Window:
    """One window read, as independent tasks per row of embedding inner chunks.

    A task reads its rows' scales, classifies them, fetches the row's needed chunks
    (requests outside the CPU gate), then decodes, turns pixel-major and dequantises
    holding :attr:`ChunkReader.cpu`. Tasks write disjoint rows of ``out`` and ``have``.
    """

    def __init__(
        self,
        reader: ChunkReader,
        zone: Zone,
        t: int,
        inner: tuple[int, int, int, int],
        out: npt.NDArray[np.float32],
        have: npt.NDArray[np.bool_],
        blocked: npt.NDArray[np.bool_],
    ) -> None:
        self.reader, self.zone, self.t = reader, zone, t
        self.rr0, self.rr1, self.cc0, self.cc1 = inner
        self.out, self.have, self.blocked = out, have, blocked  # the window's part inside the grid
        self.row_blocked: npt.NDArray[np.bool_] = np.asarray(blocked.any(axis=1))
        el, sl = zone.embeddings, zone.scales
        self.eh, self.ew = el.inner_shape[2], el.inner_shape[3]
        self.crs = _chunk_span(self.rr0, self.rr1, self.eh)
        self.ccs = _chunk_span(self.cc0, self.cc1, self.ew)
        self.sccs = _chunk_span(self.cc0, self.cc1, sl.inner_shape[2])
        self.x0 = int(self.ccs[0]) * self.ew  # zone column of buffer column 0
        self.bad: list[int] = []
        self._spare: queue.SimpleQueue[tuple[npt.NDArray[np.int8], PixelMajor]] = queue.SimpleQueue()
        grid = np.stack(np.meshgrid([t], [0], self.crs, self.ccs, indexing="ij"), -1).reshape(-1, 4)
        reader.prefetch_indexes(el, grid)
        sgrid = np.stack(
            np.meshgrid([t], _chunk_span(self.rr0, self.rr1, sl.inner_shape[1]), self.sccs, indexing="ij"), -1
        )
        reader.prefetch_indexes(sl, sgrid.reshape(-1, 3))

    def _scales(self, a0: int, a1: int) -> npt.NDArray[np.float32]:
        """Scales of zone rows [a0, a1) x the window's columns (requests first, then decoding
        holding the CPU gate)."""
        sl = self.zone.scales
        _, ih, iw = sl.inner_shape
        s = np.empty((a1 - a0, self.cc1 - self.cc0), dtype=np.float32)
        scrs = _chunk_span(a0, a1, ih)
        coords = np.stack(np.meshgrid([self.t], scrs, self.sccs, indexing="ij"), -1).reshape(-1, 3)

        def on_scale(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
            y0, y1 = max(c[1] * ih, a0), min((c[1] + 1) * ih, a1)
            x0, x1 = max(c[2] * iw, self.cc0), min((c[2] + 1) * iw, self.cc1)
            dst = s[y0 - a0 : y1 - a0, x0 - self.cc0 : x1 - self.cc0]
            if arr is None:
                dst[...] = sl.fill_value
            else:
                dst[...] = arr[0, y0 - c[1] * ih : y1 - c[1] * ih, x0 - c[2] * iw : x1 - c[2] * iw]

        raws = _fetch(self.reader, sl, coords)
        with self.reader.cpu:
            _decode(self.reader, sl, coords, raws, on_scale)
        return s

    def row(self, i: int) -> None:
        """Task: the window rows of embedding chunk row ``crs[i]``."""
        el, eh, ew = self.zone.embeddings, self.eh, self.ew
        cr = int(self.crs[i])
        a0, a1 = max(cr * eh, self.rr0), min((cr + 1) * eh, self.rr1)
        rows = slice(a0 - self.rr0, a1 - self.rr0)
        s = self._scales(a0, a1)
        status, bad = classify(s, self.zone.scale_nodata)
        self.bad.append(bad)
        blk = self.blocked[rows]
        status[blk] = NODATA  # already filled, or left to the owning zone
        self.have[rows] |= status != NODATA  # taken: water and the like stay NaN
        usable = status == VALID
        seff = np.where(usable, s, np.float32(np.nan))  # NaN scale -> NaN value, no masking pass
        pad = np.zeros((a1 - a0, len(self.ccs) * ew), dtype=bool)
        pad[:, self.cc0 - self.x0 : self.cc1 - self.x0] = usable
        need = np.flatnonzero(pad.reshape(a1 - a0, len(self.ccs), ew).any(axis=(0, 2)))
        dst_rows = self.out[rows]
        if len(need) == 0:  # nothing usable: NaN where not blocked
            if self.row_blocked[rows].any():
                dst_rows[~blk] = np.nan
            else:
                dst_rows[...] = np.nan
            return
        k = len(need)
        coords = np.c_[np.full(k, self.t), np.zeros(k, np.int64), np.full(k, cr), self.ccs[need]]
        raws = _fetch(self.reader, el, coords)
        with self.reader.cpu:  # decode and assembly: one task per core
            try:
                buf, turn = self._spare.get_nowait()
            except queue.Empty:
                buf = np.empty((len(self.ccs), el.inner_shape[1], eh, ew), dtype=np.int8)
                turn = PixelMajor(buf.shape, ROW_ROWS)
            try:  # chunks not fetched keep old bytes: their pixels have a NaN scale
                first, fill = int(self.ccs[0]), np.int8(el.fill_value)

                def on_emb(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
                    if arr is None:  # absent: the fill value (decoded chunks are in buf already)
                        buf[c[3] - first] = fill

                _decode(self.reader, el, coords, raws, on_emb, into=lambda c: buf[c[3] - first])
                for b0 in range(0, a1 - a0, ROW_ROWS):
                    b1 = min(b0 + ROW_ROWS, a1 - a0)
                    lr = a0 - cr * eh  # chunk-local row of window row a0
                    q = turn(buf, lr + b0, lr + b1)[:, self.cc0 - self.x0 : self.cc1 - self.x0]
                    dst, sc = dst_rows[b0:b1], seff[b0:b1, :, None]
                    if self.row_blocked[rows][b0:b1].any():
                        np.copyto(dst, q * sc, where=~blk[b0:b1, :, None])
                    else:  # int8 -> float32 copy, then an in-place multiply: both in cache
                        dst[...] = q
                        dst *= sc
            finally:
                self._spare.put((buf, turn))


Raw = list[tuple[tuple[int, ...], bytes | memoryview | None]]


def _fetch(reader: ChunkReader, layout: ArrayLayout, coords: npt.NDArray[np.int64]) -> Raw | None:
    """Encoded bytes of ``coords`` (requests only), or None for layouts read through the reader."""
    return reader.fetch_raw_here(layout, coords) if layout.direct and layout.sharded else None


def _decode(
    reader: ChunkReader,
    layout: ArrayLayout,
    coords: npt.NDArray[np.int64],
    raws: Raw | None,
    on_chunk: Callable[[tuple[int, ...], npt.NDArray[Any] | None], None],
    into: Callable[[tuple[int, ...]], npt.NDArray[Any]] | None = None,
) -> None:
    """Decode fetched chunks (into ``into(coords)`` when given) and hand them to ``on_chunk``."""
    if raws is None:  # layouts without raw access: through the reader, in this thread
        reader.read_chunks_here(layout, coords, on_chunk, into=into)
        return
    for c, raw in raws:
        if raw is None:
            on_chunk(c, None)
        else:
            on_chunk(c, decode_inner(raw, layout, out=into(c) if into is not None else None))


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
