"""The metadata of a store being built: root, zone groups, arrays, under the store's lock.

Every step is idempotent and checks its own result (an array present, its shape, its values),
so a rerun completes what a killed build began; a zone's attributes are written last and mark
it complete. Every zarr-python write into a store we build happens under :func:`store_lock`,
so whoever holds it may remove any zarr-python temporary (``*.partial``) it finds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from ..._optional import require
from ..._version import __version__
from ...datasets import DatasetId
from ...errors import CorruptDataError, OutputError
from ...files import directory_lock, remove_stale_temps_under
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
from .shards import SHARD
from .tiles import TileInput

log = logging.getLogger(__name__)

COORD_CHUNK = 65536
#: Zone grids start at northing >= this (about 84.9 N) and easting 0, so a later build (a new
#: tile or year) only ever grows a grid east or south and its shards line up with earlier ones.
TOP_NORTHING_M = 9_400_000.0


@dataclass(frozen=True)
class ZoneGrid:
    zone: int
    res: float
    x0: float
    y0: float
    shape: tuple[int, int]


def zone_grid(zone: int, tiles: list[TileInput], res: float) -> ZoneGrid:
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
    return ZoneGrid(zone, res, x0, y0, (h, w))


def merge_existing(new: ZoneGrid, group: Any) -> ZoneGrid:
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
    return ZoneGrid(new.zone, old.res, old.x0, old.y0, shape)


def open_root(store: Path, ds: DatasetId, res: float, depths: tuple[int, ...]) -> tuple[Any, tuple[int, ...]]:
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
    attrs = root_attributes(ds, gsd=res, build_version=f"geotessera {__version__}", depths=depths)
    # "w-", never "w": "w" removes the store directory and makes a new one, and the store lock,
    # held on the directory itself, would then guard a directory no longer at this path
    return zarr.open_group(store, mode="w-", zarr_format=3, attributes=attrs), depths  # one write


def codecs(kind: str, checksums: bool) -> Any:
    """The inner chain after ``bytes``: Blosc (zstd), then a crc32c of each chunk with ``checksums``."""
    zarr = require("zarr", "zarr")
    shuffle = "bitshuffle" if kind == "int8" else "shuffle"
    blosc = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle=shuffle)
    return [blosc, zarr.codecs.Crc32cCodec()] if checksums else blosc


def depth_array(group: Any, depth: int, t: int, h: int, w: int, checksums: bool) -> None:
    """Create the copy of the first ``depth`` bands (same shard grid, taller inner chunks)."""
    side = depth_inner_side(depth)
    group.create_array(
        depth_array_name(depth),
        shape=(t, depth, h, w),
        dtype="int8",
        chunks=(1, depth, side, side),
        shards=(1, depth, SHARD, SHARD),
        compressors=codecs("int8", checksums),
        fill_value=0,
        dimension_names=("time", f"band_d{depth}", "y", "x"),
    )


def prepare_zone(
    root: Any, zg: ZoneGrid, years: list[int], checksums: bool, depths: tuple[int, ...] = ()
) -> tuple[Any, dict[int, int]]:
    """Create or grow group ``utmNN`` and its arrays; returns (group, year -> time index).

    Idempotent, so that a rerun completes what a killed build began: every step checks its own
    result (array present, shape, values), and the zone's attributes are written last. A group
    without them was cut short while being created; no shard of it can exist yet (shards are
    written after the whole metadata phase), so it is made again.
    """
    name = zone_group_name(zg.zone)
    if name in root and _ZONE_DONE not in root[name].attrs:
        log.info("zone group %s was cut short while being created: making it again", name)
        del root[name]
    if name in root:
        group = root[name]
        zg = merge_existing(zg, group)
        # a time slot a killed build added but never named holds the fill value, 0 (no year)
        old_years = [int(y) for y in group["time"][:] if y != 0]
    else:
        group = _new_zone_group(root, name, zg.shape, checksums)
        old_years = []
    h, w = zg.shape
    all_years = old_years + sorted(set(years) - set(old_years))
    t = len(all_years)
    for d in depths:
        if depth_array_name(d) not in group:
            t0, h0, w0 = group["scales"].shape
            depth_array(group, d, t0, h0, w0, checksums)
    shapes = {"embeddings": (t, N_BANDS, h, w), "scales": (t, h, w), "time": (t,)}
    shapes.update({depth_array_name(d): (t, d, h, w) for d in depths})
    for array_name, shape in shapes.items():  # each array on its own: a kill may land between
        if group[array_name].shape != shape:
            group[array_name].resize(shape)
    wanted_years = np.asarray(all_years, dtype=np.int32)
    if not np.array_equal(group["time"][:], wanted_years):
        group["time"][:] = wanted_years
    for axis, n in (("x", w), ("y", h)):
        centres = (np.arange(n, dtype=np.float64) + 0.5) * zg.res
        coords = zg.x0 + centres if axis == "x" else zg.y0 - centres
        if axis in group and group[axis].shape == (n,) and np.array_equal(group[axis][:], coords):
            continue
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
        arr[:] = coords
    transform = Affine(zg.res, 0.0, zg.x0, 0.0, -zg.res, zg.y0)
    group.attrs.update(zone_attributes(zg.zone, transform, (h, w)))
    return group, {y: i for i, y in enumerate(all_years)}


_ZONE_DONE = "spatial:transform"
"""The zone attribute whose presence says the group was completed (attributes come last)."""


def _new_zone_group(root: Any, name: str, shape: tuple[int, int], checksums: bool) -> Any:
    """Group ``name`` with empty (no year yet) ``embeddings``, ``scales``, ``band``, ``time``."""
    h, w = shape
    # overwrite: whatever a removal cut short by a kill left there (arrays without their group)
    group = root.create_group(name, overwrite=True)
    group.create_array(
        "embeddings",
        shape=(0, N_BANDS, h, w),
        dtype="int8",
        chunks=(1, N_BANDS, 32, 32),
        shards=(1, N_BANDS, SHARD, SHARD),
        compressors=codecs("int8", checksums),
        fill_value=0,
        dimension_names=("time", "band", "y", "x"),
    )
    group.create_array(
        "scales",
        shape=(0, h, w),
        dtype="float32",
        chunks=(1, 32, 32),
        shards=(1, SHARD, SHARD),
        compressors=codecs("float32", checksums),
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
    return group


def consolidate(store: Path) -> None:
    zarr = require("zarr", "zarr")
    with warnings.catch_warnings():
        # receipts live in .receipts/ inside zone groups; consolidation consolidates Zarr nodes only
        warnings.filterwarnings("ignore", category=UserWarning, module=r"zarr\..*")
        zarr.consolidate_metadata(store)


def sweep_temporaries(store: Path, *, locked: bool = True) -> None:
    """Delete the shards a killed build left half-written, and zarr-python's ``*.partial``
    temporaries. ``locked``: the store lock is held (:func:`store_lock` gave True): every
    zarr-python write into a store we build happens under that lock, so any such file is a
    leftover of a killed process, however recent. Without it (a filesystem that cannot lock),
    a recent one may be another build's write in flight, and only old ones are removed.

    Nothing is removed from a directory that is no store (no ``zarr.json``) and holds anything
    but such a temporary (a first build killed at its first write): :func:`open_root` refuses it.
    """
    if not (store / "zarr.json").is_file() and any(not _is_zarr_temp(p.name) for p in store.iterdir()):
        return
    remove_stale_temps_under(store, foreign=_is_zarr_temp, foreign_older_than_s=0.0 if locked else None)


def _is_zarr_temp(name: str) -> bool:
    return name.endswith(".partial")


@contextlib.contextmanager
def store_lock(store: Path) -> Iterator[bool]:
    """The store's :func:`~geotessera.files.directory_lock`: True when it is held (False: the
    filesystem cannot lock, and the block runs unlocked)."""
    try:
        with directory_lock(store) as held:
            yield held
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot use {store} as a Zarr store: {exc.strerror or exc}") from exc
