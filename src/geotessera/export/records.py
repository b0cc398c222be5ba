"""A downloaded tile's GeoTIFF with its export record: what a rerun checks to skip the tile.

:func:`write_tile_geotiff` converts one tile's fetched files (quantised embedding, scales,
landmask) to a GeoTIFF, then writes the record ``.NAME.tif.export.json`` beside it: the
options it was made with and its size. :func:`tiff_complete` is True when a GeoTIFF's record
matches the options asked for now and the file still has that size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .._version import __version__
from ..datasets import DatasetId
from ..files import atomic_write, directory_lock, remove_receipt
from ..grid import Cell
from ..tiles import open_tile
from .geotiff import write_embedding_geotiff

__all__ = [
    "convert_tile",
    "export_options",
    "remove_temporaries",
    "tiff_complete",
    "write_tile_geotiff",
]


def _record_path(tiff: Path) -> Path:
    return tiff.with_name(f".{tiff.name}.export.json")


def export_options(dataset: DatasetId, bands: list[int] | None, compress: str) -> dict[str, object]:
    """The options a GeoTIFF's record holds (and a rerun compares)."""
    return {"version": dataset.version, "variant": dataset.variant, "bands": bands, "compress": compress}


def tiff_complete(tiff: Path, options: dict[str, object]) -> bool:
    """True when ``tiff`` was written with ``options`` and still has the size recorded then."""
    try:
        record = json.loads(_record_path(tiff).read_text())
        return bool(record.pop("size") == tiff.stat().st_size and record == options)
    except (OSError, ValueError, KeyError):
        return False


def write_tile_geotiff(
    tiff: Path,
    embedding: Path,
    scales: Path,
    landmask: Path,
    dataset: DatasetId,
    year: int,
    cell: Cell,
    bands: list[int] | None,
    compress: str,
) -> None:
    """Write the GeoTIFF of one tile from its files, then its record (which vouches for it)."""
    arrays, grid = open_tile(embedding, scales, landmask)
    name = f"{dataset.vpath}/{dataset.variant}"
    tags = {
        "TESSERA_DATASET_VERSION": dataset.version,
        "TESSERA_DATASET_VERSION_PATH": dataset.vpath,
        "TESSERA_DATASET_VARIANT": dataset.variant,
        "TESSERA_YEAR": str(year),
        "TESSERA_TILE_LON": f"{cell.lon:.2f}",
        "TESSERA_TILE_LAT": f"{cell.lat:.2f}",
        "TESSERA_DESCRIPTION": f"Tessera embeddings {name} {year} tile {cell.name}",
        "GEOTESSERA_VERSION": __version__,
    }
    write_embedding_geotiff(
        tiff, arrays.quantized, arrays.scales, grid, bands=bands, compress=compress, tags=tags
    )
    del arrays
    record = {**export_options(dataset, bands, compress), "size": tiff.stat().st_size}
    with atomic_write(_record_path(tiff)) as f:  # after the GeoTIFF itself: the record vouches for it
        f.write(json.dumps(record).encode())


def convert_tile(
    tiff: Path,
    files: tuple[Path, Path, Path],
    temporary: Iterable[Path],
    dataset: DatasetId,
    year: int,
    cell: Cell,
    bands: list[int] | None,
    compress: str,
) -> None:
    """Write ``tiff`` from one tile's ``files`` (embedding, scales, landmask) unless it is complete,
    then remove the ``temporary`` quantised files.

    Under a lock of the tile's directory: another download into the same directory (another
    process) may be converting the same tile, and removes the quantised files once its GeoTIFF
    is complete; whoever comes second finds the GeoTIFF done and writes nothing.
    """
    with directory_lock(tiff.parent):
        if not tiff_complete(tiff, export_options(dataset, bands, compress)):
            write_tile_geotiff(tiff, *files, dataset, year, cell, bands, compress)
        _unlink(temporary)


def remove_temporaries(tiff: Path, temporary: Iterable[Path]) -> None:
    """Remove the quantised files of a tile whose GeoTIFF ``tiff`` is complete (under the tile's lock)."""
    with directory_lock(tiff.parent):
        _unlink(temporary)


def _unlink(paths: Iterable[Path]) -> None:
    for p in paths:
        remove_receipt(p)
        p.unlink(missing_ok=True)
