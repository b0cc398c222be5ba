"""Zone-level reads of scattered pixels (points), reading each inner chunk once.

Reads ``scales`` first and fetches ``embeddings`` chunks only where some
pixel has a usable scale, so water and empty areas cost one small request.
Windows (regions) are read by :mod:`.window`.
Values are ``float32(q) * scale``; pixel status codes: :data:`VALID`,
:data:`WATER`, :data:`NODATA` (never embedded) and :data:`OUTSIDE` (set by callers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .chunks import ArrayLayout
from .conventions import NODATA_INF, ZoneInfo
from .fetch import ChunkReader
from .picks import ChunkGroup

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


def _members(
    where: dict[tuple[int, ...], npt.NDArray[np.intp]], chunks: list[tuple[int, ...]]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The point indices of ``chunks`` (concatenated) and, for each, its chunk's position in the list."""
    parts = [where[c] for c in chunks]
    if len(parts) == 1:
        return parts[0], np.zeros(len(parts[0]), dtype=np.intp)
    return np.concatenate(parts), np.repeat(np.arange(len(parts)), [len(p) for p in parts])


def gather_into(
    reader: ChunkReader,
    zone: Zone,
    t: int,
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    out: npt.NDArray[np.float32],
    dest: npt.NDArray[np.intp],
    status: npt.NDArray[np.uint8],
) -> int:
    """Read zone pixels (rows, cols) into rows ``dest`` of ``out`` (N, 128) and ``status`` (N,).

    A pixel is taken only where its status is lower (better) than ``status[dest]``; ``out``
    rows must be NaN where the status is not :data:`VALID`. Values are written straight into
    ``out`` as chunks are decoded (no (n, 128) temporary). Returns the implausible-scale count.
    """
    n = len(rows)
    if n == 0:
        return 0
    nb = zone.embeddings.shape[1] if zone.band_axis_first else zone.embeddings.shape[3]
    if out.shape[1] != nb:
        raise ValueError(f"output has {out.shape[1]} bands, the zone {nb}")
    si = zone.scales.inner_shape  # (1, ih, iw)
    ih, iw = si[1], si[2]
    ncc = -(-zone.scales.shape[2] // iw)
    ids, groups = _group((rows // ih) * ncc + cols // iw)
    s = np.empty(n, dtype=np.float32)
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
    st, n_bad = classify(s, zone.scale_nodata)
    better = np.flatnonzero(st < status[dest])
    status[dest[better]] = st[better]  # rows taken as water / nodata stay NaN (they were not VALID)
    good = better[st[better] == VALID]
    if len(good) == 0:
        return n_bad
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
        if group is None:
            out[dest[idx]] = 0.0  # absent chunk: quantised fill value 0
            return
        pixel = ((r[g] % eh) * ew + c[g] % ew)[:, None]
        if zone.band_axis_first:  # chunk (1, B, eh, ew)
            flat = bands * (eh * ew) + pixel
        else:  # chunk (1, eh, ew, B)
            flat = pixel * nb + bands
        out[dest[idx]] = group.take(k[:, None], flat) * s[idx, None]

    reader.read_chunk_groups(el, np.array(list(ewhere), dtype=np.int64).reshape(-1, 4), on_emb)
    return n_bad


def gather(
    reader: ChunkReader, zone: Zone, t: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], int]:
    """Values (n, 128) float32, status (n,) and implausible-scale count at zone pixels (rows, cols)."""
    n = len(rows)
    nb = zone.embeddings.shape[1] if zone.band_axis_first else zone.embeddings.shape[3]
    out = np.full((n, nb), np.nan, dtype=np.float32)
    status = np.full(n, OUTSIDE, dtype=np.uint8)
    n_bad = gather_into(reader, zone, t, rows, cols, out, np.arange(n), status)
    return out, status, n_bad
