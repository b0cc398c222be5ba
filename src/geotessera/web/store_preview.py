"""A Zarr store's preview pyramid (``global_rgb``) as an RGBA GeoTIFF mosaic for web tiles.

``geotessera webmap STORE`` cuts its XYZ tiles from this mosaic: the pyramid level at which
the store's data extent (``tessera:preview`` ``bbox``) is at most ``max_px`` pixels on its
longer side, read through the reader (local, https or s3 alike), written as a tiled GeoTIFF
in EPSG:4326 with overviews, atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotCoveredError
from ..files import atomic_path

#: The mosaic's longer side at most (pixels): 8192 x 8192 RGBA is 256 MiB in memory.
MAX_PX = 8192


@dataclass(frozen=True)
class StorePreview:
    """The mosaic written: its ``path``, ``bounds`` (min_lon, min_lat, max_lon, max_lat),
    pyramid ``level`` and preview ``year``."""

    path: Path
    bounds: tuple[float, float, float, float]
    level: int
    year: int


def store_zooms(preview: StorePreview, min_zoom: int | None, max_zoom: int | None) -> tuple[int, int]:
    """Web tile zooms for a store's preview mosaic, where the caller gave none: highest, one past
    the zoom of the mosaic's own pixels (further only magnifies them), at most 15; lowest, the
    zoom at which all its data fits a 1024-pixel view, at most 8 (so the page opens on tiles)."""
    from ..store.pyramid import level_res
    from .footprint import fit_zoom, native_zoom
    from .tiles import DEFAULT_ZOOMS

    native = native_zoom(level_res(preview.level))
    hi = max_zoom if max_zoom is not None else min(DEFAULT_ZOOMS[1], native + 1)
    lo = min_zoom if min_zoom is not None else min(DEFAULT_ZOOMS[0], fit_zoom(preview.bounds), hi)
    if max_zoom is None and hi < lo:
        hi = lo
    return lo, hi


def is_store_location(text: str) -> bool:
    """True for an ``http(s)://`` or ``s3://`` URL or a local directory holding ``zarr.json``."""
    if "://" in text:
        return text.split("://", 1)[0].lower() in ("http", "https", "s3", "file")
    return (Path(text) / "zarr.json").is_file()


def store_preview_mosaic(
    store: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    max_px: int = MAX_PX,
    reader_args: dict[str, Any] | None = None,
) -> StorePreview:
    """Write the preview pyramid of ``store`` over its data extent to ``output_path`` (RGBA
    uint8 GeoTIFF, EPSG:4326, alpha 0 where there is no data). ``reader_args``: keyword
    arguments of :class:`~geotessera.store.GeoTesseraZarr` (e.g. ``endpoint_url``).
    Raises :class:`NotCoveredError` when the store has no pyramid."""
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling

    from ..store import GeoTesseraZarr
    from ..store.read.preview import read_preview

    with GeoTesseraZarr(store, **(reader_args or {})) as gz:
        info = gz.preview_info
        if info is None:
            raise NotCoveredError(
                f"store {gz.url} has no preview pyramid; render one with "
                "`geotessera zarr build SOURCE STORE --preview YEAR`"
            )
        bbox = info.get("bbox") or []
        if len(bbox) != 4:
            raise NotCoveredError(f"store {gz.url}: its preview pyramid holds no data")
        rgba, transform, level = read_preview(gz, tuple(bbox), None, max_px)
    h, w = rgba.shape[:2]
    out = Path(output_path)
    profile = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": 4,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "photometric": "RGB",
        "alpha": "YES",
        "BIGTIFF": "IF_SAFER",
    }
    with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(np.ascontiguousarray(rgba.transpose(2, 0, 1)))
        factors = [f for f in (2, 4, 8, 16, 32) if max(h, w) // f >= 256]
        if factors:
            dst.build_overviews(factors, Resampling.average)
    west, north = transform.c, transform.f
    east, south = west + w * transform.a, north + h * transform.e
    return StorePreview(out, (west, south, east, north), level, int(info["year"]))
