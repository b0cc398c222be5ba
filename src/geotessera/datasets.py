"""Tessera dataset identities: version, variant, aliases and path pieces (``formats.md`` section 3).

A :class:`DatasetId` names one model run: (version, variant). Embeddings of
different datasets must never be mixed in one output.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInputError

DEFAULT_VERSION = "1.0"
DEFAULT_VARIANT = "vultr"
KNOWN_YEARS = tuple(range(2017, 2026))
PLAUSIBLE_YEARS = (1900, 2100)
"""Years outside this range are refused as implausible, in requests and in manifests alike."""

#: version string -> path component in the bucket
_VERSION_PATHS = {"1.0": "v1", "1.1": "v1.1"}
_VERSION_ALIASES = {
    "1": "1.0",
    "v1": "1.0",
    "1.0": "1.0",
    "v1.0": "1.0",
    "1.1": "1.1",
    "v1.1": "1.1",
}
KNOWN_VARIANTS = ("vultr", "cambridge")

EMBEDDINGS_DIR = "global_0.1_degree_representation"
LANDMASKS_DIR = "global_0.1_degree_tiff_all"


def normalize_version(version: str | float | int | None) -> str:
    """Canonical version string ("1.0", "1.1") for any alias (``1``, ``v1``, ``1.0``, ``v1.1``...)."""
    if version is None:
        return DEFAULT_VERSION
    key = str(version).strip().lower()
    if key in _VERSION_ALIASES:
        return _VERSION_ALIASES[key]
    # future versions: "v1.2" / "1.2"
    bare = key[1:] if key.startswith("v") else key
    parts = bare.split(".")
    if 1 <= len(parts) <= 2 and all(p.isdigit() for p in parts):
        return bare if len(parts) == 2 else f"{bare}.0"
    known = ", ".join(sorted(set(_VERSION_PATHS.values())))
    raise InvalidInputError(f"unknown dataset version {version!r} (known: {known})")


def version_path(version: str) -> str:
    """Bucket path component for a canonical version: "1.0" -> "v1", "1.1" -> "v1.1"."""
    v = normalize_version(version)
    if v in _VERSION_PATHS:
        return _VERSION_PATHS[v]
    major, minor = v.split(".")
    return f"v{major}" if minor == "0" else f"v{v}"


def normalize_variant(variant: str | None) -> str:
    """Canonical variant name (lower case); defaults to ``vultr``."""
    if variant is None:
        return DEFAULT_VARIANT
    v = str(variant).strip().lower()
    if not v or not v.replace("-", "").replace("_", "").isalnum():
        raise InvalidInputError(f"invalid dataset variant {variant!r}")
    return v


def embeddings_dir(variant: str) -> str:
    """Embedding directory of a variant: ``global_0.1_degree_representation[.{variant}]``."""
    v = normalize_variant(variant)
    return EMBEDDINGS_DIR if v == DEFAULT_VARIANT else f"{EMBEDDINGS_DIR}.{v}"


@dataclass(frozen=True, slots=True)
class DatasetId:
    """One published dataset: canonical ``version`` ("1.0") and ``variant`` ("vultr")."""

    version: str = DEFAULT_VERSION
    variant: str = DEFAULT_VARIANT

    @classmethod
    def parse(cls, version: str | float | int | None = None, variant: str | None = None) -> DatasetId:
        """Normalise user input (aliases accepted) into a DatasetId."""
        return cls(normalize_version(version), normalize_variant(variant))

    @property
    def vpath(self) -> str:
        """Bucket path component of the version ("v1", "v1.1")."""
        return version_path(self.version)

    @property
    def emb_dir(self) -> str:
        """Remote embedding directory of the variant."""
        return embeddings_dir(self.variant)

    def __str__(self) -> str:
        return f"{self.vpath}/{self.variant}"
