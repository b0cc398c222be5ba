"""``geotessera change --region ... --years A,B -o CHANGE.tif``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .analysis_options import (
    analysis_source_options,
    area_options,
    open_source,
    resolve_area,
    run_with_progress,
    scale_options,
)
from .options import verbose_option, years_option


@click.command("change")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Change GeoTIFF.")
@area_options
@years_option(None, plural=True)
@click.option(
    "--threshold", type=float, default=0.3, show_default=True, help="Cosine distance counted as change."
)
@analysis_source_options
@scale_options
@verbose_option
def command(
    output: Path,
    area_args: dict[str, Any],
    years: list[int] | None,
    threshold: float,
    source_args: dict[str, Any],
    scheduler: str | None,
    threads: int | None,
    block: int,
) -> None:
    """Per-pixel cosine distance between two years, with a histogram and the share changed."""
    from ..analysis import change
    from .render import stderr

    if years is None or len(years) != 2:
        got = ", ".join(map(str, years or [])) or "none"
        raise click.BadParameter(
            f"give the two years to compare, e.g. 2023,2024 (got {got})", param_hint="--years"
        )
    area = resolve_area(**area_args)
    source = open_source(source_args)
    r = run_with_progress(
        change,
        source,
        area,
        years,
        output,
        threshold=threshold,
        client=scheduler,
        block=block,
        workers=threads,
    )
    s = r.summary
    click.echo(
        f"changed: {s['changed_pixels']} of {s['valid_pixels']} pixels ({100 * s['changed_share']:.2f} %, "
        f"{s['changed_area_km2']:.3f} km2) above cosine distance {s['threshold']}"
    )
    h = s["histogram"]
    top = max(h["counts"]) or 1
    for lo, hi, n in zip(h["edges"][:-1], h["edges"][1:], h["counts"], strict=True):
        click.echo(f"  {lo:4.2f}-{hi:4.2f} {n:>10} {'#' * round(40 * n / top)}")
    for p in [*r.rasters, r.summary_path]:
        stderr.print(f"-> {p}", highlight=False)
