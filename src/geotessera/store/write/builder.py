"""Tiles -> one sharded Zarr v3 store per dataset (``formats.md`` §6), resumable, shard by shard.

The tiles come from :mod:`.sources` (the registry's rows; a remote source's files fetched by
the transfer engine into a kept download directory). Plan: every (zone, year) tile is placed
on its zone's grid at ``col = floor((tile_x0 - x0) / res)``, ``row = floor((y0 - tile_y0) / res)``;
tiles are grouped by the shards they touch. A worker writes one shard of
``embeddings`` and one of ``scales`` (see :mod:`.shards`), then a receipt per
array; a shard is complete only by its receipt, and a receipt records the tiles
and the CRC64NVMe of their files, so adding a tile or a year rewrites only the
shards it touches. Zone grids have a fixed origin (easting 0, a northing north
of all data), so a later build only grows a zone east or south (a resize) and
its shards line up with earlier ones; absent shards cost nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..._optional import require
from ...config import Settings
from ...datasets import DatasetId
from ...errors import CorruptDataError, InvalidInputError
from ...progress import ItemDone, ItemSkipped, PlanReady, ProgressSink, emit
from ...tasks import map_bounded
from ..conventions import check_depths, depth_array_name, parse_root, parse_zone, zone_group_name
from ..layout import ArrayLayout
from ..shard_record import RECORD_ATTR, merged_record
from .metadata import (
    ZoneGrid,
    consolidate,
    open_root,
    prepare_zone,
    store_lock,
    sweep_temporaries,
    zone_grid,
)
from .shards import SHARD, ShardTask, shard_complete, write_shard_task
from .sources import default_download_dir, tile_files
from .tiles import TileInput, pixel_size_of, tile_inputs

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build did: shards written / skipped (already complete by receipt), bytes, timing."""

    store: Path
    zones: list[int] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    tiles: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    bytes_written: int = 0
    invalid_scale_pixels: int = 0
    elapsed_s: float = 0.0


def _plan(
    tiles: list[TileInput], zg: ZoneGrid
) -> dict[tuple[int, int, int], list[tuple[TileInput, int, int]]]:
    """(year, shard_row, shard_col) -> [(tile, zone row of tile row 0, zone col of tile col 0)]."""
    tasks: dict[tuple[int, int, int], list[tuple[TileInput, int, int]]] = defaultdict(list)
    for t in tiles:
        col = math.floor((t.grid.transform.c - zg.x0) / zg.res + 1e-9)
        row = math.floor((zg.y0 - t.grid.transform.f) / zg.res + 1e-9)
        if col < 0 or row < 0 or row + t.grid.height > zg.shape[0] or col + t.grid.width > zg.shape[1]:
            raise CorruptDataError(f"tile {t.key} falls outside zone grid {zg}")
        for sr in range(row // SHARD, (row + t.grid.height - 1) // SHARD + 1):
            for sc in range(col // SHARD, (col + t.grid.width - 1) // SHARD + 1):
                tasks[(t.year, sr, sc)].append((t, row, col))
    return tasks


def build_zarr(
    source: str | os.PathLike[str],
    store_path: str | os.PathLike[str],
    *,
    dataset: DatasetId,
    years: Iterable[int] | None = None,
    zones: Iterable[int] | None = None,
    workers: int = 2,
    download_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    progress: ProgressSink | None = None,
    checksums: bool = True,
    depths: Iterable[int] = (),
) -> BuildReport:
    """Convert the tiles of ``dataset`` from ``source`` into the Zarr store at ``store_path``.

    Args:
        source: a local directory in the bucket layout, a geotessera download output directory
            (npy, with or without ``geotessera registry build``), or an http(s) / ``s3://``
            base URL (see :mod:`.sources`).
        store_path: local directory of the Zarr v3 store (created, or updated in place).
        dataset: which (version, variant) to convert; a store holds one dataset.
        years: years to convert (default all in the source).
        zones: UTM zones to convert (default all).
        workers: shards written in parallel (threads). Memory per worker is about 40 MiB.
        download_dir: where a remote source's tiles are downloaded and kept (default
            ``{store_path}.tiles``); a rerun resumes there without fetching finished tiles.
        settings: how a remote source is read (workers, retries, manifest cache, offline);
            default :meth:`Settings.resolve` (``GEOTESSERA_*`` environment).
        progress: sink for the download's events (a remote source), then ``PlanReady`` /
            ``ItemDone`` / ``ItemSkipped`` per shard (label ``shards``).
        checksums: end every inner chunk of a new array with its crc32c (the Zarr ``crc32c``
            codec) and record which shards hold data (:mod:`..shard_record`), so the reader
            reports a damaged chunk or a lost shard; False writes stores like the published ones.
        depths: also write copies of the first ``d`` bands for each ``d`` (``embeddings_d4``,
            ``embeddings_d16``: the same int8 values and the one ``scales``, in taller inner
            chunks so a read of 4 bands decodes 4), declared in ``geoemb:depths``. A store keeps
            the depths it has; adding one rewrites every shard (its receipts lack the copy).

    Returns:
        A :class:`BuildReport`. Rerunning after an interruption skips complete shards. Builds
        into one store may run at once (in several processes): each prepares the store's
        metadata in turn, under a lock of the store's directory.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a whole number >= 1, got {workers!r}")
    wanted_depths = check_depths(depths)
    if wanted_depths and int(dataset.version.split(".")[0]) < 2:
        log.warning(
            "dataset %s: its bands are not ordered by importance (matryoshka training came with "
            "version 2); the depth copies %s hold its first bands all the same",
            dataset,
            list(wanted_depths),
        )
    start = time.perf_counter()
    year_set = {int(y) for y in years} if years is not None else None
    zone_set = {int(z) for z in zones} if zones is not None else None
    store = Path(store_path)
    files = tile_files(
        source,
        dataset,
        years=year_set,
        zones=zone_set,
        download_dir=download_dir if download_dir is not None else default_download_dir(store),
        settings=settings if settings is not None else Settings.resolve(),
        progress=progress,
    )
    return _build(tile_inputs(files), store, dataset, workers, progress, start, checksums, wanted_depths)


def _build(
    tiles: list[TileInput],
    store: Path,
    ds: DatasetId,
    workers: int,
    progress: ProgressSink | None,
    start: float,
    checksums: bool,
    depths: tuple[int, ...] = (),
) -> BuildReport:
    res = pixel_size_of(tiles)
    by_zone: dict[int, list[TileInput]] = defaultdict(list)
    for t in tiles:
        by_zone[t.zone].append(t)
    report = BuildReport(
        store, zones=sorted(by_zone), years=sorted({t.year for t in tiles}), tiles=len(tiles)
    )
    all_tasks: list[ShardTask] = []
    with store_lock(store) as locked:  # builds into one store create and grow its groups and arrays in turn
        sweep_temporaries(store, locked=locked)  # first: a build killed at its first write leaves only these
        root, depths = open_root(store, ds, res, depths)
        for zone, ztiles in sorted(by_zone.items()):
            zg = zone_grid(zone, ztiles, res)
            group, tindex = prepare_zone(root, zg, sorted({t.year for t in ztiles}), checksums, depths)
            zi = parse_zone(group.basename, dict(group.attrs))
            final = ZoneGrid(zone, zi.res, zi.x0, zi.y0, zi.shape)
            for (year, sr, sc), placed in sorted(_plan(ztiles, final).items()):
                all_tasks.append(
                    ShardTask(store, zone, year, tindex[year], sr, sc, res, zi.x0, zi.y0, placed, depths)
                )
        consolidate(store)  # metadata valid even if the build is interrupted below
    emit(progress, PlanReady(len(all_tasks), 0, label="shards"))
    todo = []
    for task in all_tasks:
        if shard_complete(task):
            report.shards_skipped += 1
            emit(progress, ItemSkipped(task.key, "complete (receipt)"))
        else:
            todo.append(task)
    _run(todo, workers, report, progress)
    with store_lock(store):
        if checksums:  # which shards of the plan hold data, now that each is written or complete
            _record_shards(store, all_tasks)
        consolidate(store)
    report.elapsed_s = time.perf_counter() - start
    log.info(
        "zarr build: %d shards written, %d skipped, %.1f MB in %.1f s",
        report.shards_written,
        report.shards_skipped,
        report.bytes_written / 1e6,
        report.elapsed_s,
    )
    return report


def _record_shards(store: Path, tasks: list[ShardTask]) -> None:
    """Record, in each array's :data:`RECORD_ATTR`, which shards of ``tasks`` hold data: those
    whose file is at its final path (a shard of fill values only is never written)."""
    zarr = require("zarr", "zarr")
    root = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
    depths = parse_root(dict(root.attrs)).depths
    by_zone: dict[int, list[ShardTask]] = defaultdict(list)
    for t in tasks:
        by_zone[t.zone].append(t)
    for zone, ztasks in sorted(by_zone.items()):
        group = root[zone_group_name(zone)]
        h, w = group["scales"].shape[1:]
        grid = (-(-h // SHARD), -(-w // SHARD))
        names = [("embeddings", _emb_shard), ("scales", _scl_shard)]
        names += [(depth_array_name(d), _emb_shard) for d in depths if depth_array_name(d) in group]
        for name, coords in names:
            array = group[name]
            meta = json.loads((store / group.basename / name / "zarr.json").read_text())
            layout = ArrayLayout.from_metadata(f"{group.basename}/{name}", meta)
            if layout is None:  # pragma: no cover - we created the array ourselves
                continue
            seen: dict[int, dict[tuple[int, int], bool]] = defaultdict(dict)
            for t in ztasks:
                held = (store / layout.shard_key(coords(t))).is_file()
                seen[t.year][(t.shard_row, t.shard_col)] = held
            array.attrs[RECORD_ATTR] = merged_record(array.attrs.get(RECORD_ATTR), seen, grid, str(store))


def _emb_shard(t: ShardTask) -> tuple[int, ...]:
    return (t.t, 0, t.shard_row, t.shard_col)


def _scl_shard(t: ShardTask) -> tuple[int, ...]:
    return (t.t, t.shard_row, t.shard_col)


def _run(todo: list[ShardTask], workers: int, report: BuildReport, progress: ProgressSink | None) -> None:
    def done(task: ShardTask, result: tuple[int, int]) -> None:
        nbytes, n_bad = result
        report.shards_written += 1
        report.bytes_written += nbytes
        report.invalid_scale_pixels += n_bad
        emit(progress, ItemDone(task.key, nbytes))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zarr-shard") as pool:
        map_bounded(pool, write_shard_task, todo, limit=2 * workers, on_result=done)
