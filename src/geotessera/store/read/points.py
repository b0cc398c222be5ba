"""Scattered pixels of one zone, reading each inner chunk once.

:func:`gather_into` reads pixels (row, col) of a zone grid: ``scales`` first
(:func:`scales_at`), then ``embeddings`` chunks only where some pixel has a usable
scale, so water and empty areas cost one small request. Values are
``float32(q) * scale``; statuses are those of :mod:`.zones`. Which zone and pixel a
lon/lat point reads is :mod:`.sampling`; windows (regions) are read by :mod:`.windows`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .chunk_groups import ChunkGroup
from .chunk_reader import ChunkReader
from .zones import OUTSIDE, VALID, Zone, classify, unwritten

ZoneLookup = Callable[[int], "Zone | None"]
"""``zone(z)``: the readable zone ``z`` of a store (None when it has none)."""


def _group(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.intp]]]:
    """Unique keys and, per key, the indices having it."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    uniq, starts = np.unique(sk, return_index=True)
    return uniq, np.split(order, starts[1:])


def _members(
    where: dict[tuple[int, ...], npt.NDArray[np.intp]], chunks: list[tuple[int, ...]]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The point indices of ``chunks`` (concatenated) and, for each, its chunk's position in the list."""
    parts = [where[c] for c in chunks]
    if len(parts) == 1:
        return parts[0], np.zeros(len(parts[0]), dtype=np.intp)
    return np.concatenate(parts), np.repeat(np.arange(len(parts)), [len(p) for p in parts])


def scales_at(
    reader: ChunkReader, zone: Zone, t: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """Scales (n,) float32 of zone pixels (rows, cols) inside the grid: each scale chunk read once;
    an absent chunk gives the fill value."""
    n = len(rows)
    s = np.empty(n, dtype=np.float32)
    if n == 0:
        return s
    si = zone.scales.inner_shape  # (1, ih, iw)
    ih, iw = si[1], si[2]
    ncc = -(-zone.scales.shape[2] // iw)
    ids, groups = _group((rows // ih) * ncc + cols // iw)
    where: dict[tuple[int, ...], npt.NDArray[np.intp]] = {
        (t, int(k // ncc), int(k % ncc)): g for k, g in zip(ids.tolist(), groups, strict=True)
    }

    def on_scales(cs: list[tuple[int, ...]], group: ChunkGroup | None) -> None:
        idx, k = _members(where, cs)
        if group is None:
            s[idx] = zone.scales.fill_value
        else:  # chunk (1, ih, iw)
            s[idx] = group.take(k, (rows[idx] % ih) * iw + cols[idx] % iw)

    coords = np.array(list(where), dtype=np.int64).reshape(-1, 3)
    reader.read_chunk_groups(zone.scales, coords, on_scales)
    return s


def gather_into(
    reader: ChunkReader,
    zone: Zone,
    t: int,
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    out: npt.NDArray[np.float32],
    dest: npt.NDArray[np.intp],
    status: npt.NDArray[np.uint8],
    holes: npt.NDArray[np.bool_] | None = None,
    quantized: tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]] | None = None,
) -> int:
    """Read zone pixels (rows, cols) into rows ``dest`` of ``out`` (N, B) and ``status`` (N,).

    A pixel is taken only where its status is lower (better) than ``status[dest]``; ``out``
    rows must be NaN where the status is not :data:`VALID`. Values are written straight into
    ``out`` as chunks are decoded (no (n, B) temporary). ``holes`` (N,), when given, is set
    where the status taken comes from a never-written pixel (:func:`~.zones.unwritten`).
    ``quantized`` ``(q (N, B) int8, scales (N,) float32)``: write the stored int8 values and
    scales of valid pixels there instead of values into ``out`` (whose shape still says B).
    Returns the implausible-scale count.
    """
    n = len(rows)
    if n == 0:
        return 0
    nb = zone.n_bands
    if out.shape[1] != nb:
        raise ValueError(f"output has {out.shape[1]} bands, the zone {nb}")
    s = scales_at(reader, zone, t, rows, cols)
    st, n_bad = classify(s, zone.scale_nodata)
    better = np.flatnonzero(st < status[dest])
    status[dest[better]] = st[better]  # rows taken as water / nodata stay NaN (they were not VALID)
    if holes is not None:
        holes[dest[better]] = unwritten(s[better], zone.scale_nodata)
    good = better[st[better] == VALID]
    if len(good) == 0:
        return n_bad
    if quantized is not None:
        quantized[1][dest[good]] = s[good]
    el = zone.embeddings
    eh, ew = (el.inner_shape[2], el.inner_shape[3]) if zone.band_axis_first else el.inner_shape[1:3]
    ncc_e = -(-(el.shape[3] if zone.band_axis_first else el.shape[2]) // ew)
    r, c = rows[good], cols[good]
    ids, groups = _group((r // eh) * ncc_e + c // ew)
    ewhere: dict[tuple[int, ...], npt.NDArray[np.intp]] = {}
    for k, g in zip(ids.tolist(), groups, strict=True):
        key = (t, 0, k // ncc_e, k % ncc_e) if zone.band_axis_first else (t, k // ncc_e, k % ncc_e, 0)
        ewhere[key] = g

    bands = np.arange(nb)

    def on_emb(cs: list[tuple[int, ...]], group: ChunkGroup | None) -> None:
        g, k = _members(ewhere, cs)  # chunks hold disjoint pixels: concurrent calls write disjoint rows
        idx = good[g]
        if group is None:  # absent chunk: quantised fill value 0
            if quantized is not None:
                quantized[0][dest[idx]] = 0
            else:
                out[dest[idx]] = 0.0
            return
        pixel = ((r[g] % eh) * ew + c[g] % ew)[:, None]
        if zone.band_axis_first:  # chunk (1, B, eh, ew)
            flat = bands * (eh * ew) + pixel
        else:  # chunk (1, eh, ew, B)
            flat = pixel * nb + bands
        if quantized is not None:
            quantized[0][dest[idx]] = group.take(k[:, None], flat)
        else:
            out[dest[idx]] = group.take(k[:, None], flat) * s[idx, None]

    reader.read_chunk_groups(el, np.array(list(ewhere), dtype=np.int64).reshape(-1, 4), on_emb)
    return n_bad


def gather(
    reader: ChunkReader, zone: Zone, t: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], int]:
    """Values (n, 128) float32, status (n,) and implausible-scale count at zone pixels (rows, cols)."""
    n = len(rows)
    out = np.full((n, zone.n_bands), np.nan, dtype=np.float32)
    status = np.full(n, OUTSIDE, dtype=np.uint8)
    n_bad = gather_into(reader, zone, t, rows, cols, out, np.arange(n), status)
    return out, status, n_bad
