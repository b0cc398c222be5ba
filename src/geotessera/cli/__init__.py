"""The ``geotessera`` command line: a thin layer over the library.

This module holds the root group, the global flags and the single error
boundary: a :class:`~geotessera.errors.GeoTesseraError` becomes one
``error: ...`` line on stderr and an exit code (2: the request cannot be served
as asked; 1: runtime or partial failure; 130: interrupted). Any other
exception is a bug: one line plus a hint to rerun with ``--debug``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import GeoTesseraError, InvalidInputError, MixedDatasetError, NotCoveredError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _configure_logging(verbosity: int) -> None:
    """Log geotessera's messages to stderr (WARNING, -v INFO, -vv DEBUG); silence other libraries.

    GDAL/libtiff (through rasterio), urllib3 and moto log too; without a root handler
    Python's last-resort handler would print their warnings, so the root gets a null handler
    and only ``-vv`` lets them through. Python warnings (``warnings.warn``) go the same way.
    """
    level = logging.WARNING - 10 * verbosity
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("geotessera")
    ours.handlers = [h for h in ours.handlers if isinstance(h, logging.NullHandler)]
    ours.addHandler(handler)
    ours.setLevel(max(level, logging.DEBUG))
    logging.captureWarnings(True)  # e.g. rasterio's NotGeoreferencedWarning: logged (-vv), never printed
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_geotessera", False)]
    other: logging.Handler = handler if verbosity >= 2 else logging.NullHandler()
    other._geotessera = True  # type: ignore[attr-defined]
    root.addHandler(other)


class _Group(click.Group):
    """Root group that maps library errors to one-line messages and exit codes."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list with each command's whole first sentence (wrapped, never cut with ...)."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {_one_line_text(exc.format_message())}{hint}", err=True)
            ctx.exit(EXIT_USAGE)
        except click.ClickException as exc:
            click.echo(f"error: {_one_line_text(exc.format_message())}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except GeoTesseraError as exc:
            if debug:
                raise
            click.echo(f"error: {_one_line(exc)}", err=True)
            usage = InvalidInputError | NotCoveredError | MixedDatasetError
            code = EXIT_USAGE if isinstance(exc, usage) else EXIT_FAILED
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


def _one_line_text(text: str) -> str:
    return " ".join(text.split())


def _one_line(exc: BaseException) -> str:
    return _one_line_text(str(exc)) or type(exc).__name__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geotessera")
@click.option("--debug", is_flag=True, hidden=False, help="Show tracebacks for unexpected errors.")
def cli(debug: bool) -> None:
    """Tessera geospatial embeddings: download, verify, export, visualise."""
    _configure_logging(0)


def _register() -> None:
    # Command modules import the library lazily, inside their functions.
    from . import (
        change,
        classify,
        cluster,
        coverage,
        download,
        extract,
        info,
        registry,
        sample,
        serve,
        similar,
        visualize,
        webmap,
        zarr_store,
    )

    for command in (
        download.command,
        info.command,
        registry.command,
        sample.command,
        zarr_store.command,
        coverage.command,
        visualize.command,
        webmap.command,
        serve.command,
    ):
        cli.add_command(command)
    for command in (extract.command, classify.command, similar.command, change.command, cluster.command):
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="geotessera")
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_OK)
