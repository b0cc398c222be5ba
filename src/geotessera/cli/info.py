"""``geotessera info``: the library and a dataset's coverage, or what a tile directory/file holds."""

from __future__ import annotations

from pathlib import Path

import click

from .options import dataset_options, source_options, verbose_option


@click.command("info")
@click.option(
    "--tiles",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Analyse tile files: a directory or a single GeoTIFF / .npy file.",
)
@dataset_options
@source_options
@verbose_option
def command(
    tiles: Path | None,
    dataset_version: str | None,
    dataset_variant: str | None,
    base_url: str | None,
    cache_dir: Path | None,
    registry_dir: Path | None,
    offline: bool | None,
    workers: int | None,
) -> None:
    """Display information about tile files, or about the library and a dataset."""
    from rich.table import Table

    from .render import stderr

    if tiles is not None:
        from ..tiles.inventory import scan_tiles

        inv = scan_tiles(tiles)
        table = Table("file", "kind", "year", "tile", "bands", "shape", "dtype", "crs", "MB")
        for f in inv:
            table.add_row(
                str(f.path.relative_to(tiles) if tiles.is_dir() else f.path.name),
                f.kind,
                str(f.year or ""),
                f.tile or "",
                str(f.bands),
                f"{f.shape[0]}x{f.shape[1]}",
                f.dtype,
                f.crs or "",
                f"{f.size / 1e6:.1f}",
            )
        stderr.print(table)
        click.echo(
            f"{len(inv)} files, {sum(1 for f in inv if f.kind == 'geotiff')} GeoTIFF, "
            f"{sum(1 for f in inv if f.kind == 'embedding')} embedding .npy; "
            f"years: {', '.join(map(str, sorted({f.year for f in inv if f.year})))}; "
            f"{sum(f.size for f in inv) / 1e6:.1f} MB"
        )
        return

    from .._version import __version__
    from ..client import GeoTessera

    gt = GeoTessera(
        dataset_version,
        dataset_variant,
        cache_dir=cache_dir,
        registry_dir=registry_dir,
        base_url=base_url,
        offline=offline,
        workers=workers,
    )
    click.echo(f"geotessera {__version__}")
    click.echo(f"dataset: version {gt.dataset.version} ({gt.dataset.vpath}), variant {gt.dataset.variant}")
    click.echo(f"source: {gt.settings.base_url}")
    click.echo(f"manifest cache: {gt.settings.cache_dir}")
    reg = gt.registry
    counts = reg.tile_counts_by_year()
    table = Table("year", "tiles")
    for year, n in sorted(counts.items()):
        table.add_row(str(year), str(n))
    stderr.print(table)
    click.echo(f"years: {', '.join(map(str, sorted(counts)))}; total tiles: {sum(counts.values())}")
