"""The ``geotessera`` command line: a thin layer over the library.

This module holds the root group, the global flags and the single error
boundary: a :class:`~geotessera.errors.GeoTesseraError` becomes one
``error: ...`` line on stderr and an exit code (2: the request cannot be served
as asked; 1: runtime or partial failure; 130: interrupted). Any other
exception is a bug: one line plus a hint to rerun with ``--debug``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import GeoTesseraError, InvalidInputError, NotCoveredError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * verbosity
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("geotessera")
    root.handlers = [h for h in root.handlers if isinstance(h, logging.NullHandler)]
    root.addHandler(handler)
    root.setLevel(max(level, logging.DEBUG))


class _Group(click.Group):
    """Root group that maps library errors to one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except GeoTesseraError as exc:
            if debug:
                raise
            click.echo(f"error: {_one_line(exc)}", err=True)
            code = EXIT_USAGE if isinstance(exc, InvalidInputError | NotCoveredError) else EXIT_FAILED
            ctx.exit(code)
        except Exception as exc:
            if debug:
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {_one_line(exc)} "
                "(rerun with --debug for a traceback)",
                err=True,
            )
            ctx.exit(EXIT_FAILED)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geotessera")
@click.option("--debug", is_flag=True, hidden=False, help="Show tracebacks for unexpected errors.")
def cli(debug: bool) -> None:
    """Tessera geospatial embeddings: download, verify, export, visualise."""
    _configure_logging(0)


def _register() -> None:
    # Command modules import the library lazily, inside their functions.
    from . import download, info, registry, sample, zarr_store

    for command in (download.command, info.command, registry.command, sample.command, zarr_store.command):
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="geotessera")
