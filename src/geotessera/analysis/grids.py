"""Output grids of a region-wide operation and the dask arrays of embeddings over them.

Tiles live in the UTM CRS of their zone (EPSG 326NN north, 327NN south), so a region is
split into one output grid per CRS: the union of its tiles' pixel grids (same lattice,
no resampling), cropped to the area's shape. A region in one zone gives one GeoTIFF; a
region across zones (or the equator) gives one GeoTIFF per grid, named ``STEM_utm31n.tif``.

:func:`embedding_array` builds a dask array (H, W, 128) float32 over a grid, chunked in
(block, block) pixels with all 128 bands: one task per block, whose only arguments are a
small picklable reader (the tiles or the store zone that can fall in the block) and the
block's :class:`~geotessera.analysis.windows.Window`. Any worker can run it: it reads the
tiles or the store itself, so the client never holds the region.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from pyproj import Transformer

from .._optional import require
from ..grid import Cell, PixelGrid, utm_epsg
from .area import Area
from .windows import N_BANDS, Window, WindowSource, block_grid, pack_cells

DEFAULT_BLOCK = 512
_DENSIFY = 21


@dataclass(frozen=True)
class OutputGrid:
    """One output raster: CRS, transform, (H, W), the cells it shows and the area's shape."""

    epsg: int
    transform: Affine
    shape: tuple[int, int]
    cells: tuple[Cell, ...]
    geometry: shapely.Geometry | None

    @property
    def suffix(self) -> str:
        """``utm31n`` / ``utm21s``: the part added to file names when a region has several grids."""
        zone = self.epsg % 100
        return f"utm{zone:02d}{'n' if self.epsg < 32700 else 's'}"

    @property
    def pixel_grid(self) -> PixelGrid:
        """The grid as a :class:`~geotessera.grid.PixelGrid`."""
        return PixelGrid(self.epsg, self.transform, self.shape)

    def blocks(self, block: int) -> list[tuple[int, int, int, int]]:
        """(r0, r1, c0, c1) of every block, row-major."""
        h, w = self.shape
        return [
            (r0, min(r0 + block, h), c0, min(c0 + block, w))
            for r0 in range(0, h, block)
            for c0 in range(0, w, block)
        ]


def _projected_bounds(bounds: tuple[float, float, float, float], epsg: int) -> tuple[float, ...]:
    """(x0, y0, x1, y1) in ``epsg`` of a lon/lat box, edges densified."""
    a, b, c, d = bounds
    t = np.linspace(0.0, 1.0, _DENSIFY)
    lons = np.concatenate([a + t * (c - a), a + t * (c - a), np.full_like(t, a), np.full_like(t, c)])
    lats = np.concatenate([np.full_like(t, b), np.full_like(t, d), b + t * (d - b), b + t * (d - b)])
    xs, ys = Transformer.from_crs(4326, epsg, always_xy=True).transform(lons, lats)
    return float(np.min(xs)), float(np.min(ys)), float(np.max(xs)), float(np.max(ys))


def plan_grids(area: Area, cells: Sequence[Cell], pixel_size_m: float) -> list[OutputGrid]:
    """One :class:`OutputGrid` per UTM CRS of ``cells`` (the area's cells that hold data)."""
    groups: dict[int, list[Cell]] = defaultdict(list)
    for c in cells:
        groups[utm_epsg(c.lon, c.lat)].append(c)
    p = float(pixel_size_m)
    out = []
    for epsg in sorted(groups):
        group = groups[epsg]
        tiles = [PixelGrid.from_cell(c, p) for c in group]
        x0 = min(g.transform.c for g in tiles)
        y1 = max(g.transform.f for g in tiles)
        x1 = max(g.transform.c + p * g.width for g in tiles)
        y0 = min(g.transform.f - p * g.height for g in tiles)
        geom = area.geometry
        if geom is not None:
            boxes = shapely.union_all([shapely.box(*c.bounds) for c in group])
            piece = shapely.intersection(geom, boxes)
            if piece.is_empty:
                continue
            gx0, gy0, gx1, gy1 = _projected_bounds(piece.bounds, epsg)
            x0, y0 = max(x0, math.floor(gx0 / p) * p), max(y0, math.floor(gy0 / p) * p)
            x1, y1 = min(x1, math.ceil(gx1 / p) * p), min(y1, math.ceil(gy1 / p) * p)
        w, h = round((x1 - x0) / p), round((y1 - y0) / p)
        if w <= 0 or h <= 0:
            continue
        out.append(OutputGrid(epsg, Affine(p, 0.0, x0, 0.0, -p, y1), (h, w), tuple(group), geom))
    return out


def _block_window(grid: OutputGrid, r0: int, r1: int, c0: int, c1: int) -> Window:
    """The :class:`Window` of one block: the cells whose tiles reach it and the shape clipped to it."""
    bg = block_grid(grid.epsg, grid.transform, r0, r1, c0, c1)
    left, bottom, right, top = bg.bounds
    p = grid.transform.a
    keys = []
    for c in grid.cells:
        tg = PixelGrid.from_cell(c, p)
        tl, tb, tr, tt = tg.bounds
        if tl < right and tr > left and tb < top and tt > bottom:
            keys.append(int(pack_cells(c.ix, c.iy)))
    wkb = None
    if grid.geometry is not None and keys:
        xs = np.linspace(left, right, _DENSIFY)
        ys = np.linspace(bottom, top, _DENSIFY)
        ring_x = np.concatenate([xs, np.full_like(ys, right), xs[::-1], np.full_like(ys, left)])
        ring_y = np.concatenate([np.full_like(xs, bottom), ys, np.full_like(xs, top), ys[::-1]])
        lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(ring_x, ring_y)
        footprint = shapely.Polygon(np.c_[lon, lat]).buffer(1e-6)
        if not shapely.contains(grid.geometry, footprint):
            piece = shapely.intersection(grid.geometry, footprint)
            if piece.is_empty:
                keys = []
            else:
                wkb = shapely.to_wkb(piece)
    return Window(grid.epsg, bg.transform, bg.shape, tuple(keys), wkb)


def read_block(reader: WindowSource, window: Window) -> npt.NDArray[np.float32]:
    """Task body: (h, w, 128) float32 of one block (NaN where nothing is shown)."""
    if not window.cells:
        return np.full((*window.shape, N_BANDS), np.nan, dtype=np.float32)
    return reader.read(window)


def embedding_array(reader: WindowSource, grid: OutputGrid, block: int = DEFAULT_BLOCK) -> object:
    """A dask array (H, W, 128) float32 of ``grid``, one read task per (block, block) window."""
    require("dask", "ml")
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    h, w = grid.shape
    name = "tessera-embeddings-" + tokenize(reader, grid.epsg, grid.transform, grid.shape, block)
    layer: dict[Any, Any] = {}
    for r0, r1, c0, c1 in grid.blocks(block):
        window = _block_window(grid, r0, r1, c0, c1)
        part = reader.restrict(block_grid(grid.epsg, grid.transform, r0, r1, c0, c1))
        layer[(name, r0 // block, c0 // block, 0)] = (read_block, part, window)
    chunks = (
        tuple(min(block, h - r) for r in range(0, h, block)),
        tuple(min(block, w - c) for c in range(0, w, block)),
        (N_BANDS,),
    )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    return da.Array(graph, name, chunks, dtype=np.float32)
