"""Pixels of one tile at lon/lat points, read from the memory-mapped arrays (no whole-tile load)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

from ..grid import PixelGrid
from .dequantize import dequantize_embedding
from .files import TileArrays


def pixels_at(
    arrays: TileArrays, grid: PixelGrid, lonlat: npt.ArrayLike, *, name: str = "tile"
) -> npt.NDArray[np.float32]:
    """Dequantised pixels (N, B) at (N, 2) lon/lat points (degrees); NaN rows outside the grid.

    A point belongs to the pixel whose area contains it (rows and columns are
    ``floor`` of the inverse transform), the same convention as rasterio's ``index``.
    """
    pts = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    out = np.full((len(pts), arrays.quantized.shape[2]), np.nan, dtype=np.float32)
    if not len(pts):
        return out
    tr = Transformer.from_crs(4326, grid.epsg, always_xy=True)
    x, y = tr.transform(pts[:, 0], pts[:, 1])
    col, row = ~grid.transform * (np.asarray(x), np.asarray(y))
    col = np.floor(col).astype(np.int64)
    row = np.floor(row).astype(np.int64)
    inside = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
    r, c = row[inside], col[inside]
    q = np.asarray(arrays.quantized[r, c, :])[:, None, :]
    s = np.asarray(arrays.scales[r, c])[:, None]
    out[inside] = dequantize_embedding(q, s, name=name)[:, 0, :]
    return out
