"""``geotessera sample build|serve``: the synthetic Tessera store and its loopback S3 endpoint."""

from __future__ import annotations

from pathlib import Path

import click

from .options import bbox4, verbose_option, years_option


def _parse_versions(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    out = [v.strip() for v in value.split(",")]
    if not all(out):
        raise click.BadParameter(f"{value!r} is not a comma-separated list of versions like v1,v1.1")
    return out


def _parse_optional_versions(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> list[str] | None:
    return None if value is None else _parse_versions(ctx, param, value)


@click.group("sample")
def command() -> None:
    """Build and serve the synthetic Tessera sample store."""


@command.command("serve")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the base URL to this file once serving (for scripts); removed on exit.",
)
@click.option(
    "--datasets",
    callback=_parse_optional_versions,
    default=None,
    metavar="VERSION,...",
    help="Serve only these dataset versions (their tiles, manifests, landmasks and Zarr stores)"
    "  [default: all]",
)
@verbose_option
def serve(directory: Path, port: int, ready_file: Path | None, datasets: list[str] | None) -> None:
    """Serve DIRECTORY as the public Tessera bucket on a loopback S3 endpoint until Ctrl-C.

    Prints the base URL to use as GEOTESSERA_BASE_URL. Binds 127.0.0.1 only; anonymous
    clients may read, HEAD and list, with CRC64NVMe checksums as on the real bucket; nobody
    may write. Files are served from disk (ready in seconds, whatever the store's size);
    their checksums are kept in DIRECTORY/sample_checksums.json and recomputed for files
    that changed.
    """
    import signal
    import threading
    from types import FrameType

    from ..sample.serve import SampleServer

    if ready_file is not None:
        ready_file.unlink(missing_ok=True)  # never let a waiter see a stale URL
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    server = SampleServer(directory, port=port, datasets=datasets)
    server.start()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        up = server.served
        click.echo(f"serving {up.objects} objects ({up.bytes / 1e6:.1f} MB) from {directory}", err=True)
        click.echo(server.base_url)
        click.echo(f"GEOTESSERA_BASE_URL={server.base_url}")
        if ready_file is not None:
            from ..files import write_atomic

            write_atomic(ready_file, (server.base_url + "\n").encode(), fsync=False)
        click.echo("press Ctrl-C to stop", err=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    click.echo("stopped", err=True)


# --- build ------------------------------------------------------------------------------
@command.command("build")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--bbox",
    callback=bbox4,
    metavar="MINLON,MINLAT,MAXLON,MAXLAT",
    help="Region of tiles in degrees  [default: 0.0,52.0,0.4,52.3 (Cambridge, UK)]",
)
@years_option(("2023", "2024"), plural=True)
@click.option(
    "--versions",
    callback=_parse_versions,
    default="v1,v1.1",
    show_default=True,
    metavar="VERSION,...",
    help="Comma-separated Tessera dataset versions (e.g. v1, v1.1); v1 is built as variant vultr, "
    "v1.1 as cambridge.",
)
@click.option(
    "--pixel-size",
    "pixel_size_m",
    type=float,
    default=10.0,
    show_default=True,
    metavar="METRES",
    help="Pixel size in metres (10 as published; 100 for a ~100x smaller test store).",
)
@click.option(
    "--no-edge-tiles", is_flag=True, help="Leave out the UTM-seam, southern, coastal and one-year-only tiles."
)
@verbose_option
def build(
    directory: Path,
    bbox: tuple[float, float, float, float] | None,
    years: list[int],
    versions: list[str],
    pixel_size_m: float,
    no_edge_tiles: bool,
) -> None:
    """Build the deterministic synthetic Tessera store in DIRECTORY (the bucket root).

    Prints the store's path on stdout.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from ..progress import Event, ItemDone, PlanReady
    from ..sample.build import build_store

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]sample store"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} tiles"),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a transient bar on a pipe would leave a blank line
    ) as bar:
        task = bar.add_task("build", total=None)

        def sink(event: Event) -> None:
            if isinstance(event, PlanReady):
                bar.update(task, total=event.items)
            elif isinstance(event, ItemDone):
                bar.advance(task)

        summary = build_store(
            directory,
            bbox=bbox,
            years=years,
            versions=versions,
            pixel_size_m=pixel_size_m,
            edge_tiles=not no_edge_tiles,
            progress=sink,
        )
    console.print(
        f"wrote {len(summary.tiles)} tiles of {len(summary.datasets)} dataset(s), "
        f"{summary.bytes_written / 1e6:.1f} MB",
        highlight=False,
    )
    click.echo(str(summary.root))
