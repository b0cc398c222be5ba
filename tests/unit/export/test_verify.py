"""The proof a GeoTIFF writer must give before its file reaches its final path."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geotessera.errors import OutputError
from geotessera.export import check_written_geotiff
from geotessera.export._verify import reserve_space


def _write(path: Path, count: int = 3, height: int = 300, width: int = 520) -> None:
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": count,
        "height": height,
        "width": width,
        "crs": "EPSG:32631",
        "transform": from_origin(0, 0, 10, 10),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "lzw",
    }
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rng.random((count, height, width), dtype=np.float32))


def test_a_whole_geotiff_passes(tmp_path: Path) -> None:
    p = tmp_path / "ok.tif"
    _write(p)
    check_written_geotiff(p, count=3, height=300, width=520)


def test_empty_cut_short_or_wrong_geotiffs_fail(tmp_path: Path) -> None:
    p = tmp_path / "t.tif"
    _write(p)
    whole = p.read_bytes()
    with pytest.raises(OutputError, match="holds 3 x 300 x 520"):
        check_written_geotiff(p, count=4, height=300, width=520)
    for cut in (0, 8, len(whole) // 2, len(whole) - 100):
        p.write_bytes(whole[:cut])
        with pytest.raises(OutputError, match=r"final\.tif"):
            check_written_geotiff(p, count=3, height=300, width=520, name="final.tif")


def test_a_failure_on_a_full_disk_says_so(tmp_path: Path) -> None:
    p = tmp_path / "t.tif"
    p.write_bytes(b"")
    with pytest.raises(OutputError, match=f"disk full \\({errno.errorcode[errno.ENOSPC]}\\)"):
        check_written_geotiff(p, count=1, height=1, width=1, needed=2**62)  # more than any disk


def test_space_is_reserved_across_writers_of_one_process(tmp_path: Path) -> None:
    import shutil

    free = shutil.disk_usage(tmp_path).free
    with reserve_space(tmp_path / "a.tif", free // 2):
        with (
            pytest.raises(OutputError, match="disk full"),
            reserve_space(tmp_path / "b.tif", free // 2 + free // 4),
        ):
            pass
        with reserve_space(tmp_path / "c.tif", free // 8):
            pass
    with reserve_space(tmp_path / "d.tif", free // 2 + free // 4):  # released: room again
        pass


def test_a_file_cut_after_its_directory_fails(tmp_path: Path) -> None:
    # GDAL writes the directory first: a file cut short still opens and reads its missing
    # blocks as nodata (what a full disk under GDAL's cache left at final paths)
    p = tmp_path / "t.tif"
    _write(p, count=8, height=600, width=600)
    whole = p.read_bytes()
    with rasterio.open(p) as ds:
        first = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
    for cut in (first, first + 10, len(whole) - 1):
        p.write_bytes(whole[:cut])
        with pytest.raises(OutputError, match=r"never written|not written completely"):
            check_written_geotiff(p, count=8, height=600, width=600)
