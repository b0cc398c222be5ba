"""Object keys of the published layouts (``formats.md`` sections 3 and 5).

Keys are relative to a base (a bucket URL or a local directory) and always use
``/``. The seed layout (anonymous S3) is the default; the Source Cooperative
layout is the second public layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from .datasets import EMBEDDINGS_DIR, LANDMASKS_DIR, DatasetId
from .errors import InvalidInputError
from .grid import Cell

DEFAULT_BASE_URL = "https://s3.us-west-2.amazonaws.com/tessera-embeddings"
SOURCE_COOP_BASE_URL = "https://data.source.coop/tessera/tessera"


class Layout(Protocol):
    """Where each object of a dataset lives, relative to the base."""

    @property
    def name(self) -> str: ...

    def manifest_key(self, ds: DatasetId) -> str: ...
    def landmasks_manifest_key(self, ds: DatasetId) -> str: ...
    def embedding_key(self, ds: DatasetId, year: int, cell: Cell) -> str: ...
    def scales_key(self, ds: DatasetId, year: int, cell: Cell) -> str: ...
    def landmask_key(self, ds: DatasetId, cell: Cell) -> str: ...


@dataclass(frozen=True)
class S3Layout:
    """The seed layout: ``{vpath}/{emb_dir}/{year}/grid_X_Y/grid_X_Y[_scales].npy``."""

    name: str = "s3"

    def manifest_key(self, ds: DatasetId) -> str:
        return f"{ds.vpath}/manifest.parquet"

    def landmasks_manifest_key(self, ds: DatasetId) -> str:
        return f"{ds.vpath}/landmasks.parquet"

    def tile_dir(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return f"{ds.vpath}/{ds.emb_dir}/{year}/{cell.name}"

    def embedding_key(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return f"{self.tile_dir(ds, year, cell)}/{cell.name}.npy"

    def scales_key(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return f"{self.tile_dir(ds, year, cell)}/{cell.name}_scales.npy"

    def landmask_key(self, ds: DatasetId, cell: Cell) -> str:
        return f"{ds.vpath}/{LANDMASKS_DIR}/{cell.name}.tiff"


def source_coop_dir(ds: DatasetId) -> str:
    """Source Cooperative npy directory: ``v1`` for (1.0, vultr), ``v1.1-cam`` for (1.1, cambridge)."""
    if ds.variant == "vultr":
        return ds.vpath
    suffix = "cam" if ds.variant == "cambridge" else ds.variant
    return f"{ds.vpath}-{suffix}"


@dataclass(frozen=True)
class SourceCoopLayout:
    """The Source Cooperative layout: ``npy/{dir}/{year}/grid_X_Y/...``, ``landmasks/{vpath}/...``."""

    name: str = "source-coop"

    def manifest_key(self, ds: DatasetId) -> str:
        return f"npy/{source_coop_dir(ds)}/manifest.parquet"

    def landmasks_manifest_key(self, ds: DatasetId) -> str:
        return f"landmasks/{ds.vpath}/landmasks.parquet"

    def tile_dir(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return f"npy/{source_coop_dir(ds)}/{year}/{cell.name}"

    def embedding_key(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return f"{self.tile_dir(ds, year, cell)}/{cell.name}.npy"

    def scales_key(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return f"{self.tile_dir(ds, year, cell)}/{cell.name}_scales.npy"

    def landmask_key(self, ds: DatasetId, cell: Cell) -> str:
        return f"landmasks/{ds.vpath}/{cell.name}.tiff"


@dataclass(frozen=True)
class LocalOutputLayout:
    """A geotessera output directory used as a mirror (``formats.md`` section 5).

    It holds one dataset (named by its ``tessera_metadata.json``), so keys do not
    depend on the dataset; ``geotessera registry build DIR`` writes its manifests.
    """

    name: str = "local-output"

    def manifest_key(self, ds: DatasetId) -> str:
        return "manifest.parquet"

    def landmasks_manifest_key(self, ds: DatasetId) -> str:
        return "landmasks.parquet"

    def embedding_key(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return local_embedding_path(year, cell)

    def scales_key(self, ds: DatasetId, year: int, cell: Cell) -> str:
        return local_scales_path(year, cell)

    def landmask_key(self, ds: DatasetId, cell: Cell) -> str:
        return local_landmask_path(cell)


S3_LAYOUT = S3Layout()
SOURCE_COOP_LAYOUT = SourceCoopLayout()
LOCAL_OUTPUT_LAYOUT = LocalOutputLayout()


# --- the local output layout (formats.md section 5) ---------------------------
METADATA_FILE = "tessera_metadata.json"


def local_tile_dir(year: int, cell: Cell) -> str:
    """Relative directory of a tile in an output directory."""
    return f"{EMBEDDINGS_DIR}/{year}/{cell.name}"


def local_embedding_path(year: int, cell: Cell) -> str:
    return f"{local_tile_dir(year, cell)}/{cell.name}.npy"


def local_scales_path(year: int, cell: Cell) -> str:
    return f"{local_tile_dir(year, cell)}/{cell.name}_scales.npy"


def local_geotiff_path(year: int, cell: Cell) -> str:
    return f"{local_tile_dir(year, cell)}/{cell.name}_{year}.tiff"


def local_landmask_path(cell: Cell) -> str:
    return f"{LANDMASKS_DIR}/{cell.name}.tiff"


def layout_for(base_url: str, name: str | None = None) -> Layout:
    """The layout named (``s3``, ``source-coop``, ``local-output``), or the one ``base_url``
    implies: Source Cooperative for its gateway, the output layout for a directory geotessera
    downloaded into (it holds ``tessera_metadata.json``), else the seed's S3 layout."""
    layouts: dict[str, Layout] = {
        "s3": S3_LAYOUT,
        "source-coop": SOURCE_COOP_LAYOUT,
        "local-output": LOCAL_OUTPUT_LAYOUT,
    }
    if name is not None:
        if name not in layouts:
            raise InvalidInputError(f"unknown layout {name!r}; choose one of {', '.join(layouts)}")
        return layouts[name]
    if base_url.startswith(SOURCE_COOP_BASE_URL):
        return SOURCE_COOP_LAYOUT
    if "://" not in base_url and (Path(base_url) / METADATA_FILE).is_file():
        return LOCAL_OUTPUT_LAYOUT  # a directory geotessera downloaded into, used as a mirror
    return S3_LAYOUT


def missing_manifest_hint(base_url: str) -> str:
    """What a 404 for the manifest most likely means: a URL without its bucket, or no such dataset."""
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https") and parts.path.strip("/") == "":
        example = f"{base_url.rstrip('/')}/tessera-embeddings"
        return f"the base URL {base_url} names no bucket: include it, e.g. {example}"
    return (
        "published datasets: version v1 variant vultr, version v1.1 variant cambridge; "
        "a base URL includes its bucket, e.g. http://127.0.0.1:9000/tessera-embeddings"
    )
