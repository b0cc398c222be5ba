"""Errors specific to the transfer layer (the shared tree lives in ``geotessera.errors``)."""

from __future__ import annotations

from ..errors import GeoTesseraError, SourceError


class TransferCancelledError(GeoTesseraError):
    """A transfer was cancelled (e.g. Ctrl-C) before it finished; its partial file was removed."""


class UnreachableError(SourceError):
    """The source's host could not be connected to, even after retries."""
