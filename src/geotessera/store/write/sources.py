"""Where the tiles of a Zarr build come from: manifests through the registry, bytes through the
transfer engine.

A build source is one of:

- an http(s) or ``s3://`` base URL: the manifest is loaded by the registry (cached, retried,
  verified like any manifest), then the tiles are fetched by the transfer engine, verified and
  concurrently, into a *kept* download directory in the npy output layout
  (``formats.md`` section 5). An interrupted build therefore resumes its download where it
  stopped (complete files are skipped by their receipts), and the directory is itself a valid
  source for later builds;
- a local directory in the bucket layout (a mirror), or a geotessera download output directory
  (``--format npy``), read in place: its manifest when it has one (``geotessera registry
  build``), else a scan of its tiles (:func:`~geotessera.registry.scan.scan_tree`).

Either way the tiles are the registry's rows of the dataset, filtered by years and zones.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ...config import Settings
from ...datasets import DatasetId
from ...errors import InvalidInputError, NotCoveredError, SourceError
from ...export import read_sidecar
from ...grid import Cell, utm_zone
from ...layouts import LOCAL_OUTPUT_LAYOUT, S3_LAYOUT, Layout
from ...pipeline import DownloadResult, TileRef, download, plan_tiles
from ...progress import ProgressSink
from ...registry import Registry, load_manifest
from ...registry.scan import scan_tree
from ...transfer import HttpSource, source_from_url

__all__ = ["TileFiles", "default_download_dir", "tile_files"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TileFiles:
    """One (tile, year) of a build and its files on disk."""

    year: int
    cell: Cell
    embedding: Path
    scales: Path
    landmask: Path


def default_download_dir(store: str | os.PathLike[str]) -> Path:
    """Where an http build keeps its tiles unless told otherwise: ``{store}.tiles`` beside the store."""
    p = Path(store)
    return p.with_name(p.name + ".tiles")


def _is_remote(text: str) -> bool:
    return text.split("://", 1)[0].lower() in ("http", "https", "s3") if "://" in text else False


def _wanted(registry: Registry, years: set[int] | None, zones: set[int] | None) -> list[TileRef]:
    out = []
    for year in registry.available_years():
        if years is not None and year not in years:
            continue
        out += [TileRef(year, c) for c in registry.cells(year) if zones is None or utm_zone(c.lon) in zones]
    if not out:
        raise NotCoveredError(
            f"no tiles of dataset {registry.dataset} in {registry.origin} for the requested years/zones "
            f"(years there: {registry.available_years()})"
        )
    return out


def tile_files(
    source: str | os.PathLike[str],
    dataset: DatasetId,
    *,
    years: set[int] | None,
    zones: set[int] | None,
    download_dir: str | os.PathLike[str],
    settings: Settings,
    progress: ProgressSink | None = None,
) -> list[TileFiles]:
    """The tiles of ``dataset`` (filtered by ``years``, ``zones``) from ``source``, on local disk.

    A remote source's tiles are downloaded into ``download_dir`` first (``settings``: workers,
    retries, manifest cache, offline). Raises :class:`NotCoveredError` when nothing matches,
    :class:`SourceError` when tiles could not be fetched (complete ones are kept: rerun).
    """
    text = os.fspath(source)
    if _is_remote(text):
        return _remote(text, dataset, years, zones, Path(download_dir), settings, progress)
    return _local(Path(text).expanduser(), dataset, years, zones)


def _remote(
    url: str,
    ds: DatasetId,
    years: set[int] | None,
    zones: set[int] | None,
    out: Path,
    settings: Settings,
    progress: ProgressSink | None,
) -> list[TileFiles]:
    src = source_from_url(url, pool_size=settings.workers, retry=settings.retry)
    assert isinstance(src, HttpSource)  # a remote URL makes an HttpSource
    with src:
        manifest = load_manifest(
            ds,
            base_url=src.base_url,
            source=src,
            cache_dir=settings.cache_dir,
            offline=settings.offline,
            freshness_timeout_s=settings.freshness_timeout_s,
            retry=settings.retry,
        )
        registry = Registry(manifest)
        wanted = _wanted(registry, years, zones)
        plan = plan_tiles(registry, src, ds, wanted, out, fmt="npy", layout=S3_LAYOUT)
        log.info("zarr build: %d tiles, %d files to fetch into %s", len(plan.jobs), len(plan.transfers), out)
        result = download(plan, src, source_url=url, workers=settings.workers, progress=progress)
    _raise_for_failures(result, out)
    return [TileFiles(j.tile.year, j.tile.cell, j.embedding, j.scales, j.landmask) for j in plan.jobs]


def _raise_for_failures(result: DownloadResult, out: Path) -> None:
    if not result.failed:
        return
    shown = "; ".join(f"{t.name} ({m})" for t, m in result.failed[:5])
    more = f"; and {len(result.failed) - 5} more" if len(result.failed) > 5 else ""
    kept = len(result.done) + len(result.skipped)
    raise SourceError(
        f"{len(result.failed)} tiles could not be fetched: {shown}{more}. The {kept} complete ones "
        f"are kept in {out}: rerun to fetch only the missing ones and build"
    )


def _local(root: Path, ds: DatasetId, years: set[int] | None, zones: set[int] | None) -> list[TileFiles]:
    if not root.is_dir():
        raise InvalidInputError(f"source {str(root)!r} is neither a directory nor an http(s) or s3:// URL")
    layout: Layout = S3_LAYOUT
    sidecar = read_sidecar(root)
    if sidecar is not None:  # a geotessera output directory
        formats = sidecar.get("formats") or [sidecar.get("format")]
        if "npy" not in formats:
            raise InvalidInputError(
                f"{root} holds GeoTIFF exports, not the quantised tiles a Zarr store is built from; "
                "download them with --format npy"
            )
        layout = LOCAL_OUTPUT_LAYOUT
    if (root / layout.manifest_key(ds)).is_file():
        registry = Registry(load_manifest(ds, base_url=str(root), layout=layout))
    else:
        scan = scan_tree(root, version=ds.version, variant=ds.variant)
        registry = Registry.from_table(scan.tiles, ds, landmasks=scan.landmasks)
    out: list[TileFiles] = []
    for t in _wanted(registry, years, zones):
        c = t.cell
        files = TileFiles(
            t.year,
            c,
            root / layout.embedding_key(ds, t.year, c),
            root / layout.scales_key(ds, t.year, c),
            root / layout.landmask_key(ds, c),
        )
        if files.embedding.is_file() and files.scales.is_file():
            out.append(files)
        else:
            log.warning("skipping %s: embedding or scales file missing under %s", t.name, root)
    if not out:
        raise NotCoveredError(f"no tile files of dataset {ds} found under {root} (layout {layout.name})")
    return out
