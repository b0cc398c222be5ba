"""GeoTIFF export of one tile (``formats.md`` section 5).

float32, NaN nodata, the landmask's CRS and transform, tiled 256 x 256,
compression per option (default lzw), BigTIFF when needed, band descriptions
``Tessera_Band_{i}`` and ``TESSERA_*`` tags. The tile is dequantised and written
in 256-row strips, so memory stays near one strip (about 256 rows x W x bands x
4 bytes), and the file appears only once complete (written under a temporary
name in the same directory, then renamed).

A compression is named ``lzw``, ``deflate``, ``zstd`` or ``none``; deflate and
zstd take a level after a colon (``zstd:9``, ``deflate:1``). Each compression
comes with the layout that measured smallest for it on Tessera tiles
(``benchmarks/bench_geotiff.py``, README "GeoTIFF size and speed"): lzw and
deflate are pixel-interleaved without a predictor (for lzw this is the
published client's layout, the same pixels in slightly smaller tiles), zstd is
band-interleaved with the floating-point predictor, none is band-interleaved.
Compression runs on all cores (GDAL ``NUM_THREADS``). The default lzw tiles are encoded by
:mod:`~geotessera.export.lzw_tiles` (our C encoder, in parallel threads) into a header
GDAL writes; the other options, or a build without the C encoder,
go through GDAL.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError, OutputError
from ..files import atomic_path
from ..grid import PixelGrid
from ..tiles.dequantize import check_shapes, dequantize_band_major
from . import lzw_tiles
from ._outputs import output_error
from ._verify import check_written_geotiff, reserve_space
from .tile_index import TiffLayoutError

log = logging.getLogger(__name__)

COMPRESSIONS = ("lzw", "deflate", "zstd", "none")
BLOCK = 256

#: Levels a compression takes after a colon: (lowest, highest, default).
LEVELS: Final[dict[str, tuple[int, int, int]]] = {"deflate": (1, 12, 6), "zstd": (1, 22, 1)}
#: Interleave and TIFF predictor (1 = none, 3 = floating point) of each compression.
LAYOUTS: Final[dict[str, tuple[str, int]]] = {
    "lzw": ("pixel", 1),
    "deflate": ("pixel", 1),
    "zstd": ("band", 3),
    "none": ("band", 1),
}
_LEVEL_OPTION: Final = {"deflate": "zlevel", "zstd": "zstd_level"}


@dataclass(frozen=True, slots=True)
class Compression:
    """A GeoTIFF compression and its level (``None`` for lzw and none)."""

    name: str
    level: int | None = None

    @classmethod
    def parse(cls, spec: str | None) -> Compression:
        """Parse ``lzw``, ``deflate[:LEVEL]``, ``zstd[:LEVEL]`` or ``none`` (case-insensitive).

        Raises :class:`InvalidInputError` for an unknown name, a level on lzw or none,
        or a level outside the compression's range (deflate 1-12, zstd 1-22).
        """
        text = (spec or "none").strip().lower()
        name, sep, level_text = text.partition(":")
        name = name.strip()
        if name not in COMPRESSIONS:
            raise InvalidInputError(
                f"unknown compression {spec!r}; choose one of {', '.join(COMPRESSIONS)} "
                "(deflate and zstd take a level, e.g. zstd:9)"
            )
        if name not in LEVELS:
            if sep:
                raise InvalidInputError(f"compression {name} takes no level (got {spec!r})")
            return cls(name)
        low, high, default = LEVELS[name]
        if not sep:
            return cls(name, default)
        level_text = level_text.strip()
        if not level_text.isdigit() or not low <= int(level_text) <= high:
            raise InvalidInputError(f"{name} level must be an integer {low}-{high}, got {level_text!r}")
        return cls(name, int(level_text))

    @property
    def spec(self) -> str:
        """Canonical text: the name alone at the default level, else ``name:level``."""
        if self.level is None or self.level == LEVELS[self.name][2]:
            return self.name
        return f"{self.name}:{self.level}"


def normalize_compress(compress: str | None) -> str:
    """Validate a compression (``zstd:9`` style levels allowed); returns its canonical text."""
    return Compression.parse(compress).spec


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
    compress: str,
    *,
    interleave: str | None = None,
    predictor: int | None = None,
    threads: int | str = "ALL_CPUS",
) -> dict[str, object]:
    """GTiff creation options for a float32 embedding export.

    ``interleave`` (``pixel``/``band``) and ``predictor`` (1, 2 or 3) override the
    compression's layout (:data:`LAYOUTS`); ``threads`` is GDAL's ``NUM_THREADS``.
    """
    c = Compression.parse(compress)
    layout_interleave, layout_predictor = LAYOUTS[c.name]
    if interleave not in (None, "pixel", "band"):
        raise InvalidInputError(f"interleave must be pixel or band, got {interleave!r}")
    if predictor not in (None, 1, 2, 3):
        raise InvalidInputError(f"predictor must be 1, 2 or 3, got {predictor!r}")
    opts: dict[str, object] = {
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "interleave": interleave or layout_interleave,
        "bigtiff": "IF_SAFER",
        "num_threads": str(threads),
    }
    if c.name != "none":
        opts["compress"] = c.name
        pred = layout_predictor if predictor is None else predictor
        if pred != 1:
            opts["predictor"] = pred
        if c.level is not None:
            opts[_LEVEL_OPTION[c.name]] = c.level
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
    threads: int | str = "ALL_CPUS",
    interleave: str | None = None,
    predictor: int | None = None,
) -> Path:
    """Dequantise a tile strip by strip and write it as a float32 GeoTIFF.

    Args:
        path: output file; written atomically (temporary name, then rename).
        quantized: int8 (H, W, 128), may be memory-mapped.
        scales: float32 (H, W) or (H, W, 128).
        grid: the landmask's pixel grid; its shape must equal (H, W).
        bands: 0-based band indices to keep (default all 128).
        compress: lzw, deflate, zstd or none; deflate and zstd take a level (``zstd:9``).
        tags: dataset-level tags (``TESSERA_*``).
        strip_rows: rows dequantised at once (memory ~ strip_rows x W x bands x 4 bytes);
            a multiple of 256 lets GDAL write whole pixel-interleaved blocks without its cache.
        threads: GDAL's compression threads (``NUM_THREADS``: a number or ``ALL_CPUS``).
        interleave, predictor: override the compression's layout (:data:`LAYOUTS`).

    Returns:
        The output path.
    """
    check_shapes(quantized.shape, scales.shape, name=str(path))
    h, w, nb = quantized.shape
    if grid.shape != (h, w):
        raise OutputError(f"{path}: landmask grid {grid.shape} does not match embedding {(h, w)}")
    strip = max(16, (strip_rows // 16) * 16)  # GDAL merges partial blocks in its cache
    strips = ((r0, quantized[r0 : r0 + strip], scales[r0 : r0 + strip]) for r0 in range(0, h, strip))
    return write_embedding_strips(
        path,
        grid,
        nb,
        strips,
        bands=bands,
        compress=compress,
        tags=tags,
        threads=threads,
        interleave=interleave,
        predictor=predictor,
        strips_kept=True,  # views of the caller's arrays, unchanged while we write
    )


def write_embedding_strips(
    path: str | os.PathLike[str],
    grid: PixelGrid,
    n_bands: int,
    strips: Iterable[tuple[int, npt.NDArray[np.int8], npt.NDArray[np.float32]]],
    *,
    bands: Sequence[int] | None = None,
    compress: str = "lzw",
    tags: Mapping[str, str] | None = None,
    threads: int | str = "ALL_CPUS",
    interleave: str | None = None,
    predictor: int | None = None,
    strips_kept: bool = False,
) -> Path:
    """Write a float32 GeoTIFF of ``grid`` from row strips of quantised values.

    The writer behind :func:`write_embedding_geotiff`, for sources that produce rows in
    strips (a Zarr store's region): ``strips`` yields ``(first row, int8 (h, W, n_bands),
    scales (h, W) or (h, W, n_bands))`` covering the grid's rows; each is dequantised
    (:func:`~geotessera.tiles.dequantize.dequantize_band_major`: NaN where the scale is not
    usable) and written at once. Same file layout, tags, band descriptions and atomic write as
    :func:`write_embedding_geotiff`; memory is one strip.

    A source may refill the same arrays for each strip: a strip is not read once the next
    is asked for. ``strips_kept=True`` says each strip's arrays stay unchanged until the call
    returns (views of one array): the LZW encoder then reads whole rows of tiles in place,
    while the next strips are produced, instead of copying them.
    """
    import rasterio

    h, w = grid.shape
    band_list = normalize_bands(bands, n_bands)
    out_bands = list(range(n_bands)) if band_list is None else band_list
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": len(out_bands),
        "height": h,
        "width": w,
        "crs": grid.crs.to_wkt(),
        "transform": grid.transform,
        "nodata": float("nan"),
        **creation_options(compress, interleave=interleave, predictor=predictor, threads=threads),
    }
    final = Path(path)
    need = h * w * len(out_bands) * 4 + (1 << 20)  # uncompressed, plus room for the header
    # The default layout's tiles are encoded by our parallel LZW encoder (the same bytes as
    # GDAL's, faster): GDAL then writes only the header, every tile left empty to be filled.
    fast = (
        profile.get("compress") == "lzw"
        and profile.get("interleave") == "pixel"
        and "predictor" not in profile
        and lzw_tiles.usable(w, len(out_bands))
    )
    if fast:
        profile["sparse_ok"] = True
        if need * 3 // 2 >= 1 << 32:  # LZW may grow noise by half: past a classic TIFF's offsets
            profile["bigtiff"] = "YES"
    with reserve_space(final, need), atomic_path(final) as tmp:
        try:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.update_tags(**dict(tags or {}))
                for i, b in enumerate(out_bands, start=1):
                    dst.set_band_description(i, f"Tessera_Band_{b}")
                if not fast:
                    _write_strips(dst, strips, (h, w), n_bands, band_list, final)
            if fast:
                lzw_tiles.fill_lzw_tiles(
                    tmp,
                    (h, w),
                    n_bands,
                    strips,
                    bands=band_list,
                    threads=threads,
                    name=final.name,
                    kept=strips_kept,
                )
            # GDAL may close a file cut short by a full disk without an error: prove it whole (the
            # tiles we wrote ourselves raised on any failed write: their places are checked only)
            check_written_geotiff(
                tmp,
                count=len(out_bands),
                height=h,
                width=w,
                name=final,
                needed=need,
                decode_last_block=not fast,
            )
        except (rasterio.errors.RasterioError, OSError) as exc:
            raise output_error(exc, f"writing {final}") from exc
        except TiffLayoutError as exc:  # GDAL's header is not what the encoder fills
            raise OutputError(f"writing {final}: {exc}") from exc
    log.debug("wrote %s (%d bands, %s)", final, len(out_bands), compress)
    return final


def _write_strips(
    dst: Any,
    strips: Iterable[tuple[int, npt.NDArray[np.int8], npt.NDArray[np.float32]]],
    shape: tuple[int, int],
    n_bands: int,
    band_list: list[int] | None,
    final: Path,
) -> None:
    """Dequantise each strip band-major and write it through GDAL (every layout but the default)."""
    import rasterio.windows

    h, w = shape
    nout = n_bands if band_list is None else len(band_list)
    buf = np.empty(0, dtype=np.float32)
    for r0, q, sc in strips:
        n = q.shape[0]
        if q.shape[1:] != (w, n_bands) or r0 < 0 or r0 + n > h:
            raise OutputError(f"{final}: strip of {q.shape} at row {r0} does not fit {h} x {w}")
        if buf.size < nout * n * w:
            buf = np.empty(nout * n * w, dtype=np.float32)
        part = buf[: nout * n * w].reshape(nout, n, w)
        dequantize_band_major(q, sc, part, bands=band_list, name=final.name)
        dst.write(part, window=rasterio.windows.Window(0, r0, w, n))
