"""``GeoTessera``: the seed's Python API, composing registry, transfer, tiles and export.

>>> gt = GeoTessera()                                      # doctest: +SKIP
>>> emb, crs, transform = gt.fetch_embedding(0.15, 52.05, 2024)   # doctest: +SKIP

Tiles are downloaded (verified, concurrently, resumably) into ``embeddings_dir``
and persist there (by default the current directory for the default dataset, and
``./tessera-{vpath}-{variant}`` for another one); only manifests are cached under
``cache_dir``. A local mirror given as ``base_url`` is read in place.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from affine import Affine

from .arrays import TilePaths, as_points, iter_tile_strips, points_by_tile, read_tile, sample_tiles
from .config import RetryPolicy, Settings
from .datasets import DatasetId
from .errors import CoverageWarning, GeoTesseraError, GeoTesseraWarning, NotCoveredError, SourceError
from .export import check_output_dataset, check_output_dir, default_tiles_dir, read_sidecar
from .grid import Cell
from .layouts import LOCAL_OUTPUT_LAYOUT, SOURCE_COOP_LAYOUT, Layout, layout_for, missing_manifest_hint
from .pipeline import (
    DownloadPlan,
    DownloadResult,
    TileRef,
    as_tile_refs,
    download,
    normalize_format,
    plan_tiles,
)
from .progress import ProgressSink
from .regions import Region
from .registry import Manifest, Registry, load_manifest
from .registry.coverage import warn_no_coverage
from .transfer import LocalSource, Source, source_from_url

log = logging.getLogger(__name__)


class _RegistryArgs(TypedDict):
    """Where the manifest comes from when it is not the base URL's own."""

    registry_path: str | os.PathLike[str] | None
    registry_dir: str | os.PathLike[str] | None
    registry_url: str | None


@dataclass
class Coverage:
    """Result of :meth:`GeoTessera.region_coverage`."""

    covered: list[TileRef] = field(default_factory=list)
    """Tiles (year, cell) that exist."""
    missing: dict[int, int] = field(default_factory=dict)
    """Per year, how many of the region's tiles do not exist."""
    missing_examples: list[TileRef] = field(default_factory=list)
    """A few of the missing tiles, for messages."""


class GeoTessera:
    """Client for Tessera embeddings of one dataset (version + variant).

    Args:
        dataset_version: "v1" / "1.0" (default) or "v1.1" ...
        dataset_variant: "vultr" (default) or "cambridge" ...
        cache_dir: where manifests are cached (default ``$XDG_CACHE_HOME/geotessera``).
        registry_path: a manifest Parquet file to use instead of the remote one.
        registry_dir: a directory holding ``manifest.parquet`` (or legacy ``registry.parquet``).
        registry_url: URL of a manifest.
        embeddings_dir: where tiles are downloaded and kept. Default: the current directory
            for the default dataset (v1/vultr), ``./tessera-{vpath}-{variant}`` for another
            (e.g. ``./tessera-v1.1-cambridge``), so two datasets never share a directory.
        base_url: bucket URL or local mirror directory (default ``GEOTESSERA_BASE_URL`` or the public S3).
        offline: never touch the network for manifests.
        workers: concurrent downloads (default 8).
        retries: retries of a failed request (429, 5xx, resets, timeouts) after the first
            attempt, or a full :class:`~geotessera.config.RetryPolicy` (default 5 retries,
            ``GEOTESSERA_RETRIES``); tiles and manifests alike. 403 and 404 are never retried.
        progress: a sink receiving progress events of long operations.
        layout: "s3" (the seed's bucket layout) or "source-coop" (Source Cooperative); by
            default "source-coop" for its gateway URL, else "s3".
    """

    def __init__(
        self,
        dataset_version: str | None = None,
        dataset_variant: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        registry_path: str | os.PathLike[str] | None = None,
        registry_dir: str | os.PathLike[str] | None = None,
        registry_url: str | None = None,
        embeddings_dir: str | os.PathLike[str] | None = None,
        *,
        base_url: str | os.PathLike[str] | None = None,
        offline: bool | None = None,
        workers: int | None = None,
        retries: int | RetryPolicy | None = None,
        progress: ProgressSink | None = None,
        layout: str | None = None,
    ) -> None:
        self.dataset = DatasetId.parse(dataset_version, dataset_variant)
        self.settings = Settings.resolve(
            base_url=base_url, cache_dir=cache_dir, offline=offline, workers=workers, retries=retries
        )
        self.embeddings_dir = (
            Path(embeddings_dir)
            if embeddings_dir is not None
            else default_tiles_dir(self.dataset, Path.cwd())
        )
        self.progress = progress
        self.layout: Layout = layout_for(self.settings.base_url, layout)
        self._registry_args = _RegistryArgs(
            registry_path=registry_path, registry_dir=registry_dir, registry_url=registry_url
        )
        self._registry: Registry | None = None
        self._source: Source | None = None
        self._lock = threading.RLock()  # the lazy members above may be first touched from any thread

    # --- composition ---------------------------------------------------------
    @property
    def source(self) -> Source:
        """Where tile bytes come from (created on first use)."""
        with self._lock:
            if self._source is None:
                # Source Cooperative serves no CRC64NVMe header: its objects are checked by size only.
                self._source = source_from_url(
                    self.settings.base_url,
                    pool_size=self.settings.workers,
                    retry=self.settings.retry,
                    require_checksum=self.layout.name != SOURCE_COOP_LAYOUT.name,
                )
            return self._source

    @property
    def registry(self) -> Registry:
        """The manifest registry of this client's dataset (loaded offline-first on first use)."""
        with self._lock:
            if self._registry is None:
                self._registry = Registry(self._load_manifest())
            return self._registry

    def _load_manifest(self) -> Manifest:
        try:
            return load_manifest(
                self.dataset,
                base_url=self.settings.base_url,
                source=self.source,  # one HTTP client for manifests and tiles
                cache_dir=self.settings.cache_dir,
                offline=self.settings.offline,
                freshness_timeout_s=self.settings.freshness_timeout_s,
                retry=self.settings.retry,
                layout=self.layout,
                **self._registry_args,
            )
        except SourceError as exc:
            if exc.status != 404:
                raise
            if self.layout is LOCAL_OUTPUT_LAYOUT:
                raise NotCoveredError(
                    f"{exc}; run `geotessera registry build {self.settings.base_url}` to index this directory"
                ) from exc
            raise NotCoveredError(f"{exc} ({missing_manifest_hint(self.settings.base_url)})") from exc

    def close(self) -> None:
        """Release pooled connections."""
        with self._lock:
            if self._source is not None:
                self._source.close()
            self._source = None

    def __enter__(self) -> GeoTessera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- planning and downloading ----------------------------------------------
    def region_coverage(self, region: Region, years: Sequence[int], *, examples: int = 10) -> Coverage:
        """Which tiles of ``region`` exist for each year (vectorised over the region's cells)."""
        lon, lat = region.centres
        cov = Coverage()
        for year in years:
            found = self.registry.tiles_for_points(lon, lat, int(year)).covered
            cov.covered.extend(
                TileRef(int(year), Cell(int(a), int(b)))
                for a, b in zip(region.ix[found], region.iy[found], strict=True)
            )
            missing = np.flatnonzero(~found)
            cov.missing[int(year)] = len(missing)
            room = examples - len(cov.missing_examples)
            cov.missing_examples.extend(
                TileRef(int(year), Cell(int(region.ix[k]), int(region.iy[k])))
                for k in missing[: max(room, 0)]
            )
        return cov

    def plan(
        self,
        tiles: Iterable[Any],
        output_dir: str | os.PathLike[str],
        *,
        fmt: str = "tiff",
        bands: Sequence[int] | None = None,
        compress: str = "lzw",
    ) -> DownloadPlan:
        """Everything a download of ``tiles`` (``(year, lon, lat)`` or TileRef) would do, without doing it."""
        fmt = normalize_format(fmt)
        check_output_dir(output_dir)
        check_output_dataset(output_dir, self.dataset, fmt=fmt, bands=bands)
        return plan_tiles(
            self.registry,
            self.source,
            self.dataset,
            as_tile_refs(tiles),
            output_dir,
            fmt=fmt,
            bands=bands,
            compress=compress,
            layout=self.layout,
            reuse=self._reusable_tiles_dir(),
        )

    def _reusable_tiles_dir(self) -> Path | None:
        """``embeddings_dir`` when it holds tiles of this dataset (a GeoTIFF export reads them in place)."""
        try:
            data = read_sidecar(self.embeddings_dir)
        except GeoTesseraError:
            return None
        if data is None:
            return None
        held = (str(data.get("dataset_version")), str(data.get("dataset_variant")))
        return self.embeddings_dir if held == (self.dataset.version, self.dataset.variant) else None

    def download(self, plan: DownloadPlan, *, progress: ProgressSink | None = None) -> DownloadResult:
        """Execute a plan: verified concurrent downloads, exports, then the output sidecar.

        The directory is claimed for this dataset (sidecar written) before the first byte
        arrives, so even an interrupted run can never be resumed with another dataset.
        """
        return download(
            plan,
            self.source,
            source_url=self.settings.base_url,
            workers=self.settings.workers,
            progress=progress or self.progress,
        )

    def export_embedding_geotiffs(
        self,
        tiles_to_fetch: Iterable[Any],
        output_dir: str | os.PathLike[str],
        bands: Sequence[int] | None = None,
        compress: str = "lzw",
        *,
        progress: ProgressSink | None = None,
    ) -> list[str]:
        """Export tiles as float32 GeoTIFFs (one per tile and year) into ``output_dir``.

        Returns the paths of the GeoTIFFs that exist once the call ends. Tiles
        that failed are logged and reported with a :class:`CoverageWarning`;
        calling again resumes.
        """
        tiles = as_tile_refs(tiles_to_fetch)
        if not tiles:
            warn_no_coverage(
                "nothing to export: the list of tiles is empty (no tile of the region is covered?)"
            )
            return []
        plan = self.plan(tiles, output_dir, fmt="tiff", bands=bands, compress=compress)
        result = self.download(plan, progress=progress)
        self._warn_failures(result)
        return [str(p) for p in result.files]

    def _warn_failures(self, result: DownloadResult) -> None:
        if result.sidecar_error is not None:
            warnings.warn(str(result.sidecar_error), GeoTesseraWarning, stacklevel=3)
        if result.failed or result.not_covered:
            names = [f"{t.name} ({m})" for t, m in result.failed[:10]] + [
                f"{t.name} (not covered)" for t in result.not_covered[:10]
            ]
            msg = f"{len(result.failed) + len(result.not_covered)} tiles were not exported: " + "; ".join(
                names
            )
            log.warning(msg)
            warnings.warn(msg, CoverageWarning, stacklevel=3)

    # --- arrays ------------------------------------------------------------------
    def _mirror_paths(self, tile: TileRef) -> TilePaths | None:
        """(embedding, scales, landmask) read in place from a local mirror, or None."""
        if not isinstance(self.source, LocalSource):
            return None
        c, ds = tile.cell, self.dataset
        keys = (
            self.layout.embedding_key(ds, tile.year, c),
            self.layout.scales_key(ds, tile.year, c),
            self.layout.landmask_key(ds, c),
        )
        emb, scl, lm = (self.source.local_path(k) for k in keys)
        return (emb, scl, lm) if emb.exists() and scl.exists() and lm.exists() else None

    def _ensure_local(
        self, tiles: Sequence[TileRef], *, progress: ProgressSink | None = None
    ) -> tuple[dict[TileRef, TilePaths], DownloadResult | None]:
        """Local (embedding, scales, landmask) paths of the covered ``tiles``, fetching what is missing.

        A local mirror is read in place; otherwise the files are fetched (verified,
        concurrently) into ``embeddings_dir``. Returns the paths of the tiles that are
        available and the download result (None when nothing had to be fetched).
        """
        paths: dict[TileRef, TilePaths] = {}
        fetch: list[TileRef] = []
        for t in tiles:
            mirror = self._mirror_paths(t)
            if mirror is not None:
                paths[t] = mirror
            else:
                fetch.append(t)
        if not fetch:
            return paths, None
        plan = plan_tiles(
            self.registry,
            self.source,
            self.dataset,
            fetch,
            self.embeddings_dir,
            fmt="npy",
            layout=self.layout,
        )
        result = self.download(plan, progress=progress)
        bad = {t for t, _ in result.failed}
        for j in plan.jobs:
            if j.tile not in bad:
                paths[j.tile] = (j.embedding, j.scales, j.landmask)
        return paths, result

    def _tile_files(self, tile: TileRef, *, progress: ProgressSink | None = None) -> TilePaths:
        """Local paths of one tile; raises :class:`NotCoveredError` or the fetch's own error."""
        self.registry.require_tile(tile.year, tile.cell.lon, tile.cell.lat)
        paths, result = self._ensure_local([tile], progress=progress)
        if tile in paths:
            return paths[tile]
        exc = result.errors.get(tile) if result is not None else None
        if isinstance(exc, GeoTesseraError):
            raise exc
        message = result.failed[0][1] if result is not None and result.failed else "unknown error"
        raise SourceError(f"tile {tile.cell.name} for {tile.year} could not be fetched: {message}")

    def local_tile_files(
        self, tiles: Iterable[Any], *, progress: ProgressSink | None = None
    ) -> dict[TileRef, TilePaths]:
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

        Returns (array float32 (H, W, 128) -- or (H, W, len(bands)) -- NaN where nodata, the
        tile's CRS (rasterio, from its landmask), its Affine transform).
        """
        tile = TileRef(int(year), Cell.from_point(lon, lat))
        return read_tile(self._tile_files(tile, progress=progress), bands=bands, name=tile.cell.name)

    def iter_embedding_strips(
        self, lon: float, lat: float, year: int, *, rows: int = 256, bands: Sequence[int] | None = None
    ) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        """Stream a tile as row strips: ``(first_row, strip (rows, W, B) float32)``; memory stays
        near one strip. The CRS and transform are those of :meth:`fetch_embedding`."""
        tile = TileRef(int(year), Cell.from_point(lon, lat))
        return iter_tile_strips(self._tile_files(tile), rows=rows, bands=bands, name=tile.cell.name)

    def fetch_embeddings(
        self,
        tiles: Iterable[Any],
        *,
        bands: Sequence[int] | None = None,
        progress: ProgressSink | None = None,
    ) -> Iterator[tuple[int, float, float, npt.NDArray[np.float32], Any, Affine]]:
        """Yield ``(year, tile_lon, tile_lat, embedding (H, W, B) float32, crs, transform)`` per tile.

        All tiles are fetched first (concurrently, verified, into ``embeddings_dir``); then each
        is dequantised as it is yielded, so memory holds one tile at a time. Tiles that cannot be
        fetched are skipped with a :class:`CoverageWarning`.
        """
        refs = as_tile_refs(tiles)
        paths, result = self._ensure_local(refs, progress=progress)
        if result is not None:
            self._warn_failures(result)
        for t in refs:
            if t in paths:
                arr, crs, transform = read_tile(paths[t], bands=bands, name=t.cell.name)
                yield t.year, t.cell.lon, t.cell.lat, arr, crs, transform

    def sample_embeddings_at_points(
        self, points: npt.ArrayLike, year: int, *, progress: ProgressSink | None = None
    ) -> npt.NDArray[np.float32]:
        """Embeddings at points: (N, 128) float32, NaN rows where a point is not covered.

        ``points`` is an (N, 2) array-like of (lon, lat) in degrees; input order is kept.
        Each tile is fetched once (concurrently) and only the needed pixels are read.
        """
        pts = as_points(points)
        members = points_by_tile(pts, int(year))
        covered = [t for t in members if self.registry.has_tile(t.year, t.cell.lon, t.cell.lat)]
        paths, result = self._ensure_local(covered, progress=progress) if covered else ({}, None)
        missing = [t for t in members if t not in paths]
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
        return sample_tiles(pts, members, paths)

    # --- information -----------------------------------------------------------
    def get_available_years(self) -> list[int]:
        """Years with at least one tile in this dataset."""
        return self.registry.available_years()

    def check_covered(self, tile: TileRef) -> None:
        """Raise :class:`NotCoveredError` naming the tile and the years that exist."""
        self.registry.require_tile(tile.year, tile.cell.lon, tile.cell.lat)
