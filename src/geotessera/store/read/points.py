"""Scattered pixels (points): embeddings at lon/lat points, reading each inner chunk once.

:func:`sample` routes points to the zone of their tile (and, near a seam, to the neighbouring
zone when their own has no data there), projects them onto the zone grid and reads the
pixels with :func:`gather_into`: ``scales`` first, then ``embeddings`` chunks only where some
pixel has a usable scale, so water and empty areas cost one small request. Values are
``float32(q) * scale``; statuses are those of :mod:`.zones`. Windows (regions) are read by
:mod:`.windows`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

from ...grid import points_to_keys, utm_zones
from .chunk_groups import ChunkGroup
from .chunk_reader import ChunkReader
from .zones import NODATA, OUTSIDE, VALID, Zone, classify

SEAM_DEG = 0.1
"""Points this close (degrees) to their zone's edge may be served by the neighbouring zone."""
ZoneLookup = Callable[[int], "Zone | None"]


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


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def sample(
    zone: ZoneLookup,
    reader: ChunkReader,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    years: Sequence[int],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], int]:
    """Values (Y, N, 128) float32 (NaN where not valid), statuses (Y, N) uint8 and the count of
    implausible scales at points ``lon``, ``lat`` (N,) degrees, for each of ``years``.

    ``zone(z)`` is the readable zone ``z`` (None when the store has none). A point within one
    pixel outside a zone grid snaps to its edge; a point within :data:`SEAM_DEG` of a seam whose
    own zone has no data there is served by the neighbouring zone.
    """
    lon_i, _ = points_to_keys(lon, lat)
    own = utm_zones(lon_i / 100)
    n = len(lon)
    out = np.full((len(years), n, 128), np.nan, dtype=np.float32)
    status = np.full((len(years), n), OUTSIDE, dtype=np.uint8)
    n_bad = 0
    for yi, y in enumerate(years):
        n_bad += _sample_zones(zone, reader, lon, lat, own, np.arange(n), y, out[yi], status[yi])
        seam = np.flatnonzero(status[yi] >= NODATA)
        if len(seam):
            off = lon[seam] - ((own[seam] - 1) * 6 - 180)  # degrees east of the own zone's west edge
            for delta, near in ((-1, off < SEAM_DEG), (1, off > 6 - SEAM_DEG)):
                sel = seam[near]
                if len(sel):
                    n_bad += _sample_zones(
                        zone,
                        reader,
                        lon,
                        lat,
                        own[sel] + delta,
                        sel,
                        y,
                        out[yi],
                        status[yi],
                        only_better=True,
                    )
    return out, status, n_bad


def _sample_zones(
    zone: ZoneLookup,
    reader: ChunkReader,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    zone_of: npt.NDArray[np.int64],
    idx: npt.NDArray[np.int64],
    year: int,
    out: npt.NDArray[np.float32],
    status: npt.NDArray[np.uint8],
    only_better: bool = False,
) -> int:
    """Sample points ``idx`` (``zone_of`` aligned with it) into out/status; the implausible count."""
    n_bad = 0
    for z in np.unique(zone_of).tolist():
        if not 1 <= z <= 60:
            continue
        zz = zone(int(z))
        sel = idx[zone_of == z]
        if zz is None or year not in zz.years or len(sel) == 0:
            if zz is not None and not only_better:
                status[sel] = np.minimum(status[sel], NODATA)
            continue
        info = zz.info
        x, y = _transformer("EPSG:4326", f"EPSG:{info.epsg}").transform(lon[sel], lat[sel])
        fc = (np.asarray(x) - info.x0) / info.res
        fr = (info.y0 - np.asarray(y)) / info.res
        col, row = np.floor(fc).astype(np.int64), np.floor(fr).astype(np.int64)
        h, w = info.shape
        inside = (row >= -1) & (row <= h) & (col >= -1) & (col <= w)
        row, col = np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)
        sel, row, col = sel[inside], row[inside], col[inside]
        n_bad += gather_into(reader, zz, zz.years.index(year), row, col, out, sel, status)
    return n_bad
