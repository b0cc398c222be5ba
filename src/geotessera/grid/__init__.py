"""Grid maths: 0.1-degree cells and their 10 m UTM pixel grids. No I/O."""

from .cells import (
    BBox,
    Cell,
    as_bbox,
    cell_index_ranges,
    cells_in_bbox,
    point_to_centre,
    points_to_keys,
    tile_name,
)
from .utm import PIXEL_SIZE_M, SOUTH_OFFSET_M, PixelGrid, crs_from_epsg, utm_epsg, utm_zone, utm_zones

__all__ = [
    "PIXEL_SIZE_M",
    "SOUTH_OFFSET_M",
    "BBox",
    "Cell",
    "PixelGrid",
    "as_bbox",
    "cell_index_ranges",
    "cells_in_bbox",
    "crs_from_epsg",
    "point_to_centre",
    "points_to_keys",
    "tile_name",
    "utm_epsg",
    "utm_zone",
    "utm_zones",
]
