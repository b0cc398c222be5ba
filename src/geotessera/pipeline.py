"""Plan, then execute: fetch tiles verified and concurrently, and export them (NPY layout or GeoTIFF).

:func:`plan_tiles` decides everything without transferring a byte (what a dry
run prints); :func:`execute` runs the transfer engine and converts each tile to
GeoTIFF as soon as its files are on disk, on a small pool of converter threads.
One failed tile never stops the others: the :class:`DownloadResult` lists what
failed and why, and a rerun finishes the job (complete files are skipped by
their receipts, complete GeoTIFFs by their export record).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .datasets import DatasetId
from .errors import GeoTesseraError, InvalidInputError, OutputError
from .export import (
    check_output_dataset,
    discard_empty_claim,
    make_output_dir,
    normalize_bands,
    normalize_compress,
    read_sidecar,
    write_sidecar,
)
from .export._outputs import output_error
from .export.records import convert_tile, export_options, remove_temporaries, tiff_complete
from .files import is_complete
from .grid import Cell
from .layouts import (
    S3_LAYOUT,
    Layout,
    local_embedding_path,
    local_geotiff_path,
    local_landmask_path,
    local_scales_path,
)
from .outcome import DownloadResult, TileRef
from .progress import BytesReceived, Event, ItemDone, ItemFailed, ItemSkipped, PlanReady, ProgressSink, emit
from .registry import Registry
from .transfer import LocalSource, Source, TransferItem, queue_order, run

log = logging.getLogger(__name__)

Format = Literal["tiff", "npy"]
FORMATS = ("tiff", "npy")
FORMAT_ALIASES: dict[str, Format] = {
    "tiff": "tiff",
    "tif": "tiff",
    "geotiff": "tiff",
    "gtiff": "tiff",
    "npy": "npy",
    "numpy": "npy",
}
"""Accepted spellings of the formats (compared case-insensitively)."""


def normalize_format(fmt: str) -> Format:
    """``"tiff"`` or ``"npy"`` for any accepted spelling (``TIFF``, ``GeoTIFF``, ``tif``, ``NPY``...)."""
    key = str(fmt).strip().lower()
    if key not in FORMAT_ALIASES:
        raise InvalidInputError(
            f"unknown format {fmt!r}; choose tiff (also tif, geotiff) or npy (also numpy)"
        )
    return FORMAT_ALIASES[key]


@dataclass(frozen=True)
class TileJob:
    """What one tile needs: its source files (local paths once fetched) and its outputs."""

    tile: TileRef
    embedding: Path
    scales: Path
    landmask: Path
    outputs: tuple[Path, ...]
    temporary: tuple[Path, ...] = ()
    """Fetched files removed once the GeoTIFF exists (the quantised arrays of a tiff export)."""


@dataclass
class DownloadPlan:
    """Everything a download will do, decided before any transfer (``--dry-run`` prints it)."""

    dataset: DatasetId
    fmt: Format
    out_dir: Path
    jobs: list[TileJob]
    transfers: list[TransferItem]
    complete: list[TileRef]
    """Tiles whose outputs already exist (a rerun skips them)."""
    not_covered: list[TileRef]
    bands: list[int] | None = None
    compress: str = "lzw"
    bytes_total: int = 0
    """Bytes of all source objects of the planned tiles (from the manifests)."""

    @property
    def bytes_to_fetch(self) -> int:
        """Bytes of the transfers still needed (files already complete are counted out at run time)."""
        return sum(t.expected_size or 0 for t in self.transfers)

    @property
    def output_files(self) -> list[Path]:
        """Files the download creates (or keeps), in tile order, each once."""
        return list(dict.fromkeys(p for j in self.jobs for p in j.outputs))


def as_tile_refs(tiles: Iterable[Any], year: int | None = None) -> list[TileRef]:
    """Normalise ``(year, lon, lat)`` tuples, :class:`TileRef` or (with ``year``) :class:`Cell` objects."""
    out = []
    for t in tiles:
        if isinstance(t, TileRef):
            out.append(t)
        elif isinstance(t, Cell):
            if year is None:
                raise InvalidInputError("a year is needed to fetch cells")
            out.append(TileRef(year, t))
        else:
            try:
                y, lon, lat = t
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"expected (year, lon, lat) tiles, got {t!r}") from exc
            out.append(TileRef(int(y), Cell.from_centre(float(lon), float(lat))))
    return out


def plan_tiles(
    registry: Registry,
    source: Source,
    dataset: DatasetId,
    tiles: Iterable[TileRef],
    out_dir: str | os.PathLike[str],
    *,
    fmt: str = "tiff",
    bands: Sequence[int] | None = None,
    compress: str = "lzw",
    layout: Layout = S3_LAYOUT,
    reuse: Path | None = None,
) -> DownloadPlan:
    """Decide what to fetch and write for ``tiles`` into ``out_dir``, without transferring anything.

    For GeoTIFF output, quantised arrays already complete (by receipt) in the local tile
    directory ``reuse`` (a client's ``embeddings_dir``) or in a local mirror are read in
    place; those fetched only for the conversion land in ``out_dir`` and are removed after it.
    """
    out_fmt = fmt = normalize_format(fmt)
    band_list = normalize_bands(bands)
    comp = normalize_compress(compress)
    out = Path(out_dir)
    sidecar = read_sidecar(out)
    keep_npy = sidecar is not None and "npy" in (sidecar.get("formats") or [sidecar.get("format")])
    in_place = source if isinstance(source, LocalSource) and fmt == "tiff" else None
    jobs: list[TileJob] = []
    transfers: dict[Path, TransferItem] = {}
    complete: list[TileRef] = []
    not_covered: list[TileRef] = []
    options = export_options(dataset, band_list, comp)
    planned = sorted(set(tiles))
    covered = [t for t in planned if registry.has_tile(t.year, t.cell.lon, t.cell.lat)]
    covered_set = set(covered)
    not_covered = [t for t in planned if t not in covered_set]
    sizes = _sizes(registry, covered)
    bytes_total = 0
    for t in covered:
        c = t.cell
        keys = (
            layout.embedding_key(dataset, t.year, c),
            layout.scales_key(dataset, t.year, c),
            layout.landmask_key(dataset, c),
        )
        local = (
            out / local_embedding_path(t.year, c),
            out / local_scales_path(t.year, c),
            out / local_landmask_path(c),
        )
        grid_size, scales_size = sizes.get(t, (None, None))
        lm_size = registry.landmask_size(c.lon, c.lat)
        expected = (grid_size, scales_size, lm_size)
        bytes_total += sum(s or 0 for s in expected)
        if fmt == "tiff":
            tiff = out / local_geotiff_path(t.year, c)
            outputs: tuple[Path, ...] = (tiff,)
            if tiff_complete(tiff, options):
                complete.append(t)
                # quantised files a killed run fetched for this GeoTIFF and had no time to remove
                left = () if keep_npy else local[:2]
                jobs.append(TileJob(t, *local, outputs=outputs, temporary=left))
                continue
        else:
            outputs = local
            if all(
                is_complete(p, size, expected_key=key)
                for p, size, key in zip(local, expected, keys, strict=True)
            ):
                complete.append(t)
                jobs.append(TileJob(t, *local, outputs=outputs))
                continue
        paths = list(local)
        temporary: tuple[Path, ...] = ()
        for k, (key, dest, size) in enumerate(zip(keys, local, expected, strict=True)):
            if in_place is not None and k < 2 and _same_size(in_place.local_path(key), size):
                paths[k] = in_place.local_path(key)  # a mirror is read in place, never copied
                continue
            kept = reuse / dest.relative_to(out) if reuse is not None and k < 2 else None
            if fmt == "tiff" and kept is not None and is_complete(kept, size, expected_key=key):
                paths[k] = kept  # already downloaded (and verified) into the tile directory
                continue
            # (a mirror file of the wrong size goes through the copy, which reports it per tile)
            transfers.setdefault(dest, TransferItem(key, dest, expected_size=size, label=t.name))
        if fmt == "tiff" and not keep_npy:
            # fetched only to make the GeoTIFF: removed afterwards, unless the directory holds an npy download
            temporary = tuple(p for p in local[:2] if p in {tr.dest for tr in transfers.values()})
        jobs.append(TileJob(t, paths[0], paths[1], paths[2], outputs=outputs, temporary=temporary))
    return DownloadPlan(
        dataset=dataset,
        fmt=out_fmt,
        out_dir=out,
        jobs=jobs,
        transfers=list(transfers.values()),
        complete=complete,
        not_covered=not_covered,
        bands=band_list,
        compress=comp,
        bytes_total=bytes_total,
    )


def _same_size(path: Path, size: int | None) -> bool:
    try:
        return size is None or path.stat().st_size == size
    except OSError:
        return False


def _sizes(registry: Registry, tiles: list[TileRef]) -> dict[TileRef, tuple[int | None, int | None]]:
    out: dict[TileRef, tuple[int | None, int | None]] = {}
    for t in tiles:
        try:
            g, s = registry.file_sizes([(t.year, t.cell.lon, t.cell.lat)])
            out[t] = (g or None, s or None)
        except GeoTesseraError:
            out[t] = (None, None)
    return out


def execute(
    plan: DownloadPlan,
    source: Source,
    *,
    workers: int = 8,
    converters: int = 2,
    progress: ProgressSink | None = None,
) -> DownloadResult:
    """Fetch and export everything of ``plan``; never raises for a single tile's failure."""
    started = time.monotonic()
    result = DownloadResult(not_covered=list(plan.not_covered))
    complete = set(plan.complete)
    todo = [j for j in plan.jobs if j.tile not in complete]
    result.skipped = list(plan.complete)
    for j in plan.jobs:
        if j.tile in complete:
            result.files.extend(j.outputs)
            if any(p.exists() for p in j.temporary):
                remove_temporaries(j.outputs[0], j.temporary)
    by_dest = {t.dest for t in plan.transfers}
    needs: dict[Path, list[TileJob]] = {}
    remaining: dict[TileRef, int] = {}
    for j in todo:
        files = [p for p in (j.embedding, j.scales, j.landmask) if p in by_dest]
        remaining[j.tile] = len(files)
        for p in files:
            needs.setdefault(p, []).append(j)
    by_key = {t.key: t.dest for t in plan.transfers}
    lock = threading.Lock()
    failed_files: dict[TileRef, str] = {}
    announced: set[TileRef] = set()  # tiles whose ItemFailed was emitted
    pool = ThreadPoolExecutor(max_workers=max(1, converters), thread_name_prefix="geotessera-export")
    futures: dict[TileRef, Future[list[Path]]] = {}

    def announce(tile: TileRef, f: Future[list[Path]]) -> None:
        # a tile counts as done once its files are verified (npy) or its GeoTIFF is written
        if not f.cancelled() and f.exception() is None:
            emit(progress, ItemDone(key=tile.name))

    def finish(job: TileJob) -> None:
        if plan.fmt == "npy":
            f: Future[list[Path]] = Future()
            f.set_result(list(job.outputs))
        else:
            f = pool.submit(_convert, job, plan)
        futures[job.tile] = f
        f.add_done_callback(functools.partial(announce, job.tile))

    def sink(event: Event) -> None:
        if isinstance(event, ItemDone | ItemSkipped | ItemFailed) and event.key in by_key:
            dest = by_key[event.key]
            for job in needs.get(dest, []):
                error = event.error if isinstance(event, ItemFailed) else None
                with lock:
                    first_failure = error is not None and job.tile not in failed_files
                    if error is not None:
                        failed_files.setdefault(job.tile, error)
                        announced.add(job.tile)
                    remaining[job.tile] -= 1
                    ready = remaining[job.tile] == 0 and job.tile not in failed_files
                if first_failure and error is not None:  # the bar counts a tile's failure at once
                    emit(progress, ItemFailed(key=job.tile.name, error=error))
                if ready:
                    finish(job)
            if isinstance(event, ItemSkipped):  # already on disk: counts towards the byte total
                emit(progress, BytesReceived(event.key, event.bytes))
            return  # per-file outcomes are folded into per-tile events below
        emit(progress, event)

    emit(progress, PlanReady(items=len(todo), bytes=plan.bytes_to_fetch, label="tiles"))
    for j in todo:
        if remaining[j.tile] == 0:
            finish(j)
    try:
        queue = queue_order(plan.transfers, workers)  # largest first, a window of tiles at a time
        report = run(source, queue, workers=workers, progress=sink) if queue else None
        for f in report.failed if report is not None else []:
            for job in needs.get(f.item.dest, []):
                result.errors.setdefault(job.tile, f.exception)
        for tile in sorted(futures):
            try:
                result.files.extend(futures[tile].result())
                result.done.append(tile)
            except GeoTesseraError as exc:
                failed_files.setdefault(tile, str(exc))
                result.errors.setdefault(tile, exc)
            except OSError as exc:  # e.g. a disk that filled up while GDAL wrote
                err = output_error(exc, f"exporting {tile.name}")
                failed_files.setdefault(tile, str(err))
                result.errors.setdefault(tile, err)
            except Exception as exc:  # a bug: keep the batch going
                result.errors.setdefault(tile, exc)
                log.exception("unexpected error exporting %s", tile.name)
                failed_files.setdefault(tile, f"unexpected {type(exc).__name__}: {exc}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for tile, message in sorted(failed_files.items()):
        result.failed.append((tile, message))
        if tile not in announced:
            emit(progress, ItemFailed(key=tile.name, error=message))
    result.bytes_transferred = report.bytes_transferred if report is not None else 0
    result.seconds = time.monotonic() - started
    log.info("download finished: %s", result.summary())
    return result


def _convert(job: TileJob, plan: DownloadPlan) -> list[Path]:
    """Write one tile's GeoTIFF from its fetched files (once, under the tile's lock), then drop
    the temporary quantised copies; see :func:`~geotessera.export.records.convert_tile`."""
    t, tiff = job.tile, job.outputs[0]
    files = (job.embedding, job.scales, job.landmask)
    convert_tile(tiff, files, job.temporary, plan.dataset, t.year, t.cell, plan.bands, plan.compress)
    return [tiff]


def download(
    plan: DownloadPlan,
    source: Source,
    *,
    source_url: str,
    workers: int = 8,
    progress: ProgressSink | None = None,
) -> DownloadResult:
    """Execute ``plan`` into its output directory, recorded in its ``tessera_metadata.json``.

    The directory is claimed for the plan's dataset (sidecar written) before the first byte
    arrives, so even an interrupted run can never be resumed with another dataset; the
    sidecar then lists the complete tiles. ``source_url`` is recorded as where they came from.
    """
    check_output_dataset(plan.out_dir, plan.dataset, fmt=plan.fmt, bands=plan.bands)
    created = not plan.out_dir.exists()
    claimed = read_sidecar(plan.out_dir) is None
    make_output_dir(plan.out_dir)
    record = {"fmt": plan.fmt, "source_url": source_url, "bands": plan.bands, "compress": plan.compress}
    write_sidecar(plan.out_dir, plan.dataset, tiles=[], **record)  # type: ignore[arg-type]
    result = execute(plan, source, workers=workers, progress=progress)
    complete = [t.name for t in [*result.done, *result.skipped]]
    if complete:
        try:
            write_sidecar(plan.out_dir, plan.dataset, tiles=complete, **record)  # type: ignore[arg-type]
        except OutputError as exc:  # e.g. a full disk: the per-tile outcomes must still be told
            log.warning("could not update the sidecar of %s: %s", plan.out_dir, exc)
            result.sidecar_error = exc
    elif claimed:  # nothing came of this run: leave no sidecar claiming an empty directory
        discard_empty_claim(plan.out_dir, created=created)
    return result
