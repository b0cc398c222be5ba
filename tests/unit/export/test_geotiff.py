"""GeoTIFF writer: strips, bands, nodata, georeferencing, tags (formats.md section 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from geotessera.errors import CorruptDataError, InvalidInputError, OutputError
from geotessera.export import write_embedding_geotiff
from geotessera.grid import PixelGrid
from geotessera.tiles import open_tile
from geotessera.tiles.dequantize import dequantize_band_major, dequantize_embedding


def _tile(h: int = 600, w: int = 70, seed: int = 0) -> tuple[np.ndarray, np.ndarray, PixelGrid]:
    rng = np.random.default_rng(seed)
    q = rng.integers(-127, 128, (h, w, 128), dtype=np.int8)
    s = rng.uniform(0.03, 0.1, (h, w)).astype(np.float32)
    s[5, 5] = np.nan
    s[h - 1, w - 1] = np.inf
    return q, s, PixelGrid(32631, Affine(10, 0, 300000, 0, -10, 5800000), (h, w))


@pytest.mark.parametrize("strip_rows", [16, 32, 256, 10_000])
@pytest.mark.parametrize("compress", ["none", "deflate"])
def test_strips_reassemble_the_tile(tmp_path: Path, strip_rows: int, compress: str) -> None:
    q, s, grid = _tile()
    out = write_embedding_geotiff(
        tmp_path / "t.tif",
        q,
        s,
        grid,
        compress=compress,
        strip_rows=strip_rows,
        tags={"TESSERA_YEAR": "2024"},
    )
    with rasterio.open(out) as ds:
        assert ds.transform == grid.transform and ds.crs.to_epsg() == 32631
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.tags()["TESSERA_YEAR"] == "2024"
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), dequantize_embedding(q, s))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_band_selection_keeps_original_indices(tmp_path: Path) -> None:
    q, s, grid = _tile(h=40)
    out = write_embedding_geotiff(tmp_path / "b.tif", q, s, grid, bands=[127, 3], compress="zstd")
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("Tessera_Band_127", "Tessera_Band_3")
        np.testing.assert_array_equal(
            ds.read().transpose(1, 2, 0), dequantize_embedding(q, s)[:, :, [127, 3]]
        )


def test_grid_mismatch_and_bad_options(tmp_path: Path) -> None:
    q, s, grid = _tile(h=40)
    with pytest.raises(OutputError, match="does not match"):
        write_embedding_geotiff(tmp_path / "x.tif", q, s, grid[0:39, :])
    with pytest.raises(InvalidInputError):
        write_embedding_geotiff(tmp_path / "x.tif", q, s, grid, compress="jpeg")
    with pytest.raises(InvalidInputError):
        write_embedding_geotiff(tmp_path / "x.tif", q, s, grid, bands=[0, 0])
    assert not list(tmp_path.iterdir())


def test_band_major_threads_split_rows_exactly() -> None:
    q, s, _ = _tile(h=601, w=33)
    ref = dequantize_embedding(q, s).transpose(2, 0, 1)
    for threads in (1, 2, 3):
        out = np.full((128, 601, 33), 7.0, np.float32)
        dequantize_band_major(q, s, out, threads=threads)
        np.testing.assert_array_equal(out, ref)


def test_open_tile_refuses_a_landmask_of_another_size(tmp_path: Path) -> None:
    q, s, grid = _tile(h=20, w=10)
    np.save(tmp_path / "e.npy", q)
    np.save(tmp_path / "s.npy", s)
    prof = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 1,
        "height": 21,
        "width": 10,
        "crs": "EPSG:32631",
        "transform": grid.transform,
    }
    with rasterio.open(tmp_path / "m.tif", "w", **prof) as ds:
        ds.write(np.ones((1, 21, 10), np.uint8))
    with pytest.raises(CorruptDataError, match="20 x 10 pixels but its landmask"):
        open_tile(tmp_path / "e.npy", tmp_path / "s.npy", tmp_path / "m.tif")
