"""geotessera: verified, fast access to Tessera geospatial foundation-model embeddings.

The library logs through ``logging.getLogger("geotessera")`` and never prints.
"""

from __future__ import annotations

import logging

from ._version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .errors import (  # noqa: E402
    CorruptDataError,
    GeoTesseraError,
    GeoTesseraWarning,
    IntegrityError,
    InvalidInputError,
    MissingExtraError,
    NotCoveredError,
    OutputError,
    SourceError,
)

__all__ = [
    "CorruptDataError",
    "GeoTessera",
    "GeoTesseraError",
    "GeoTesseraWarning",
    "GeoTesseraZarr",
    "IntegrityError",
    "InvalidInputError",
    "MissingExtraError",
    "NotCoveredError",
    "OutputError",
    "SourceError",
    "__version__",
    "dequantize_embedding",
]


def __getattr__(name: str) -> object:
    # PEP 562: keep `import geotessera` light; the client pulls in rasterio, pyarrow, urllib3.
    if name == "GeoTessera":
        from .client import GeoTessera

        return GeoTessera
    if name == "dequantize_embedding":
        from .tiles import dequantize_embedding

        return dequantize_embedding
    if name == "GeoTesseraZarr":
        from .store import GeoTesseraZarr

        return GeoTesseraZarr
    raise AttributeError(f"module 'geotessera' has no attribute {name!r}")
