"""Window reads of one zone: copy a rectangle of the zone grid into a pixel-major output.

``scales`` are read first, so inner chunks with no usable pixel (water, no data)
are never fetched. Then one task per row of inner chunks runs on the reader's
threads: decode the row's scale chunks in place into one grid, fetch the needed
embedding chunks, and decode them one at a time into a small band-major buffer
(B, ih, iw) that stays in cache while :class:`Dequantiser` (below) writes
``float32(q) * scale`` pixel-major straight into the output (a band-major float32
cast, then per 8 pixels a diagonal-scale ``sgemm`` that reads the transposed values
natively, so there is no separate int8 turn and no second pass over the output).
Pixels whose scale is not usable become NaN through the multiply itself (their
effective scale is NaN); chunks with no usable pixel are written NaN as column
slices, so there is no separate masking pass and no NaN prefill.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from ..layout import ArrayLayout
from .chunk_groups import decode_into
from .chunk_reader import ChunkReader
from .decode import decode_inner
from .points import gather
from .zones import NODATA, VALID, Zone, classify


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
        self._spare: queue.SimpleQueue[tuple[npt.NDArray[np.int8], Dequantiser]] = queue.SimpleQueue()
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
        scrs = _chunk_span(a0, a1, ih)
        coords = np.stack(np.meshgrid([self.t], scrs, self.sccs, indexing="ij"), -1).reshape(-1, 3)
        r_first, c_first = int(scrs[0]), int(self.sccs[0])
        grid = np.empty((len(scrs), len(self.sccs), ih, iw), dtype=np.float32)  # decoded in place

        def into(c: tuple[int, ...]) -> npt.NDArray[Any]:
            return grid[c[1] - r_first, c[2] - c_first]

        def on_scale(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
            if arr is None:
                into(c)[...] = sl.fill_value

        raws = _fetch(self.reader, sl, coords)
        with self.reader.cpu:
            if raws is None:
                _decode(self.reader, sl, coords, raws, on_scale, into=into)
            else:  # decoded together (zstd without c-blosc's per-call cost), then placed
                stored = [(c, raw) for c, raw in raws if raw is not None]
                for c, raw in raws:
                    if raw is None:
                        on_scale(c, None)
                if stored:
                    vals = np.empty((len(stored), *sl.inner_shape), dtype=sl.dtype)
                    decode_into([raw for _, raw in stored], sl, vals)
                    at = np.array([c for c, _ in stored], dtype=np.int64)
                    grid[at[:, 1] - r_first, at[:, 2] - c_first] = vals[:, 0]
        full = grid.transpose(0, 2, 1, 3).reshape(len(scrs) * ih, len(self.sccs) * iw)
        return full[a0 - r_first * ih : a1 - r_first * ih, self.cc0 - c_first * iw : self.cc1 - c_first * iw]

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
        skipped = np.ones(len(self.ccs), dtype=bool)
        skipped[need] = False
        for k0, k1 in _runs(skipped):  # chunks with no usable pixel: NaN where not blocked
            w0 = max(int(self.ccs[k0]) * ew, self.cc0) - self.cc0
            w1 = min(int(self.ccs[k1 - 1] + 1) * ew, self.cc1) - self.cc0
            if self.row_blocked[rows].any():
                np.copyto(dst_rows[:, w0:w1], np.float32(np.nan), where=~blk[:, w0:w1, None])
            else:
                dst_rows[:, w0:w1] = np.nan
        raws = _fetch(self.reader, el, coords)
        with self.reader.cpu:  # decode and assembly: one task per core
            try:
                buf, turn = self._spare.get_nowait()
            except queue.Empty:
                buf = np.empty((1, el.inner_shape[1], eh, ew), dtype=np.int8)
                turn = Dequantiser((el.inner_shape[1], eh, ew))
            try:
                fill = np.int8(el.fill_value)
                lr = a0 - cr * eh  # chunk-local row of a0
                any_blocked = bool(self.row_blocked[rows].any())

                def on_emb(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
                    """Dequantise chunk ``c`` (decoded into ``buf``) into its columns of the window."""
                    if arr is None:  # absent: the fill value
                        buf[...] = fill
                    z0 = c[3] * ew  # zone column of the chunk's first column
                    x0, x1 = max(self.cc0, z0), min(self.cc1, z0 + ew)
                    w0, w1 = x0 - self.cc0, x1 - self.cc0  # window columns
                    sc = seff[:, w0:w1]
                    if any_blocked:
                        vals = np.empty((a1 - a0, w1 - w0, buf.shape[1]), dtype=np.float32)
                        turn(buf[0], lr, lr + a1 - a0, x0 - z0, sc, vals)
                        np.copyto(dst_rows[:, w0:w1], vals, where=~blk[:, w0:w1, None])
                    else:
                        turn(buf[0], lr, lr + a1 - a0, x0 - z0, sc, dst_rows[:, w0:w1])

                _decode(self.reader, el, coords, raws, on_emb, into=lambda c: buf[0])
            finally:
                self._spare.put((buf, turn))


Raw = list[tuple[tuple[int, ...], bytes | memoryview | None]]


def _fetch(reader: ChunkReader, layout: ArrayLayout, coords: npt.NDArray[np.int64]) -> Raw | None:
    """Encoded bytes of ``coords`` (requests only), or None for layouts read through the reader."""
    return reader.fetch_raw(layout, coords) if layout.direct and layout.sharded else None


def _decode(
    reader: ChunkReader,
    layout: ArrayLayout,
    coords: npt.NDArray[np.int64],
    raws: Raw | None,
    on_chunk: Callable[[tuple[int, ...], npt.NDArray[Any] | None], None],
    into: Callable[[tuple[int, ...]], npt.NDArray[Any]] | None = None,
) -> None:
    """Decode fetched chunks (into ``into(coords)`` when given) and hand them to ``on_chunk``."""
    if raws is None:  # layouts without raw access: through the reader (in this thread: a task's)
        reader.read_chunks(layout, coords, on_chunk, into=into)
        return
    for c, raw in raws:
        if raw is None:
            on_chunk(c, None)
        else:
            on_chunk(c, decode_inner(raw, layout, out=into(c) if into is not None else None))


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-d bool array."""
    edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


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


# --- the turn to pixel-major and the dequantisation, in one step -------------------------------
# Band-major int8 inner chunks -> pixel-major float32 values, turn and dequantisation in one step.
#
# An inner chunk decodes band-major, ``(B, ih, iw)`` int8; outputs are pixel-major
# ``(rows, W, B)`` float32 ``float32(q) * scale``. numpy has no fast transpose of small
# elements, and a pixel-major multiply by a per-pixel scale runs one short inner loop per
# pixel. Both are done at once by BLAS: the chunk, still hot in cache from its decode, is
# cast to float32 in band-major order (a contiguous cast), and each block of 8 pixels is
# ``diag(scale) (8 x 8) @ values (8 pixels x B bands)``, written by ``sgemm`` straight into
# the output (it reads the transposed operand natively). The diagonal product is exact: every
# output is ``scale * q`` rounded once, plus exact zeros (the off-diagonal terms; ``q`` is
# finite). A NaN scale gives NaN. The one difference, the sign of a zero when the scale is
# exactly 0, is repaired by recomputing those pixels directly.

BLOCK = 8  # pixels per diagonal block: 8 multiply-adds per output, few enough sgemm calls


class Dequantiser:
    """Writes ``float32(q) * s`` pixel-major from one band-major inner chunk.

    ``shape``: the chunk ``(B, ih, iw)`` int8. Scratch arrays (a band-major float32 copy of
    the chunk, the diagonal blocks) are reused: one instance per thread.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        nb, ih, iw = shape
        self.shape = shape
        nblk = iw // BLOCK
        self._f = np.empty((nb, ih, iw), dtype=np.float32)  # band-major float32 values
        f4 = self._f.itemsize
        # block j of row r: (BLOCK pixels, nb bands), read transposed by sgemm
        self._fv = as_strided(
            self._f, (ih, nblk, BLOCK, nb), (iw * f4, BLOCK * f4, f4, ih * iw * f4), writeable=False
        )
        self._d = np.zeros((ih, nblk, BLOCK, BLOCK), dtype=np.float32)  # zero off the diagonal
        self._diag = self._d.reshape(ih, nblk, BLOCK * BLOCK)[:, :, :: BLOCK + 1]

    def __call__(
        self,
        chunk: npt.NDArray[np.int8],
        lr0: int,
        lr1: int,
        c0: int,
        s: npt.NDArray[np.float32],
        dst: npt.NDArray[np.float32],
    ) -> None:
        """``dst[i, j, b] = float32(chunk[b, lr0 + i, c0 + j]) * s[i, j]``.

        ``chunk`` (B, ih, iw); rows [lr0, lr1); ``s`` (n, w) and ``dst`` (n, w, B) for chunk
        columns [c0, c0 + w), each row of ``dst`` C-contiguous (a slice of a larger array is fine).
        """
        nb = chunk.shape[0]
        if chunk.shape != self.shape:
            raise ValueError(f"chunk {chunk.shape} does not fit {self.shape}")
        n, w = s.shape
        c1 = c0 + w
        f = self._f[:, lr0:lr1]
        np.copyto(f, chunk[:, lr0:lr1], casting="unsafe")  # cast, band-major
        ft = f.transpose(1, 2, 0)  # (n, iw, B) pixel-major view
        j0, j1 = -(-c0 // BLOCK), c1 // BLOCK  # whole blocks inside [c0, c1)
        if j1 <= j0 or dst.strides[1:] != (nb * 4, 4):
            np.multiply(ft[:, c0:c1], s[:, :, None], out=dst)
            return
        a, b = j0 * BLOCK - c0, j1 * BLOCK - c0  # their columns in dst
        d = self._d[lr0:lr1, j0:j1]
        self._diag[lr0:lr1, j0:j1] = s[:, a:b].reshape(n, j1 - j0, BLOCK)
        out = dst[:, a:b].reshape(n, j1 - j0, BLOCK, nb)  # a view: rows of dst are C-contiguous
        np.matmul(d, self._fv[lr0:lr1, j0:j1], out=out)
        if a > 0:  # partial blocks at the edges
            np.multiply(ft[:, c0 : c0 + a], s[:, :a, None], out=dst[:, :a])
        if b < w:
            np.multiply(ft[:, c0 + b : c1], s[:, b:, None], out=dst[:, b:])
        if not s[:, a:b].all():  # exact zero scales: the sign of -0.0 (q < 0)
            zi, zj = np.nonzero(s[:, a:b] == 0)
            dst[zi, zj + a] = ft[zi, zj + a + c0] * s[zi, zj + a, None]
