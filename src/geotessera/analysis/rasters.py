"""Writing an output GeoTIFF block by block (windowed writes), atomically.

The file is tiled 256 x 256, compressed (deflate by default), BigTIFF when it could
exceed 4 GB, and written to a temporary file beside the target (:func:`geotessera.files.begin_path`),
renamed into place only when every block is written: an interrupted run leaves no half file
under the real name.
Blocks arrive in a fixed (row-major) order, so the bytes do not depend on who computed
them. No time stamps go into the file.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._version import __version__
from ..errors import InvalidInputError, OutputError
from ..export import check_written_geotiff
from ..files import begin_path, commit_path, write_atomic
from .grids import OutputGrid

TILE = 256

#: Class colours (RGB) for class maps and cluster maps, cycled when there are more classes.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
)


def colour_table(n: int) -> dict[int, tuple[int, int, int, int]]:
    """Colour table of ``n`` classes (ids 0..n-1), RGBA; the nodata id 255 is transparent."""
    table = {i: (*PALETTE[i % len(PALETTE)], 255) for i in range(n)}
    table[255] = (0, 0, 0, 0)
    return table


@dataclass(frozen=True)
class RasterSpec:
    """What a raster holds: dtype, bands, nodata, optional colour table, descriptions and tags."""

    dtype: str
    count: int = 1
    nodata: float | int | None = None
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    descriptions: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


MAP_SUFFIXES = (".tif", ".tiff")


def check_map_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a map to write, refused (:class:`InvalidInputError`) unless it ends in ``.tif``
    or ``.tiff`` (maps are GeoTIFFs): checked before any work."""
    p = Path(path)
    if p.suffix.lower() not in MAP_SUFFIXES:
        raise InvalidInputError(
            f"cannot write a map to {p}: maps are GeoTIFFs, expected a name ending in .tif or .tiff"
        )
    return p


def drop_description(path: Path) -> None:
    """Remove the JSON file ``path`` that describes maps (their classes, centroids, statistics)
    before those maps are written again: it vouches for the maps beside it, so it goes before they
    are replaced and comes back after (:func:`write_description`). An interrupted run leaves maps
    without a description, never beside another run's."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot remove {path}: {exc}") from exc


def write_description(path: Path, doc: Any, *, indent: int | None = 2) -> Path:
    """Write the JSON description of maps (see :func:`drop_description`), atomically."""
    write_atomic(path, json.dumps(doc, indent=indent).encode(), fsync=False)
    return path


def output_path(path: str | os.PathLike[str], grid: OutputGrid, n_grids: int) -> Path:
    """``path`` itself for a one-grid region, else ``STEM_utmNNx.SUFFIX`` per grid."""
    p = Path(path)
    if n_grids == 1:
        return p
    return p.with_name(f"{p.stem}_{grid.suffix}{p.suffix or '.tif'}")


class BlockWriter:
    """A GeoTIFF of ``grid`` written window by window (see the module docstring)."""

    def __init__(
        self, path: str | os.PathLike[str], grid: OutputGrid, spec: RasterSpec, *, compress: str = "deflate"
    ):
        import rasterio

        self.path = Path(path)
        self.partial = begin_path(self.path)
        self.spec = spec
        h, w = grid.shape
        itemsize = np.dtype(spec.dtype).itemsize
        big = h * w * spec.count * itemsize > 3_500_000_000
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": w,
            "height": h,
            "count": spec.count,
            "dtype": spec.dtype,
            "crs": f"EPSG:{grid.epsg}",
            "transform": grid.transform,
            "nodata": spec.nodata,
            "tiled": True,
            "blockxsize": TILE,
            "blockysize": TILE,
            "compress": compress,
            "BIGTIFF": "YES" if big else "NO",
        }
        if spec.dtype in ("float32", "float64") and compress in ("deflate", "lzw", "zstd"):
            profile["predictor"] = 3
        elif compress in ("deflate", "lzw", "zstd"):
            profile["predictor"] = 2
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._ds: Any = rasterio.open(self.partial, "w", **profile)
        except (OSError, rasterio.errors.RasterioIOError) as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from exc
        if spec.colormap is not None:
            self._ds.write_colormap(1, spec.colormap)
        for i, d in enumerate(spec.descriptions, start=1):
            self._ds.set_band_description(i, d)
        self._ds.update_tags(GEOTESSERA_VERSION=__version__, **spec.tags)

    def write(self, row: int, col: int, data: npt.NDArray[Any]) -> None:
        """Write a (h, w) or (h, w, bands) block whose top-left pixel is (row, col)."""
        from rasterio.windows import Window

        arr = data if data.ndim == 3 else data[:, :, None]
        h, w = arr.shape[:2]
        try:
            self._ds.write(
                np.ascontiguousarray(np.moveaxis(arr, 2, 0)).astype(self.spec.dtype, copy=False),
                window=Window(col, row, w, h),
            )
        except Exception as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from exc

    def commit(self) -> Path:
        """Close and move the file into place; returns its path."""
        try:
            shape = {"count": self._ds.count, "height": self._ds.height, "width": self._ds.width}
            self._ds.close()
            # GDAL may close a file cut short by a full disk without an error: prove it whole
            check_written_geotiff(self.partial, **shape, name=self.path)
            commit_path(self.partial, self.path)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from exc
        return self.path

    def abort(self) -> None:
        """Close and remove the partial file."""
        with contextlib.suppress(Exception):
            self._ds.close()
        with contextlib.suppress(OSError):
            self.partial.unlink()

    def __enter__(self) -> BlockWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
