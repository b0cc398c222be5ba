"""Opt-in xarray integration: ``import geotessera.xr`` registers the ``.tessera`` accessor.

``GeoTesseraZarr.open_zone`` registers it itself; import this module to use the accessor on
zone datasets opened another way, e.g. ``xr.open_zarr(store, group="utm31")``::

    import geotessera.xr  # noqa: F401
    ds.tessera.sample(x, y, 2024)        # eastings, northings of the zone CRS (metres)
    ds.tessera.dequantise()              # lazy (time, y, x, band) float32

Never imported by ``geotessera/__init__`` (it needs the ``zarr`` extra: xarray, dask).
"""

from __future__ import annotations

from .store.read.accessor import TesseraAccessor

__all__ = ["TesseraAccessor"]
