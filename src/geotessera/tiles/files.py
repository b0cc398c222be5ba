"""Reading tile files safely: ``.npy`` embeddings and scales, landmask GeoTIFFs.

Embeddings are memory-mapped (``allow_pickle=False``), so loading a tile costs
no RAM until pixels are touched and row strips can be streamed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import CorruptDataError
from ..grid import PixelGrid
from .dequantize import check_shapes


def read_npy_header(path: str | os.PathLike[str]) -> tuple[np.dtype[np.generic], tuple[int, ...], int]:
    """(dtype, shape, data offset in bytes) of a ``.npy`` file, read from its header only."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # pragma: no cover - numpy rejects unknown versions in read_magic
                raise ValueError(f"unsupported .npy version {version}")
            offset = f.tell()
    except FileNotFoundError as exc:
        raise CorruptDataError(f"{p}: the file is missing") from exc
    except Exception as exc:
        # numpy's parser of untrusted header text raises ValueError, TypeError, SyntaxError,
        # tokenize.TokenError, RecursionError...: all of them mean a corrupt file
        raise CorruptDataError(f"{p}: not a valid .npy file ({exc})") from exc
    if fortran:
        raise CorruptDataError(f"{p}: Fortran-ordered arrays are not Tessera files")
    if dtype.hasobject:
        raise CorruptDataError(f"{p}: object arrays are refused")
    if any(n < 0 for n in shape):
        raise CorruptDataError(f"{p}: .npy header has a negative dimension {tuple(shape)}")
    # Python integers: a product of large dimensions must not wrap (2**32 * 2**32 is 0 in int64)
    expected = offset + math.prod(int(n) for n in shape) * dtype.itemsize
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise CorruptDataError(f"{p}: cannot read .npy file ({exc})") from exc
    if size != expected:
        raise CorruptDataError(f"{p}: truncated or padded .npy ({size} bytes, header implies {expected})")
    return dtype, tuple(int(s) for s in shape), offset


def load_npy(path: str | os.PathLike[str], *, dtype: str, ndim: tuple[int, ...]) -> npt.NDArray[np.generic]:
    """Memory-map a ``.npy`` file after checking its header dtype and number of dimensions."""
    got_dtype, shape, _ = read_npy_header(path)
    if got_dtype != np.dtype(dtype):
        raise CorruptDataError(f"{path}: expected dtype {dtype}, found {got_dtype}")
    if len(shape) not in ndim:
        raise CorruptDataError(f"{path}: expected {ndim} dimensions, found shape {shape}")
    if 0 in shape:
        raise CorruptDataError(f"{path}: the array is empty (shape {shape})")
    try:
        arr: npt.NDArray[np.generic] = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:  # e.g. removed or replaced since its header was read
        raise CorruptDataError(f"{path}: cannot map .npy file ({exc})") from exc
    return arr


@dataclass(frozen=True)
class TileArrays:
    """A tile's quantised embedding (H, W, 128) int8 and scales (H, W[, 128]) float32, memory-mapped."""

    quantized: npt.NDArray[np.int8]
    scales: npt.NDArray[np.float32]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        h, w = self.quantized.shape[:2]
        return int(h), int(w)


def load_tile_arrays(
    embedding_path: str | os.PathLike[str], scales_path: str | os.PathLike[str]
) -> TileArrays:
    """Memory-map a tile's two ``.npy`` files and validate their headers and shapes."""
    q = load_npy(embedding_path, dtype="int8", ndim=(3,))
    s = load_npy(scales_path, dtype="float32", ndim=(2, 3))
    check_shapes(q.shape, s.shape, name=str(embedding_path))
    return TileArrays(q, s)  # type: ignore[arg-type]


def read_landmask_grid(path: str | os.PathLike[str]) -> PixelGrid:
    """The pixel grid (CRS, transform, shape) of a landmask GeoTIFF, the spec's source of truth."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            return PixelGrid.from_raster(ds)
    except (rasterio.errors.RasterioIOError, ValueError) as exc:
        raise CorruptDataError(f"{path}: cannot read landmask GeoTIFF ({exc})") from exc


def read_landmask(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.uint8], PixelGrid]:
    """Landmask pixels (H, W) uint8 (1 land, 0 water) and the grid."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            return ds.read(1), PixelGrid.from_raster(ds)
    except (rasterio.errors.RasterioIOError, ValueError) as exc:
        raise CorruptDataError(f"{path}: cannot read landmask GeoTIFF ({exc})") from exc


def open_tile(
    embedding_path: str | os.PathLike[str],
    scales_path: str | os.PathLike[str],
    landmask_path: str | os.PathLike[str],
) -> tuple[TileArrays, PixelGrid]:
    """A tile's memory-mapped arrays and its landmask grid, checked to agree in height and width.

    A mismatch is :class:`CorruptDataError` (``formats.md`` section 2: never a silent broadcast).
    """
    arrays = load_tile_arrays(embedding_path, scales_path)
    grid = read_landmask_grid(landmask_path)
    if grid.shape != arrays.shape:
        raise CorruptDataError(
            f"{embedding_path}: embedding is {arrays.shape[0]} x {arrays.shape[1]} pixels but its landmask "
            f"{landmask_path} is {grid.shape[0]} x {grid.shape[1]}"
        )
    return arrays, grid
