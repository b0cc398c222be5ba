"""``visualize`` (a PCA mosaic) of 4 and 16 real-size tiles against the published algorithm.

Data: the 4 x 4 tiles of 2024 around Cambridge at 10 m (1141 x 731 x 128 int8 per tile), a
sample store built once and cached under the temp directory; the tiles are read in place
as ``.npy`` (as ``geotessera visualize`` reads an NPY download).

- baseline, "published, 4 tiles": the published client's algorithm, in this process: every
  tile dequantised and loaded, all pixels stacked, ``StandardScaler`` + ``PCA(3)`` of
  scikit-learn on all of them, histogram equalisation of every pixel (skimage's
  ``equalize_hist`` rule, 256 bins, written with numpy), one uint8 GeoTIFF per tile, then
  the tiles reprojected to EPSG:3857 and merged (``rasterio.merge``). Water pixels are
  NaN, which the published PCA rejects ("Input X contains NaN"); they are dropped from the
  fit here so that it runs at all.
- "ours, 4 tiles" and "ours, 16 tiles": ``create_pca_mosaic`` (a 65,536-pixel seeded sample,
  covariance + eigh, tile-by-tile projection, COG + PNG quick-look).

Goals: ours at least 3x faster than the baseline on the same 4 tiles; the 16-tile peak RSS
within 15% of the 4-tile one (memory flat in the number of tiles).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks._store import build_options, cached_store
from benchmarks.harness import Case, CaseResult

STORE_BBOX = (0.0, 52.0, 0.4, 52.4)  # 4 x 4 tiles
YEAR = 2024
OPTIONS = build_options(STORE_BBOX, 10.0, YEAR)
REGIONS = {4: (0.0, 52.0, 0.2, 52.2), 16: STORE_BBOX}
PARAMETERS = {"store_bbox": list(STORE_BBOX), "year": YEAR, "pixel_size_m": 10.0, "crs": "EPSG:3857"}


@dataclass
class _State:
    work: Path
    tiles: list[Path] = field(default_factory=list)

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _setup(n: int) -> _State:
    from geotessera.datasets import DatasetId
    from geotessera.grid import cells_in_bbox
    from geotessera.layouts import S3_LAYOUT

    root = cached_store(OPTIONS)
    ds = DatasetId()
    tiles = [root / S3_LAYOUT.embedding_key(ds, YEAR, c) for c in cells_in_bbox(REGIONS[n])]
    if len(tiles) != n or not all(t.is_file() for t in tiles):
        raise RuntimeError(f"expected {n} tiles in the cached store {root}")
    return _State(Path(tempfile.mkdtemp(prefix="gt-bench-vis-")), tiles)


def _ours(state: _State) -> dict[str, float]:
    from geotessera.visualization import create_pca_mosaic

    out = create_pca_mosaic(state.tiles, state.work / "ours.tif")
    return {"bytes": float(Path(out).stat().st_size), "tiles": float(len(state.tiles))}


def _equalize_hist(x: np.ndarray, nbins: int = 256) -> np.ndarray:
    """skimage.exposure.equalize_hist: the normalised cumulative histogram, interpolated at ``x``."""
    hist, edges = np.histogram(x, bins=nbins)
    centres = (edges[:-1] + edges[1:]) / 2
    cdf = hist.cumsum() / hist.sum()
    return np.interp(x, centres, cdf)


def _published(state: _State) -> dict[str, float]:
    import rasterio
    from rasterio.merge import merge
    from rasterio.vrt import WarpedVRT
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from geotessera.tiles import dequantize_embedding, load_tile_arrays, read_landmask_grid
    from geotessera.visualization.tilesets import _landmask_of

    loaded = []
    for t in state.tiles:
        arrays = load_tile_arrays(t, t.with_name(f"{t.stem}_scales.npy"))
        grid = read_landmask_grid(_landmask_of(t))
        loaded.append((dequantize_embedding(arrays.quantized, arrays.scales), grid))
    pixels = np.vstack([d.reshape(-1, d.shape[2]) for d, _ in loaded])
    valid = np.isfinite(pixels).all(axis=1)
    scaled = StandardScaler().fit_transform(pixels[valid])
    pcs = PCA(n_components=3).fit_transform(scaled)
    for j in range(3):
        lo, hi = np.percentile(pcs[:, j], [0.5, 99.5])
        pcs[:, j] = _equalize_hist(np.clip((pcs[:, j] - lo) / (hi - lo), 0, 1))
    full = np.zeros((pixels.shape[0], 3), np.float32)
    full[valid] = pcs
    paths, k = [], 0
    for i, (d, grid) in enumerate(loaded):
        h, w = d.shape[:2]
        img = (np.clip(full[k : k + h * w], 0, 1) * 255).astype(np.uint8).reshape(h, w, 3)
        k += h * w
        p = state.work / f"pca_tile_{i}.tif"
        with rasterio.open(
            p,
            "w",
            driver="GTiff",
            height=h,
            width=w,
            count=3,
            dtype="uint8",
            crs=f"EPSG:{grid.epsg}",
            transform=grid.transform,
            compress="lzw",
        ) as dst:
            dst.write(np.moveaxis(img, 2, 0))
        paths.append(p)
    del loaded, pixels, scaled, pcs, full
    srcs = [rasterio.open(p) for p in paths]
    vrts = [WarpedVRT(s, crs="EPSG:3857") for s in srcs]
    try:
        mosaic, transform = merge(vrts)
    finally:
        for v in vrts:
            v.close()
        for s in srcs:
            s.close()
    out = state.work / "published.tif"
    with rasterio.open(
        out,
        "w",
        driver="GTiff",
        height=mosaic.shape[1],
        width=mosaic.shape[2],
        count=3,
        dtype="uint8",
        crs="EPSG:3857",
        transform=transform,
        compress="lzw",
    ) as dst:
        dst.write(mosaic)
    return {"bytes": float(out.stat().st_size), "tiles": float(len(state.tiles))}


def cases() -> list[Case]:
    """The published algorithm on 4 tiles (baseline); ours on 4 and 16 tiles."""
    return [
        Case(
            "published, 4 tiles",
            _published,
            setup=lambda: _setup(4),
            teardown=_State.close,
            baseline=True,
            repeats=2,
            description="all tiles loaded, sklearn StandardScaler + PCA of every pixel, merge",
        ),
        Case(
            "ours, 4 tiles",
            _ours,
            setup=lambda: _setup(4),
            teardown=_State.close,
            repeats=3,
            description="create_pca_mosaic: sampled fit, tile-by-tile projection, COG",
        ),
        Case(
            "ours, 16 tiles",
            _ours,
            setup=lambda: _setup(16),
            teardown=_State.close,
            repeats=3,
            description="create_pca_mosaic of 16 tiles",
        ),
    ]


def summary(results: dict[str, CaseResult]) -> list[str]:
    """The two goals: speed-up over the published algorithm, and flat memory."""
    lines = []
    base, four, sixteen = (results.get(k) for k in ("published, 4 tiles", "ours, 4 tiles", "ours, 16 tiles"))
    if base and four:
        speed = base.median_s / four.median_s
        lines.append(f"speed-up over the published algorithm (4 tiles): {speed:.1f}x (goal >= 3x)")
    if four and sixteen:
        ratio = sixteen.peak_rss_mib / four.peak_rss_mib
        lines.append(
            f"peak RSS 16 vs 4 tiles: {sixteen.peak_rss_mib:.0f} / {four.peak_rss_mib:.0f} MiB = {ratio:.2f} "
            "(goal <= 1.15)"
        )
        lines.append(
            f"time per tile: 4 tiles {four.median_s / 4:.2f} s, 16 tiles {sixteen.median_s / 16:.2f} s"
        )
    return lines
