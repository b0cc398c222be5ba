"""Embedding tiles to draw: GeoTIFF exports, ``.npy`` tiles (with their landmask), arrays in memory.

Every kind answers the two questions a mosaic asks, without holding more than a row
block of a tile in memory:

- :meth:`EmbeddingTile.sample` draws random valid pixels (N, B) float32, for fitting: the
  same pixels whatever the tile's format (a few random 256 x 256 blocks, uniformly within
  each), so a tile and its GeoTIFF export give the same colours;
- :meth:`EmbeddingTile.project` applies a linear map ``x @ A + b`` to every pixel and
  returns (K, H, W) float32 with NaN for nodata (water, non-finite or implausible scales).

``.npy`` tiles are projected straight from int8 (``(q @ A) * scale + b``), never dequantised
as a whole; GeoTIFFs are read in row strips.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from ..errors import CorruptDataError, InvalidInputError
from ..tiles import invalid_scale_mask, load_tile_arrays, read_landmask_grid
from ..tiles.inventory import describe_file, scan_tiles

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
_BLOCK_ROWS = 32
#: Sampling reads this many random blocks of :data:`SAMPLE_BLOCK` x :data:`SAMPLE_BLOCK` pixels
#: of a tile (the GeoTIFF exports' own blocks: each is decompressed once), all when fewer.
SAMPLE_BLOCKS = 8
SAMPLE_BLOCK = 256
WindowReader = Callable[[int, int, int, int], F32]
"""``read(r0, r1, c0, c1)``: the pixels of rows r0:r1, columns c0:c1 as (N, B) float32, row
major, NaN in every band of a pixel without data."""
LANDMASK_DIR = "global_0.1_degree_tiff_all"


class EmbeddingTile:
    """One georeferenced embedding tile: ``crs``, ``transform``, ``height``, ``width``, ``bands``."""

    name: str
    year: int | None
    crs: Any
    transform: Affine
    height: int
    width: int
    bands: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the tile's CRS units."""
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    def sample(self, rng: np.random.Generator, n: int) -> F32:
        """Up to ``n`` random valid pixels (M, B) float32, M <= n (nodata pixels are dropped).

        Drawn from :data:`SAMPLE_BLOCKS` random blocks of the tile's 256-pixel grid, an equal
        share uniformly within each: the same pixels for the same ``rng`` whatever the format.
        """
        side = SAMPLE_BLOCK
        nby, nbx = -(-self.height // side), -(-self.width // side)
        picked = np.sort(rng.choice(nby * nbx, size=min(SAMPLE_BLOCKS, nby * nbx), replace=False))
        share = -(-n // len(picked))
        parts = []
        with self._window_reader() as read:
            for k in picked:
                by, bx = divmod(int(k), nbx)
                r0, c0 = by * side, bx * side
                x = read(r0, min(r0 + side, self.height), c0, min(c0 + side, self.width))
                take = np.sort(rng.choice(x.shape[0], size=min(share, x.shape[0]), replace=False))
                parts.append(x[take])
        x = np.concatenate(parts)
        return np.ascontiguousarray(x[np.isfinite(x).all(axis=1)][:n], dtype=np.float32)

    @contextlib.contextmanager
    def _window_reader(self) -> Iterator[WindowReader]:
        """A :data:`WindowReader` of this tile, open while the block runs."""
        raise NotImplementedError
        yield  # pragma: no cover

    def project(self, a: F32, b: F32) -> F32:
        """``pixel @ a + b`` for every pixel: (K, H, W) float32, NaN where there is no data.

        ``a`` is (B, K) float32 and ``b`` (K,) float32.
        """
        raise NotImplementedError


def _check_projection(tile: EmbeddingTile, a: F32, b: F32) -> tuple[F32, F32]:
    """``a`` (B, K) and ``b`` (K,) checked, then padded with zero columns to a multiple of 8.

    OpenBLAS multiplies (N, 128) by (128, 8) about twice as fast as by (128, 3); callers
    keep the first K columns of what they compute.
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if a.ndim != 2 or a.shape[0] != tile.bands or b.shape != (a.shape[1],):
        raise InvalidInputError(
            f"{tile.name}: a projection of shape {a.shape} does not fit {tile.bands} bands"
        )
    pad = -a.shape[1] % 8
    return np.pad(a, ((0, 0), (0, pad))), np.pad(b, (0, pad))


def _row_blocks(height: int, fn: Any) -> None:
    """Run ``fn(r0, r1)`` over blocks of rows, on two threads (numpy releases the GIL)."""
    starts = range(0, height, _BLOCK_ROWS)
    threads = min(2, os.cpu_count() or 1)
    if threads > 1 and height > _BLOCK_ROWS:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda r0: fn(r0, min(r0 + _BLOCK_ROWS, height)), starts))
    else:
        for r0 in starts:
            fn(r0, min(r0 + _BLOCK_ROWS, height))


class NpyTile(EmbeddingTile):
    """A tile of the seed's ``.npy`` layout: int8 (H, W, B) + scales, georeferenced by its landmask."""

    def __init__(self, embedding: Path, scales: Path, landmask: Path, *, year: int | None = None) -> None:
        self.path = embedding
        self.scales_path = scales
        self.landmask_path = landmask
        self.name = embedding.stem
        self.year = year
        arrays = load_tile_arrays(embedding, scales)  # checks headers and shapes (memory-mapped)
        grid = read_landmask_grid(landmask)
        if grid.shape != arrays.shape:
            raise CorruptDataError(
                f"{embedding}: embedding is {arrays.shape[0]} x {arrays.shape[1]} pixels but its landmask "
                f"{landmask} is {grid.shape[0]} x {grid.shape[1]}"
            )
        self.height, self.width = arrays.shape
        self.bands = int(arrays.quantized.shape[2])
        self.crs = f"EPSG:{grid.epsg}"
        self.transform = grid.transform

    @contextlib.contextmanager
    def _window_reader(self) -> Iterator[WindowReader]:
        arrays = load_tile_arrays(self.path, self.scales_path)

        def read(r0: int, r1: int, c0: int, c1: int) -> F32:
            q = np.asarray(arrays.quantized[r0:r1, c0:c1]).reshape(-1, self.bands).astype(np.float32)
            sc = np.asarray(arrays.scales[r0:r1, c0:c1], dtype=np.float32).reshape(q.shape[0], -1)
            with np.errstate(invalid="ignore", over="ignore"):
                x = q * sc  # as the GeoTIFF export dequantises: the same float32 values
            x[~np.isfinite(sc).all(axis=1) | invalid_scale_mask(sc).any(axis=1)] = np.nan
            return x

        yield read

    def project(self, a: F32, b: F32) -> F32:
        k = int(np.shape(a)[1])
        a, b = _check_projection(self, a, b)
        arrays = load_tile_arrays(self.path, self.scales_path)
        q, s = arrays.quantized, arrays.scales
        out = np.empty((k, self.height, self.width), np.float32)
        per_band = s.ndim == 3

        def block(r0: int, r1: int) -> None:
            qb = np.asarray(q[r0:r1]).reshape(-1, self.bands).astype(np.float32)
            sb = np.asarray(s[r0:r1], dtype=np.float32).reshape(qb.shape[0], -1)
            with np.errstate(invalid="ignore", over="ignore"):
                y = np.asarray((qb * sb) @ a if per_band else (qb @ a) * sb, np.float32)
            y += b
            bad = ~np.isfinite(sb).all(axis=1) | invalid_scale_mask(sb).any(axis=1)
            y[bad] = np.nan
            out[:, r0:r1, :] = y[:, :k].T.reshape(k, r1 - r0, self.width)

        _row_blocks(self.height, block)
        return out


class GeoTiffTile(EmbeddingTile):
    """A float GeoTIFF of embedding bands (``geotessera download`` exports; NaN nodata)."""

    def __init__(self, path: Path, *, year: int | None = None) -> None:
        import rasterio

        self.path = path
        self.name = path.stem
        self.year = year
        try:
            with rasterio.open(path) as ds:
                if ds.crs is None:
                    raise InvalidInputError(f"{path} has no CRS: it cannot be placed on a map")
                self.crs = ds.crs
                self.transform = ds.transform
                self.height, self.width, self.bands = ds.height, ds.width, ds.count
                self.nodata = ds.nodata
        except rasterio.errors.RasterioIOError as exc:
            raise InvalidInputError(f"{path} is not a readable GeoTIFF ({exc})") from exc

    def _strip(self, ds: Any, r0: int, r1: int) -> F32:
        from rasterio.windows import Window

        x = ds.read(window=Window(0, r0, self.width, r1 - r0), out_dtype="float32")
        if self.nodata is not None and np.isfinite(self.nodata):
            x[x == self.nodata] = np.nan
        return np.asarray(x, np.float32)  # (B, rows, W)

    @contextlib.contextmanager
    def _window_reader(self) -> Iterator[WindowReader]:
        import rasterio
        from rasterio.windows import Window

        with rasterio.open(self.path) as ds:

            def read(r0: int, r1: int, c0: int, c1: int) -> F32:
                x = ds.read(window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float32")
                x = np.ascontiguousarray(x.reshape(self.bands, -1).T)
                if self.nodata is not None and np.isfinite(self.nodata):
                    x[x == self.nodata] = np.nan
                x[~np.isfinite(x).all(axis=1)] = np.nan
                return x

            yield read

    def project(self, a: F32, b: F32) -> F32:
        import rasterio

        k = int(np.shape(a)[1])
        a, b = _check_projection(self, a, b)
        out = np.empty((k, self.height, self.width), np.float32)
        with rasterio.open(self.path) as ds:
            for r0 in range(0, self.height, 256):
                r1 = min(r0 + 256, self.height)
                x = self._strip(ds, r0, r1).reshape(self.bands, -1)
                y = a.T @ x + b[:, None]
                out[:, r0:r1, :] = y[:k].reshape(k, r1 - r0, self.width)
        return out


@dataclass
class ArrayTile(EmbeddingTile):
    """A tile already in memory: ``data`` (H, W, B) float, ``crs``, ``transform`` (published dict form)."""

    data: npt.NDArray[np.floating]
    crs: Any
    transform: Affine
    name: str = "array"
    year: int | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise InvalidInputError(f"{self.name}: data must be (H, W, bands), got shape {self.data.shape}")
        self.height, self.width, self.bands = (int(v) for v in self.data.shape)
        if not isinstance(self.transform, Affine):
            self.transform = Affine(*list(self.transform)[:6])

    @contextlib.contextmanager
    def _window_reader(self) -> Iterator[WindowReader]:
        def read(r0: int, r1: int, c0: int, c1: int) -> F32:
            return np.asarray(self.data[r0:r1, c0:c1], np.float32).reshape(-1, self.bands)

        yield read

    def project(self, a: F32, b: F32) -> F32:
        k = int(np.shape(a)[1])
        a, b = _check_projection(self, a, b)
        out = np.empty((k, self.height, self.width), np.float32)

        def block(r0: int, r1: int) -> None:
            x = np.asarray(self.data[r0:r1], np.float32).reshape(-1, self.bands)
            y = x @ a + b
            out[:, r0:r1, :] = y[:, :k].T.reshape(k, r1 - r0, self.width)

        _row_blocks(self.height, block)
        return out


def _landmask_of(embedding: Path) -> Path:
    """``ROOT/global_0.1_degree_tiff_all/X.tiff`` for ``ROOT/<embeddings dir>/<year>/X/X.npy``."""
    name = f"{embedding.stem}.tiff"
    for parent in embedding.parents:
        cand = parent / LANDMASK_DIR / name
        if cand.is_file():
            return cand
    raise InvalidInputError(
        f"{embedding}: no landmask {LANDMASK_DIR}/{name} found above it; an .npy tile needs its "
        "landmask for its CRS and position (download with `geotessera download --format npy`)"
    )


def _npy_tile(path: Path, year: int | None) -> NpyTile:
    scales = path.with_name(f"{path.stem}_scales.npy")
    if not scales.is_file():
        raise InvalidInputError(f"{path}: its scales file {scales.name} is missing")
    return NpyTile(path, scales, _landmask_of(path), year=year)


def find_tiles(path: str | os.PathLike[str], *, year: int | None = None) -> list[EmbeddingTile]:
    """The embedding tiles of a download directory (GeoTIFF or NPY format), or of one file.

    Landmasks and other files are skipped. A directory holding several years needs ``year``.
    Raises :class:`InvalidInputError` when nothing usable is found.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{p} does not exist")
    if p.is_file():
        if p.suffix.lower() not in (".tif", ".tiff", ".npy"):
            raise InvalidInputError(f"{p} is not a GeoTIFF or .npy embedding tile")
        try:
            f = describe_file(p)
        except CorruptDataError as exc:  # the file named on the command line is not a raster: bad input
            raise InvalidInputError(str(exc)) from exc
        if f.kind == "embedding":
            return [_npy_tile(p, f.year)]
        if f.kind == "geotiff" or (f.kind == "unknown" and f.bands >= 2):
            return [GeoTiffTile(p, year=f.year)]
        raise InvalidInputError(f"{p} is a {f.kind} file ({f.bands} band(s), {f.dtype}), not embeddings")
    files = [f for f in scan_tiles(p) if f.kind in ("geotiff", "embedding")]
    years = sorted({f.year for f in files if f.year is not None})
    if year is not None:
        files = [f for f in files if f.year == year]
        if not files:
            have = ", ".join(map(str, years)) or "none"
            raise InvalidInputError(f"{p} holds no embedding tiles of {year} (years found: {have})")
    elif len(years) > 1:
        raise InvalidInputError(
            f"{p} holds tiles of several years ({', '.join(map(str, years))}); choose one (--year)"
        )
    if not files:
        raise InvalidInputError(f"no GeoTIFF or .npy embedding tiles found under {p}")
    kinds = {f.kind for f in files}
    if len(kinds) > 1:  # both formats of the same tiles: the .npy files hold every band
        log.info("%s holds GeoTIFF and .npy tiles; using the .npy tiles", p)
        files = [f for f in files if f.kind == "embedding"]
    return [
        _npy_tile(f.path, f.year) if f.kind == "embedding" else GeoTiffTile(f.path, year=f.year)
        for f in files
    ]


def as_tiles(items: Iterable[Any], *, year: int | None = None) -> list[EmbeddingTile]:
    """Tiles from the published ``tiles_data`` dicts, paths (files or directories) or tiles."""
    out: list[EmbeddingTile] = []
    for item in items:
        if isinstance(item, EmbeddingTile):
            out.append(item)
        elif isinstance(item, Mapping):
            if "data" in item and item["data"] is not None:
                out.append(
                    ArrayTile(
                        np.asarray(item["data"]),
                        item["crs"],
                        item["transform"],
                        name=Path(str(item.get("path", "array"))).stem,
                    )
                )
            elif "path" in item:
                out.extend(find_tiles(item["path"], year=year))
            else:
                raise InvalidInputError("a tile dict needs 'data' (with 'crs' and 'transform') or 'path'")
        elif isinstance(item, str | os.PathLike):
            out.extend(find_tiles(item, year=year))
        else:
            raise InvalidInputError(f"cannot use {type(item).__name__} as a tile (give a path or a dict)")
    if not out:
        raise InvalidInputError("no tiles given")
    bands = {t.bands for t in out}
    if len(bands) > 1:
        raise InvalidInputError(
            f"the tiles have different band counts ({sorted(bands)}); they cannot share colours"
        )
    return out
