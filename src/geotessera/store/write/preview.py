"""Rendering the preview pyramid (``global_rgb``, :mod:`..pyramid`) of one year into a store.

1. **Colours**: a PCA (covariance + ``eigh``) fitted on a seeded sample of up to 65,536 valid
   pixels drawn across the store's written chunks of the year; the first three components,
   stretched linearly from their 2nd to 98th percentiles on the sample, are R, G and B.
2. **Level 0**: each 512 x 512 chunk of the global EPSG:4326 grid that holds data is mapped
   back to a window of each UTM zone with data there (16 pixels of padding), coloured there,
   reprojected with *average* resampling (alpha-weighted, so edges blend instead of
   darkening), each pixel taken from the zone owning its longitude (others fill gaps), and
   composited into the chunk (read-modify-write: only pixels with data are overwritten).
3. **Levels 1..9**: 2 x 2 alpha-weighted means of the level below, chunk by chunk.

The attributes (layout, year, PCA) are written last, in one update, so a reader never sees
a partial layout; a pyramid of another year is removed first.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from ..._optional import require
from ...progress import ItemDone, PlanReady, ProgressSink, emit
from ..layout import EMPTY
from ..pyramid import CHUNK, GROUP, LEVEL0_DEG, LEVELS, group_attributes, level_shape

log = logging.getLogger(__name__)

SAMPLE_PIXELS = 65_536
PAD_PX = 16
STRIP_ROWS = 64


@dataclass
class PreviewReport:
    """What :func:`build_preview` wrote."""

    year: int
    levels: int
    chunks_level0: int = 0
    chunks_written: int = 0
    sample_pixels: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Colours:
    """The mapping from embeddings to RGB: ``rgb = clip((x - mean) @ components.T - lo) / (hi - lo))``."""

    mean: npt.NDArray[np.float32]  # (B,)
    components: npt.NDArray[np.float32]  # (3, B)
    lo: npt.NDArray[np.float32]  # (3,)
    hi: npt.NDArray[np.float32]  # (3,)

    def rgb(self, vals: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(..., 3) float32 in [0, 255] of (..., B) values (NaN rows give NaN)."""
        p = (vals.reshape(-1, vals.shape[-1]) - self.mean) @ self.components.T
        p = np.clip((p - self.lo) / (self.hi - self.lo), 0.0, 1.0) * 255.0
        return p.reshape(*vals.shape[:-1], 3).astype(np.float32)

    def as_json(self) -> dict[str, Any]:
        """The mapping as plain lists (recorded in ``tessera:preview``)."""
        return {
            "pca_mean": [round(float(v), 7) for v in self.mean],
            "pca_components": [[round(float(v), 7) for v in c] for c in self.components],
            "stretch": [[float(a), float(b)] for a, b in zip(self.lo, self.hi, strict=True)],
        }


def fit_colours(x: npt.NDArray[np.float32]) -> Colours:
    """PCA of a sample (n, B) (n >= 2) and the 2-98 % stretch of its first three components."""
    xd = x.astype(np.float64)
    mean = xd.mean(axis=0)
    c = xd - mean
    cov = c.T @ c / max(len(xd) - 1, 1)
    _, vecs = np.linalg.eigh(cov)
    comps = vecs[:, ::-1][:, :3].T.copy()  # (3, B), largest variance first
    for row in comps:  # deterministic signs: the largest loading positive
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    p = c @ comps.T
    lo, hi = np.percentile(p, 2, axis=0), np.percentile(p, 98, axis=0)
    hi = np.where(hi > lo, hi, lo + 1e-6)
    return Colours(
        mean.astype(np.float32), comps.astype(np.float32), lo.astype(np.float32), hi.astype(np.float32)
    )


def _present_chunks(gz: Any, store: Path, year: int) -> dict[int, npt.NDArray[np.int64]]:
    """{zone: (K, 2) inner scale chunks (row, col) written for ``year``} from the shard files."""
    out: dict[int, npt.NDArray[np.int64]] = {}
    for z in gz.zones:
        zz = gz.zone(z)
        if zz is None or year not in zz.years:
            continue
        t = zz.years.index(year)
        lay = zz.scales
        found = []
        per_r, per_c = lay.inner_per_shard[1], lay.inner_per_shard[2]
        for sr in range(lay.grid_shape[1]):
            for sc in range(lay.grid_shape[2]):
                if not (store / lay.shard_key((t, sr, sc))).is_file():
                    continue
                idx = gz.reader.shard_index(lay, (t, sr, sc))
                if idx is None:
                    continue
                lin = np.flatnonzero(idx[:, 0] != EMPTY)
                found.append(np.c_[sr * per_r + lin // per_c, sc * per_c + lin % per_c])
        if found:
            out[z] = np.concatenate(found).astype(np.int64)
    return out


def _sample(
    gz: Any, present: dict[int, npt.NDArray[np.int64]], year: int, n: int, seed: int
) -> npt.NDArray[np.float32]:
    """Up to ``n`` valid embeddings drawn at random pixels of the written chunks (seeded)."""
    from ..read.points import gather

    rng = np.random.default_rng(seed)
    total = sum(len(v) for v in present.values())
    parts = []
    for z, chunks in sorted(present.items()):
        zz = gz.zone(z)
        _, ih, iw = zz.scales.inner_shape
        k = max(1, round(2 * n * len(chunks) / total))  # twice as many: some are water
        pick = chunks[rng.integers(0, len(chunks), k)]
        rows = pick[:, 0] * ih + rng.integers(0, ih, k)
        cols = pick[:, 1] * iw + rng.integers(0, iw, k)
        h, w = zz.info.shape
        ok = (rows < h) & (cols < w)
        vals, st, _ = gather(gz.reader, zz, zz.years.index(year), rows[ok], cols[ok])
        parts.append(vals[st == 0])
    x = np.concatenate(parts) if parts else np.zeros((0, 128), np.float32)
    return x[rng.permutation(len(x))[:n]]


def _level0_chunks(gz: Any, present: dict[int, npt.NDArray[np.int64]]) -> dict[tuple[int, int], set[int]]:
    """{(chunk row, chunk col) of level 0: the zones with data there}."""
    from pyproj import Transformer

    out: dict[tuple[int, int], set[int]] = defaultdict(set)
    span = CHUNK * LEVEL0_DEG
    for z, chunks in present.items():
        info = gz.zone(z).info
        _, ih, iw = gz.zone(z).scales.inner_shape
        tr = Transformer.from_crs(info.epsg, 4326, always_xy=True)
        lons, lats = [], []
        for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
            x = info.x0 + (chunks[:, 1] + dc) * iw * info.res
            y = info.y0 - (chunks[:, 0] + dr) * ih * info.res
            lon, lat = tr.transform(x, y)
            lons.append(lon)
            lats.append(lat)
        lo_lon, hi_lon = np.min(lons, axis=0), np.max(lons, axis=0)
        lo_lat, hi_lat = np.min(lats, axis=0), np.max(lats, axis=0)
        c0 = np.floor((lo_lon + 180) / span).astype(np.int64)
        c1 = np.floor((hi_lon + 180) / span).astype(np.int64)
        r0 = np.floor((90 - hi_lat) / span).astype(np.int64)
        r1 = np.floor((90 - lo_lat) / span).astype(np.int64)
        for a0, a1, b0, b1 in set(zip(r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist(), strict=True)):
            for r in range(a0, a1 + 1):
                for c in range(b0, b1 + 1):
                    out[(r, c)].add(z)
    return out


def _zone_rgba(
    gz: Any, zone: int, year: int, colours: Colours, dst_transform: Affine
) -> npt.NDArray[np.float32] | None:
    """(4, 512, 512) float32 premultiplied RGB and alpha (0..1) of one zone on a level-0 chunk."""
    from pyproj import Transformer
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from ..read.chunk_reader import usable_cores
    from ..read.windows import read_window

    zz = gz.zone(zone)
    info = zz.info
    t = np.linspace(0, CHUNK, 33)
    ex = np.r_[t, t, np.zeros_like(t), np.full_like(t, CHUNK)]
    ey = np.r_[np.zeros_like(t), np.full_like(t, CHUNK), t, t]
    lon, lat = dst_transform @ (ex, ey)
    x, y = Transformer.from_crs(4326, info.epsg, always_xy=True).transform(lon, lat)
    c0 = max(0, math.floor((float(np.min(x)) - info.x0) / info.res) - PAD_PX)
    c1 = min(info.shape[1], math.ceil((float(np.max(x)) - info.x0) / info.res) + PAD_PX)
    r0 = max(0, math.floor((info.y0 - float(np.max(y))) / info.res) - PAD_PX)
    r1 = min(info.shape[0], math.ceil((info.y0 - float(np.min(y))) / info.res) + PAD_PX)
    if r0 >= r1 or c0 >= c1:
        return None
    src = np.zeros((4, r1 - r0, c1 - c0), dtype=np.float32)
    ti = zz.years.index(year)
    buf = np.empty((STRIP_ROWS, c1 - c0, zz.n_bands), dtype=np.float32)
    for a in range(r0, r1, STRIP_ROWS):
        b = min(a + STRIP_ROWS, r1)
        vals = buf[: b - a]
        read_window(gz.reader, zz, ti, a, b, c0, c1, vals, np.zeros((b - a, c1 - c0), dtype=bool))
        alpha = np.isfinite(vals[..., 0])
        rgb = colours.rgb(vals)
        rgb[~alpha] = 0.0
        src[:3, a - r0 : b - r0] = rgb.transpose(2, 0, 1)
        src[3, a - r0 : b - r0] = alpha
    if not src[3].any():
        return None
    dst = np.zeros((4, CHUNK, CHUNK), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio notes the absent nodata value
        reproject(
            src * np.r_[src[3:4], src[3:4], src[3:4], np.ones_like(src[3:4])],  # premultiplied
            dst,
            src_transform=info.transform * Affine.translation(c0, r0),
            src_crs=f"EPSG:{info.epsg}",
            dst_transform=dst_transform,
            dst_crs="EPSG:4326",
            resampling=Resampling.average,
            num_threads=usable_cores(),
        )
    return dst


def _render_chunk(
    gz: Any, key: tuple[int, int], zones: set[int], year: int, colours: Colours, arr: Any
) -> bool:
    """Render level-0 chunk ``key`` into ``arr``; False when it holds no data after all."""
    from ...grid import utm_zones

    cy, cx = key
    span = CHUNK * LEVEL0_DEG
    lon0, lat1 = -180.0 + cx * span, 90.0 - cy * span
    dst_t = Affine(LEVEL0_DEG, 0.0, lon0, 0.0, -LEVEL0_DEG, lat1)
    per_zone = {z: r for z in sorted(zones) if (r := _zone_rgba(gz, z, year, colours, dst_t)) is not None}
    if not per_zone:
        return False
    lons = lon0 + (np.arange(CHUNK) + 0.5) * LEVEL0_DEG
    owner = np.broadcast_to(utm_zones(np.floor(lons * 10) / 10 + 0.05)[None, :], (CHUNK, CHUNK))
    rgba = np.zeros((CHUNK, CHUNK, 4), dtype=np.float32)
    filled = np.zeros((CHUNK, CHUNK), dtype=bool)
    for owners_only in (True, False):
        for z, d in per_zone.items():
            ok = d[3] > 1e-3
            take = ok & ~filled
            if owners_only:
                take &= owner == z
            if not take.any():
                continue
            a = np.where(ok, d[3], 1.0)
            vals = np.concatenate([d[:3] / a, d[3:4] * 255.0]).transpose(1, 2, 0)
            np.copyto(rgba, vals, where=take[..., None])
            filled |= take
    if not filled.any():
        return False
    h, w = arr.shape[:2]
    r0, c0 = cy * CHUNK, cx * CHUNK
    r1, c1 = min(r0 + CHUNK, h), min(c0 + CHUNK, w)
    old = np.asarray(arr[r0:r1, c0:c1, :])
    new = np.clip(np.rint(rgba[: r1 - r0, : c1 - c0]), 0, 255).astype(np.uint8)
    keep = filled[: r1 - r0, : c1 - c0]
    old[keep] = new[keep]
    arr[r0:r1, c0:c1, :] = old
    return True


def _downsample(src: Any, dst: Any, key: tuple[int, int]) -> bool:
    """Chunk ``key`` of ``dst`` as the 2 x 2 alpha-weighted mean of ``src``; False if empty."""
    cy, cx = key
    r0, c0 = 2 * cy * CHUNK, 2 * cx * CHUNK
    block = np.asarray(src[r0 : r0 + 2 * CHUNK, c0 : c0 + 2 * CHUNK, :]).astype(np.float32)
    if not block[..., 3].any():
        return False
    h, w = block.shape[:2]
    if h % 2 or w % 2:
        pad = np.zeros((h + h % 2, w + w % 2, 4), dtype=np.float32)
        pad[:h, :w] = block
        block = pad
    a = block[..., 3]
    rgbw = block[..., :3] * a[..., None]

    def quad(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]

    a_sum = quad(a)
    rgb = quad(rgbw) / np.where(a_sum > 0, a_sum, 1)[..., None]
    out = np.concatenate([rgb, (a_sum / 4)[..., None]], axis=-1)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    H, W = dst.shape[:2]
    d0, e0 = cy * CHUNK, cx * CHUNK
    d1, e1 = min(d0 + out.shape[0], H), min(e0 + out.shape[1], W)
    dst[d0:d1, e0:e1, :] = out[: d1 - d0, : e1 - e0]
    return True


def _chunks_bbox(chunks: set[tuple[int, int]]) -> list[float]:
    """(min_lon, min_lat, max_lon, max_lat) of level-0 chunks ((row, col) keys); [] if none."""
    if not chunks:
        return []
    span = CHUNK * LEVEL0_DEG
    rows = [r for r, _ in chunks]
    cols = [c for _, c in chunks]
    return [
        round(-180.0 + min(cols) * span, 6),
        round(max(-90.0, 90.0 - (max(rows) + 1) * span), 6),
        round(min(180.0, -180.0 + (max(cols) + 1) * span), 6),
        round(90.0 - min(rows) * span, 6),
    ]


def build_preview(
    store_path: str | Path,
    year: int,
    *,
    levels: int = LEVELS,
    sample_pixels: int = SAMPLE_PIXELS,
    seed: int = 0,
    progress: ProgressSink | None = None,
) -> PreviewReport:
    """Render the ``global_rgb`` pyramid of ``year`` into the local store at ``store_path``
    (replacing any pyramid it holds), then consolidate the store's metadata."""
    zarr = require("zarr", "zarr")
    from ...errors import NotCoveredError
    from ..read import GeoTesseraZarr
    from .metadata import codecs, consolidate, store_lock, sweep_temporaries

    start = time.perf_counter()
    store = Path(store_path)
    report = PreviewReport(int(year), int(levels))
    # opened first, so that a missing store is refused before the lock would create its directory
    with GeoTesseraZarr(store) as gz, store_lock(store):  # every zarr-python write: under the lock
        sweep_temporaries(store)
        gz._require_year(year)
        present = _present_chunks(gz, store, int(year))
        sample = _sample(gz, present, int(year), sample_pixels, seed)
        if len(sample) < 2:
            raise NotCoveredError(f"{store}: no valid pixels in {year} to fit the preview's colours on")
        colours = fit_colours(sample)
        report.sample_pixels = len(sample)
        level0 = _level0_chunks(gz, present)
        report.chunks_level0 = len(level0)
        if (store / GROUP).exists():  # one preview year at a time
            # readers stop finding the old pyramid (the consolidated metadata too) before any of it
            # goes: a kill from here until the new attributes leaves no preview, never a wrong one
            (store / GROUP / "zarr.json").unlink(missing_ok=True)
            consolidate(store)
            shutil.rmtree(store / GROUP, ignore_errors=True)
        root = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
        group = root.create_group(GROUP)
        arrays = []
        for lv in range(levels):
            arrays.append(
                group.create_group(str(lv)).create_array(
                    "rgb",
                    shape=(*level_shape(lv), 4),
                    dtype="uint8",
                    chunks=(CHUNK, CHUNK, 4),
                    compressors=codecs("int8", True),
                    fill_value=0,
                    dimension_names=("lat", "lon", "rgba"),
                )
            )
        emit(progress, PlanReady(len(level0), 0, label="preview"))
        chunks = set()
        for key in sorted(level0):
            if _render_chunk(gz, key, level0[key], int(year), colours, arrays[0]):
                chunks.add(key)
                report.chunks_written += 1
            emit(progress, ItemDone(f"0/{key[0]}/{key[1]}", 0))
        chunks0 = set(chunks)
        for lv in range(1, levels):
            parents = {(cy // 2, cx // 2) for cy, cx in chunks}
            chunks = {k for k in sorted(parents) if _downsample(arrays[lv - 1], arrays[lv], k)}
            report.chunks_written += len(chunks)
        info = {
            "year": int(year),
            "levels": int(levels),
            "bbox": _chunks_bbox(chunks0),
            "sample_pixels": len(sample),
            **colours.as_json(),
        }
        group.attrs.update(group_attributes(levels, info))
        consolidate(store)
    report.elapsed_s = time.perf_counter() - start
    log.info(
        "preview %d: %d level-0 chunks, %d chunks in all, %.1f s",
        year,
        len(level0),
        report.chunks_written,
        report.elapsed_s,
    )
    return report
