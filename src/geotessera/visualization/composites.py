"""The published mosaic functions: ``create_pca_mosaic`` and ``create_rgb_mosaic``.

Both fit one colour mapping on a seeded sample across all tiles, then draw tile by tile
(:mod:`.mosaic`): memory stays flat in the number of tiles and colours agree across
tile borders.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InvalidInputError
from ..progress import ProgressSink
from ._progress import ProgressCallback, Reporter
from .colour import fit_stretch
from .mosaic import check_mosaic_output, plan_canvas, render_mosaic
from .pca import DEFAULT_SAMPLE_SIZE, draw_sample, fit_pca
from .tilesets import as_tiles

log = logging.getLogger(__name__)


def create_pca_mosaic(
    tiles_data: Iterable[Any],
    output_path: str | os.PathLike[str],
    n_components: int = 3,
    target_crs: str = "EPSG:3857",
    progress_callback: ProgressCallback | None = None,
    balance_method: str = "histogram",
    percentile_range: tuple[float, float] = (2, 98),
    *,
    year: int | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    progress: ProgressSink | None = None,
) -> str:
    """Draw the first three principal components of embedding tiles as one RGB mosaic.

    Args:
        tiles_data: the published list of dicts (``data`` (H, W, B), ``crs``, ``transform``,
            ...), or paths: GeoTIFF / ``.npy`` tiles or download directories (either format).
        output_path: the GeoTIFF to write (RGBA uint8, alpha = data, cloud-optimised);
            a PNG quick-look is written beside it (same name, ``.png``; so not a ``.png`` name).
        n_components: components computed (1..bands); the first three become red, green, blue.
        target_crs: CRS of the mosaic (default Web Mercator).
        progress_callback: published-style ``callback(current, total, status)``.
        balance_method: ``histogram`` (equalised), ``percentile`` or ``adaptive``.
        percentile_range: (low, high) percentiles of the ``percentile`` method.
        year: the year to draw when a directory holds several.
        sample_size: pixels sampled across all tiles to fit the PCA and the colours.
        seed: seed of the sample (the same inputs and seed give the same colours).
        progress: a sink of :mod:`geotessera.progress` events (one ``ItemDone`` per tile).

    Returns:
        ``output_path`` as a string.
    """
    check_mosaic_output(output_path)
    tiles = as_tiles(tiles_data, year=year)
    rep = Reporter(progress_callback, progress)
    canvas = plan_canvas(tiles, target_crs)
    rep.status(f"sampling {len(tiles)} tiles")
    sample = draw_sample(tiles, sample_size, seed=seed)
    pca = fit_pca(sample, n_components)
    scores = pca.transform(sample)
    stretch = fit_stretch(scores[:, : min(3, n_components)], balance_method, percentile_range)
    a, b = pca.projection()
    k = min(3, n_components)
    ratio = pca.explained_variance_ratio
    log.info("PCA of %d sampled pixels: explained variance %s", sample.shape[0], np.round(ratio, 3).tolist())
    tags = {
        "TIFFTAG_SOFTWARE": f"geotessera {__version__}",
        "TIFFTAG_IMAGEDESCRIPTION": (
            f"PCA of Tessera embeddings ({n_components} components, {balance_method} balance)"
        ),
        "PCA_COMPONENTS": str(n_components),
        "PCA_STANDARDIZED": "True",
        "PCA_BALANCE_METHOD": balance_method,
        "PCA_EXPLAINED_VARIANCE": json.dumps([round(float(v), 6) for v in ratio]),
        "PCA_TOTAL_VARIANCE": f"{float(ratio.sum()):.3f}",
        "PCA_SAMPLE_PIXELS": str(sample.shape[0]),
        "PCA_SEED": str(seed),
        "GEOTESSERA_TARGET_CRS": str(target_crs),
        "GEOTESSERA_TILES": str(len(tiles)),
    }
    descriptions = [f"PC{i + 1} ({ratio[i] * 100:.1f}%)" for i in range(k)]
    out = render_mosaic(
        tiles,
        (a[:, :k], b[:k]),
        stretch,
        output_path,
        canvas,
        tags=tags,
        descriptions=descriptions,
        reporter=rep,
    )
    return str(out)


def create_rgb_mosaic(
    geotiff_paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    bands: Sequence[int] = (0, 1, 2),
    target_crs: str = "EPSG:3857",
    progress_callback: ProgressCallback | None = None,
    *,
    percentile_range: tuple[float, float] = (2, 98),
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    progress: ProgressSink | None = None,
) -> str:
    """Draw three bands of embedding tiles as red, green and blue in one mosaic.

    Each band is stretched linearly between the ``percentile_range`` percentiles (0-100) of
    a sample of ``sample_size`` pixels across all tiles (one stretch for the whole mosaic).
    ``bands`` are three 0-based band indices (red, green, blue). ``geotiff_paths`` may also
    name ``.npy`` tiles or download directories. The output is an RGBA uint8 GeoTIFF
    (alpha 255 = data) in ``target_crs`` with a ``.png`` quick-look beside it (so
    ``output_path`` may not end in ``.png``). Returns ``output_path`` as a string.
    """
    check_mosaic_output(output_path)
    tiles = as_tiles([geotiff_paths] if isinstance(geotiff_paths, str | os.PathLike) else geotiff_paths)
    idx = [int(v) for v in bands]
    if len(idx) != 3:
        raise InvalidInputError(f"give exactly three bands for red, green and blue, got {len(idx)}")
    nb = tiles[0].bands
    if any(not 0 <= i < nb for i in idx):
        raise InvalidInputError(f"bands {idx} are outside 0..{nb - 1} (the tiles have {nb} bands)")
    rep = Reporter(progress_callback, progress)
    canvas = plan_canvas(tiles, target_crs)
    a = np.zeros((nb, 3), np.float32)
    a[idx, [0, 1, 2]] = 1.0
    b = np.zeros(3, np.float32)
    sample = draw_sample(tiles, sample_size, seed=seed)
    stretch = fit_stretch(sample[:, idx], "percentile", percentile_range)
    tags = {
        "TIFFTAG_SOFTWARE": f"geotessera {__version__}",
        "TIFFTAG_IMAGEDESCRIPTION": f"RGB visualization using bands {tuple(idx)}",
        "GEOTESSERA_TARGET_CRS": str(target_crs),
        "GEOTESSERA_TILES": str(len(tiles)),
    }
    out = render_mosaic(
        tiles,
        (a, b),
        stretch,
        output_path,
        canvas,
        tags=tags,
        descriptions=[f"band {i}" for i in idx],
        reporter=rep,
    )
    return str(out)
