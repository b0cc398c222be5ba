"""Exception and warning tree of geotessera.

Every error the library raises on purpose derives from :class:`GeoTesseraError`;
leaves also derive from the matching built-in exception so callers can catch
either (``except FileNotFoundError`` still works for a missing tile).
This module imports nothing else from the package.
"""

from __future__ import annotations


class GeoTesseraError(Exception):
    """Root of every error raised on purpose by geotessera."""


class InvalidInputError(GeoTesseraError, ValueError):
    """A request that cannot be served as asked: bad bbox, year, bands, country, file."""


class NotCoveredError(GeoTesseraError, LookupError):
    """The dataset has no data for the requested tile/year (names what does exist)."""


class SourceError(GeoTesseraError, OSError):
    """The data source could not be read (unreachable, HTTP error).

    ``status`` holds the HTTP status code when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class IntegrityError(GeoTesseraError):
    """Downloaded bytes failed verification (checksum mismatch or missing checksum)."""


class CorruptDataError(GeoTesseraError):
    """A file is malformed: bad .npy header, truncated Parquet, bad attributes, bad scales."""


class OutputError(GeoTesseraError, OSError):
    """An output cannot be written: disk full, permissions, a directory of another dataset."""


class MixedDatasetError(OutputError):
    """An output directory already holds another dataset (version, variant), format or band set."""


class MissingExtraError(GeoTesseraError, ImportError):
    """An optional dependency is missing; the message names the pip extra to install."""


class GeoTesseraWarning(UserWarning):
    """Root of geotessera's warnings; escalate with ``warnings.simplefilter('error', ...)``."""


class CoverageWarning(GeoTesseraWarning):
    """Some requested tiles or years are not covered."""


class ScaleWarning(GeoTesseraWarning):
    """Implausible scales found (outside (0, 1)); the affected pixels become NaN."""
