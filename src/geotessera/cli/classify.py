"""``geotessera classify TABLE --label COLUMN -o MODEL_DIR [--predict REGION -o MAP.tif]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .analysis_options import (
    analysis_source_options,
    open_source,
    parse_area_text,
    run_with_progress,
    scale_options,
)
from .options import verbose_option, years_option


@click.command("classify")
@click.argument("table", type=click.Path(path_type=Path))
@click.option("--label", required=True, help="The label column (float: regression; else classes).")
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    type=click.Path(path_type=Path),
    required=True,
    help="MODEL_DIR; with --predict, a second -o names the map GeoTIFF.",
)
@click.option(
    "--model",
    type=click.Choice(["rf", "knn", "logreg", "ridge"]),
    default="rf",
    show_default=True,
    help="rf, knn, logreg (classes) or rf, ridge (numbers).",
)
@click.option(
    "--cv-block-m", type=float, default=1000.0, show_default=True, help="Spatial CV block size (m)."
)
@click.option("--folds", type=click.IntRange(2, 100), default=5, show_default=True, help="CV folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Model and fold seed.")
@click.option(
    "--predict", "predict_region", default=None, metavar="BBOX|FILE|COUNTRY", help="Predict over this area."
)
@click.option(
    "--map", "map_path", type=click.Path(path_type=Path), default=None, help="Map GeoTIFF (or a second -o)."
)
@click.option("--proba", is_flag=True, help="Also write per-class probabilities (STEM_proba.tif).")
@years_option(None, default_help="the year the model was trained on")
@analysis_source_options
@scale_options
@verbose_option
def command(
    table: Path,
    label: str,
    outputs: tuple[Path, ...],
    model: str,
    cv_block_m: float,
    folds: int,
    seed: int,
    predict_region: str | None,
    map_path: Path | None,
    proba: bool,
    years: list[int] | None,
    source_args: dict[str, Any],
    scheduler: str | None,
    threads: int | None,
    block: int,
) -> None:
    """Train a model on an extraction TABLE (spatial block CV), optionally predict a map."""
    from ..analysis import predict, save_model, train
    from ..analysis.rasters import check_map_path
    from ..analysis.report import report_text, write_report
    from .analysis_options import one_year
    from .render import stderr

    model_dir, *rest = outputs
    if len(rest) > 1 or (rest and map_path is not None):
        raise click.UsageError("give -o MODEL_DIR and at most one map path (second -o or --map)")
    map_out = map_path or (rest[0] if rest else None)
    if (predict_region is None) != (map_out is None):
        raise click.UsageError("--predict REGION and a map path (-o MAP.tif or --map) go together")
    if proba and predict_region is None:
        raise click.UsageError("--proba writes probabilities of a predicted map: give --predict REGION too")
    if map_out is not None:
        check_map_path(map_out)  # before training: a map can only be a GeoTIFF
    area = parse_area_text(predict_region) if predict_region is not None else None
    year = one_year(years) if area is not None and years is not None else 0
    source = open_source(source_args) if area is not None else None
    fitted, report = train(table, label, model=model, cv_block_m=cv_block_m, folds=folds, seed=seed)
    if source is not None:  # refuse another dataset (or an unknown year) before anything is written
        from ..analysis.sources import as_source

        fitted.check_dataset(as_source(source).dataset)
        if years is None:
            year = _trained_year(fitted.years)
    save_model(fitted, model_dir)
    write_report(report, model_dir)
    click.echo(report_text(report))
    stderr.print(f"model -> {model_dir}", highlight=False)
    if area is None:
        return
    paths = run_with_progress(
        predict, fitted, source, area, year, map_out, scheduler, proba=proba, block=block, workers=threads
    )
    for p in paths:
        stderr.print(f"map -> {p}", highlight=False)


def _trained_year(years: list[int]) -> int:
    """The year to predict when --year is not given: the one the model was trained on."""
    if len(years) == 1:
        return years[0]
    if not years:
        raise click.BadParameter(
            "the table has no year column: give the year to predict", param_hint="--year"
        )
    raise click.BadParameter(
        f"the model was trained on {', '.join(map(str, years))}: give the year to predict",
        param_hint="--year",
    )
