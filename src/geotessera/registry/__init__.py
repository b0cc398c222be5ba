"""Manifests (layer L4): load, cache and query the list of published tiles.

``load_manifest`` finds and caches the Parquet manifest offline-first;
``Registry`` answers vectorised queries over it; ``scan_tree`` /
``build_manifest`` write a manifest for a local tile tree.
"""

from ..config import FRESHNESS_TIMEOUT_S, default_cache_dir
from .manifest import (
    LANDMASKS_FILE,
    LEGACY_MANIFEST_FILE,
    MANIFEST_FILE,
    Manifest,
    cached_manifest_paths,
    load_manifest,
    prepare_landmasks,
    prepare_tiles,
)
from .query import PointTiles, Registry

__all__ = [
    "FRESHNESS_TIMEOUT_S",
    "LANDMASKS_FILE",
    "LEGACY_MANIFEST_FILE",
    "MANIFEST_FILE",
    "Manifest",
    "PointTiles",
    "Registry",
    "cached_manifest_paths",
    "default_cache_dir",
    "load_manifest",
    "prepare_landmasks",
    "prepare_tiles",
]
