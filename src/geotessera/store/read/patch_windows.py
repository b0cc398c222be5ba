"""Many same-size windows of one zone (ML patches), each inner chunk fetched and decoded once.

:func:`read_windows` fills K windows of ``size`` x ``size`` pixels of a zone grid into rows
of an (N, size, size, B) float32 output. Windows may overlap each other and the grid's edge.
Planning is vectorised over (window, chunk) pairs: the scale chunks any window touches are
read once and placed into every window's scales; then each embedding chunk that some
window needs (one with a usable pixel there) is read and decoded once, and dequantised
straight into each window overlapping it (:class:`~.windows.Dequantiser`). Every output pixel
is written exactly once: its value, or NaN (water, no data, implausible scale, off the grid).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import numpy.typing as npt

from .chunk_reader import ChunkReader
from .windows import Dequantiser
from .zones import VALID, Zone, classify

Pair = tuple[int, int, int, int, int]
"""(window, first row, end row, first col, end col) of one window's overlap with a chunk, in zone pixels."""


def _pairs(
    r0: npt.NDArray[np.int64], c0: npt.NDArray[np.int64], size: int, ch: int, cw: int, h: int, w: int
) -> npt.NDArray[np.int64]:
    """(M, 7) int64 rows ``(window, chunk row, chunk col, a0, a1, b0, b1)``: each window's
    overlap [a0, a1) x [b0, b1) (zone pixels, inside the grid) with each chunk of a (ch, cw)
    chunk grid it touches."""
    k = np.arange(len(r0))
    rr0, rr1 = np.clip(r0, 0, h), np.clip(r0 + size, 0, h)
    cc0, cc1 = np.clip(c0, 0, w), np.clip(c0 + size, 0, w)
    live = (rr0 < rr1) & (cc0 < cc1)
    k, rr0, rr1, cc0, cc1 = k[live], rr0[live], rr1[live], cc0[live], cc1[live]
    first_r, first_c = rr0 // ch, cc0 // cw
    nr = (rr1 - 1) // ch - first_r + 1
    nc = (cc1 - 1) // cw - first_c + 1
    parts = []
    for dr in range(int(nr.max()) if len(nr) else 0):
        for dc in range(int(nc.max())):
            m = (dr < nr) & (dc < nc)
            cr, cc = first_r[m] + dr, first_c[m] + dc
            a0 = np.maximum(rr0[m], cr * ch)
            a1 = np.minimum(rr1[m], (cr + 1) * ch)
            b0 = np.maximum(cc0[m], cc * cw)
            b1 = np.minimum(cc1[m], (cc + 1) * cw)
            parts.append(np.stack([k[m], cr, cc, a0, a1, b0, b1], axis=1))
    if not parts:
        return np.zeros((0, 7), dtype=np.int64)
    return np.concatenate(parts).astype(np.int64)


def _by_chunk(pairs: npt.NDArray[np.int64]) -> dict[tuple[int, int], npt.NDArray[np.int64]]:
    """Pairs grouped by (chunk row, chunk col)."""
    if len(pairs) == 0:
        return {}
    order = np.lexsort((pairs[:, 2], pairs[:, 1]))
    sp = pairs[order]
    key = sp[:, 1] * (int(sp[:, 2].max()) + 1) + sp[:, 2]
    cuts = np.flatnonzero(np.diff(key)) + 1
    return {(int(g[0, 1]), int(g[0, 2])): g for g in np.split(sp, cuts)}


def read_windows(
    reader: ChunkReader,
    zone: Zone,
    t: int,
    r0: npt.NDArray[np.int64],
    c0: npt.NDArray[np.int64],
    size: int,
    out: npt.NDArray[np.float32],
    dest: npt.NDArray[np.intp],
) -> int:
    """Fill ``out[dest[k]]`` (size, size, B) with zone rows [r0[k], r0[k] + size) x cols
    [c0[k], c0[k] + size) of time index ``t``; returns the implausible-scale count."""
    h, w = zone.info.shape
    el, sl = zone.embeddings, zone.scales
    nb = zone.n_bands
    if not zone.band_axis_first:
        raise ValueError("read_windows needs the (time, band, y, x) layout")
    # scales of every window, NaN off the grid
    k_all = len(r0)
    scl = np.full((k_all, size, size), np.nan, dtype=np.float32)
    _, sh, sw = sl.inner_shape
    spairs = _by_chunk(_pairs(r0, c0, size, sh, sw, h, w))

    def on_scales(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        chunk = np.full((sh, sw), sl.fill_value, dtype=np.float32) if arr is None else arr[0]
        y0, x0 = c[1] * sh, c[2] * sw
        for k, _, _, a0, a1, b0, b1 in spairs[(c[1], c[2])].tolist():
            scl[k, a0 - r0[k] : a1 - r0[k], b0 - c0[k] : b1 - c0[k]] = chunk[
                a0 - y0 : a1 - y0, b0 - x0 : b1 - x0
            ]

    coords = np.array([(t, cr, cc) for cr, cc in spairs], dtype=np.int64).reshape(-1, 3)
    reader.read_chunks(sl, coords, on_scales)
    status, n_bad = classify(scl, zone.scale_nodata)
    seff = np.where(status == VALID, scl, np.float32(np.nan))
    # embedding chunks: only where a window has a usable pixel
    _, _, eh, ew = el.inner_shape
    epairs = _pairs(r0, c0, size, eh, ew, h, w)
    usable = np.isfinite(seff)
    need = np.zeros(len(epairs), dtype=bool)
    for i, (k, _, _, a0, a1, b0, b1) in enumerate(epairs.tolist()):
        need[i] = usable[k, a0 - r0[k] : a1 - r0[k], b0 - c0[k] : b1 - c0[k]].any()
    _fill_nan_outside(out, dest, r0, c0, size, h, w)
    for k, _, _, a0, a1, b0, b1 in epairs[~need].tolist():  # nothing usable there: NaN
        out[dest[k], a0 - r0[k] : a1 - r0[k], b0 - c0[k] : b1 - c0[k]] = np.nan
    groups = _by_chunk(epairs[need])
    fill = np.int8(el.fill_value)
    key = ("patch", el.inner_shape)

    def on_emb(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        buf, turn, vals = reader.scratch.take(
            key,
            lambda: (
                np.empty((1, nb, eh, ew), dtype=np.int8),
                Dequantiser((nb, eh, ew)),
                np.empty((eh, ew, nb), dtype=np.float32),
            ),
        )
        try:
            chunk = arr.reshape(nb, eh, ew) if arr is not None else buf[0]
            if arr is None:
                chunk[...] = fill
            y0, x0 = c[2] * eh, c[3] * ew
            group = groups[(c[2], c[3])]
            if len(group) == 1:  # one window: dequantised straight into it
                k, _, _, a0, a1, b0, b1 = group[0].tolist()
                rows, cols = slice(a0 - r0[k], a1 - r0[k]), slice(b0 - c0[k], b1 - c0[k])
                turn(chunk, a0 - y0, a1 - y0, b0 - x0, seff[k, rows, cols], out[dest[k], rows, cols])
                return
            # several windows: the box they cover dequantised once, then copied into each
            ya, yb = int(group[:, 3].min()), int(group[:, 4].max())
            xa, xb = int(group[:, 5].min()), int(group[:, 6].max())
            sbox = np.full((yb - ya, xb - xa), np.nan, dtype=np.float32)
            parts = []
            for k, _, _, a0, a1, b0, b1 in group.tolist():
                rows, cols = slice(a0 - r0[k], a1 - r0[k]), slice(b0 - c0[k], b1 - c0[k])
                box = (slice(a0 - ya, a1 - ya), slice(b0 - xa, b1 - xa))
                sbox[box] = seff[k, rows, cols]  # one zone pixel, one scale: windows agree
                parts.append((dest[k], rows, cols, box))
            vbox = vals[: yb - ya, : xb - xa]
            turn(chunk, ya - y0, yb - y0, xa - x0, sbox, vbox)
            for d, rows, cols, box in parts:
                out[d, rows, cols] = vbox[box]
        finally:
            reader.scratch.give(key, (buf, turn, vals))

    ecoords = np.array([(t, 0, cr, cc) for cr, cc in groups], dtype=np.int64).reshape(-1, 4)
    reader.read_chunks(el, ecoords, on_emb)
    return n_bad


def _fill_nan_outside(
    out: npt.NDArray[np.float32],
    dest: npt.NDArray[np.intp],
    r0: npt.NDArray[np.int64],
    c0: npt.NDArray[np.int64],
    size: int,
    h: int,
    w: int,
) -> None:
    """NaN in the parts of each window that lie off the zone grid."""
    off = np.flatnonzero((r0 < 0) | (c0 < 0) | (r0 + size > h) | (c0 + size > w))
    for k in off.tolist():
        a0, a1 = max(0, -int(r0[k])), max(0, min(size, h - int(r0[k])))
        b0, b1 = max(0, -int(c0[k])), max(0, min(size, w - int(c0[k])))
        if a0 >= a1 or b0 >= b1:
            out[dest[k]] = np.nan
            continue
        o = out[dest[k]]
        o[:a0] = np.nan
        o[a1:] = np.nan
        o[a0:a1, :b0] = np.nan
        o[a0:a1, b1:] = np.nan


def group_windows(zones: npt.NDArray[np.int64]) -> dict[int, npt.NDArray[np.intp]]:
    """Indices of the windows of each zone."""
    out: dict[int, list[int]] = defaultdict(list)
    for i, z in enumerate(zones.tolist()):
        out[int(z)].append(i)
    return {z: np.asarray(v, dtype=np.intp) for z, v in out.items()}
