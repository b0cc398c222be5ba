"""``geotessera zarr build``: convert a Tessera tile set into a cloud-native Zarr store."""

from __future__ import annotations

from pathlib import Path

import click

from .options import verbose_option


@click.group("zarr")
def command() -> None:
    """Build geoemb Zarr stores from Tessera tiles."""


@command.command("build")
@click.argument("source")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
@click.option("--years", multiple=True, type=int, help="Years to convert (repeatable; default all).")
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
@click.option("--dataset-version", default=None, help="Dataset version (v1, 1.1, ...); default v1.")
@click.option("--dataset-variant", default=None, help="Dataset variant (vultr, cambridge); default vultr.")
@verbose_option
def build(
    source: str,
    store: Path,
    years: tuple[int, ...],
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
    from ..progress import Event, ItemDone, ItemSkipped, PlanReady
    from ..store import build_zarr

    state = {"total": 0, "done": 0}

    def sink(event: Event) -> None:
        if isinstance(event, PlanReady):
            state["total"] = event.items
        elif isinstance(event, ItemDone | ItemSkipped):
            state["done"] += 1
            click.echo(f"\r{state['done']}/{state['total']} shards", nl=False, err=True)

    report = build_zarr(
        source,
        store,
        dataset=DatasetId.parse(dataset_version, dataset_variant),
        years=years or None,
        zones=zones or None,
        workers=workers,
        progress=sink,
    )
    click.echo("", err=True)
    click.echo(
        f"{store}: {report.shards_written} shards written, {report.shards_skipped} already complete, "
        f"{report.bytes_written / 1e6:.1f} MB, zones {report.zones}, years {report.years}, "
        f"{report.elapsed_s:.1f} s"
    )
