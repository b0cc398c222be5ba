"""The Zarr zone datasets interoperate with rioxarray: CRS and transform come through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
from affine import Affine

from geotessera.datasets import DatasetId
from geotessera.store import GeoTesseraZarr, build_zarr


@pytest.fixture(scope="module")
def small_zarr(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("interop") / "v1.zarr"
    build_zarr(tiny_store, out, dataset=DatasetId(), years=[2024], zones=[31])
    return out


def test_open_zone_is_understood_by_rioxarray(small_zarr: Path) -> None:
    with GeoTesseraZarr(small_zarr) as z:
        ds = z.open_zone(lon=0.15)
        assert ds.rio.crs.to_epsg() == 32631
        t = ds.rio.transform()
        assert isinstance(t, Affine) and t.a == 100 and t.e == -100
        # the transform places pixel centres at the x/y coordinates
        assert np.isclose(t.c + t.a / 2, float(ds.x[0])) and np.isclose(t.f + t.e / 2, float(ds.y[0]))
        assert dict(ds.embeddings.chunksizes)["x"][0] <= 1024  # chunked for work, not by shard


def test_a_year_the_store_lacks_is_an_error_not_nan(small_zarr: Path) -> None:
    from geotessera.errors import NotCoveredError

    with GeoTesseraZarr(small_zarr) as z:
        with pytest.raises(NotCoveredError, match="no data for 2019; its years: 2024"):
            z.sample_points([(0.15, 52.05)], year=2019)
        with pytest.raises(NotCoveredError, match="2019"):
            z.read_region((0.1, 52.0, 0.2, 52.1), year=2019)
        with pytest.raises(NotCoveredError, match="2019"):
            z.sample_points([(0.15, 52.05)], years=[2024, 2019])
