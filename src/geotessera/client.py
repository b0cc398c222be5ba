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
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .datasets import DatasetId
from .embeddings import EmbeddingReads
from .errors import (
    CoverageWarning,
    GeoTesseraError,
    GeoTesseraWarning,
    NotCoveredError,
    OutputError,
    SourceError,
)
from .export import (
    check_output_dataset,
    check_output_dir,
    default_tiles_dir,
    discard_empty_claim,
    make_output_dir,
    read_sidecar,
    write_sidecar,
)
from .grid import Cell
from .layouts import LOCAL_OUTPUT_LAYOUT, SOURCE_COOP_LAYOUT, Layout, layout_for, missing_manifest_hint
from .pipeline import (
    DownloadPlan,
    DownloadResult,
    TileRef,
    as_tile_refs,
    execute,
    normalize_format,
    plan_tiles,
)
from .progress import ProgressSink
from .regions import Region
from .registry import Registry, load_manifest
from .registry.coverage import warn_no_coverage
from .transfer import LocalSource, Source, source_from_url

log = logging.getLogger(__name__)

TileTuple = tuple[int, float, float]
"""(year, tile_lon, tile_lat) as returned by ``registry.load_blocks_for_region``."""


@dataclass
class Coverage:
    """Result of :meth:`GeoTessera.region_coverage`."""

    covered: list[TileRef] = field(default_factory=list)
    """Tiles (year, cell) that exist."""
    missing: dict[int, int] = field(default_factory=dict)
    """Per year, how many of the region's tiles do not exist."""
    missing_examples: list[TileRef] = field(default_factory=list)
    """A few of the missing tiles, for messages."""


class GeoTessera(EmbeddingReads):
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
        progress: ProgressSink | None = None,
        layout: str | None = None,
    ) -> None:
        self.dataset = DatasetId.parse(dataset_version, dataset_variant)
        self.settings = Settings.resolve(
            base_url=base_url, cache_dir=cache_dir, offline=offline, workers=workers
        )
        self.embeddings_dir = (
            Path(embeddings_dir)
            if embeddings_dir is not None
            else default_tiles_dir(self.dataset, Path.cwd())
        )
        self.progress = progress
        self.layout: Layout = layout_for(self.settings.base_url, layout)
        self._registry_args = {
            "registry_path": registry_path,
            "registry_dir": registry_dir,
            "registry_url": registry_url,
        }
        self._registry: Registry | None = None
        self._source: Source | None = None

    # --- composition ---------------------------------------------------------
    @property
    def source(self) -> Source:
        """Where tile bytes come from (created on first use)."""
        if self._source is None:
            # Source Cooperative serves no CRC64NVMe header: its objects are checked by size only.
            self._source = source_from_url(
                self.settings.base_url,
                pool_size=self.settings.workers,
                require_checksum=self.layout.name != SOURCE_COOP_LAYOUT.name,
            )
        return self._source

    @property
    def registry(self) -> Registry:
        """The manifest registry of this client's dataset (loaded offline-first on first use)."""
        if self._registry is None:
            manifest = self._load_manifest()
            self._registry = Registry(manifest)
        return self._registry

    def _load_manifest(self) -> Any:
        try:
            return load_manifest(
                self.dataset,
                base_url=self.settings.base_url,
                cache_dir=self.settings.cache_dir,
                offline=self.settings.offline,
                freshness_timeout_s=self.settings.freshness_timeout_s,
                layout=self.layout,
                **self._registry_args,  # type: ignore[arg-type]
            )
        except SourceError as exc:
            if exc.status != 404:
                raise
            if self.layout is LOCAL_OUTPUT_LAYOUT:
                raise NotCoveredError(
                    f"{exc}; run `geotessera registry build {self.settings.base_url}` to index this directory"
                ) from exc
            raise NotCoveredError(f"{exc} ({missing_manifest_hint(self.settings.base_url)})") from exc

        return self._registry

    def close(self) -> None:
        """Release pooled connections."""
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
        return self._run_plan(plan, progress)

    def _run_plan(self, plan: DownloadPlan, progress: ProgressSink | None) -> DownloadResult:
        check_output_dataset(plan.out_dir, self.dataset, fmt=plan.fmt, bands=plan.bands)
        created = not plan.out_dir.exists()
        claimed = read_sidecar(plan.out_dir) is None
        make_output_dir(plan.out_dir)
        record = {
            "fmt": plan.fmt,
            "source_url": self.settings.base_url,
            "bands": plan.bands,
            "compress": plan.compress,
        }
        write_sidecar(plan.out_dir, self.dataset, tiles=[], **record)  # type: ignore[arg-type]
        result = execute(plan, self.source, workers=self.settings.workers, progress=progress or self.progress)
        complete = [t.name for t in [*result.done, *result.skipped]]
        if complete:
            try:
                write_sidecar(plan.out_dir, self.dataset, tiles=complete, **record)  # type: ignore[arg-type]
            except OutputError as exc:  # e.g. a full disk: the per-tile outcomes must still be told
                log.warning("could not update the sidecar of %s: %s", plan.out_dir, exc)
                result.sidecar_error = exc
        elif claimed:  # nothing came of this run: leave no sidecar claiming an empty directory
            discard_empty_claim(plan.out_dir, created=created)
        return result

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
    def _mirror_paths(self, tile: TileRef) -> tuple[Path, Path, Path] | None:
        """(embedding, scales, landmask) read in place from a local mirror, or None."""
        if not isinstance(self.source, LocalSource):
            return None
        c, ds = tile.cell, self.dataset
        keys = (
            self.layout.embedding_key(ds, tile.year, c),
            self.layout.scales_key(ds, tile.year, c),
            self.layout.landmask_key(ds, c),
        )
        paths = tuple(self.source.local_path(k) for k in keys)
        return paths if all(p.exists() for p in paths) else None  # type: ignore[return-value]

    def _ensure_local(
        self, tiles: Sequence[TileRef], *, progress: ProgressSink | None = None
    ) -> tuple[dict[TileRef, tuple[Path, Path, Path]], DownloadResult | None]:
        """Local (embedding, scales, landmask) paths of the covered ``tiles``, fetching what is missing.

        A local mirror is read in place; otherwise the files are fetched (verified,
        concurrently) into ``embeddings_dir``. Returns the paths of the tiles that are
        available and the download result (None when nothing had to be fetched).
        """
        paths: dict[TileRef, tuple[Path, Path, Path]] = {}
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
        result = self._run_plan(plan, progress)
        bad = {t for t, _ in result.failed}
        for j in plan.jobs:
            if j.tile not in bad:
                paths[j.tile] = (j.embedding, j.scales, j.landmask)
        return paths, result

    def _tile_files(self, tile: TileRef, *, progress: ProgressSink | None = None) -> tuple[Path, Path, Path]:
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

    # --- information -----------------------------------------------------------
    def get_available_years(self) -> list[int]:
        """Years with at least one tile in this dataset."""
        return self.registry.available_years()

    def check_covered(self, tile: TileRef) -> None:
        """Raise :class:`NotCoveredError` naming the tile and the years that exist."""
        self.registry.require_tile(tile.year, tile.cell.lon, tile.cell.lat)
