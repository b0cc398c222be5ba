"""Options shared by the analysis commands (extract, classify, similar, change, cluster).

| decorator | options |
|---|---|
| ``analysis_source_options`` | the client options plus --embeddings-dir, --zarr, --endpoint-url |
| ``area_options`` | --region (bbox, region file or country), --bbox, --tile, --region-file, --country |
| ``scale_options`` | --scheduler, --threads, --block |

:func:`open_source` turns the source options into a ``GeoTessera`` client or, with
``--zarr``, a ``GeoTesseraZarr`` store; :func:`resolve_area` the area options into an
:class:`~geotessera.analysis.area.Area`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from .options import ClientArgs, client_options, exactly_one, make_client, parse_floats, region_options

F = TypeVar("F", bound=Callable[..., Any])


def analysis_source_options(f: F) -> F:
    """client_options + --zarr STORE + --endpoint-url, handed over as one ``source_args`` dict."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["source_args"] = {
            "client_args": kwargs.pop("client_args"),
            "zarr": kwargs.pop("zarr"),
            "endpoint_url": kwargs.pop("endpoint_url"),
            "embeddings_dir": kwargs.pop("embeddings_dir"),
        }
        return f(*args, **kwargs)

    wrapped = client_options(wrapper)
    wrapped = click.option(
        "--embeddings-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where tiles are downloaded and kept (default: as GeoTessera(): the current directory).",
    )(wrapped)
    wrapped = click.option(
        "--endpoint-url", default=None, metavar="URL", help="S3 endpoint for an s3:// --zarr store."
    )(wrapped)
    wrapped = click.option(
        "--zarr",
        default=None,
        metavar="URL|DIR",
        help="Read a geoemb Zarr store (URL, s3://..., or a directory) instead of tiles.",
    )(wrapped)
    return wrapped


def open_source(source_args: dict[str, Any]) -> Any:
    """A ``GeoTesseraZarr`` for --zarr, else a ``GeoTessera`` client from the client options."""
    if source_args["zarr"] is not None:
        from .._optional import require

        require("zarr", "zarr")
        from ..store import GeoTesseraZarr

        return GeoTesseraZarr(source_args["zarr"], endpoint_url=source_args["endpoint_url"])
    args = cast(ClientArgs, dict(source_args["client_args"]))
    if source_args["embeddings_dir"] is not None:
        args["embeddings_dir"] = source_args["embeddings_dir"]
    return make_client(args)


AREA_PARAMS = ("region", "bbox", "tile", "region_file", "country")


def area_options(f: F) -> F:
    """--region TEXT and download's --bbox / --tile / --region-file / --country, as one ``area_args``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["area_args"] = {name: kwargs.pop(name) for name in AREA_PARAMS}
        return f(*args, **kwargs)

    wrapped = region_options(wrapper)
    return click.option(  # type: ignore[return-value]
        "--region",
        default=None,
        metavar="BBOX|FILE|COUNTRY",
        help="Area: 'min_lon,min_lat,max_lon,max_lat', a region file, or a country name/code.",
    )(wrapped)


def parse_area_text(text: str) -> Any:
    """--region / --predict text: four (or two) numbers are a bbox, else a file, else a country."""
    from ..analysis.area import VECTOR_SUFFIXES, as_area

    stripped = text.strip()
    if not stripped:
        raise click.BadParameter("the region is empty", param_hint="--region")
    if stripped[0].isdigit() or stripped[0] in "-+.":
        nums = parse_floats(stripped, "--region")
        if len(nums) not in (2, 4):
            raise click.BadParameter(
                f"expected 'min_lon,min_lat,max_lon,max_lat', got {text!r}", param_hint="--region"
            )
        return as_area(nums)
    if Path(stripped).exists() or Path(stripped).suffix.lower() in VECTOR_SUFFIXES:
        return as_area(Path(stripped))
    return as_area(stripped)


def resolve_area(
    region: str | None, bbox: Any, tile: Any, region_file: Path | None, country: str | None
) -> Any:
    """The one area the user named (exactly one of the five options)."""
    from ..analysis.area import as_area

    exactly_one(region=region, bbox=bbox, tile=tile, region_file=region_file, country=country)
    if region is not None:
        return parse_area_text(region)
    if bbox is not None:
        return as_area(list(bbox))
    if tile is not None:
        return as_area(list(tile))
    if region_file is not None:
        return as_area(Path(region_file))
    return as_area(str(country))


def scale_options(f: F) -> F:
    """--scheduler ADDRESS, --threads N, --block PIXELS."""
    f = click.option(
        "--block",
        type=click.IntRange(16, 8192),
        default=512,
        show_default=True,
        help="Block size in pixels (memory per task about block^2 x 512 bytes).",
    )(f)
    f = click.option(
        "--threads", type=click.IntRange(1, 256), default=None, help="Local threads (default: CPU cores)."
    )(f)
    return click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Run on an existing dask.distributed scheduler (e.g. tcp://10.0.0.5:8786).",
    )(f)


def one_year(years: list[int]) -> int:
    """The single year of --year (a list or range is a usage error here)."""
    if len(years) != 1:
        raise click.BadParameter(f"give one year, got {', '.join(map(str, years))}", param_hint="--year")
    return years[0]


def run_with_progress(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, progress=bars, **kwargs)`` with a rich bar of blocks on stderr."""
    from .render import ProgressBars

    with ProgressBars("blocks") as bars:
        return fn(*args, progress=bars, **kwargs)
