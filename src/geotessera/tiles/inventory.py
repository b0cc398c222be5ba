"""What a directory of tiles holds: GeoTIFF exports, ``.npy`` embeddings and scales, landmasks.

Reads headers only (``.npy`` header, GeoTIFF metadata), so scanning is cheap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptDataError, InvalidInputError
from .files import read_npy_header

_YEAR_RE = re.compile(r"(?:^|[/_])((?:19|20)\d\d)(?:[/_.]|$)")
_TILE_RE = re.compile(r"grid_-?\d+\.\d\d_-?\d+\.\d\d")


@dataclass(frozen=True)
class TileFile:
    """One file: ``kind`` is geotiff, landmask, embedding, scales or unknown; shape is (H, W)."""

    path: Path
    kind: str
    bands: int
    shape: tuple[int, int]
    dtype: str
    size: int
    year: int | None = None
    tile: str | None = None
    crs: str | None = None
    note: str = ""


def _iter_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith((".tif", ".tiff", ".npy")):
                yield Path(dirpath) / name


def describe_file(path: Path) -> TileFile:
    """Header facts of one tile file; :class:`CorruptDataError` for an unreadable one."""
    text = path.as_posix()
    years = _YEAR_RE.findall(text)
    tile_m = _TILE_RE.search(path.name)
    tile = tile_m.group(0) if tile_m else None
    size = path.stat().st_size
    if path.suffix.lower() == ".npy":
        dtype, shape, _ = read_npy_header(path)
        kind = "scales" if path.stem.endswith("_scales") else "embedding" if len(shape) == 3 else "unknown"
        bands = shape[2] if len(shape) == 3 else 1
        hw = (shape[0], shape[1]) if len(shape) >= 2 else (shape[0] if shape else 0, 1)
        return TileFile(path, kind, bands, hw, str(dtype), size, int(years[-1]) if years else None, tile)
    import rasterio

    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
            year = tags.get("TESSERA_YEAR") or (years[-1] if years else None)
            kind = "geotiff" if ds.dtypes[0] == "float32" else "landmask" if ds.count == 1 else "unknown"
            crs = ds.crs.to_string() if ds.crs else None
            return TileFile(
                path,
                kind,
                ds.count,
                (ds.height, ds.width),
                ds.dtypes[0],
                size,
                int(year) if year else None,
                tile,
                crs,
            )
    except rasterio.errors.RasterioIOError as exc:
        raise CorruptDataError(f"{path}: not a readable GeoTIFF ({exc})") from exc


def scan_tiles(root: str | os.PathLike[str]) -> list[TileFile]:
    """Describe every tile file under ``root`` (a directory) or ``root`` itself (a file)."""
    p = Path(root)
    if not p.exists():
        raise InvalidInputError(f"{p} does not exist")
    if p.is_file() and not p.name.lower().endswith((".tif", ".tiff", ".npy")):
        raise InvalidInputError(f"{p} is not a GeoTIFF or .npy tile file")
    files = []
    for f in _iter_files(p):
        try:
            files.append(describe_file(f))
        except CorruptDataError as exc:  # report it and go on with the rest of the directory
            files.append(TileFile(f, "corrupt", 0, (0, 0), "-", f.stat().st_size, note=str(exc)))
    if p.is_file() and files and files[0].kind == "corrupt":
        raise CorruptDataError(files[0].note)
    if not files:
        raise InvalidInputError(f"no GeoTIFF or .npy tile files found under {p}")
    return files
