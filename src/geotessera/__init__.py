"""geotessera: verified, fast access to Tessera geospatial foundation-model embeddings.

The library logs through ``logging.getLogger("geotessera")`` and never prints.
"""

from __future__ import annotations

import logging

__version__ = "0.3.0.dev0"

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
    "GeoTesseraError",
    "GeoTesseraWarning",
    "IntegrityError",
    "InvalidInputError",
    "MissingExtraError",
    "NotCoveredError",
    "OutputError",
    "SourceError",
    "__version__",
]
