"""Reading dequantised embeddings from local tile files: whole tiles, row strips, points.

:class:`EmbeddingReads` holds the seed's array methods of
:class:`~geotessera.client.GeoTessera` (``fetch_embedding``, ``fetch_embeddings``,
``sample_embeddings_at_points``) and ``iter_embedding_strips``; the client supplies
where the tile files are (:meth:`EmbeddingReads._tile_files`, ``_ensure_local``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from .errors import CoverageWarning, InvalidInputError
from .grid import Cell, points_to_keys
from .pipeline import DownloadResult, TileRef, as_tile_refs
from .progress import ProgressSink
from .registry import Registry
from .tiles import dequantize_embedding, load_tile_arrays, open_tile
from .tiles.sampling import pixels_at

log = logging.getLogger(__name__)


class EmbeddingReads:
    """Array access to tiles; mixed into :class:`~geotessera.client.GeoTessera`."""

    @property
    def registry(self) -> Registry:
        raise NotImplementedError

    def _tile_files(self, tile: TileRef, *, progress: ProgressSink | None = None) -> tuple[Path, Path, Path]:
        raise NotImplementedError

    def _ensure_local(
        self, tiles: Sequence[TileRef], *, progress: ProgressSink | None = None
    ) -> tuple[dict[TileRef, tuple[Path, Path, Path]], DownloadResult | None]:
        raise NotImplementedError

    def _warn_failures(self, result: DownloadResult) -> None:
        raise NotImplementedError

    def local_tile_files(
        self, tiles: Iterable[Any], *, progress: ProgressSink | None = None
    ) -> dict[TileRef, tuple[Path, Path, Path]]:
        """Local ``(embedding .npy, scales .npy, landmask .tiff)`` paths of ``tiles``.

        ``tiles`` are ``(year, lon, lat)`` tuples or :class:`~geotessera.pipeline.TileRef`.
        Tiles not yet on disk are fetched (verified, concurrently) into ``embeddings_dir``;
        complete ones are never fetched again, and a local mirror is read in place. Tiles
        not covered or that failed are left out (with a :class:`CoverageWarning` for failures).
        """
        refs = as_tile_refs(tiles)
        covered = [t for t in refs if self.registry.has_tile(t.year, t.cell.lon, t.cell.lat)]
        paths, result = self._ensure_local(covered, progress=progress)
        if result is not None:
            self._warn_failures(result)
        return paths

    def fetch_embedding(
        self,
        lon: float,
        lat: float,
        year: int,
        *,
        bands: Sequence[int] | None = None,
        progress: ProgressSink | None = None,
    ) -> tuple[npt.NDArray[np.float32], Any, Affine]:
        """Dequantised embedding of the tile containing (lon, lat) for ``year``.

        Returns:
            (array float32 (H, W, 128) -- or (H, W, len(bands)) -- NaN where nodata,
            CRS of the tile (rasterio CRS, from the landmask), Affine transform).
        """
        tile = TileRef(int(year), Cell.from_point(lon, lat))
        emb, scales, landmask = self._tile_files(tile, progress=progress)
        arrays, grid = open_tile(emb, scales, landmask)
        from rasterio.crs import CRS

        out = dequantize_embedding(arrays.quantized, arrays.scales, bands=bands, name=tile.cell.name)
        return out, CRS.from_epsg(grid.epsg), grid.transform

    def iter_embedding_strips(
        self,
        lon: float,
        lat: float,
        year: int,
        *,
        rows: int = 256,
        bands: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        """Stream a tile as row strips: yields ``(first_row, strip (rows, W, B) float32)``.

        The tile is memory-mapped, so memory stays near one strip (rows x W x B x 4 bytes)
        however large the tile. The CRS and transform are those of :meth:`fetch_embedding`.
        """
        if rows < 1:
            raise InvalidInputError(f"rows must be >= 1, got {rows}")
        tile = TileRef(int(year), Cell.from_point(lon, lat))
        emb, scales, _ = self._tile_files(tile)
        arrays = load_tile_arrays(emb, scales)
        h = arrays.shape[0]
        for r0 in range(0, h, rows):
            r1 = min(r0 + rows, h)
            yield (
                r0,
                dequantize_embedding(
                    arrays.quantized[r0:r1], arrays.scales[r0:r1], bands=bands, name=tile.cell.name
                ),
            )

    def fetch_embeddings(
        self,
        tiles: Iterable[Any],
        *,
        bands: Sequence[int] | None = None,
        progress: ProgressSink | None = None,
    ) -> Iterator[tuple[int, float, float, npt.NDArray[np.float32], Any, Affine]]:
        """Yield ``(year, tile_lon, tile_lat, embedding (H, W, B) float32, crs, transform)`` per tile.

        All tiles are fetched first (concurrently, verified, into ``embeddings_dir``);
        then each is dequantised as it is yielded, so memory holds one tile at a time.
        Tiles that cannot be fetched are skipped with a :class:`CoverageWarning`.
        """
        from rasterio.crs import CRS

        refs = as_tile_refs(tiles)
        paths, result = self._ensure_local(refs, progress=progress)
        if result is not None:
            self._warn_failures(result)
        for t in refs:
            if t not in paths:
                continue
            emb, scales, landmask = paths[t]
            arrays, grid = open_tile(emb, scales, landmask)
            out = dequantize_embedding(arrays.quantized, arrays.scales, bands=bands, name=t.cell.name)
            yield t.year, t.cell.lon, t.cell.lat, out, CRS.from_epsg(grid.epsg), grid.transform

    def sample_embeddings_at_points(
        self, points: Any, year: int, *, progress: ProgressSink | None = None
    ) -> npt.NDArray[np.float32]:
        """Embeddings at points: (N, 128) float32, NaN rows where a point is not covered.

        ``points`` is an (N, 2) array-like of (lon, lat) in degrees; input order is kept.
        Each tile is fetched once (concurrently) and only the needed pixels are read.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise InvalidInputError(f"points must be (N, 2) lon/lat pairs, got shape {pts.shape}")
        out = np.full((len(pts), 128), np.nan, dtype=np.float32)
        if len(pts) == 0:
            return out
        kx, ky = points_to_keys(pts[:, 0], pts[:, 1])
        # group points by tile once: O(N log N), whatever the number of tiles
        keys, inverse = np.unique(np.stack([kx, ky], axis=1), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(keys)))[:-1])
        tiles = [TileRef(int(year), Cell.from_key(int(a), int(b))) for a, b in keys]
        members = dict(zip(tiles, groups, strict=True))
        covered = [t for t in tiles if self.registry.has_tile(t.year, t.cell.lon, t.cell.lat)]
        paths, result = self._ensure_local(covered, progress=progress)
        missing = [t for t in tiles if t not in paths]
        if missing:
            n_pts = sum(len(members[t]) for t in missing)
            failed = len(result.failed) if result is not None else 0
            msg = (
                f"{n_pts} of {len(pts)} points lie in tiles not covered for {year}"
                + (f" or that could not be fetched ({failed} tiles)" if failed else "")
                + ": their rows are NaN"
            )
            log.warning(msg)
            warnings.warn(msg, CoverageWarning, stacklevel=2)
        for t, (emb, scales, landmask) in paths.items():
            idx = members[t]
            arrays, grid = open_tile(emb, scales, landmask)
            out[idx] = pixels_at(arrays, grid, pts[idx], name=t.cell.name)
        return out
