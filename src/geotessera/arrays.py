"""Dequantised embeddings read from local tile files: whole tiles, row strips, pixels at points.

Functions of paths, no fetching: :class:`~geotessera.client.GeoTessera` makes the files local
(downloaded, verified, or read in place from a mirror) and calls these. Arrays are float32
``q * scale`` with NaN where there is no data (``tiles.dequantize``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from .errors import InvalidInputError
from .grid import Cell, points_to_keys
from .pipeline import TileRef
from .tiles import dequantize_embedding, load_tile_arrays, open_tile
from .tiles.sampling import pixels_at

TilePaths = tuple[Path, Path, Path]
"""(embedding .npy, scales .npy, landmask GeoTIFF) of one tile."""


def read_tile(
    paths: TilePaths, *, bands: Sequence[int] | None = None, name: str = "tile"
) -> tuple[npt.NDArray[np.float32], Any, Affine]:
    """(array (H, W, 128) -- or (H, W, len(bands)) -- float32, rasterio CRS, Affine) of one tile.

    The CRS and transform are the landmask's (the source of truth for a tile's grid).
    """
    from rasterio.crs import CRS

    arrays, grid = open_tile(*paths)
    out = dequantize_embedding(arrays.quantized, arrays.scales, bands=bands, name=name)
    return out, CRS.from_epsg(grid.epsg), grid.transform


def iter_tile_strips(
    paths: TilePaths, *, rows: int = 256, bands: Sequence[int] | None = None, name: str = "tile"
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """``(first_row, strip (rows, W, B) float32)`` of one tile, top to bottom.

    The tile is memory-mapped, so memory stays near one strip (rows x W x B x 4 bytes)
    however large the tile.
    """
    if rows < 1:
        raise InvalidInputError(f"rows must be >= 1, got {rows}")
    arrays = load_tile_arrays(paths[0], paths[1])
    h = arrays.shape[0]
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        yield r0, dequantize_embedding(arrays.quantized[r0:r1], arrays.scales[r0:r1], bands=bands, name=name)


def as_points(points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``points`` as an (N, 2) float64 array of (lon, lat) degrees; anything else is bad input."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InvalidInputError(f"points must be (N, 2) lon/lat pairs, got shape {pts.shape}")
    return pts


def points_by_tile(pts: npt.NDArray[np.float64], year: int) -> dict[TileRef, npt.NDArray[np.intp]]:
    """The tile of ``year`` holding each point (N, 2) lon/lat, with the indices of its points.

    Groups in one pass (O(N log N) whatever the number of tiles).
    """
    if len(pts) == 0:
        return {}
    kx, ky = points_to_keys(pts[:, 0], pts[:, 1])
    keys, inverse = np.unique(np.stack([kx, ky], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(keys)))[:-1])
    tiles = [TileRef(int(year), Cell.from_key(int(a), int(b))) for a, b in keys]
    return dict(zip(tiles, groups, strict=True))


def sample_tiles(
    pts: npt.NDArray[np.float64],
    members: dict[TileRef, npt.NDArray[np.intp]],
    paths: dict[TileRef, TilePaths],
) -> npt.NDArray[np.float32]:
    """Embeddings (N, 128) float32 at points ``pts`` (N, 2); rows of tiles without ``paths`` stay NaN.

    ``members`` is :func:`points_by_tile`'s grouping; only the needed pixels are read.
    """
    out = np.full((len(pts), 128), np.nan, dtype=np.float32)
    for tile, files in paths.items():
        idx = members[tile]
        arrays, grid = open_tile(*files)
        out[idx] = pixels_at(arrays, grid, pts[idx], name=tile.cell.name)
    return out
