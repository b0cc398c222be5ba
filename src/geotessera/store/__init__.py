"""Cloud-native Zarr access (layer L6): build geoemb stores from tiles and read them.

``from geotessera.store import GeoTesseraZarr`` is the reader; :func:`build_zarr`
the writer. Both need the ``zarr`` extra (zarr, numcodecs, xarray, dask).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .reader import GeoTesseraZarr
    from .writer import BuildReport, build_zarr

__all__ = ["BuildReport", "GeoTesseraZarr", "build_zarr"]


def __getattr__(name: str) -> Any:
    if name == "GeoTesseraZarr":
        from .reader import GeoTesseraZarr

        return GeoTesseraZarr
    if name in ("BuildReport", "build_zarr"):
        from . import writer

        return getattr(writer, name)
    raise AttributeError(f"module 'geotessera.store' has no attribute {name!r}")
