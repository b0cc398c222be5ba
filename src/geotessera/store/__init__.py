"""Cloud-native Zarr access (layer L6): read geoemb stores and build them from tiles.

``from geotessera.store import GeoTesseraZarr`` is the reader (:mod:`.read`); :func:`build_zarr`
the builder (:mod:`.write`). Both need the ``zarr`` extra (zarr, numcodecs, zstandard, xarray,
dask). What both share: :mod:`.layout` (arrays, codecs, shard indexes) and :mod:`.conventions`
(the ``geoemb:`` / ``proj:`` / ``spatial:`` attributes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .read import GeoTesseraZarr
    from .write import BuildReport, build_zarr

__all__ = ["BuildReport", "GeoTesseraZarr", "build_zarr"]


def __getattr__(name: str) -> Any:
    if name == "GeoTesseraZarr":
        from .read import GeoTesseraZarr

        return GeoTesseraZarr
    if name in ("BuildReport", "build_zarr"):
        from . import write

        return getattr(write, name)
    raise AttributeError(f"module 'geotessera.store' has no attribute {name!r}")
