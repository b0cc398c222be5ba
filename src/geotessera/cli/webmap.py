"""``geotessera webmap RGB_MOSAIC``: XYZ web tiles and an offline Leaflet viewer of a mosaic, or
of a Zarr store's preview pyramid (RGB_MOSAIC a store directory or URL)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import verbose_option
from .serve import bind_server, port_option, serve_until_interrupted


@click.command("webmap")
@click.argument("rgb_mosaic", metavar="RGB_MOSAIC|STORE")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory  [default: <mosaic name>_web beside the mosaic].",
)
@click.option(
    "--min-zoom",
    type=click.IntRange(0, 24),
    default=None,
    help="Lowest zoom of the web tiles  [default: 8; for a STORE, lower if needed to show all its data].",
)
@click.option(
    "--max-zoom",
    type=click.IntRange(0, 24),
    default=None,
    help="Highest zoom of the web tiles  [default: 15; for a STORE, one past its preview's resolution].",
)
@click.option(
    "--initial-zoom",
    type=click.IntRange(0, 26),
    default=None,
    help="Zoom the page opens at [default: fit the mosaic].",
)
@click.option("--force/--no-force", default=False, show_default=True, help="Rebuild tiles that exist.")
@click.option("--serve/--no-serve", default=False, show_default=True, help="Serve the map when done.")
@port_option()
@click.option(
    "--region-file", type=click.Path(path_type=Path), default=None, help="Boundary to draw (GeoJSON ...)."
)
@click.option(
    "--endpoint-url", default=None, metavar="URL", help="S3 endpoint for an s3:// STORE (Zarr preview)."
)
@verbose_option
def command(
    rgb_mosaic: str,
    output: Path | None,
    min_zoom: int | None,
    max_zoom: int | None,
    initial_zoom: int | None,
    force: bool,
    serve: bool,
    port: int,
    region_file: Path | None,
    endpoint_url: str | None,
) -> None:
    """Cut RGB_MOSAIC (from `geotessera visualize`) into web tiles and write an index.html viewer.

    RGB_MOSAIC may instead be a Zarr STORE (directory, https:// or s3:// URL) rendered with
    `geotessera zarr build ... --preview YEAR`: the tiles are then cut from its preview pyramid
    (the level at which the store's data is at most 8192 pixels across, saved as
    preview.tif in the output directory).
    """
    from ..export import make_output_dir
    from ..web import (
        check_rgb_mosaic,
        check_zooms,
        create_simple_web_viewer,
        is_store_location,
        render_web_tiles,
        store_preview_mosaic,
        store_zooms,
    )
    from ..web.tiles import DEFAULT_ZOOMS
    from .render import ProgressBars

    from_store = is_store_location(rgb_mosaic)
    if not from_store:  # the seed's defaults; a store's come from where its data is
        min_zoom, max_zoom = (
            (DEFAULT_ZOOMS[0] if min_zoom is None else min_zoom),
            (DEFAULT_ZOOMS[1] if max_zoom is None else max_zoom),
        )
    check_zooms((0 if min_zoom is None else min_zoom, 24 if max_zoom is None else max_zoom))
    if min_zoom is not None and max_zoom is not None:
        _check_initial_zoom(initial_zoom, min_zoom, max_zoom)
    if region_file is not None:
        if not region_file.is_file():
            raise click.BadParameter(f"{region_file} does not exist", param_hint="--region-file")
        from ..regions import read_region_file

        read_region_file(region_file)  # an unreadable file is reported before any tile is cut
    if from_store:
        name = rgb_mosaic.rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr") or "store"
        out = output if output is not None else Path(f"{name}_web")
        mosaic = out / "preview.tif"
    else:
        mosaic = Path(rgb_mosaic)
        out = output if output is not None else mosaic.with_name(f"{mosaic.stem}_web")
        info = check_rgb_mosaic(mosaic)
    server = None
    if serve or from_store:  # an output directory that cannot be written is said before any work
        make_output_dir(out)
    if serve:  # a taken port is reported before any work
        server = bind_server(out, port)
    if from_store:
        preview = store_preview_mosaic(rgb_mosaic, mosaic, reader_args={"endpoint_url": endpoint_url})
        click.echo(f"{rgb_mosaic}: preview of {preview.year}, pyramid level {preview.level}: {mosaic}")
        info = check_rgb_mosaic(mosaic)
        min_zoom, max_zoom = store_zooms(preview, min_zoom, max_zoom)
        _check_initial_zoom(initial_zoom, min_zoom, max_zoom)
    assert min_zoom is not None and max_zoom is not None
    with ProgressBars("tiles") as bars:
        report = render_web_tiles(
            mosaic, out / "tiles", (min_zoom, max_zoom), force=force, progress=bars, footprint=from_store
        )
    w, s, e, n = info.bounds
    page = create_simple_web_viewer(
        out / "tiles",
        out / "index.html",
        center_lon=(w + e) / 2,
        center_lat=(s + n) / 2,
        zoom=initial_zoom,
        title=f"GeoTessera: {mosaic.name}",
        region_file=region_file,
        min_zoom=min_zoom,
        max_zoom=max_zoom,
        bounds=info.bounds,
        # a store's data may be specks on its extent: outline it until zoomed in on it
        footprint=report.footprint,
        footprint_max_zoom=min_zoom + 2,
    )
    click.echo(
        f"{report.written} tiles written, {report.kept} kept, {report.empty} without data "
        f"(zoom {min_zoom}-{max_zoom}); viewer: {page}"
    )
    if server is not None:
        serve_until_interrupted(server, "index.html", open_browser=False)
    else:
        click.echo(f"view it with: geotessera serve {out}")


def _check_initial_zoom(initial_zoom: int | None, min_zoom: int, max_zoom: int) -> None:
    if initial_zoom is not None and not min_zoom <= initial_zoom <= max_zoom + 2:
        raise click.BadParameter(
            f"must be within --min-zoom {min_zoom} and --max-zoom {max_zoom} (+2), got {initial_zoom}",
            param_hint="--initial-zoom",
        )
