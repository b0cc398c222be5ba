"""GeoTIFF export of one tile (``formats.md`` section 5).

float32, NaN nodata, the landmask's CRS and transform, tiled 256 x 256,
compression per option (default lzw) with the floating-point predictor,
BigTIFF when needed, band descriptions ``Tessera_Band_{i}`` and ``TESSERA_*``
tags. The tile is dequantised and written in row strips, so memory stays near
one strip (about 256 rows x W x bands x 4 bytes), and the file appears only once
complete (written under a temporary name in the same directory, then renamed).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError, OutputError
from ..grid import PixelGrid
from ..tiles.dequantize import check_shapes, dequantize_band_major
from ..transfer.atomic import atomic_path
from ._outputs import output_error
from ._verify import check_written_geotiff, reserve_space

log = logging.getLogger(__name__)

COMPRESSIONS = ("lzw", "deflate", "zstd", "none")
BLOCK = 256


def normalize_compress(compress: str | None) -> str:
    """Validate a compression name; returns one of :data:`COMPRESSIONS`."""
    c = (compress or "none").strip().lower()
    if c not in COMPRESSIONS:
        raise InvalidInputError(f"unknown compression {compress!r}; choose one of {', '.join(COMPRESSIONS)}")
    return c


def normalize_bands(bands: Sequence[int] | None, n_bands: int = 128) -> list[int] | None:
    """Validate band indices (0-based, unique, within 0..n_bands-1); None means all."""
    if bands is None:
        return None
    out = [int(b) for b in bands]
    if not out:
        raise InvalidInputError("band list is empty")
    bad = [b for b in out if not 0 <= b < n_bands]
    if bad:
        raise InvalidInputError(f"band indices {bad} are outside 0..{n_bands - 1}")
    if len(set(out)) != len(out):
        raise InvalidInputError(f"band indices {out} contain duplicates")
    return out


def creation_options(
    compress: str, *, predictor: int | None = None, threads: int | str = "ALL_CPUS"
) -> dict[str, object]:
    """GTiff creation options for a float32 embedding export."""
    c = normalize_compress(compress)
    opts: dict[str, object] = {
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "interleave": "band",
        "bigtiff": "IF_SAFER",
        "num_threads": str(threads),
    }
    if c != "none":
        opts["compress"] = c
        opts["predictor"] = 3 if predictor is None else predictor
        if c == "zstd":
            opts["zstd_level"] = 1
    return opts


def write_embedding_geotiff(
    path: str | os.PathLike[str],
    quantized: npt.NDArray[np.int8],
    scales: npt.NDArray[np.float32],
    grid: PixelGrid,
    *,
    bands: Sequence[int] | None = None,
    compress: str = "lzw",
    tags: Mapping[str, str] | None = None,
    strip_rows: int = BLOCK,
) -> Path:
    """Dequantise a tile strip by strip and write it as a float32 GeoTIFF.

    Args:
        path: output file; written atomically (temporary name, then rename).
        quantized: int8 (H, W, 128), may be memory-mapped.
        scales: float32 (H, W) or (H, W, 128).
        grid: the landmask's pixel grid; its shape must equal (H, W).
        bands: 0-based band indices to keep (default all 128).
        compress: lzw, deflate, zstd or none.
        tags: dataset-level tags (``TESSERA_*``).
        strip_rows: rows dequantised at once (memory ~ strip_rows x W x bands x 4 bytes).

    Returns:
        The output path.
    """
    import rasterio

    check_shapes(quantized.shape, scales.shape, name=str(path))
    h, w, nb = quantized.shape
    if grid.shape != (h, w):
        raise OutputError(f"{path}: landmask grid {grid.shape} does not match embedding {(h, w)}")
    band_list = normalize_bands(bands, nb)
    out_bands = list(range(nb)) if band_list is None else band_list
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": len(out_bands),
        "height": h,
        "width": w,
        "crs": grid.crs.to_wkt(),
        "transform": grid.transform,
        "nodata": float("nan"),
        **creation_options(compress),
    }
    strip = max(16, (strip_rows // 16) * 16)  # GDAL merges partial blocks in its cache
    buf = np.empty((len(out_bands), min(strip, h), w), dtype=np.float32)
    final = Path(path)
    need = h * w * len(out_bands) * 4 + (1 << 20)  # uncompressed, plus room for the header
    with reserve_space(final, need), atomic_path(final) as tmp:
        try:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.update_tags(**dict(tags or {}))
                for i, b in enumerate(out_bands, start=1):
                    dst.set_band_description(i, f"Tessera_Band_{b}")
                for r0 in range(0, h, strip):
                    r1 = min(r0 + strip, h)
                    part = buf[:, : r1 - r0]
                    dequantize_band_major(
                        quantized[r0:r1], scales[r0:r1], part, bands=band_list, name=final.name
                    )
                    dst.write(part, window=rasterio.windows.Window(0, r0, w, r1 - r0))
            # GDAL may close a file cut short by a full disk without an error: prove it whole
            check_written_geotiff(tmp, count=len(out_bands), height=h, width=w, name=final, needed=need)
        except (rasterio.errors.RasterioError, OSError) as exc:
            raise output_error(exc, f"writing {final}") from exc
    log.debug("wrote %s (%d bands, %s)", final, len(out_bands), compress)
    return final
