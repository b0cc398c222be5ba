"""Reading the preview pyramid (``global_rgb``, :mod:`..pyramid`): RGBA windows of any level.

:func:`read_preview` picks a level for a lon/lat box (the finest one at which the box is at
most ``max_px`` pixels on its longer side, unless told) and reads the chunks covering it
through the store's chunk reader (local, https or s3 alike; absent chunks are transparent).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from ...errors import InvalidInputError, NotCoveredError
from ...grid import as_bbox
from ..layout import ArrayLayout
from ..pyramid import GROUP, array_path, level_res, level_transform

if TYPE_CHECKING:
    from .reader_core import StoreCore

MAX_PX = 2048


def preview_info(store: StoreCore) -> dict[str, Any] | None:
    """The ``tessera:preview`` attributes of the store's pyramid (year, levels, PCA), or None
    when it has none."""
    meta = store._meta(GROUP)
    if meta is None:
        return None
    info = (meta.get("attributes") or {}).get("tessera:preview")
    return dict(info) if isinstance(info, dict) else None


def _layout(store: StoreCore, level: int) -> ArrayLayout:
    meta = store._meta(array_path(level))
    layout = None if meta is None else ArrayLayout.from_metadata(array_path(level), meta)
    if layout is None:
        raise NotCoveredError(f"store {store.url} has no preview level {level}")
    return layout


def choose_level(bbox: tuple[float, float, float, float], levels: int, max_px: int = MAX_PX) -> int:
    """The finest level at which ``bbox`` spans at most ``max_px`` pixels (else the coarsest)."""
    span = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    for lv in range(levels):
        if span / level_res(lv) <= max_px:
            return lv
    return levels - 1


def read_window_rgba(
    store: StoreCore, level: int, r0: int, r1: int, c0: int, c1: int
) -> npt.NDArray[np.uint8]:
    """Rows [r0, r1) x cols [c0, c1) of level ``level`` as (h, w, 4) uint8 (transparent off
    the grid and where no chunk was written)."""
    layout = _layout(store, level)
    h, w = layout.shape[0], layout.shape[1]
    ch, cw = layout.inner_shape[0], layout.inner_shape[1]
    out = np.zeros((r1 - r0, c1 - c0, 4), dtype=np.uint8)
    a0, a1, b0, b1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if a0 >= a1 or b0 >= b1:
        return out
    crs = np.arange(a0 // ch, (a1 - 1) // ch + 1)
    ccs = np.arange(b0 // cw, (b1 - 1) // cw + 1)
    coords = np.stack(np.meshgrid(crs, ccs, [0], indexing="ij"), -1).reshape(-1, 3).astype(np.int64)

    def on_chunk(c: tuple[int, ...], arr: npt.NDArray[Any] | None) -> None:
        if arr is None:
            return
        y0, x0 = c[0] * ch, c[1] * cw
        ya, yb = max(y0, a0), min(y0 + ch, a1)
        xa, xb = max(x0, b0), min(x0 + cw, b1)
        out[ya - r0 : yb - r0, xa - c0 : xb - c0] = arr[ya - y0 : yb - y0, xa - x0 : xb - x0]

    store.reader.read_chunks(layout, coords, on_chunk)
    return out


def read_preview(
    store: StoreCore, bbox: Any, level: int | None = None, max_px: int = MAX_PX
) -> tuple[npt.NDArray[np.uint8], Affine, int]:
    """(RGBA (H, W, 4) uint8, transform in EPSG:4326, level) of the pyramid over ``bbox``."""
    info = preview_info(store)
    if info is None:
        raise NotCoveredError(
            f"store {store.url} has no preview pyramid; render one with "
            "`geotessera zarr build SOURCE STORE --preview YEAR`"
        )
    levels = int(info.get("levels", 0))
    b = as_bbox(bbox)
    box = (b.min_lon, b.min_lat, b.max_lon, b.max_lat)
    if b.min_lon == b.max_lon or b.min_lat == b.max_lat:
        raise InvalidInputError(f"bbox {box} is empty (zero width or height); give a box with area")
    if level is None:
        lv = choose_level(box, levels, max_px)
    elif isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < levels:
        raise InvalidInputError(f"level must be a whole number from 0 to {levels - 1}, got {level!r}")
    else:
        lv = level
    res = level_res(lv)
    c0 = math.floor((b.min_lon + 180.0) / res + 1e-9)
    c1 = max(c0 + 1, math.ceil((b.max_lon + 180.0) / res - 1e-9))
    r0 = math.floor((90.0 - b.max_lat) / res + 1e-9)
    r1 = max(r0 + 1, math.ceil((90.0 - b.min_lat) / res - 1e-9))
    if (r1 - r0) * (c1 - c0) > 64 * 2**20:
        raise InvalidInputError(
            f"level {lv} over {box} is {r1 - r0} x {c1 - c0} pixels; choose a coarser level"
        )
    rgba = read_window_rgba(store, lv, r0, r1, c0, c1)
    return rgba, level_transform(lv) * Affine.translation(c0, r0), lv
