"""Cloud-native Zarr access (layer L6): read geoemb stores and build them from tiles.

``from geotessera.store import GeoTesseraZarr`` is the reader (:mod:`.read`); :func:`build_zarr`
the builder (:mod:`.build`). Both need the ``zarr`` extra (zarr, numcodecs, zstandard, xarray,
dask). What both share: :mod:`.layout` (arrays, codecs, shard indexes) and :mod:`.conventions`
(the ``geoemb:`` / ``proj:`` / ``spatial:`` attributes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import BuildReport, build_zarr
    from .read import GeoTesseraZarr

__all__ = ["BuildReport", "GeoTesseraZarr", "build_zarr"]


def __getattr__(name: str) -> Any:
    if name == "GeoTesseraZarr":
        from .read import GeoTesseraZarr

        return GeoTesseraZarr
    if name in ("BuildReport", "build_zarr"):
        from . import build

        return getattr(build, name)
    raise AttributeError(f"module 'geotessera.store' has no attribute {name!r}")
