"""``geotessera extract LABELS -o TABLE``: embeddings at labelled points and polygons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .analysis_options import analysis_source_options, open_source
from .options import verbose_option, year_option


@click.command("extract")
@click.argument("labels", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Table to write: GeoParquet (.parquet, .geoparquet, .pq) or CSV (.csv).",
)
@year_option
@click.option("--label", default=None, help="Class column stratifying polygon samples.")
@click.option(
    "--per-class", type=click.IntRange(1), default=None, help="Polygon pixels per class (default: all)."
)
@click.option(
    "--allocation",
    type=click.Choice(["equal", "proportional", "sqrt"]),
    default="equal",
    show_default=True,
    help="How per-class budgets follow class areas.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the pixel draw.")
@analysis_source_options
@verbose_option
def command(
    labels: Path,
    output: Path,
    years: list[int],
    label: str | None,
    per_class: int | None,
    allocation: str,
    seed: int,
    source_args: dict[str, Any],
) -> None:
    """Sample embeddings at the points and polygons of LABELS.

    LABELS: GeoJSON, GeoPackage, Shapefile, GeoParquet, or CSV with lon/lat columns.
    The table keeps your columns and adds year, tile, row, col, status and emb_0..emb_127.
    """
    from ..analysis import extract
    from ..analysis.tables import check_table_path, write_table
    from .render import stderr

    check_table_path(output)
    source = open_source(source_args)
    table = extract(source, labels, years, label=label, per_class=per_class, allocation=allocation, seed=seed)
    write_table(table, output)
    counts = table["status"].value_counts().to_dict()
    shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    stderr.print(f"{len(table)} rows ({shown}) -> {output}", highlight=False)
