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

import contextlib
import json
import logging
import math
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from ..._optional import require
from ..._version import __version__
from ...config import Settings
from ...datasets import DatasetId
from ...errors import CorruptDataError, InvalidInputError, OutputError
from ...files import directory_lock, remove_stale_temps_under
from ...progress import ItemDone, ItemSkipped, PlanReady, ProgressSink, emit
from ...tasks import map_bounded
from ..conventions import (
    N_BANDS,
    check_depths,
    depth_array_name,
    depth_inner_side,
    parse_root,
    parse_zone,
    root_attributes,
    zone_attributes,
    zone_group_name,
)
from ..layout import ArrayLayout
from ..shard_record import RECORD_ATTR, merged_record
from .shards import SHARD, ShardTask, shard_complete, write_shard_task
from .sources import default_download_dir, tile_files
from .tiles import TileInput, pixel_size_of, tile_inputs

log = logging.getLogger(__name__)

COORD_CHUNK = 65536
#: Zone grids start at northing >= this (about 84.9 N) and easting 0, so a later build (a new
#: tile or year) only ever grows a grid east or south and its shards line up with earlier ones.
TOP_NORTHING_M = 9_400_000.0


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


@dataclass(frozen=True)
class _ZoneGrid:
    zone: int
    res: float
    x0: float
    y0: float
    shape: tuple[int, int]


def _zone_grid(zone: int, tiles: list[TileInput], res: float) -> _ZoneGrid:
    """Zone grid: fixed origin (easting 0, northing ``TOP_NORTHING_M`` rounded up to the shard span),
    extent east and south derived from the tiles, padded to whole shards."""
    span = SHARD * res
    x0 = 0.0
    y0 = math.ceil(TOP_NORTHING_M / span) * span
    lefts = [t.grid.transform.c for t in tiles]
    tops = [t.grid.transform.f for t in tiles]
    if min(lefts) < x0 or max(tops) > y0:
        raise CorruptDataError(f"zone {zone}: tiles lie outside eastings >= 0 / northings <= {y0}")
    rights = [t.grid.transform.c + res * t.grid.width for t in tiles]
    bottoms = [t.grid.transform.f - res * t.grid.height for t in tiles]
    w = math.ceil((max(rights) - x0) / span) * SHARD
    h = math.ceil((y0 - min(bottoms)) / span) * SHARD
    return _ZoneGrid(zone, res, x0, y0, (h, w))


def _merge_existing(new: _ZoneGrid, group: Any) -> _ZoneGrid:
    """Reconcile a planned zone grid with the one already in the store (grow east/south only)."""
    h, w = group["scales"].shape[1:]
    old = parse_zone(group.basename, dict(group.attrs), fallback_shape=(h, w))
    if old.res != new.res:
        raise OutputError(f"store zone {group.basename} has {old.res} m pixels, tiles have {new.res} m")
    if new.x0 < old.x0 or new.y0 > old.y0:
        raise OutputError(
            f"tiles extend zone {group.basename} west or north of the existing grid; build into a new store"
        )
    right = max(old.x0 + old.res * old.shape[1], new.x0 + new.res * new.shape[1])
    bottom = min(old.y0 - old.res * old.shape[0], new.y0 - new.res * new.shape[0])
    shape = (round((old.y0 - bottom) / old.res), round((right - old.x0) / old.res))
    return _ZoneGrid(new.zone, old.res, old.x0, old.y0, shape)


def _open_root(
    store: Path, ds: DatasetId, res: float, depths: tuple[int, ...]
) -> tuple[Any, tuple[int, ...]]:
    """(root group, the depths the store holds from now on: its own and ``depths``)."""
    zarr = require("zarr", "zarr")
    if (store / "zarr.json").is_file():
        root = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
        info = parse_root(dict(root.attrs))
        if info.dataset is not None and info.dataset != ds:
            raise OutputError(f"{store} holds dataset {info.dataset}, not {ds}; refusing to mix them")
        if info.gsd != res:
            raise OutputError(f"{store} has {info.gsd} m pixels, the tiles have {res} m")
        held = check_depths((*info.depths, *depths))
        if held != info.depths:  # new depths: their shards are written as the receipts say
            root.attrs["geoemb:depths"] = list(held)
        return root, held
    if store.exists() and any(store.iterdir()):
        raise OutputError(f"{store} exists and is not a Zarr store; choose an empty or new directory")
    root = zarr.open_group(store, mode="w", zarr_format=3)
    root.attrs.update(root_attributes(ds, gsd=res, build_version=f"geotessera {__version__}", depths=depths))
    return root, depths


def _codecs(kind: str, checksums: bool) -> Any:
    """The inner chain after ``bytes``: Blosc (zstd), then a crc32c of each chunk with ``checksums``."""
    zarr = require("zarr", "zarr")
    shuffle = "bitshuffle" if kind == "int8" else "shuffle"
    blosc = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle=shuffle)
    return [blosc, zarr.codecs.Crc32cCodec()] if checksums else blosc


def _depth_array(group: Any, depth: int, t: int, h: int, w: int, checksums: bool) -> None:
    """Create the copy of the first ``depth`` bands (same shard grid, taller inner chunks)."""
    side = depth_inner_side(depth)
    group.create_array(
        depth_array_name(depth),
        shape=(t, depth, h, w),
        dtype="int8",
        chunks=(1, depth, side, side),
        shards=(1, depth, SHARD, SHARD),
        compressors=_codecs("int8", checksums),
        fill_value=0,
        dimension_names=("time", f"band_d{depth}", "y", "x"),
    )


def _prepare_zone(
    root: Any, zg: _ZoneGrid, years: list[int], checksums: bool, depths: tuple[int, ...] = ()
) -> tuple[Any, dict[int, int]]:
    """Create or grow group ``utmNN`` and its arrays; returns (group, year -> time index)."""
    name = zone_group_name(zg.zone)
    h, w = zg.shape
    if name in root:
        group = root[name]
        zg = _merge_existing(zg, group)
        h, w = zg.shape
        old_years = [int(y) for y in group["time"][:]]
    else:
        group = root.create_group(name)
        old_years = []
        group.create_array(
            "embeddings",
            shape=(0, N_BANDS, h, w),
            dtype="int8",
            chunks=(1, N_BANDS, 32, 32),
            shards=(1, N_BANDS, SHARD, SHARD),
            compressors=_codecs("int8", checksums),
            fill_value=0,
            dimension_names=("time", "band", "y", "x"),
        )
        group.create_array(
            "scales",
            shape=(0, h, w),
            dtype="float32",
            chunks=(1, 32, 32),
            shards=(1, SHARD, SHARD),
            compressors=_codecs("float32", checksums),
            fill_value=float("inf"),
            dimension_names=("time", "y", "x"),
        )
        band = group.create_array(
            "band",
            shape=(N_BANDS,),
            dtype="int32",
            chunks=(N_BANDS,),
            dimension_names=("band",),
            fill_value=0,
        )
        band[:] = np.arange(N_BANDS, dtype=np.int32)
        group.create_array(
            "time", shape=(0,), dtype="int32", chunks=(1024,), dimension_names=("time",), fill_value=0
        )
    all_years = old_years + sorted(set(years) - set(old_years))
    t = len(all_years)
    for d in depths:
        if depth_array_name(d) not in group:
            t0, h0, w0 = group["scales"].shape
            _depth_array(group, d, t0, h0, w0, checksums)
    if group["embeddings"].shape != (t, N_BANDS, h, w):
        group["embeddings"].resize((t, N_BANDS, h, w))
        for d in depths:
            group[depth_array_name(d)].resize((t, d, h, w))
        group["scales"].resize((t, h, w))
        group["time"].resize((t,))
        group["time"][:] = np.asarray(all_years, dtype=np.int32)
    for axis, n in (("x", w), ("y", h)):
        if axis not in group or group[axis].shape != (n,):
            if axis in group:
                del group[axis]
            arr = group.create_array(
                axis,
                shape=(n,),
                dtype="float64",
                chunks=(min(n, COORD_CHUNK),),
                dimension_names=(axis,),
                fill_value=0.0,
            )
            centres = (np.arange(n, dtype=np.float64) + 0.5) * zg.res
            arr[:] = zg.x0 + centres if axis == "x" else zg.y0 - centres
    transform = Affine(zg.res, 0.0, zg.x0, 0.0, -zg.res, zg.y0)
    group.attrs.update(zone_attributes(zg.zone, transform, (h, w)))
    return group, {y: i for i, y in enumerate(all_years)}


def _plan(
    tiles: list[TileInput], zg: _ZoneGrid
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


def _consolidate(store: Path) -> None:
    zarr = require("zarr", "zarr")
    with warnings.catch_warnings():
        # receipts live in .receipts/ inside zone groups; consolidation consolidates Zarr nodes only
        warnings.filterwarnings("ignore", category=UserWarning, module=r"zarr\..*")
        zarr.consolidate_metadata(store)


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
    with _store_lock(store):  # builds into one store create and grow its groups and arrays in turn
        root, depths = _open_root(store, ds, res, depths)
        _sweep_temporaries(store)
        for zone, ztiles in sorted(by_zone.items()):
            zg = _zone_grid(zone, ztiles, res)
            group, tindex = _prepare_zone(root, zg, sorted({t.year for t in ztiles}), checksums, depths)
            zi = parse_zone(group.basename, dict(group.attrs))
            final = _ZoneGrid(zone, zi.res, zi.x0, zi.y0, zi.shape)
            for (year, sr, sc), placed in sorted(_plan(ztiles, final).items()):
                all_tasks.append(
                    ShardTask(store, zone, year, tindex[year], sr, sc, res, zi.x0, zi.y0, placed, depths)
                )
        _consolidate(store)  # metadata valid even if the build is interrupted below
    emit(progress, PlanReady(len(all_tasks), 0, label="shards"))
    todo = []
    for task in all_tasks:
        if shard_complete(task):
            report.shards_skipped += 1
            emit(progress, ItemSkipped(task.key, "complete (receipt)"))
        else:
            todo.append(task)
    _run(todo, workers, report, progress)
    with _store_lock(store):
        if checksums:  # which shards of the plan hold data, now that each is written or complete
            _record_shards(store, all_tasks)
        _consolidate(store)
    report.elapsed_s = time.perf_counter() - start
    log.info(
        "zarr build: %d shards written, %d skipped, %.1f MB in %.1f s",
        report.shards_written,
        report.shards_skipped,
        report.bytes_written / 1e6,
        report.elapsed_s,
    )
    return report


def _sweep_temporaries(store: Path) -> None:
    """Delete the shards a killed build left half-written, and zarr-python's ``*.partial``
    temporaries. Called with the store lock held: every zarr-python write into a store we build
    happens under that lock, so any such file is a leftover of a killed process, however recent."""
    remove_stale_temps_under(store, foreign=_is_zarr_temp, foreign_older_than_s=0.0)


def _is_zarr_temp(name: str) -> bool:
    return name.endswith(".partial")


@contextlib.contextmanager
def _store_lock(store: Path) -> Iterator[None]:
    try:
        with directory_lock(store):
            yield
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot use {store} as a Zarr store: {exc.strerror or exc}") from exc


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
