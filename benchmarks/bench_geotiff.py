"""GeoTIFF export of one real-size tile: ``write_embedding_geotiff`` vs. a bare rasterio write.

The tile (1141 x 731 x 128 int8 + float32 scales, ``grid_0.05_52.05`` of the 3 x 3 store of
``bench_download``, cached under the temp directory) is memory-mapped as the download
pipeline does (``load_tile_arrays``, pages warm). The bare write gets the tile already
dequantised into a band-major float32 (128, H, W) array (427 MB, made in setup) and writes
it with one ``dst.write`` and the *same* creation options (``creation_options(compress)``:
tiled 256 x 256, band interleave, predictor 3, zstd level 1, ``NUM_THREADS=ALL_CPUS``), no
tags, no band descriptions, no temporary name. Ours dequantises in 256-row strips into a
reused buffer, writes tags and descriptions, and renames into place.

Cases: bare and ours for lzw (the default; bare lzw is the baseline), zstd and none. The
ratio column is relative to bare lzw: compare ours with the bare case of the same
compression (ours zstd / bare zstd, ours none / bare none). The MB/s column is the size of
the file written over the time. ``cpu_s`` (process CPU seconds, GDAL's threads included) is
in the JSON: steadier than wall time on a shared machine.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._store import build_options, cached_store
from benchmarks.harness import Case

STORE_BBOX = (0.0, 52.0, 0.3, 52.3)  # the 3 x 3 store of bench_download (cached)
TILE = (0.05, 52.05)
YEAR = 2024
OPTIONS = build_options(STORE_BBOX, 10.0, YEAR)
PARAMETERS = {"tile": list(TILE), "year": YEAR, "pixel_size_m": 10.0, "shape": [1141, 731, 128]}
TAGS = {"TESSERA_DATASET_VERSION": "1.0", "TESSERA_YEAR": str(YEAR), "TESSERA_DESCRIPTION": "benchmark"}


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads, GDAL's compressors included
    return r.ru_utime + r.ru_stime


@dataclass
class _State:
    work: Path
    quantized: Any
    scales: Any
    grid: Any
    band_major: np.ndarray | None = None

    @property
    def out(self) -> Path:
        return self.work / "out.tif"


def _setup(dequantised: bool) -> _State:
    from geotessera.datasets import DatasetId
    from geotessera.grid import Cell
    from geotessera.layouts import S3_LAYOUT
    from geotessera.tiles import load_tile_arrays, read_landmask_grid
    from geotessera.tiles.dequantize import dequantize_band_major

    root = cached_store(OPTIONS)
    ds, cell = DatasetId(), Cell.from_centre(*TILE)
    arrays = load_tile_arrays(
        root / S3_LAYOUT.embedding_key(ds, YEAR, cell), root / S3_LAYOUT.scales_key(ds, YEAR, cell)
    )
    grid = read_landmask_grid(root / S3_LAYOUT.landmask_key(ds, cell))
    if arrays.quantized.shape[0] < 1000:
        raise RuntimeError(f"expected a real-size tile, got {arrays.quantized.shape}")
    state = _State(Path(tempfile.mkdtemp(prefix="gt-bench-geotiff-")), arrays.quantized, arrays.scales, grid)
    h, w, nb = arrays.quantized.shape
    if dequantised:
        state.band_major = np.empty((nb, h, w), dtype=np.float32)
        dequantize_band_major(arrays.quantized, arrays.scales, state.band_major)
    else:
        np.add.reduce(arrays.quantized, axis=None, dtype=np.int64)  # fault the mapped pages in
    return state


def _reset(state: _State) -> None:
    state.out.unlink(missing_ok=True)


def _teardown(state: _State) -> None:
    shutil.rmtree(state.work, ignore_errors=True)


def _run_bare(state: _State, compress: str) -> dict[str, float]:
    import rasterio

    from geotessera.export.geotiff import creation_options

    assert state.band_major is not None
    nb, h, w = state.band_major.shape
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": nb,
        "height": h,
        "width": w,
        "crs": state.grid.crs.to_wkt(),
        "transform": state.grid.transform,
        "nodata": float("nan"),
        **creation_options(compress),
    }
    c0 = _cpu_s()
    with rasterio.open(state.out, "w", **profile) as dst:
        dst.write(state.band_major)
    return {"bytes": state.out.stat().st_size, "cpu_s": _cpu_s() - c0}


def _run_ours(state: _State, compress: str) -> dict[str, float]:
    from geotessera.export import write_embedding_geotiff

    q, s, grid = state.quantized, state.scales, state.grid
    c0 = _cpu_s()
    write_embedding_geotiff(state.out, q, s, grid, compress=compress, tags=TAGS)
    return {"bytes": state.out.stat().st_size, "cpu_s": _cpu_s() - c0}


def _case(compress: str, ours: bool, repeats: int) -> Case:
    if ours:
        return Case(
            name=f"write_embedding_geotiff {compress}",
            setup=lambda: _setup(dequantised=False),
            reset=_reset,
            run=lambda s: _run_ours(s, compress),
            teardown=_teardown,
            repeats=repeats,
            description=f"int8 + scales (memory-mapped) -> float32 GeoTIFF, {compress}, strips, atomic",
        )
    return Case(
        name=f"rasterio {compress} (bare)",
        baseline=compress == "lzw",
        setup=lambda: _setup(dequantised=True),
        reset=_reset,
        run=lambda s: _run_bare(s, compress),
        teardown=_teardown,
        repeats=repeats,
        description=f"one dst.write of the dequantised (128, H, W) float32 array, {compress}",
    )


def cases() -> list[Case]:
    """Bare and ours for lzw (baseline: bare lzw), zstd and none."""
    return [
        _case("lzw", False, 3),
        _case("lzw", True, 3),
        _case("zstd", False, 3),
        _case("zstd", True, 3),
        _case("none", False, 3),
        _case("none", True, 3),
    ]
