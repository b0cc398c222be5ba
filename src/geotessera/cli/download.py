"""``geotessera download``: fetch a region's tiles, verified, as GeoTIFF or NPY."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .options import (
    ClientArgs,
    bands_option,
    client_options,
    exactly_one,
    format_option,
    make_client,
    region_options,
    verbose_option,
    year_option,
)

if TYPE_CHECKING:
    from ..client import Coverage, GeoTessera
    from ..pipeline import DownloadPlan
    from ..regions import Region


def _output_dir(value: str) -> Path:
    if not value.strip():
        raise click.BadParameter("the output directory is empty", param_hint="--output")
    return Path(value)


def _compress(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ..errors import InvalidInputError
    from ..export import normalize_compress

    try:
        return normalize_compress(value)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None


def resolve_region(
    bbox: tuple[float, ...] | None,
    tile: tuple[float, float] | None,
    region_file: Path | None,
    country: str | None,
) -> Region:
    """The one region the user named (exactly one of the four options)."""
    from ..regions import Region

    exactly_one(bbox=bbox, tile=tile, region_file=region_file, country=country)
    if bbox is not None:
        return Region.from_bbox(bbox)
    if tile is not None:
        return Region.from_point(*tile)
    if region_file is not None:
        return Region.from_file(region_file)
    return Region.from_country(country)  # type: ignore[arg-type]


@click.command("download")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    required=True,
    callback=lambda ctx, param, value: _output_dir(value),
    help="Output directory.",
)
@region_options
@format_option
@year_option
@bands_option
@click.option(
    "--compress",
    callback=_compress,
    default="lzw",
    show_default=True,
    metavar="lzw|deflate[:1-12]|zstd[:1-22]|none",
    help="Compression for TIFF format. lzw: the published client's layout, files slightly smaller. "
    "deflate (level 6; e.g. deflate:1): the smallest files, about 27% below lzw, in three times its time. "
    "zstd (level 1; e.g. zstd:9): the fastest, on 80% of lzw's CPU, 2% smaller. "
    "none: the largest. Values are exact whatever the choice.",
)
@click.option("--dry-run", is_flag=True, help="Show tiles, files and bytes without downloading.")
@click.option("--list-files", is_flag=True, help="List all created files with details.")
@client_options
@verbose_option
def command(
    output: Path,
    bbox: tuple[float, ...] | None,
    tile: tuple[float, float] | None,
    region_file: Path | None,
    country: str | None,
    fmt: str,
    years: list[int],
    bands: list[int] | None,
    compress: str,
    dry_run: bool,
    list_files: bool,
    client_args: ClientArgs,
) -> None:
    """Download embeddings for a region in your preferred format.

    Verified (CRC64NVMe), concurrent and resumable: rerun the same command to
    finish an interrupted or partly failed download. Exit codes: 0 done, 1 some
    tiles failed (listed; a rerun resumes), 2 bad usage or nothing covered.
    """
    from ..errors import NotCoveredError, SourceError
    from ..registry.coverage import no_coverage_message
    from .render import ProgressBars, plural, stderr

    region = resolve_region(bbox, tile, region_file, country)
    gt = make_client(client_args)
    cov = gt.region_coverage(region, years)
    stderr.print(
        f"{region.description}: {plural(len(region), 'tile')}; dataset {gt.dataset}; "
        f"source {gt.settings.base_url}",
        highlight=False,
        soft_wrap=True,
    )
    for year, n_missing in cov.missing.items():
        stderr.print(f"  {year}: {len(region) - n_missing} of {len(region)} covered", highlight=False)
    if not cov.covered:
        avail = gt.registry.available_years()
        raise NotCoveredError(no_coverage_message(len(region), region.description, years, gt.dataset, avail))
    if cov.missing_examples:
        _report_missing(gt, cov)
    covered = cov.covered
    plan = gt.plan(covered, output, fmt=fmt, bands=bands, compress=compress)
    if dry_run:
        _print_plan(plan)
        return
    if len(plan.complete) == len(plan.jobs):
        stderr.print(f"all {plural(len(plan.jobs), 'tile')} already complete in {output}", highlight=False)
    with ProgressBars("tiles") as bars:
        result = gt.download(plan, progress=bars)
    unreachable = result.unreachable
    if unreachable is not None:  # nothing could be fetched at all: one line, not one per tile
        raise SourceError(
            f"{result.failure_groups()[0].cause}: none of the {plural(len(result.failed), 'tile')} "
            "could be downloaded; check that the endpoint is up and the URL (--base-url / "
            "GEOTESSERA_BASE_URL), then rerun the same command"
        )
    if list_files:
        for p in result.files:
            size = p.stat().st_size if p.exists() else 0
            click.echo(f"{p}\t{size}")
    stderr.print(result.summary(), highlight=False)
    stderr.print(f"output: {output.resolve()}", highlight=False)
    for group in result.failure_groups():
        stderr.print(f"[red]failed:[/red] {group.describe(shown=20)}", highlight=False)
    if result.sidecar_error is not None:
        stderr.print(
            f"[red]failed:[/red] the record of the directory's tiles: {result.sidecar_error}; "
            "free some space, then rerun the same command",
            highlight=False,
            soft_wrap=True,
        )
    if not result.ok:
        raise click.exceptions.Exit(1)


def _report_missing(gt: GeoTessera, cov: Coverage) -> None:
    from .render import stderr

    for t in cov.missing_examples[:5]:
        years = gt.registry.years_for_tile(t.cell.lon, t.cell.lat)
        have = f"it exists for {', '.join(map(str, years))}" if years else "not in the dataset"
        stderr.print(f"  [yellow]not covered[/yellow] {t.cell.name} for {t.year} ({have})", highlight=False)
    more = sum(cov.missing.values()) - min(5, len(cov.missing_examples))
    if more > 0:
        stderr.print(f"  ... and {more} more tile-years not covered", highlight=False)


def _print_plan(plan: DownloadPlan) -> None:
    n_tiles = len(plan.jobs)
    click.echo(f"tiles: {n_tiles} ({len(plan.complete)} already complete)")
    click.echo(f"files to fetch: {len(plan.transfers)}")
    click.echo(f"bytes to fetch: {plan.bytes_to_fetch} ({plan.bytes_to_fetch / 1e6:.1f} MB)")
    click.echo(f"output files: {len(plan.output_files)}")
    for j in plan.jobs:
        click.echo(f"  {j.tile.cell.name} {j.tile.year}")
