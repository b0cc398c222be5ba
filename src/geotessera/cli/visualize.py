"""``geotessera visualize INPUT OUTPUT``: a PCA mosaic of downloaded tiles (GeoTIFF + PNG quick-look)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import verbose_option


@click.command("visualize")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output_file", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", default="EPSG:3857", show_default=True, help="Target CRS of the mosaic.")
@click.option(
    "--n-components", type=click.IntRange(1, 128), default=3, show_default=True, help="PCA components."
)
@click.option(
    "--balance",
    type=click.Choice(["histogram", "percentile", "adaptive"]),
    default="histogram",
    show_default=True,
    help="RGB balance: histogram equalisation, a percentile stretch, or mean +- 2.5 sd.",
)
@click.option(
    "--percentile-low",
    type=click.FloatRange(0, 100),
    default=2.0,
    show_default=True,
    help="Lower percentile (--balance percentile).",
)
@click.option(
    "--percentile-high",
    type=click.FloatRange(0, 100),
    default=98.0,
    show_default=True,
    help="Upper percentile (--balance percentile).",
)
@click.option("--year", type=int, default=None, help="Year to draw when INPUT holds several.")
@verbose_option
def command(
    input_path: Path,
    output_file: Path,
    crs: str,
    n_components: int,
    balance: str,
    percentile_low: float,
    percentile_high: float,
    year: int | None,
) -> None:
    """Draw a PCA mosaic of embedding tiles.

    INPUT is a download directory (GeoTIFF or NPY format) or one tile file. OUTPUT is an
    RGBA GeoTIFF (alpha = data), cloud-optimised; OUTPUT with .png beside it is a quick-look.
    One PCA, fitted on a seeded sample across all tiles, colours the whole mosaic.
    """
    from ..visualization import create_pca_mosaic
    from .render import ProgressBars

    if percentile_low >= percentile_high:
        raise click.BadParameter(
            f"must be below --percentile-high ({percentile_high:g}), got {percentile_low:g}",
            param_hint="--percentile-low",
        )
    if not input_path.exists():
        raise click.BadParameter(f"{input_path} does not exist", param_hint="INPUT")
    with ProgressBars("tiles") as bars:
        out = create_pca_mosaic(
            [input_path],
            output_file,
            n_components=n_components,
            target_crs=crs,
            balance_method=balance,
            percentile_range=(percentile_low, percentile_high),
            year=year,
            progress=bars,
        )
    click.echo(f"wrote {out} and {Path(out).with_suffix('.png')}")
