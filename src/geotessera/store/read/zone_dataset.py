"""One zone group of a geoemb store as an xarray Dataset backed by dask, with its CRS attached."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pyproj import CRS

from ..._optional import require
from ..conventions import ZoneInfo, zone_group_name


def zone_dataset(
    store: Any, info: ZoneInfo, *, chunks: int, consolidated: bool, root_attrs: dict[str, Any]
) -> Any:
    """Zone ``info.zone`` of ``store`` (a path or zarr store) as an xarray Dataset.

    ``embeddings`` int8 (time, band, y, x) and ``scales`` float32 (time, y, x), dask arrays
    chunked ``chunks`` x ``chunks`` pixels (all bands, one year). A ``spatial_ref``
    coordinate carries ``crs_wkt`` and ``GeoTransform`` (CF), so rioxarray finds the CRS and
    transform; the root's ``geoemb:`` attributes are copied onto the Dataset.
    """
    xr = require("xarray", "zarr")
    require("dask", "zarr")  # xarray's chunked arrays

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"zarr\..*")
        ds = xr.open_zarr(
            store,
            group=zone_group_name(info.zone),
            chunks={"time": 1, "band": -1, "y": chunks, "x": chunks},
            consolidated=consolidated,
            zarr_format=3,
        )
    crs = CRS.from_epsg(info.epsg)
    t = info.transform
    ds = ds.assign_coords(
        spatial_ref=xr.DataArray(
            np.int32(0),
            attrs={
                "crs_wkt": crs.to_wkt(),
                "spatial_ref": crs.to_wkt(),
                "GeoTransform": f"{t.c} {t.a} {t.b} {t.f} {t.d} {t.e}",
            },
        )
    )
    for v in ("embeddings", "scales"):
        ds[v].attrs["grid_mapping"] = "spatial_ref"
    ds.attrs.update({k: v for k, v in root_attrs.items() if k.startswith("geoemb:")})
    return ds
