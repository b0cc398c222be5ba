"""Drawing tiles into one RGB mosaic: the output grid, the tile-by-tile render, the files written.

:func:`plan_canvas` chooses one grid in the target CRS covering every tile (square
pixels at about the tiles' own resolution, origin snapped to whole pixels).
:func:`render_mosaic` projects each tile (``tile.project``), reprojects the values
(bilinear, NaN nodata) onto its window of the canvas, colours them with the one shared
stretch and writes them into an uncompressed scratch GeoTIFF; nothing larger than one
tile is held in memory. The scratch file is then copied to the output as a
cloud-optimised GeoTIFF (RGBA uint8, alpha = data, deflate, 256 x 256 blocks, overviews)
and a PNG quick-look is written beside it. Both files appear atomically.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from ..errors import InvalidInputError, OutputError
from ..export import check_written_geotiff
from ..files import begin_path, commit_path
from ._progress import Reporter
from .colour import ColourStretch
from .tilesets import EmbeddingTile

log = logging.getLogger(__name__)

#: Longest side of the PNG quick-look written beside a mosaic, in pixels.
QUICKLOOK_MAX_PX = 2048
#: A mosaic larger than this (pixels) must be mostly covered by its tiles (scattered tiles are refused).
MAX_EMPTY_PIXELS = 100_000_000
# (GDAL_NUM_THREADS is left alone: on reads of small COG blocks it costs far more than it gives)
_GDAL_ENV = {"GDAL_CACHEMAX": 128 * 2**20, "GDAL_PAM_ENABLED": "NO"}  # bytes, as rasterio passes an int


def as_crs(crs: Any) -> Any:
    """A rasterio CRS from user input (``"EPSG:3857"``, an EPSG int, WKT); InvalidInputError if unknown."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        with rasterio.Env():  # GDAL's own complaint goes to the log, not to stderr
            return CRS.from_user_input(crs)
    except (CRSError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"unknown CRS {crs!r} ({exc})") from None


def check_mosaic_output(output_path: str | os.PathLike[str]) -> Path:
    """The mosaic's path, refused (InvalidInputError) when a directory or a ``.png`` name.

    The PNG quick-look goes beside the GeoTIFF as ``<stem>.png``: a ``.png`` output would
    be both files, the quick-look replacing the mosaic.
    """
    out = Path(output_path)
    if out.is_dir():
        raise InvalidInputError(f"{out} is a directory; give a file name such as {out / 'mosaic.tif'}")
    if out.suffix.lower() == ".png":
        raise InvalidInputError(
            f"{out}: the mosaic is a GeoTIFF and its PNG quick-look is written beside it as "
            f"{out.name}; give a GeoTIFF name such as {out.with_suffix('.tif')}"
        )
    return out


@dataclass(frozen=True)
class Canvas:
    """The output grid: ``crs``, ``transform`` (north-up, square pixels) and size in pixels."""

    crs: Any
    transform: Affine
    width: int
    height: int

    def window_of(self, tile: EmbeddingTile) -> tuple[int, int, int, int] | None:
        """(col_off, row_off, width, height) of the canvas pixels covering ``tile``, or None."""
        from rasterio.warp import transform_bounds

        left, bottom, right, top = transform_bounds(tile.crs, self.crs, *tile.bounds, densify_pts=21)
        inv = ~self.transform
        c0, r0 = inv * (left, top)
        c1, r1 = inv * (right, bottom)
        c0, r0 = max(0, math.floor(c0) - 1), max(0, math.floor(r0) - 1)
        c1, r1 = min(self.width, math.ceil(c1) + 1), min(self.height, math.ceil(r1) + 1)
        if c1 <= c0 or r1 <= r0:
            return None
        return c0, r0, c1 - c0, r1 - r0


def plan_canvas(tiles: Sequence[EmbeddingTile], crs: Any) -> Canvas:
    """One grid in ``crs`` covering all ``tiles``, at the median of their native resolutions there."""
    from rasterio.warp import calculate_default_transform, transform_bounds

    dst = as_crs(crs)
    res, boxes = [], []
    for t in tiles:
        tr, _, _ = calculate_default_transform(t.crs, dst, t.width, t.height, *t.bounds)
        res.append(abs(tr.a))
        boxes.append(transform_bounds(t.crs, dst, *t.bounds, densify_pts=21))
    r = float(np.median(res))
    arr = np.asarray(boxes)
    if not np.isfinite(arr).all() or not r > 0:
        raise InvalidInputError(f"the tiles cannot be projected to {crs} (outside its area of use?)")
    left, bottom = arr[:, 0].min(), arr[:, 1].min()
    right, top = arr[:, 2].max(), arr[:, 3].max()
    x0, y0 = math.floor(left / r) * r, math.ceil(top / r) * r
    width, height = math.ceil((right - x0) / r), math.ceil((y0 - bottom) / r)
    drawn = float(((arr[:, 2] - arr[:, 0]) * (arr[:, 3] - arr[:, 1])).sum()) / r**2
    if width * height > MAX_EMPTY_PIXELS and width * height > 20 * drawn:
        raise InvalidInputError(
            f"the {len(tiles)} tiles are scattered: one mosaic of them would be {width:,} x {height:,} "
            "pixels, almost all empty; draw the tiles of one area "
            "at a time (e.g. a directory per region)"
        )
    return Canvas(dst, Affine(r, 0.0, x0, 0.0, -r, y0), max(1, width), max(1, height))


def _rgba_profile(canvas: Canvas, **extra: Any) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": canvas.width,
        "height": canvas.height,
        "count": 4,
        "dtype": "uint8",
        "crs": canvas.crs,
        "transform": canvas.transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "photometric": "RGB",
        "alpha": "YES",
        "BIGTIFF": "IF_SAFER",
        **extra,
    }


def _draw_tile(
    scratch: Any, canvas: Canvas, tile: EmbeddingTile, values: npt.NDArray[np.float32], stretch: ColourStretch
) -> None:
    """Reproject one tile's values onto its canvas window and fill the pixels still empty there."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    win = canvas.window_of(tile)
    if win is None:
        return
    c0, r0, w, h = win
    window = Window(c0, r0, w, h)
    dst = np.full((values.shape[0], h, w), np.nan, np.float32)
    reproject(
        values,
        dst,
        src_transform=tile.transform,
        src_crs=tile.crs,
        src_nodata=np.nan,
        dst_transform=window_transform(window, canvas.transform),
        dst_crs=canvas.crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
        num_threads=min(2, os.cpu_count() or 1),
    )
    valid = np.isfinite(dst).all(axis=0)
    block = scratch.read(window=window)
    put = valid & (block[3] == 0)  # where a neighbour already drew, it stays (same colours anyway)
    if not put.any():
        return
    rgb = stretch.to_rgb(dst)
    block[:3, put] = rgb[:, put]
    block[3, put] = 255
    scratch.write(block, window=window)


def render_mosaic(
    tiles: Sequence[EmbeddingTile],
    projection: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
    stretch: ColourStretch,
    output_path: str | os.PathLike[str],
    canvas: Canvas,
    *,
    tags: dict[str, str] | None = None,
    descriptions: Sequence[str] = ("red", "green", "blue"),
    reporter: Reporter | None = None,
) -> Path:
    """Draw ``tiles`` projected by ``projection`` (a, b) and coloured by ``stretch`` into ``output_path``.

    Writes a cloud-optimised RGBA GeoTIFF and ``<output>.png`` (quick-look). Returns the output path.
    """
    import rasterio
    import rasterio.shutil

    out = check_mosaic_output(output_path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
    rep = reporter or Reporter()
    rep.plan(len(tiles), "tiles")
    a, b = projection
    try:
        # named as a temporary of ``out`` (writer's host and pid): the work directory of a run
        # killed while drawing (its scratch canvas may be gigabytes) is removed by the next run
        work = begin_path(out)
        work.mkdir()
    except OSError as exc:
        raise OutputError(f"cannot write into {out.parent}: {exc}") from exc
    try:
        scratch_path = work / "scratch.tif"
        with rasterio.Env(**_GDAL_ENV):
            with rasterio.open(scratch_path, "w+", **_rgba_profile(canvas, SPARSE_OK="TRUE")) as scratch:
                for tile in tiles:
                    _draw_tile(scratch, canvas, tile, tile.project(a, b), stretch)
                    rep.done(tile.name)
                for i, d in enumerate(descriptions[:3], start=1):
                    scratch.set_band_description(i, d)
                scratch.set_band_description(4, "alpha (255 = data)")
                scratch.update_tags(**(tags or {}))
            rep.status("writing the cloud-optimised GeoTIFF")
            final_tmp = work / out.name
            rasterio.shutil.copy(
                scratch_path,
                final_tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="2",
                BLOCKSIZE="256",
                OVERVIEW_RESAMPLING="AVERAGE",
                BIGTIFF="IF_SAFER",
                NUM_THREADS="ALL_CPUS",
            )
            # a full disk may leave the COG cut short without an error: prove it whole first
            check_written_geotiff(final_tmp, count=4, height=canvas.height, width=canvas.width, name=out)
            png_tmp = work / "quicklook.png"
            write_quicklook(final_tmp, png_tmp)
        commit_path(final_tmp, out, fsync=False)
        commit_path(png_tmp, out.with_suffix(".png"), fsync=False)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
    finally:
        for p in sorted(work.glob("*"), reverse=True):
            p.unlink(missing_ok=True)
        work.rmdir()
    return out


def write_quicklook(
    mosaic: str | os.PathLike[str], png: str | os.PathLike[str], max_px: int = QUICKLOOK_MAX_PX
) -> None:
    """A PNG (RGBA, longest side at most ``max_px``) of an RGB(A) mosaic, read from its overviews."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(mosaic) as ds:
        f = max(ds.width, ds.height) / max_px
        w, h = (
            (ds.width, ds.height) if f <= 1 else (max(1, round(ds.width / f)), max(1, round(ds.height / f)))
        )
        rgb = ds.read([1, 2, 3], out_shape=(3, h, w), resampling=Resampling.average)
        alpha = ds.read(4, out_shape=(h, w), resampling=Resampling.nearest) if ds.count == 4 else None
        if alpha is None:
            alpha = ds.dataset_mask(out_shape=(h, w), resampling=Resampling.nearest)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(
                png, "w", driver="PNG", width=w, height=h, count=4, dtype="uint8", ZLEVEL=3
            ) as dst:
                dst.write(np.concatenate([rgb, alpha[None]]).astype(np.uint8))
