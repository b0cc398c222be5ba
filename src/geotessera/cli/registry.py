"""``geotessera registry build DIR``: write a Parquet manifest for a local tile tree."""

from __future__ import annotations

from pathlib import Path

import click

from .options import verbose_option


@click.group("registry")
def command() -> None:
    """Tile manifests (the registry): build one for a local tile tree."""


@command.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for manifest.parquet (and landmasks.parquet)  [default: DIRECTORY].",
)
@click.option(
    "--dataset-version",
    default=None,
    help="Tessera dataset version (e.g. v1, v1.1) of trees whose path does not name one.",
)
@click.option(
    "--dataset-variant",
    default=None,
    help="Tessera dataset variant (e.g. vultr) of trees whose path does not name one.",
)
@verbose_option
def build(
    directory: Path, output: Path | None, dataset_version: str | None, dataset_variant: str | None
) -> None:
    """Scan DIRECTORY (S3, local output or Source Cooperative layout) and write its manifest.

    Sizes come from the files; the dataset from the path, tessera_metadata.json or the
    options. A tree naming another dataset than the options is skipped.
    """
    from ..registry.scan import build_manifest

    result, written = build_manifest(directory, output, version=dataset_version, variant=dataset_variant)
    click.echo(result.summary())
    for path in written:
        click.echo(f"wrote {path}")
