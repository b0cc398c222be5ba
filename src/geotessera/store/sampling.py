"""Zone-level reads: gather scattered pixels, or copy a window, reading each inner chunk once.

Both read ``scales`` first and fetch ``embeddings`` chunks only where some
pixel has a usable scale, so water and empty areas cost one small request.
Values are ``float32(q) * scale``; pixel status codes: :data:`VALID`,
:data:`WATER`, :data:`NODATA` (never embedded) and :data:`OUTSIDE` (set by callers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .chunks import ArrayLayout
from .conventions import NODATA_INF, ZoneInfo
from .fetch import ChunkReader

VALID, WATER, NODATA, OUTSIDE = 0, 1, 2, 3
STATUS_NAMES = np.array(["valid", "water", "nodata", "outside"])


@dataclass
class Zone:
    """One readable zone: its grid, array layouts and years (time index order)."""

    info: ZoneInfo
    embeddings: ArrayLayout
    scales: ArrayLayout
    years: list[int]
    scale_nodata: str  # "+inf" or "NaN"

    @property
    def band_axis_first(self) -> bool:
        """True for the (time, band, y, x) layout of formats.md; False for (time, y, x, band)."""
        dims = self.embeddings.dimension_names
        return dims is None or list(dims) == ["time", "band", "y", "x"]


def classify(s: npt.NDArray[np.float32], nodata: str) -> tuple[npt.NDArray[np.uint8], int]:
    """Status codes of scales under the store's convention, and the count of implausible scales.

    ``+inf`` convention: +inf (fill) -> NODATA, NaN -> WATER. ``NaN`` convention: NaN -> NODATA.
    A finite scale outside [0, 1) is implausible -> NODATA (reported by the caller).
    """
    st = np.full(s.shape, NODATA, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(s)
        ok = finite & (s >= 0) & (s < 1)
    st[ok] = VALID
    if nodata == NODATA_INF:
        st[np.isnan(s)] = WATER
    return st, int((finite & ~ok).sum())


def _group(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.intp]]]:
    """Unique keys and, per key, the indices having it."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    uniq, starts = np.unique(sk, return_index=True)
    return uniq, np.split(order, starts[1:])


def gather(
    reader: ChunkReader, zone: Zone, t: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], int]:
    """Values (n, 128) float32, status (n,) and implausible-scale count at zone pixels (rows, cols)."""
    n = len(rows)
    nb = zone.embeddings.shape[1] if zone.band_axis_first else zone.embeddings.shape[3]
    out = np.full((n, nb), np.nan, dtype=np.float32)
    if n == 0:
        return out, np.zeros(0, np.uint8), 0
    si = zone.scales.inner_shape  # (1, ih, iw)
    ih, iw = si[1], si[2]
    ncc = -(-zone.scales.shape[2] // iw)
    ids, groups = _group((rows // ih) * ncc + cols // iw)
    s = np.empty(n, dtype=np.float32)
    where: dict[tuple[int, ...], npt.NDArray[np.intp]] = {
        (t, int(k // ncc), int(k % ncc)): g for k, g in zip(ids.tolist(), groups, strict=True)
    }

    def on_scale(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        g = where[c]
        s[g] = zone.scales.fill_value if arr is None else arr[0, rows[g] % ih, cols[g] % iw]

    coords = np.array(list(where), dtype=np.int64).reshape(-1, 3)
    reader.read_chunks(zone.scales, coords, on_scale)
    status, n_bad = classify(s, zone.scale_nodata)
    good = np.flatnonzero(status == VALID)
    if len(good) == 0:
        return out, status, n_bad
    el = zone.embeddings
    eh, ew = (el.inner_shape[2], el.inner_shape[3]) if zone.band_axis_first else el.inner_shape[1:3]
    ncc_e = -(-(el.shape[3] if zone.band_axis_first else el.shape[2]) // ew)
    r, c = rows[good], cols[good]
    ids, groups = _group((r // eh) * ncc_e + c // ew)
    ewhere: dict[tuple[int, ...], npt.NDArray[np.intp]] = {}
    for k, g in zip(ids.tolist(), groups, strict=True):
        key = (t, 0, k // ncc_e, k % ncc_e) if zone.band_axis_first else (t, k // ncc_e, k % ncc_e, 0)
        ewhere[key] = g

    def on_emb(ck: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        g = ewhere[ck]
        idx = good[g]
        if arr is None:
            q = np.zeros((len(g), nb), dtype=np.float32)
        elif zone.band_axis_first:
            q = arr[0][:, r[g] % eh, c[g] % ew].T
        else:
            q = arr[0][r[g] % eh, c[g] % ew, :]
        out[idx] = q.astype(np.float32) * s[idx, None]

    reader.read_chunks(el, np.array(list(ewhere), dtype=np.int64).reshape(-1, 4), on_emb)
    return out, status, n_bad


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
    """Copy zone window rows [r0, r1) x cols [c0, c1) into ``out`` (h, w, B) where ``have`` is False.

    ``out`` must be NaN where ``have`` is False. The window may extend beyond the grid
    (those pixels are left alone). ``have`` (h, w) is set where the zone has data (valid
    or water); ``allow`` (h, w), when given, limits the pixels this zone may fill.
    Returns the implausible-scale count.
    """
    h, w = r1 - r0, c1 - c0
    H, W = zone.info.shape
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, H), max(c0, 0), min(c1, W)
    if rr0 >= rr1 or cc0 >= cc1:
        return 0
    if not zone.band_axis_first:  # unusual layout: gather pixel by pixel
        rr, cc = np.meshgrid(np.arange(rr0, rr1), np.arange(cc0, cc1), indexing="ij")
        vals, st, bad = gather(reader, zone, t, rr.ravel(), cc.ravel())
        sub = out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
        m = (st != NODATA).reshape(rr.shape) & ~have[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
        if allow is not None:
            m &= allow[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
        sub[m] = vals.reshape(*rr.shape, -1)[m]
        have[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] |= m
        return bad
    _, ih, iw = zone.scales.inner_shape
    s = np.full((h, w), np.inf, dtype=np.float32)
    crs = np.arange(rr0 // ih, (rr1 - 1) // ih + 1)
    ccs = np.arange(cc0 // iw, (cc1 - 1) // iw + 1)
    grid = np.stack(np.meshgrid(np.full(1, t), crs, ccs, indexing="ij"), -1).reshape(-1, 3).astype(np.int64)

    def span(ci: int, size: int, lo: int, hi: int, origin: int) -> tuple[int, int, int, int]:
        """(chunk-local start, end, window-local start, end) of chunk ``ci`` clipped to [lo, hi)."""
        a, b = max(ci * size, lo), min((ci + 1) * size, hi)
        return a - ci * size, b - ci * size, a - origin, b - origin

    def on_scale(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        a0, a1, o0, o1 = span(c[1], ih, rr0, rr1, r0)
        b0, b1, p0, p1 = span(c[2], iw, cc0, cc1, c0)
        s[o0:o1, p0:p1] = zone.scales.fill_value if arr is None else arr[0, a0:a1, b0:b1]

    reader.read_chunks(zone.scales, grid, on_scale)
    status, n_bad = classify(s, zone.scale_nodata)
    blocked = have if allow is None else (have | ~allow)
    status[blocked] = NODATA  # already filled, or left to the owning zone
    have |= status != NODATA  # pixels taken stay NaN (out starts NaN) unless valid below
    usable = status == VALID
    _, _, eh, ew = zone.embeddings.inner_shape
    need = []
    for cr in crs.tolist():
        for ci in ccs.tolist():
            _, _, o0, o1 = span(cr, eh, rr0, rr1, r0)
            _, _, p0, p1 = span(ci, ew, cc0, cc1, c0)
            if usable[o0:o1, p0:p1].any():
                need.append((t, 0, cr, ci))

    def on_emb(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        a0, a1, o0, o1 = span(c[2], eh, rr0, rr1, r0)
        b0, b1, p0, p1 = span(c[3], ew, cc0, cc1, c0)
        u = usable[o0:o1, p0:p1]
        dst = out[o0:o1, p0:p1]
        if arr is None:
            dst[u] = 0.0
            return
        sc = s[o0:o1, p0:p1]
        if u.all():  # the common case: dequantise straight into the output
            q = np.ascontiguousarray(arr[0, :, a0:a1, b0:b1].transpose(1, 2, 0))  # int8 transpose in cache
            np.multiply(q, sc[..., None], out=dst, dtype=np.float32)
            return
        with np.errstate(invalid="ignore"):
            vals = arr[0, :, a0:a1, b0:b1].transpose(1, 2, 0) * sc[..., None]
        dst[u] = vals[u]

    reader.read_chunks(zone.embeddings, np.array(need, dtype=np.int64).reshape(-1, 4), on_emb)
    return n_bad
