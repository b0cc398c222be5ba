"""``geotessera serve DIR``: serve a generated web map on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import verbose_option


def port_option(default: int = 8000) -> Any:
    """-p/--port: a TCP port (0 = any free port)."""
    return click.option(
        "-p",
        "--port",
        type=click.IntRange(0, 65535),
        default=default,
        show_default=True,
        help="Port on 127.0.0.1 (0 = any free port).",
    )


def bind_server(directory: Path, port: int) -> object:
    """A :class:`~geotessera.web.StaticServer` of ``directory`` bound to ``port`` (errors before any work)."""
    from ..web import StaticServer

    server = StaticServer(directory, port)
    server.bind()
    return server


def serve_until_interrupted(server: object, page: str | None, open_browser: bool) -> None:
    """Serve with a bound server until Ctrl-C, then close it (exit status 0)."""
    import webbrowser

    from ..web import StaticServer

    if not isinstance(server, StaticServer):  # pragma: no cover - callers pass bind_server()'s result
        raise TypeError("expected a StaticServer")
    url = server.url + (page or "")
    click.echo(f"serving {server.root} at {url} (127.0.0.1 only; Ctrl-C to stop)", err=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.stop()


@click.command("serve")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@port_option()
@click.option("--open/--no-open", "open_browser", default=True, show_default=True, help="Open a browser.")
@click.option(
    "--html", default=None, help="Page to open (relative to DIRECTORY; default index.html if present)."
)
@verbose_option
def command(directory: Path, port: int, open_browser: bool, html: str | None) -> None:
    """Serve DIRECTORY (a web map from `geotessera webmap`, a coverage page) on 127.0.0.1."""
    if html is not None:
        target = (directory / html).resolve()
        if directory.resolve() not in target.parents or not target.is_file():
            raise click.BadParameter(f"{html!r} is not a file inside {directory}", param_hint="--html")
        page: str | None = html.lstrip("/")
    else:
        page = next((p for p in ("index.html", "coverage.html") if (directory / p).is_file()), None)
    serve_until_interrupted(bind_server(directory, port), page, open_browser)
