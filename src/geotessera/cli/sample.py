"""``geotessera sample build|serve``: the synthetic Tessera store and its loopback S3 endpoint."""

from __future__ import annotations

from pathlib import Path

import click

from .options import verbose_option


@click.group("sample")
def command() -> None:
    """Build and serve the deterministic synthetic Tessera sample store."""
