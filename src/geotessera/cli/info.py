"""``geotessera info``: the library and a dataset's coverage, or what a tile directory/file holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import ClientArgs, client_options, make_client, verbose_option


@click.command("info")
@click.option(
    "--tiles",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Analyse tile files: a directory or a single GeoTIFF / .npy file.",
)
@click.option("--list-files", is_flag=True, help="With --tiles: list every file (tab-separated).")
@client_options(workers=False)
@verbose_option
def command(
    tiles: Path | None,
    list_files: bool,
    client_args: ClientArgs,
) -> None:
    """Show the library and a dataset's coverage, or what tile files hold."""
    from rich import box
    from rich.table import Table

    from .render import stdout

    if tiles is None and list_files:
        raise click.UsageError("--list-files lists the files of --tiles: give --tiles DIR")
    if tiles is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in client_args.items() if v not in (None, False)]
        if given:
            raise click.UsageError(
                f"{', '.join(given)} do{'es' if len(given) == 1 else ''} not apply to --tiles, "
                "which reads the files themselves"
            )
        from ..tiles.inventory import scan_tiles

        inv = scan_tiles(tiles)
        groups: dict[tuple[str, int | None], list[Any]] = {}
        for f in inv:
            groups.setdefault((f.kind, f.year), []).append(f)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for name in ("kind", "year", "files", "bands", "H x W", "dtype", "CRS"):
            table.add_column(name, no_wrap=True)
        table.add_column("MB", justify="right", no_wrap=True)
        for (kind, year), fs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
            hs, ws = [f.shape[0] for f in fs], [f.shape[1] for f in fs]
            crs = sorted({f.crs or "-" for f in fs})
            table.add_row(
                kind,
                str(year or ""),
                str(len(fs)),
                ",".join(sorted({str(f.bands) for f in fs})),
                f"{_span(hs)} x {_span(ws)}",
                ",".join(sorted({f.dtype for f in fs})),
                crs[0] + (f" +{len(crs) - 1}" if len(crs) > 1 else ""),
                f"{sum(f.size for f in fs) / 1e6:.1f}",
            )
        stdout.print(table)
        if list_files:
            for f in inv:
                click.echo(
                    f"{f.path}\t{f.kind}\t{f.year or ''}\t{f.bands}\t{f.shape[0]}x{f.shape[1]}\t{f.size}"
                )
        click.echo(
            f"{len(inv)} files, {sum(1 for f in inv if f.kind == 'geotiff')} GeoTIFF, "
            f"{sum(1 for f in inv if f.kind == 'embedding')} embedding .npy; "
            f"years: {', '.join(map(str, sorted({f.year for f in inv if f.year})))}; "
            f"{sum(f.size for f in inv) / 1e6:.1f} MB"
        )
        corrupt = [f for f in inv if f.kind == "corrupt"]
        for f in corrupt:
            click.echo(f"error: corrupt file: {f.note}", err=True)
        if corrupt:
            raise click.exceptions.Exit(1)
        return

    from .._version import __version__

    gt = make_client(client_args)
    click.echo(f"geotessera {__version__}")
    click.echo(f"dataset: version {gt.dataset.version} ({gt.dataset.vpath}), variant {gt.dataset.variant}")
    click.echo(f"source: {gt.settings.base_url}")
    click.echo(f"manifest cache: {gt.settings.cache_dir}")
    reg = gt.registry
    counts = reg.tile_counts_by_year()
    table = Table("year", "tiles")
    for year, n in sorted(counts.items()):
        table.add_row(str(year), str(n))
    stdout.print(table)
    click.echo(f"years: {', '.join(map(str, sorted(counts)))}; total tiles: {sum(counts.values())}")


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"
