"""Shared CLI options and their parsers.

Each parser turns text into a typed value or raises ``click.BadParameter``
naming the option. Commands stack these decorators instead of re-declaring
options:

| decorator | options | used by |
|---|---|---|
| ``region_options`` | --bbox, --tile, --region-file, --country | download, coverage |
| ``dataset_options`` | --dataset-version, --dataset-variant | download, info, zarr build |
| ``source_options`` | --base-url, --cache-dir, --registry-dir, --offline, --workers | download, info |
| ``client_options`` | both of the above, passed as one ``client_args`` dict | download, info |
| ``verbose_option`` | -v/--verbose | all |

Options the user did not type stay ``None``, so environment variables are
resolved in one place (:class:`geotessera.config.Settings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import click

if TYPE_CHECKING:
    from ..client import GeoTessera

F = TypeVar("F", bound=Callable[..., Any])


def verbose_option(f: F) -> F:
    """``-v/--verbose`` (repeatable): raise the log level to INFO, then DEBUG."""

    def _cb(ctx: click.Context, param: click.Parameter, value: int) -> int:
        from . import _configure_logging

        _configure_logging(value)
        return value

    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_cb,
        is_eager=True,
        help="Verbose output (-vv for debug).",
    )(f)


def parse_floats(text: str, option: str) -> list[float]:
    """Comma-separated numbers, e.g. ``"-0.2,51.4,0.1,51.6"``."""
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated numbers, got {text!r}", param_hint=option
        ) from None


def _bbox(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    nums = parse_floats(value, "--bbox")
    if len(nums) not in (2, 4):
        raise click.BadParameter(
            f"expected 'lon,lat' or 'min_lon,min_lat,max_lon,max_lat', got {value!r}", param_hint="--bbox"
        )
    from ..errors import InvalidInputError
    from ..grid import as_bbox

    try:
        return tuple(as_bbox(nums))
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--bbox") from None


def _point(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    nums = parse_floats(value, "--tile")
    if len(nums) != 2:
        raise click.BadParameter(f"expected 'lon,lat', got {value!r}", param_hint="--tile")
    if not (-180 <= nums[0] <= 180 and -90 <= nums[1] <= 90):
        raise click.BadParameter(f"{value!r} is outside lon [-180, 180], lat [-90, 90]", param_hint="--tile")
    return nums[0], nums[1]


def parse_int_list(text: str, option: str) -> list[int]:
    """Comma-separated whole numbers, with ranges ``a-b`` allowed (e.g. ``0,1,2`` or ``0-15``)."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part[0] + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1]
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise click.BadParameter(
                        f"the range {part!r} is reversed (write {hi}-{lo})", param_hint=option
                    )
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise click.BadParameter(
                f"expected comma-separated whole numbers or ranges like 0-15, got {text!r}", param_hint=option
            ) from None
    if not out:
        raise click.BadParameter("the list is empty", param_hint=option)
    return out


def _bands(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    bands = parse_int_list(value, "--bands")
    bad = [b for b in bands if not 0 <= b < 128]
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (f" ... ({len(bad)} in all)" if len(bad) > 5 else "")
        raise click.BadParameter(f"band indices {shown} are outside 0..127", param_hint="--bands")
    if len(set(bands)) != len(bands):
        raise click.BadParameter(f"duplicate band indices in {value!r}", param_hint="--bands")
    return bands


def _years(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    years = parse_int_list(value, "--year")
    bad = [y for y in years if not 1900 <= y <= 2100]
    if bad:
        raise click.BadParameter(f"{bad[0]} is not a plausible year", param_hint="--year")
    return sorted(set(years))


def region_options(f: F) -> F:
    """--bbox, --tile, --region-file, --country (exactly one is required by the command)."""
    for opt in reversed(
        [
            click.option(
                "--bbox",
                callback=_bbox,
                default=None,
                help="Bounding box: 'lon,lat' (single tile) or 'min_lon,min_lat,max_lon,max_lat'.",
            ),
            click.option(
                "--tile", callback=_point, default=None, help="Single tile by any point within it: 'lon,lat'."
            ),
            click.option(
                "--region-file",
                type=click.Path(path_type=Path),
                default=None,
                help="GeoJSON/Shapefile/GeoPackage (any CRS): tiles intersecting its geometry.",
            ),
            click.option(
                "--country",
                default=None,
                help="Country name or ISO code (e.g. 'United Kingdom', 'UK', 'GB').",
            ),
        ]
    ):
        f = opt(f)
    return f


def year_option(f: F) -> F:
    """--year: one year, a list or a range (``2024``, ``2023,2024``, ``2017-2025``)."""
    return click.option(
        "--year",
        "years",
        callback=_years,
        default="2024",
        show_default=True,
        help="Year(s) of embeddings: 2024, 2023,2024 or 2017-2025.",
    )(f)


def bands_option(f: F) -> F:
    """--bands: comma-separated 0-based band indices (ranges allowed)."""
    return click.option(
        "--bands",
        callback=_bands,
        default=None,
        help="Comma-separated band indices, e.g. '0,1,2' or '0-15' (default: all 128).",
    )(f)


def dataset_options(f: F) -> F:
    """--dataset-version, --dataset-variant."""
    f = click.option("--dataset-variant", default=None, help="Tessera dataset variant (default: vultr).")(f)
    return click.option("--dataset-version", default=None, help="Tessera dataset version (e.g. v1, v1.1).")(f)


def source_options(f: F) -> F:
    """--base-url, --cache-dir, --registry-dir, --offline, --workers."""
    for opt in reversed(
        [
            click.option(
                "--base-url",
                default=None,
                metavar="URL|DIR",
                help="Bucket URL or local mirror directory (env GEOTESSERA_BASE_URL; default: public S3).",
            ),
            click.option(
                "--cache-dir",
                type=click.Path(path_type=Path),
                default=None,
                help="Where manifests are cached (default: $XDG_CACHE_HOME/geotessera).",
            ),
            click.option(
                "--registry-dir",
                type=click.Path(path_type=Path),
                default=None,
                help="Directory holding manifest.parquet to use instead of the remote one.",
            ),
            click.option(
                "--offline", is_flag=True, default=None, help="Use cached manifests only; no network check."
            ),
            click.option(
                "--workers",
                type=click.IntRange(1, 64),
                default=None,
                help="Concurrent downloads (env GEOTESSERA_WORKERS; default 8).",
            ),
        ]
    ):
        f = opt(f)
    return f


CLIENT_PARAMS = (
    "dataset_version",
    "dataset_variant",
    "base_url",
    "cache_dir",
    "registry_dir",
    "offline",
    "workers",
)


def client_options(f: F) -> F:
    """``dataset_options`` + ``source_options``, handed to the command as one ``client_args`` dict."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["client_args"] = {name: kwargs.pop(name) for name in CLIENT_PARAMS}
        return f(*args, **kwargs)

    return dataset_options(source_options(wrapper))  # type: ignore[return-value]


class ClientArgs(TypedDict):
    """What :func:`client_options` hands a command: the client options the user typed (or None)."""

    dataset_version: str | None
    dataset_variant: str | None
    base_url: str | None
    cache_dir: Path | None
    registry_dir: Path | None
    offline: bool | None
    workers: int | None


def make_client(client_args: ClientArgs) -> GeoTessera:
    """A :class:`~geotessera.client.GeoTessera` from the values of :func:`client_options`."""
    from ..client import GeoTessera

    a = client_args
    return GeoTessera(
        a["dataset_version"],
        a["dataset_variant"],
        cache_dir=a["cache_dir"],
        registry_dir=a["registry_dir"],
        base_url=a["base_url"],
        offline=a["offline"],
        workers=a["workers"],
    )


def bbox4(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """Callback for a 4-number ``min_lon,min_lat,max_lon,max_lat`` option (validated)."""
    if value is None:
        return None
    nums = parse_floats(value, f"--{param.name}")
    if len(nums) != 4:
        raise click.BadParameter(f"{value!r} is not 'minlon,minlat,maxlon,maxlat' (four numbers)")
    return _bbox(ctx, param, value)


def int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """Callback for a comma-separated list of whole numbers (ranges a-b allowed)."""
    return None if value is None else parse_int_list(value, f"--{param.name}")
