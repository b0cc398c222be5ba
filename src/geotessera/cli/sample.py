"""``geotessera sample build|serve``: the synthetic Tessera store and its loopback S3 endpoint."""

from __future__ import annotations

from pathlib import Path

import click

from .options import verbose_option


@click.group("sample")
def command() -> None:
    """Build and serve the deterministic synthetic Tessera sample store."""


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
@verbose_option
def serve(directory: Path, port: int, ready_file: Path | None) -> None:
    """Serve DIRECTORY as the public Tessera bucket on a loopback S3 endpoint until Ctrl-C.

    Prints the base URL to use as GEOTESSERA_BASE_URL. Binds 127.0.0.1 only; anonymous
    clients may read, HEAD and list, with CRC64NVMe checksums as on the real bucket.
    """
    import os
    import signal
    import threading
    from types import FrameType

    from ..sample.serve import SampleServer

    if ready_file is not None:
        ready_file.unlink(missing_ok=True)  # never let a waiter see a stale URL
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    server = SampleServer(directory, port=port)
    server.start()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        up = server.uploaded
        click.echo(f"serving {up.objects} objects ({up.bytes / 1e6:.1f} MB) from {directory}", err=True)
        click.echo(server.base_url)
        click.echo(f"GEOTESSERA_BASE_URL={server.base_url}")
        if ready_file is not None:
            tmp = ready_file.with_name(f".{ready_file.name}.tmp")
            tmp.write_text(server.base_url + "\n", encoding="utf-8")
            os.replace(tmp, ready_file)
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
