"""The output directory's sidecar ``tessera_metadata.json`` (``formats.md`` section 5).

It records which dataset (version, variant) the directory holds; a directory
whose sidecar names another dataset is refused, so embeddings of different
model runs are never mixed.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._version import __version__
from ..datasets import DatasetId, version_path
from ..errors import CorruptDataError, OutputError
from ..layouts import METADATA_FILE
from ._atomic import atomic_path


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


def check_output_dataset(out_dir: str | os.PathLike[str], dataset: DatasetId) -> None:
    """Refuse ``out_dir`` if its sidecar names a dataset other than ``dataset``."""
    data = read_sidecar(out_dir)
    if data is None:
        return
    have = (str(data.get("dataset_version")), str(data.get("dataset_variant")))
    if have != (dataset.version, dataset.variant):
        raise OutputError(
            f"{out_dir} already holds dataset version {have[0]} variant {have[1]}; refusing to mix it "
            f"with version {dataset.version} variant {dataset.variant} (choose another output directory)"
        )


def write_sidecar(
    out_dir: str | os.PathLike[str],
    dataset: DatasetId,
    *,
    fmt: str,
    years: list[int],
    tile_count: int,
    source_url: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write (or merge into) the sidecar: dataset, format, years, tiles and source URL prefix."""
    check_output_dataset(out_dir, dataset)
    old = read_sidecar(out_dir) or {}
    all_years = sorted(set(old.get("years", [])) | set(years))
    doc: dict[str, Any] = {
        **old,
        "dataset_version": dataset.version,
        "dataset_version_path": version_path(dataset.version),
        "dataset_variant": dataset.variant,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "geotessera_version": __version__,
        "format": fmt,
        "years": all_years,
        "year": all_years[0] if len(all_years) == 1 else None,
        "tile_count": tile_count,
        "source_url": source_url,
        **(extra or {}),
    }
    p = Path(out_dir) / METADATA_FILE
    with atomic_path(p) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return p
