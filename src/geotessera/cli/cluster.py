"""``geotessera cluster --region ... --year Y -k K -o CLUSTERS.tif``."""

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
from .options import verbose_option, year_option


@click.command("cluster")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Cluster GeoTIFF.")
@area_options
@year_option
@click.option("-k", "k", type=click.IntRange(2, 254), required=True, help="Number of clusters.")
@click.option(
    "--sample-size", type=click.IntRange(2), default=20000, show_default=True, help="Points to fit on."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample and k-means.")
@analysis_source_options
@scale_options
@verbose_option
def command(
    output: Path,
    area_args: dict[str, Any],
    years: list[int],
    k: int,
    sample_size: int,
    seed: int,
    source_args: dict[str, Any],
    scheduler: str | None,
    threads: int | None,
    block: int,
) -> None:
    """Mini-batch k-means on a seeded sample, applied to every pixel (with a colour table)."""
    from ..analysis import cluster
    from .analysis_options import one_year
    from .render import stderr

    area = resolve_area(**area_args)
    year = one_year(years)
    source = open_source(source_args)
    r = run_with_progress(
        cluster,
        source,
        area,
        year,
        k,
        output,
        sample_size=sample_size,
        seed=seed,
        client=scheduler,
        block=block,
        workers=threads,
    )
    for p in [*r.rasters, r.centroids_path]:
        stderr.print(f"-> {p}", highlight=False)
