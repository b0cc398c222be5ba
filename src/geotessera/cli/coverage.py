"""``geotessera coverage``: where tiles exist (PNG, coverage.json, coverage.html), from the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from .options import client_options, region_options, verbose_option, years_option

DEFAULT_PNG = "tessera_coverage.png"
GLOBE_HTML = "globe.html"  # the seed's name of the page in an output directory


def _png_path(output: Path) -> Path:
    if output.is_dir() or output.suffix == "":
        return output / DEFAULT_PNG
    if output.suffix.lower() != ".png":
        raise click.BadParameter(f"expected a .png file or a directory, got {output}", param_hint="--output")
    return output


@click.command("coverage")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path(DEFAULT_PNG),
    show_default=True,
    help=(
        "Output PNG file, or a directory to also receive globe.html; coverage.json and coverage.html "
        "are written beside the PNG."
    ),
)
@years_option(None)
@region_options
@click.option(
    "--tile-color",
    default="red",
    show_default=True,
    help="Colour of tiles (one year, or --no-multi-year-colors).",
)
@click.option("--tile-alpha", type=float, default=0.6, show_default=True, help="Opacity of tiles, 0-1.")
@click.option(
    "--tile-size",
    type=float,
    default=1.0,
    show_default=True,
    help="Size multiplier of tiles (1 = true size).",
)
@click.option("--width", type=int, default=2000, show_default=True, help="Image width in pixels (200-20000).")
@click.option("--no-countries", is_flag=True, help="Don't draw land and country borders.")
@click.option(
    "--no-multi-year-colors", is_flag=True, help="One colour for all years instead of three categories."
)
@click.option(
    "--by-source", is_flag=True, help="One colour per (version, variant); 'all' versions/variants by default."
)
@client_options(workers=False)
@verbose_option
def command(
    output: Path,
    years: list[int] | None,
    bbox: Any,
    tile: Any,
    region_file: Path | None,
    country: str | None,
    tile_color: str,
    tile_alpha: float,
    tile_size: float,
    width: int,
    no_countries: bool,
    no_multi_year_colors: bool,
    by_source: bool,
    client_args: dict[str, Any],
) -> None:
    """Draw where Tessera tiles exist: the world, or a region (--bbox, --tile, --region-file, --country)."""
    from ..visualization.areas import area_from
    from ..visualization.coverage import source_coverage, source_registries, year_coverage
    from ..visualization.coverage_draw import check_style, render_png
    from ..web import write_coverage_page

    check_style(width, tile_alpha, tile_size, [tile_color])
    png = _png_path(output)
    region, outline = area_from(bbox=bbox, tile=tile, region_file=region_file, country=country)
    years = sorted(set(years)) if years else None
    if by_source:
        cmap = source_coverage(source_registries(**client_args), years=years, region=region, outline=outline)
    else:
        from .options import ClientArgs, make_client

        gt = make_client(cast(ClientArgs, client_args))
        cmap = year_coverage(
            gt.registry,
            years=years,
            region=region,
            outline=outline,
            multi_year_colors=not no_multi_year_colors,
            tile_color=tile_color,
            dataset=str(gt.dataset),
        )
    cells = render_png(
        cmap,
        png,
        width_pixels=width,
        show_countries=not no_countries,
        tile_alpha=tile_alpha,
        tile_size=tile_size,
    )
    into_dir = png != output  # the seed: a directory also receives coverage.json/globe.html
    json_path, html_path = write_coverage_page(
        cmap,
        cells,
        png,
        tile_alpha=tile_alpha,
        show_countries=not no_countries,
        also_as=[GLOBE_HTML] if into_dir else [],
    )
    pages = f"{html_path.name} and {GLOBE_HTML}" if into_dir else html_path.name
    click.echo(f"wrote {png} ({cmap.locations:,} tile locations), {json_path.name}, {pages}")
    for layer in cmap.layers:
        click.echo(f"  {layer.label}")
    share = cmap.facts.get("region")
    if share:
        covered = share["covered"]
        flat = covered if not by_source else {f"{k} {y}": v for k, c in covered.items() for y, v in c.items()}
        for key, n in flat.items():
            click.echo(
                f"  {share['description']}: {key}: {n:,} of {share['cells']:,} cells covered "
                f"({100 * n / max(1, share['cells']):.0f}%)"
            )
