"""Atomic file writers of the sample store builder: bytes, JSON, .npy, GeoTIFF, Parquet.

Each file is written to a temporary file in its destination directory, then moved into
place with ``os.replace``; :class:`_Writer` records the path and size of every file written.
Re-exported by :mod:`geotessera.sample.build`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from ..errors import OutputError
from ..files import atomic_path
from ..grid import PixelGrid


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; renamed onto ``path`` on success (no fsync:
    a synthetic store is rebuilt, not recovered)."""
    with atomic_path(path, fsync=False) as tmp:
        yield tmp


class _Writer:
    """Writes files under ``root`` atomically and records their paths and sizes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sizes: dict[Path, int] = {}

    def _done(self, path: Path) -> int:
        size = path.stat().st_size
        self.sizes[path] = size
        return size

    def record(self, rel: str) -> int:
        """Record a file written under ``root`` by someone else (e.g. the checksum sidecar)."""
        return self._done(self.root / rel)

    def bytes(self, rel: str, data: bytes) -> int:
        path = self.root / rel
        with _atomic(path) as tmp:
            tmp.write_bytes(data)
        return self._done(path)

    def json(self, rel: str, obj: Any) -> int:
        return self.bytes(rel, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8"))

    def npy(self, rel: str, array: npt.NDArray[Any]) -> int:
        path = self.root / rel
        with _atomic(path) as tmp, tmp.open("wb") as fh:
            np.save(fh, array, allow_pickle=False)
        return self._done(path)

    def npy_strips(
        self, rel: str, shape: tuple[int, ...], dtype: np.dtype[Any], strips: Iterator[npt.NDArray[Any]]
    ) -> int:
        """Write an .npy (v1 header, C order) of ``shape`` from row strips, never holding it whole."""
        path = self.root / rel
        rows = 0
        with _atomic(path) as tmp, tmp.open("wb") as fh:
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(fh, header)
            for strip in strips:
                if strip.dtype != dtype or strip.shape[1:] != shape[1:]:
                    raise OutputError(f"strip of {strip.dtype} {strip.shape} does not fit {dtype} {shape}")
                fh.write(np.ascontiguousarray(strip).data)
                rows += strip.shape[0]
            if rows != shape[0]:
                raise OutputError(f"{rel}: wrote {rows} rows, expected {shape[0]}")
        return self._done(path)

    def geotiff(
        self, rel: str, array: npt.NDArray[np.uint8], grid: PixelGrid, tags: dict[str, str] | None = None
    ) -> int:
        """A 1-band uint8 GeoTIFF on ``grid``: tiled 256 x 256, deflate."""
        import rasterio
        from rasterio.crs import CRS

        if array.shape != grid.shape:
            raise OutputError(f"{rel}: array shape {array.shape} differs from grid {grid.shape}")
        path = self.root / rel
        profile = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": 1,
            "dtype": "uint8",
            "crs": CRS.from_epsg(grid.epsg),
            "transform": grid.transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
        }
        with _atomic(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(array, 1)
            if tags:
                dst.update_tags(**tags)
        return self._done(path)

    def parquet(self, rel: str, table: pa.Table) -> int:
        path = self.root / rel
        with _atomic(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return self._done(path)
