"""Build manifests by scanning a local tile tree (``geotessera registry build DIR``).

Three layouts are recognised anywhere under the root:

- seed S3 layout: ``{vpath}/{emb_dir}/{year}/grid_X_Y/grid_X_Y[_scales].npy`` and
  ``{vpath}/global_0.1_degree_tiff_all/grid_X_Y.tiff``;
- local output layout: ``global_0.1_degree_representation/{year}/grid_X_Y/...`` and
  ``global_0.1_degree_tiff_all/grid_X_Y.tiff``, the dataset read from ``tessera_metadata.json``;
- Source Cooperative: ``npy/{dir}/{year}/grid_X_Y/...`` and ``landmasks/{vpath}/grid_X_Y.tiff``.

The walk uses ``os.scandir`` and stats only the files that enter the manifest.
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..datasets import EMBEDDINGS_DIR, LANDMASKS_DIR, DatasetId, normalize_variant, normalize_version
from ..errors import GeoTesseraError, InvalidInputError
from ..files import atomic_path
from ..layouts import METADATA_FILE
from .manifest import LANDMASKS_FILE, MANIFEST_FILE

log = logging.getLogger(__name__)

_VPATH_RE = re.compile(r"^v\d+(\.\d+)?$")
_YEAR_RE = re.compile(r"^\d{4}$")
_TILE_RE = re.compile(r"^grid_(-?\d{1,3}\.\d{2})_(-?\d{1,2}\.\d{2})$")
_COOP_SUFFIXES = {"cam": "cambridge"}


@dataclass
class _Rows:
    """Column lists of the manifest being built."""

    version: list[str] = field(default_factory=list)
    variant: list[str] = field(default_factory=list)
    year: list[int] = field(default_factory=list)
    lon_i: list[int] = field(default_factory=list)
    lat_i: list[int] = field(default_factory=list)
    grid_size: list[int] = field(default_factory=list)
    scales_size: list[int] = field(default_factory=list)
    grid_mtime: list[int] = field(default_factory=list)
    scales_mtime: list[int] = field(default_factory=list)
    incomplete: int = 0


@dataclass
class _Masks:
    version: list[str] = field(default_factory=list)
    lon_i: list[int] = field(default_factory=list)
    lat_i: list[int] = field(default_factory=list)
    file_size: list[int] = field(default_factory=list)
    mtime: list[int] = field(default_factory=list)
    key: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScanResult:
    """Tables of a scanned tree: ``tiles`` (formats.md section 4 manifest schema) and
    ``landmasks`` (None when no landmask GeoTIFF was found); ``incomplete`` counts tile
    directories lacking the embedding or the scales file (left out of the manifest)."""

    tiles: pa.Table
    landmasks: pa.Table | None
    incomplete: int

    def summary(self) -> str:
        """One line: tile count, datasets, years, landmasks and incomplete directories."""
        pairs = self.tiles.group_by(["version", "variant"]).aggregate([]).to_pylist()
        datasets = ", ".join(sorted(str(DatasetId(p["version"], p["variant"])) for p in pairs))
        years = pc.unique(self.tiles.column("year")).to_pylist()
        text = f"{self.tiles.num_rows} tiles ({datasets}; years {', '.join(map(str, sorted(years)))})"
        if self.landmasks is not None:
            text += f", {self.landmasks.num_rows} landmasks"
        if self.incomplete:
            text += f"; {self.incomplete} incomplete tile directories left out"
        return text


def _tile_keys(name: str) -> tuple[int, int] | None:
    """(lon_i, lat_i) of a canonical tile name, else None."""
    m = _TILE_RE.match(name)
    if m is None:
        return None
    lon_i, lat_i = round(float(m.group(1)) * 100), round(float(m.group(2)) * 100)
    if (lon_i - 5) % 10 or (lat_i - 5) % 10:
        return None
    return lon_i, lat_i


class _Scanner:
    def __init__(self, root: Path, version: str | None, variant: str | None) -> None:
        self.root = root
        self.want_version = normalize_version(version) if version is not None else None
        self.want_variant = normalize_variant(variant) if variant is not None else None
        self.rows = _Rows()
        self.masks = _Masks()
        self._defaulted = False

    # --- dataset of a subtree -------------------------------------------------------------------
    def _metadata(self, directory: str) -> tuple[str | None, str | None]:
        try:
            with open(os.path.join(directory, METADATA_FILE), encoding="utf-8") as fh:
                meta = json.load(fh)
            return meta.get("dataset_version"), meta.get("dataset_variant")
        except (OSError, ValueError, AttributeError):
            return None, None

    def _resolve(self, path: str, version: str | None, variant: str | None) -> DatasetId | None:
        """Dataset of a subtree whose path says ``version``/``variant`` (None: unknown)."""
        try:
            v = normalize_version(version) if version is not None else None
            var = normalize_variant(variant) if variant is not None else None
        except GeoTesseraError:
            log.warning("skipping %s: unrecognised dataset %s/%s", path, version, variant)
            return None
        for got, want, what in ((v, self.want_version, "version"), (var, self.want_variant, "variant")):
            if got is not None and want is not None and got != want:
                log.info("skipping %s: %s %s differs from the requested %s", path, what, got, want)
                return None
        v = v or self.want_version
        var = var or self.want_variant
        if (v is None or var is None) and not self._defaulted:
            self._defaulted = True
            log.warning(
                "%s does not say which dataset it holds; assuming %s "
                "(use --dataset-version/--dataset-variant)",
                path,
                DatasetId(v or DatasetId().version, var or DatasetId().variant),
            )
        return DatasetId.parse(v, var)

    # --- the walk --------------------------------------------------------------------------------
    def walk(self) -> None:
        stack = [str(self.root)]
        while stack:
            directory = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError as exc:
                log.warning("cannot list %s: %s", directory, exc)
                continue
            parent = os.path.basename(directory)
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                name = entry.name
                if name.startswith(EMBEDDINGS_DIR) and name[
                    len(EMBEDDINGS_DIR) : len(EMBEDDINGS_DIR) + 1
                ] in ("", "."):
                    variant = name[len(EMBEDDINGS_DIR) + 1 :] or None
                    meta_v, meta_var = self._metadata(directory)
                    if meta_v is None and meta_var is None and _VPATH_RE.match(parent):
                        meta_v, meta_var = parent, "vultr"  # the seed S3 layout
                    ds = self._resolve(entry.path, meta_v, variant or meta_var)
                    if ds is not None:
                        self._scan_years(entry.path, ds)
                elif name == LANDMASKS_DIR or (parent == "landmasks" and _VPATH_RE.match(name)):
                    version = self._metadata(directory)[0]
                    if version is None:
                        version = (
                            name if parent == "landmasks" else parent if _VPATH_RE.match(parent) else None
                        )
                    ds = self._resolve(entry.path, version, None if self.want_variant else "vultr")
                    if ds is not None:
                        self._scan_landmasks(entry.path, ds)
                elif parent == "npy" and _VPATH_RE.match(name.split("-", 1)[0]):
                    vpath, _, suffix = name.partition("-")
                    ds = self._resolve(entry.path, vpath, _COOP_SUFFIXES.get(suffix, suffix or "vultr"))
                    if ds is not None:
                        self._scan_years(entry.path, ds)
                else:
                    stack.append(entry.path)

    def _scan_years(self, emb_dir: str, ds: DatasetId) -> None:
        for year_entry in os.scandir(emb_dir):
            if not (_YEAR_RE.match(year_entry.name) and year_entry.is_dir()):
                continue
            year = int(year_entry.name)
            for tile in os.scandir(year_entry.path):
                keys = _tile_keys(tile.name)
                if keys is None or not tile.is_dir():
                    continue
                self._add_tile(tile.path, tile.name, ds, year, keys)

    def _add_tile(self, path: str, name: str, ds: DatasetId, year: int, keys: tuple[int, int]) -> None:
        grid = scales = None
        for f in os.scandir(path):
            if f.name == f"{name}.npy":
                grid = f.stat()
            elif f.name == f"{name}_scales.npy":
                scales = f.stat()
        if grid is None or scales is None:
            self.rows.incomplete += 1
            log.debug("incomplete tile directory %s", path)
            return
        r = self.rows
        r.version.append(ds.version)
        r.variant.append(ds.variant)
        r.year.append(year)
        r.lon_i.append(keys[0])
        r.lat_i.append(keys[1])
        r.grid_size.append(grid.st_size)
        r.scales_size.append(scales.st_size)
        r.grid_mtime.append(grid.st_mtime_ns)
        r.scales_mtime.append(scales.st_mtime_ns)

    def _scan_landmasks(self, path: str, ds: DatasetId) -> None:
        for f in os.scandir(path):
            if not f.name.endswith(".tiff"):
                continue
            keys = _tile_keys(f.name[:-5])
            if keys is None:
                continue
            st = f.stat()
            m = self.masks
            m.version.append(ds.version)
            m.lon_i.append(keys[0])
            m.lat_i.append(keys[1])
            m.file_size.append(st.st_size)
            m.mtime.append(st.st_mtime_ns)
            m.key.append(Path(f.path).relative_to(self.root).as_posix())


def _tiles_table(r: _Rows) -> pa.Table:
    lon_i = np.asarray(r.lon_i, np.int32)
    lat_i = np.asarray(r.lat_i, np.int32)
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "version": pa.array(r.version, pa.string()),
            "variant": pa.array(r.variant, pa.string()),
            "year": pa.array(r.year, pa.int64()),
            "lon": pa.array(lon_i / 100),
            "lat": pa.array(lat_i / 100),
            "grid_size": pa.array(r.grid_size, pa.int64()),
            "scales_size": pa.array(r.scales_size, pa.int64()),
            "lon_i": pa.array(lon_i),
            "lat_i": pa.array(lat_i),
            "grid_mtime": pa.array(np.asarray(r.grid_mtime, np.int64) // 1000, pa.int64()).cast(ts),
            "scales_mtime": pa.array(np.asarray(r.scales_mtime, np.int64) // 1000, pa.int64()).cast(ts),
        }
    )
    order = ["version", "variant", "year", "lon_i", "lat_i"]
    return table.sort_by([(c, "ascending") for c in order])


def _landmasks_table(m: _Masks) -> pa.Table | None:
    if not m.lon_i:
        return None
    lon_i = np.asarray(m.lon_i, np.int32)
    lat_i = np.asarray(m.lat_i, np.int32)
    table = pa.table(
        {
            "version": pa.array(m.version, pa.string()),
            "lon": pa.array(lon_i / 100),
            "lat": pa.array(lat_i / 100),
            "file_size": pa.array(m.file_size, pa.int64()),
            "lon_i": pa.array(lon_i),
            "lat_i": pa.array(lat_i),
            "mtime": pa.array(np.asarray(m.mtime, np.int64) // 1000, pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "key": pa.array(m.key, pa.string()),
        }
    )
    return table.sort_by([("version", "ascending"), ("lon_i", "ascending"), ("lat_i", "ascending")])


def scan_tree(
    root: str | os.PathLike[str], *, version: str | None = None, variant: str | None = None
) -> ScanResult:
    """Scan a tile tree into manifest tables (see the module docstring for the layouts).

    ``version``/``variant`` label trees whose path does not name their dataset and skip
    trees naming another one. Raises :class:`InvalidInputError` when no tile is found.
    """
    path = Path(root)
    if not path.is_dir():
        raise InvalidInputError(f"{path} is not a directory")
    scanner = _Scanner(path, version, variant)
    scanner.walk()
    if scanner.rows.incomplete:
        log.warning(
            "%d tile directories lack the embedding or the scales file; left out", scanner.rows.incomplete
        )
    if not scanner.rows.year:
        raise InvalidInputError(
            f"no tiles found under {path} "
            f"(expected {EMBEDDINGS_DIR}/YEAR/grid_X_Y/grid_X_Y.npy + _scales.npy, "
            "under v1/, v1.1/ or npy/DIR/ for the remote layouts)"
        )
    return ScanResult(_tiles_table(scanner.rows), _landmasks_table(scanner.masks), scanner.rows.incomplete)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def build_manifest(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    version: str | None = None,
    variant: str | None = None,
) -> tuple[ScanResult, list[Path]]:
    """Scan ``root``; write ``manifest.parquet`` (+ ``landmasks.parquet``) to ``out_dir`` (default ``root``).

    Returns the scan result and the paths written.
    """
    result = scan_tree(root, version=version, variant=variant)
    out = Path(out_dir) if out_dir is not None else Path(root)
    written = [out / MANIFEST_FILE]
    write_parquet_atomic(result.tiles, written[0])
    if result.landmasks is not None:
        written.append(out / LANDMASKS_FILE)
        write_parquet_atomic(result.landmasks, written[1])
    log.info("wrote %s", ", ".join(map(str, written)))
    return result, written
