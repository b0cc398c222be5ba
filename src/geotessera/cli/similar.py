"""``geotessera similar --exemplars FILE --region ... --year Y -o SIM.tif``."""

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


@click.command("similar")
@click.option(
    "--exemplars", type=click.Path(path_type=Path), required=True, help="Points/polygons to look like."
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Similarity GeoTIFF.")
@area_options
@year_option
@click.option(
    "--mode",
    type=click.Choice(["mean", "max"]),
    default="mean",
    show_default=True,
    help="Similarity to the mean exemplar, or the maximum over exemplars.",
)
@click.option(
    "--threshold", type=float, default=None, help="Also write a mask GeoTIFF and polygons above it."
)
@click.option(
    "--polygons",
    type=click.Path(path_type=Path),
    default=None,
    help="Polygons file (.geojson or .parquet; default STEM_polygons.geojson).",
)
@click.option(
    "--top-k", type=click.IntRange(1), default=None, help="Also list the K most similar, non-adjacent pixels."
)
@click.option(
    "--top-k-output",
    type=click.Path(path_type=Path),
    default=None,
    help="Top-K table (default STEM_top.parquet).",
)
@analysis_source_options
@scale_options
@verbose_option
def command(
    exemplars: Path,
    output: Path,
    area_args: dict[str, Any],
    years: list[int],
    mode: str,
    threshold: float | None,
    polygons: Path | None,
    top_k: int | None,
    top_k_output: Path | None,
    source_args: dict[str, Any],
    scheduler: str | None,
    threads: int | None,
    block: int,
) -> None:
    """Cosine similarity of every pixel to exemplar points or polygons."""
    from ..analysis import similar
    from .analysis_options import one_year
    from .render import stderr

    area = resolve_area(**area_args)
    year = one_year(years)
    source = open_source(source_args)
    r = run_with_progress(
        similar,
        source,
        exemplars,
        area,
        year,
        output,
        mode=mode,
        threshold=threshold,
        polygons=polygons,
        top_k=top_k,
        top_k_output=top_k_output,
        client=scheduler,
        block=block,
        workers=threads,
    )
    for p in [
        *r.rasters,
        *r.masks,
        *([r.polygons] if r.polygons else []),
        *([r.top_path] if r.top_path else []),
    ]:
        stderr.print(f"-> {p}", highlight=False)
    if r.top is not None:
        click.echo(r.top.drop(columns="geometry").to_string(index=False))
