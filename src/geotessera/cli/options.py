"""Shared CLI options and their parsers (each raises ``click.BadParameter`` naming the option)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def verbose_option(f: F) -> F:
    """``-v/--verbose`` (repeatable): raise the log level to INFO, then DEBUG."""

    def _cb(ctx: click.Context, param: click.Parameter, value: int) -> int:
        from . import _configure_logging

        _configure_logging(value)
        return value

    return click.option("-v", "--verbose", count=True, expose_value=False, callback=_cb,
                        help="Verbose output (-vv for debug).")(f)
