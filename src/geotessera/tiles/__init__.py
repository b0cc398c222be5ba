"""The on-disk tile set: reading ``.npy`` tiles and landmasks, and dequantisation."""

from .dequantize import check_shapes, dequantize_embedding, invalid_scale_mask, valid_scale_mask
from .files import (
    TileArrays,
    load_npy,
    load_tile_arrays,
    open_tile,
    read_landmask,
    read_landmask_grid,
    read_npy_header,
)

__all__ = [
    "TileArrays",
    "check_shapes",
    "dequantize_embedding",
    "invalid_scale_mask",
    "load_npy",
    "load_tile_arrays",
    "open_tile",
    "read_landmask",
    "read_landmask_grid",
    "read_npy_header",
    "valid_scale_mask",
]
