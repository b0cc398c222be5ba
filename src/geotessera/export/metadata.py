"""The output directory's sidecar ``tessera_metadata.json`` (``formats.md`` section 5).

It records which dataset (version, variant) the directory holds, the formats
written, the GeoTIFF band selection and the tiles present. A directory whose
sidecar names another dataset, or GeoTIFFs of another band selection, is refused
(:class:`MixedDatasetError`), so embeddings of different model runs are never mixed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._version import __version__
from ..datasets import EMBEDDINGS_DIR, LANDMASKS_DIR, DatasetId, version_path
from ..errors import CorruptDataError, MixedDatasetError
from ..files import atomic_path, directory_lock
from ..layouts import METADATA_FILE


def read_sidecar(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The parsed sidecar of ``out_dir``, or None when there is none."""
    p = Path(out_dir) / METADATA_FILE
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptDataError(f"{p} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CorruptDataError(f"{p} is not a JSON object")
    return data


def default_tiles_dir(dataset: DatasetId, cwd: str | os.PathLike[str]) -> Path:
    """Where a client keeps tiles when not told (``embeddings_dir=None``).

    The default dataset (v1/vultr) keeps them in ``cwd`` itself, as the seed does; another
    dataset in ``cwd/tessera-{vpath}-{variant}`` (e.g. ``tessera-v1.1-cambridge``), so
    datasets never meet in one directory. A directory whose sidecar already names the
    dataset is kept: tiles downloaded before stay in use (and a ``cwd`` holding another
    dataset sends even the default one to its own subdirectory).
    """
    here = Path(cwd)
    own = here / f"tessera-{dataset.vpath}-{dataset.variant}"
    try:
        data = read_sidecar(here)
    except CorruptDataError:  # said when the directory is used; choosing one is no reason to fail
        data = None
    if data is not None:
        held = (str(data.get("dataset_version")), str(data.get("dataset_variant")))
        return here if held == (dataset.version, dataset.variant) else own
    return here if dataset == DatasetId() else own


def discard_empty_claim(out_dir: str | os.PathLike[str], *, created: bool) -> bool:
    """Remove the sidecar of ``out_dir`` when its tile directories hold no file.

    For a run that completed nothing. Only the trees a download writes
    (``global_0.1_degree_representation/``, ``global_0.1_degree_tiff_all/``) are looked at,
    never the rest of ``out_dir`` (which may be the current directory); their empty
    directories are removed, and ``out_dir`` too when ``created`` (this run made it) and it
    is then empty. Returns True when the sidecar was removed: a sidecar never claims a
    directory that holds nothing.
    """
    root = Path(out_dir)
    trees = [root / EMBEDDINGS_DIR, root / LANDMASKS_DIR]
    with directory_lock(root):  # (another download into it may be claiming it right now)
        if any(p.is_file() for tree in trees for p in tree.rglob("*")):
            return False
        (root / METADATA_FILE).unlink(missing_ok=True)
    dirs = [p for tree in trees if tree.is_dir() for p in [tree, *tree.rglob("*")] if p.is_dir()]
    for d in [*sorted(dirs, key=lambda p: -len(p.parts)), *([root] if created else [])]:
        with contextlib.suppress(OSError):
            d.rmdir()  # only empty directories go
    return True


def check_output_dataset(
    out_dir: str | os.PathLike[str],
    dataset: DatasetId,
    *,
    fmt: str | None = None,
    bands: Sequence[int] | None = None,
) -> None:
    """Refuse ``out_dir`` if its sidecar names another dataset, or (tiff) another band selection."""
    data = read_sidecar(out_dir)
    if data is None:
        return
    have = (str(data.get("dataset_version")), str(data.get("dataset_variant")))
    if have != (dataset.version, dataset.variant):
        raise MixedDatasetError(
            f"{out_dir} already holds dataset version {have[0]} variant {have[1]}; refusing to mix it "
            f"with version {dataset.version} variant {dataset.variant} (choose another output directory)"
        )
    if fmt == "tiff" and "tiff" in _formats(data):
        old = data.get("tiff_bands", data.get("bands"))
        new = None if bands is None else list(bands)
        if old != new:
            describe = "all 128 bands" if old is None else f"bands {old}"
            raise MixedDatasetError(
                f"{out_dir} already holds GeoTIFFs of {describe}; export other bands into another "
                "output directory"
            )


def _formats(data: dict[str, Any]) -> list[str]:
    formats = data.get("formats")
    if isinstance(formats, list):
        return [str(f) for f in formats]
    return [str(data["format"])] if data.get("format") else []


def write_sidecar(
    out_dir: str | os.PathLike[str],
    dataset: DatasetId,
    *,
    fmt: str,
    tiles: Iterable[str],
    source_url: str,
    bands: Sequence[int] | None = None,
    compress: str | None = None,
) -> Path:
    """Write (or merge into) the sidecar.

    ``tiles`` are names ``grid_X_Y/YEAR`` of complete tiles; they are merged with those
    already recorded, so ``tile_count`` counts every tile the directory holds.
    """
    with directory_lock(out_dir):  # a read-modify-write: two downloads into one directory keep both
        return _write_sidecar(out_dir, dataset, fmt, tiles, source_url, bands, compress)


def _write_sidecar(
    out_dir: str | os.PathLike[str],
    dataset: DatasetId,
    fmt: str,
    tiles: Iterable[str],
    source_url: str,
    bands: Sequence[int] | None,
    compress: str | None,
) -> Path:
    check_output_dataset(out_dir, dataset, fmt=fmt, bands=bands)
    old = read_sidecar(out_dir) or {}
    all_tiles = sorted(set(old.get("tiles", [])) | set(tiles))
    years = sorted({int(t.rsplit("/", 1)[1]) for t in all_tiles})
    formats = sorted(set(_formats(old)) | {fmt})
    doc: dict[str, Any] = {
        **old,
        "dataset_version": dataset.version,
        "dataset_version_path": version_path(dataset.version),
        "dataset_variant": dataset.variant,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "geotessera_version": __version__,
        "format": fmt if len(formats) == 1 else "mixed",
        "formats": formats,
        "years": years,
        "year": years[0] if len(years) == 1 else None,
        "tile_count": len(all_tiles),
        "tiles": all_tiles,
        "source_url": source_url,
    }
    if fmt == "tiff":
        doc["tiff_bands"] = None if bands is None else list(bands)
        doc["compress"] = compress
    doc.pop("bands", None)
    p = Path(out_dir) / METADATA_FILE
    with atomic_path(p) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return p
