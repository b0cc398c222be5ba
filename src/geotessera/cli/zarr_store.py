"""``geotessera zarr build``: convert a Tessera tile set into a cloud-native Zarr store."""

from __future__ import annotations

from pathlib import Path

import click

from .options import dataset_options, verbose_option, years_option


@click.group("zarr")
def command() -> None:
    """Build geoemb Zarr stores from Tessera tiles."""


@command.command("build")
@click.argument("source")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
@years_option(None, plural=True)
@click.option(
    "--zones", multiple=True, type=click.IntRange(1, 60), help="UTM zones (repeatable; default all)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Shards written in parallel (about 40 MiB of memory each).",
)
@dataset_options
@verbose_option
def build(
    source: str,
    store: Path,
    years: list[int] | None,
    zones: tuple[int, ...],
    workers: int,
    dataset_version: str | None,
    dataset_variant: str | None,
) -> None:
    """Convert the tiles under SOURCE (a local mirror directory or an http(s) base URL) into STORE.

    Resumable: rerun after an interruption and complete shards (by receipt) are skipped;
    adding a year or a tile rewrites only the shards it touches.
    """
    from ..datasets import DatasetId
    from ..store import build_zarr
    from .render import ProgressBars, plural

    with ProgressBars("shards") as bars:
        report = build_zarr(
            source,
            store,
            dataset=DatasetId.parse(dataset_version, dataset_variant),
            years=years,
            zones=zones or None,
            workers=workers,
            progress=bars,
        )
    click.echo(
        f"{store}: {plural(report.shards_written, 'shard')} written, "
        f"{report.shards_skipped} already complete, "
        f"{report.bytes_written / 1e6:.1f} MB, zones {report.zones}, years {report.years}, "
        f"{report.elapsed_s:.1f} s"
    )
