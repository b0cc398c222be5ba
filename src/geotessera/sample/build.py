"""Write the deterministic synthetic Tessera sample store (``geotessera sample build DIR``).

``DIR`` is the bucket root of the seed S3 layout (``formats.md`` section 3)::

    DIR/{vpath}/manifest.parquet                                  one per version, all its variants
    DIR/{vpath}/landmasks.parquet
    DIR/{vpath}/{emb_dir}/{year}/grid_X_Y/grid_X_Y.npy            int8 (H, W, 128), npy v1 header
    DIR/{vpath}/{emb_dir}/{year}/grid_X_Y/grid_X_Y_scales.npy     float32 (H, W)
    DIR/{vpath}/global_0.1_degree_tiff_all/grid_X_Y.tiff          uint8 landmask, 1 land / 0 water
    DIR/ground_truth/{year}/grid_X_Y_classes.tif                  uint8 class map (not store content)
    DIR/ground_truth/classes.json                                 classes, tiles, absences, changes
    DIR/sample_store.json                                         build options (not store content)
    DIR/sample_checksums.json                                     CRC64NVMe of every file (not store content)

Datasets: ``v1`` is version "1.0" variant "vultr"; ``v1.1`` is version "1.1" variant
"cambridge" (embedding directory ``global_0.1_degree_representation.cambridge``).

Tiles: the 0.1-degree cells overlapping ``bbox`` (default ``(0.0, 52.0, 0.4, 52.3)``:
12 tiles around Cambridge, UK), plus, with ``edge_tiles``:

- ``grid_5.95_45.05`` and ``grid_6.05_45.05``: either side of the UTM seam at 6 E
  (zones 31 and 32, EPSG 32631 / 32632);
- ``grid_-58.45_-34.55``: southern hemisphere (zone 21 S, EPSG 32721);
- ``grid_1.75_52.45``: coastal, crossed by the synthetic coastline (sea and land);
- ``grid_0.35_52.25``: present in every year except the first of ``years`` (when
  two or more years are built): "some tiles are present in one year only".

The same options always give byte-identical files (fixed mtimes in the manifests,
seeds from stable integers). Tiles are synthesised and written one at a time in row
strips, each file atomically (a temporary file in the same directory, then
``os.replace``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

from .._version import __version__
from ..datasets import DatasetId
from ..errors import OutputError
from ..files import remove_stale_temps
from ..grid import Cell, PixelGrid
from ..layouts import S3_LAYOUT
from ..progress import ItemDone, PlanReady, ProgressSink, emit
from . import content
from ._checksums import SIDECAR as CHECKSUM_SIDECAR
from ._checksums import write_store_checksums
from ._plan import DEFAULT_BBOX as DEFAULT_BBOX
from ._plan import DEFAULT_VERSIONS as DEFAULT_VERSIONS
from ._plan import DEFAULT_YEARS as DEFAULT_YEARS
from ._plan import EDGE_TILES as EDGE_TILES
from ._plan import MAX_TILES as MAX_TILES
from ._plan import VERSION_VARIANTS as VERSION_VARIANTS
from ._plan import StorePlan as StorePlan
from ._plan import _as_pixel_size as _as_pixel_size
from ._plan import plan_store as plan_store
from ._writers import _atomic as _atomic
from ._writers import _Writer as _Writer

logger = logging.getLogger(__name__)

#: Entries under DIR that are not bucket content (the S3 server does not upload them).
NON_STORE_ENTRIES = ("ground_truth", "sample_store.json", CHECKSUM_SIDECAR)
MARKER_FILE = "sample_store.json"
GROUND_TRUTH_DIR = "ground_truth"
BUCKET = "tessera-embeddings"
#: Fixed modification time recorded in the manifests (determinism).
FIXED_MTIME = datetime(2025, 1, 1, tzinfo=UTC)

MANIFEST_SCHEMA = pa.schema(
    [
        ("version", pa.string()),
        ("variant", pa.string()),
        ("year", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("grid_size", pa.int64()),
        ("scales_size", pa.int64()),
        ("lon_i", pa.int32()),
        ("lat_i", pa.int32()),
        ("directory", pa.string()),
        ("grid_path", pa.string()),
        ("scales_path", pa.string()),
        ("grid_mtime", pa.timestamp("us", tz="UTC")),
        ("scales_mtime", pa.timestamp("us", tz="UTC")),
    ]
)
LANDMASKS_SCHEMA = pa.schema(
    [
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("file_size", pa.int64()),
        ("lon_i", pa.int32()),
        ("lat_i", pa.int32()),
        ("mtime", pa.timestamp("us", tz="UTC")),
        ("key", pa.string()),
    ]
)


@dataclass(frozen=True)
class BuildSummary:
    """What :func:`build_store` wrote.

    ``tiles`` lists every (dataset, year, cell) written, ordered by dataset, year,
    then cell (south to north, west to east). ``bytes_written`` counts every file
    written under ``root``, ground truth included.
    """

    root: Path
    datasets: list[DatasetId]
    tiles: list[tuple[DatasetId, int, Cell]]
    bytes_written: int
    years: tuple[int, ...] = ()
    pixel_size_m: float = 10.0
    files: int = 0


def _uri(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def _prepare_root(root: Path) -> None:
    """Create ``root``; refuse a non-empty directory that is not a sample store."""
    if root.exists() and not root.is_dir():
        raise OutputError(f"{root} exists and is not a directory")
    if root.is_dir():  # a build killed before its marker was in place left only the marker's temporary
        remove_stale_temps(root / MARKER_FILE)
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER_FILE).is_file():
        raise OutputError(f"{root} is not empty and holds no {MARKER_FILE}; choose an empty directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {root}: {exc}") from exc


def _remove_stale(root: Path, keep: set[Path]) -> None:
    """Delete files a previous build left under ``root`` that this build did not write."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        d = Path(dirpath)
        for name in filenames:
            p = d / name
            if p not in keep:
                logger.info("removing stale file %s", p)
                p.unlink()
        if d != root and not any(d.iterdir()):
            d.rmdir()


# --- the build ---------------------------------------------------------------------------
def build_store(
    root: str | Path,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    years: Sequence[int] = DEFAULT_YEARS,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    pixel_size_m: float = 10.0,
    edge_tiles: bool = True,
    progress: ProgressSink | None = None,
) -> BuildSummary:
    """Build the synthetic sample store under ``root`` (see the module docstring for the layout).

    ``bbox`` is (min_lon, min_lat, max_lon, max_lat) in degrees (default
    ``(0.0, 52.0, 0.4, 52.3)``); ``pixel_size_m`` is the tile pixel size in metres
    (10 as published; 100 gives ~100x smaller tiles for tests). Rebuilding into a
    previous sample store overwrites it and removes files it no longer contains; a
    non-empty directory that is not a sample store is refused (:class:`OutputError`).
    Bad options raise :class:`InvalidInputError`. Emits ``PlanReady`` then one
    ``ItemDone`` per (dataset, year, tile).
    """
    plan = plan_store(bbox=bbox, years=years, versions=versions, edge_tiles=edge_tiles)
    pixel = _as_pixel_size(pixel_size_m)
    root_path = Path(root).absolute()
    _prepare_root(root_path)
    w = _Writer(root_path)
    options = {
        "bbox": list(DEFAULT_BBOX if bbox is None else (float(v) for v in bbox)),
        "years": list(plan.years),
        "versions": [ds.vpath for ds in plan.datasets],
        "pixel_size_m": pixel,
        "edge_tiles": bool(edge_tiles),
    }
    w.json(MARKER_FILE, _marker(plan, options, complete=False))

    grids = {cell: PixelGrid.from_cell(cell, pixel) for cell in plan.cells}
    n_items = sum(len(plan.datasets) for y in plan.years for _ in plan.cells_in_year(y))
    est = sum(
        len(plan.datasets) * (g.height * g.width * (content.N_BANDS + 4) + 256)
        for y in plan.years
        for c, g in grids.items()
        if plan.present(c, y)
    )
    emit(progress, PlanReady(n_items, est, "sample store"))
    logger.info(
        "building sample store in %s: %d tiles x %d years x %d datasets at %g m",
        root_path,
        len(plan.cells),
        len(plan.years),
        len(plan.datasets),
        pixel,
    )

    models = {(ds, y): content.YearModel.for_year(ds, y) for ds in plan.datasets for y in plan.years}
    # one landmask set per version path (all variants of a version share it)
    landmask_ds = {ds.vpath: ds for ds in reversed(plan.datasets)}
    manifest_rows: dict[str, list[dict[str, Any]]] = {ds.vpath: [] for ds in plan.datasets}
    landmask_rows: dict[str, list[dict[str, Any]]] = {ds.vpath: [] for ds in plan.datasets}
    written: list[tuple[DatasetId, int, Cell]] = []
    observed: list[list[dict[str, Any]]] = [[] for _ in content.CHANGES]
    pixel_counts: dict[str, dict[str, list[int]]] = {str(y): {} for y in plan.years}

    for cell in plan.cells:
        grid = grids[cell]
        lon, lat = content.pixel_lonlat(grid)
        base = content.base_land_cover(lon, lat)
        landmask = (base != content.WATER).astype(np.uint8)
        for ds in landmask_ds.values():
            key = S3_LAYOUT.landmask_key(ds, cell)
            size = w.geotiff(key, landmask, grid)
            landmask_rows[ds.vpath].append(
                {
                    "lon": cell.lon,
                    "lat": cell.lat,
                    "file_size": size,
                    "lon_i": cell.lon_i,
                    "lat_i": cell.lat_i,
                    "mtime": FIXED_MTIME,
                    "key": key,
                }
            )
        prev: tuple[int, npt.NDArray[np.uint8]] | None = None
        for year in plan.years:
            if not plan.present(cell, year):
                continue
            classes = content.apply_changes(base, lon, lat, year)
            w.geotiff(
                f"{GROUND_TRUTH_DIR}/{year}/{cell.name}_classes.tif",
                classes,
                grid,
                tags={"CLASS_NAMES": ",".join(content.CLASS_NAMES), "YEAR": str(year)},
            )
            pixel_counts[str(year)][cell.name] = np.bincount(
                classes.ravel(), minlength=content.N_CLASSES
            ).tolist()
            if prev is not None:
                _record_changes(observed, cell, prev, (year, classes), lon, lat)
            prev = (year, classes)
            for ds in plan.datasets:
                nbytes = _write_tile(w, models[ds, year], cell, grid, lon, lat, classes, manifest_rows)
                written.append((ds, year, cell))
                emit(progress, ItemDone(S3_LAYOUT.embedding_key(ds, year, cell), nbytes))

    for vpath, rows in manifest_rows.items():
        ds = next(d for d in plan.datasets if d.vpath == vpath)
        rows.sort(key=lambda r: (r["variant"], r["year"], r["lat_i"], r["lon_i"]))
        w.parquet(S3_LAYOUT.manifest_key(ds), pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))
        lm = sorted(landmask_rows[vpath], key=lambda r: (r["lat_i"], r["lon_i"]))
        w.parquet(S3_LAYOUT.landmasks_manifest_key(ds), pa.Table.from_pylist(lm, schema=LANDMASKS_SCHEMA))
    w.json(f"{GROUND_TRUTH_DIR}/classes.json", _classes_doc(plan, pixel, observed, pixel_counts))
    _remove_stale(root_path, set(w.sizes))
    write_store_checksums(root_path, NON_STORE_ENTRIES)  # what `sample serve` will send as CRC64NVMe
    w.record(CHECKSUM_SIDECAR)
    # last: a store marked complete is whole (`make demo` skips building such a store)
    w.json(MARKER_FILE, _marker(plan, options, complete=True))

    order = {ds: i for i, ds in enumerate(plan.datasets)}
    written.sort(key=lambda t: (order[t[0]], t[1], t[2].iy, t[2].ix))
    total = sum(w.sizes.values())
    logger.info(
        "sample store ready in %s: %d tiles, %d files, %d bytes", root_path, len(written), len(w.sizes), total
    )
    return BuildSummary(root_path, list(plan.datasets), written, total, plan.years, pixel, len(w.sizes))


def _write_tile(
    w: _Writer,
    model: content.YearModel,
    cell: Cell,
    grid: PixelGrid,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    classes: npt.NDArray[np.uint8],
    manifest_rows: dict[str, list[dict[str, Any]]],
) -> int:
    """Write one tile's embedding and scales; append its manifest row. Returns bytes written."""
    ds, year = model.dataset, model.year
    h, wd = grid.shape
    scales = np.empty((h, wd), dtype=np.float32)
    pos = 0

    def strips() -> Iterator[npt.NDArray[np.int8]]:
        nonlocal pos
        for q, s in content.iter_tile_strips(model, cell, lon, lat, classes):
            scales[pos : pos + s.shape[0]] = s
            pos += s.shape[0]
            yield q

    emb_key, scales_key = S3_LAYOUT.embedding_key(ds, year, cell), S3_LAYOUT.scales_key(ds, year, cell)
    grid_size = w.npy_strips(emb_key, (h, wd, content.N_BANDS), np.dtype(np.int8), strips())
    scales_size = w.npy(scales_key, scales)
    manifest_rows[ds.vpath].append(
        {
            "version": ds.version,
            "variant": ds.variant,
            "year": year,
            "lon": cell.lon,
            "lat": cell.lat,
            "grid_size": grid_size,
            "scales_size": scales_size,
            "lon_i": cell.lon_i,
            "lat_i": cell.lat_i,
            "directory": _uri(S3_LAYOUT.tile_dir(ds, year, cell)),
            "grid_path": _uri(emb_key),
            "scales_path": _uri(scales_key),
            "grid_mtime": FIXED_MTIME,
            "scales_mtime": FIXED_MTIME,
        }
    )
    logger.debug("wrote %s (%d + %d bytes)", emb_key, grid_size, scales_size)
    return grid_size + scales_size


def _record_changes(
    observed: list[list[dict[str, Any]]],
    cell: Cell,
    before: tuple[int, npt.NDArray[np.uint8]],
    after: tuple[int, npt.NDArray[np.uint8]],
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
) -> None:
    """Count, per change of ``content.CHANGES``, the pixels of ``cell`` that changed between two years."""
    changed = before[1] != after[1]
    if not changed.any():
        return
    for i, ch in enumerate(content.CHANGES):
        sel = changed & ch.area.mask(lon, lat) & (before[1] == ch.from_code) & (after[1] == ch.to_code)
        n = int(sel.sum())
        if n:
            observed[i].append({"tile": cell.name, "from_year": before[0], "to_year": after[0], "pixels": n})


def _classes_doc(
    plan: StorePlan,
    pixel: float,
    observed: list[list[dict[str, Any]]],
    pixel_counts: dict[str, dict[str, list[int]]],
) -> dict[str, Any]:
    names = content.CLASS_NAMES
    return {
        "classes": [{"code": i, "name": n} for i, n in enumerate(names)],
        "nodata_class": content.WATER,
        "nodata": "water pixels (sea and lakes): scale NaN, q = 0, landmask 0",
        "ground_truth": GROUND_TRUTH_DIR + "/{year}/{tile}_classes.tif",
        "pixel_size_m": pixel,
        "years": list(plan.years),
        "tiles": {str(y): [c.name for c in plan.cells_in_year(y)] for y in plan.years},
        "absent": {c.name: list(ys) for c, ys in plan.absent.items()},
        "special_tiles": {role: [c.name for c in cells] for role, cells in plan.roles.items()},
        "coastline": {
            "description": "sea east of lon = 1.745 + 0.018 sin(2 pi (lat - 52.4) / 0.09)"
            " + 0.006 sin(2 pi (lat - 52.4) / 0.023 + 1.3)",
            "lat_range": list(content.COAST_LAT),
            "max_lon": content.COAST_MAX_LON,
        },
        "changes": [
            {
                "name": ch.name,
                "from": names[ch.from_code],
                "to": names[ch.to_code],
                "from_code": ch.from_code,
                "to_code": ch.to_code,
                "year": ch.year,
                "centre": [ch.area.lon, ch.area.lat],
                "radius_deg": ch.area.radius_deg,
                "observed": obs,
            }
            for ch, obs in zip(content.CHANGES, observed, strict=True)
        ],
        "pixel_counts": pixel_counts,
    }


def _marker(plan: StorePlan, options: dict[str, Any], *, complete: bool) -> dict[str, Any]:
    return {
        "format": "geotessera-sample-store",
        "format_version": 1,
        "generator": f"geotessera {__version__}",
        "complete": complete,
        "bucket": BUCKET,
        "options": options,
        "datasets": [
            {"version": ds.version, "variant": ds.variant, "vpath": ds.vpath, "emb_dir": ds.emb_dir}
            for ds in plan.datasets
        ],
        "tiles": len(plan.cells),
        "non_store_entries": list(NON_STORE_ENTRIES),
    }
