"""The ``geotessera`` command line: a thin layer over the library.

This module holds the root group, the global flags and the single error
boundary: a :class:`~geotessera.errors.GeoTesseraError` becomes one
``error: ...`` line on stderr and an exit code (2: the request cannot be served
as asked; 1: runtime or partial failure; 130: interrupted). Any other
exception is a bug: one line plus a hint to rerun with ``--debug``.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import warnings
from pathlib import Path
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

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The root's own options parsed; a usage error there is one line too (``geotessera --bogus``)."""
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_error(exc)
            ctx.exit(EXIT_USAGE)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        with warnings.catch_warnings():
            # Python warnings never reach stderr as such (a library's RuntimeWarning would print
            # its source line): geotessera's own are logged where raised, the rest at DEBUG (-vv)
            warnings.showwarning = _log_warning
            return self._invoke(ctx, debug)

    def _invoke(self, ctx: click.Context, debug: bool) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as exc:
            _usage_error(exc)
            ctx.exit(EXIT_USAGE)
        except click.ClickException as exc:
            click.echo(f"error: {_one_line_text(exc.format_message())}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if debug:
                raise
            self._fail(ctx, exc)

    @staticmethod
    def _fail(ctx: click.Context, exc: Exception) -> None:
        too_long = _name_too_long(exc)
        if too_long is not None:  # a name the user gave (or made) that no filesystem holds
            click.echo(f"error: {too_long}", err=True)
            ctx.exit(EXIT_USAGE)
        if isinstance(exc, GeoTesseraError):
            click.echo(f"error: {_one_line(exc)}", err=True)
            usage = InvalidInputError | NotCoveredError | MixedDatasetError
            ctx.exit(EXIT_USAGE if isinstance(exc, usage) else EXIT_FAILED)
        click.echo(
            f"error: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for a traceback)",
            err=True,
        )
        ctx.exit(EXIT_FAILED)


_TOO_LONG = (
    "a file or directory name is too long for the filesystem (at most 255 bytes): choose a shorter path"
)


def _name_too_long(exc: BaseException) -> str | None:
    """What to say when a path component too long for the filesystem (ENAMETOOLONG) is behind ``exc``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno == errno.ENAMETOOLONG:
            if cause.filename is None:
                return _TOO_LONG
            longest = max(Path(os.fsdecode(cause.filename)).parts, key=lambda p: len(os.fsencode(p)))
            shown = longest if len(longest) <= 40 else f"{longest[:24]}...{longest[-8:]}"
            return (
                f"the name '{shown}' is too long for the filesystem ({len(os.fsencode(longest))} bytes; "
                "a file or directory name may have at most 255): choose a shorter path"
            )
        if os.strerror(errno.ENAMETOOLONG) in str(cause):  # GDAL's errors carry only the text
            return _TOO_LONG
        cause = cause.__cause__ or cause.__context__
    return None


def _usage_error(exc: click.UsageError) -> None:
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    click.echo(f"error: {_one_line_text(exc.format_message())}{hint}", err=True)


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    logging.getLogger("geotessera.cli").debug("%s: %s (%s:%d)", category.__name__, message, filename, lineno)


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
