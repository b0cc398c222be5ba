"""Shared CLI options and their parsers.

Each parser turns text into a typed value or raises ``click.BadParameter``
naming the option. Commands stack these decorators instead of re-declaring
options:

| decorator | options | used by |
|---|---|---|
| ``region_options`` | --bbox, --tile, --region-file, --country | download, coverage |
| ``dataset_options`` | --dataset-version, --dataset-variant | download, info, zarr build |
| ``source_options`` | --base-url, --cache-dir, --registry-dir, --offline, --workers | download, info |
| ``client_options`` | both of the above, as one ``client_args`` dict (``workers=False``) | download, info |
| ``years_option`` | --year/--years: ``2024``, ``2023,2024``, ``2017-2025`` (repeatable) | most |
| ``format_option`` | -f/--format: tiff or npy, any case, tif/geotiff/numpy too | download |
| ``bands_option`` | --bands: ``0,1,2`` or ``0-15`` within 0-127 | download |
| ``verbose_option`` | -v/--verbose | all |

Options the user did not type stay ``None``, so environment variables are
resolved in one place (:class:`geotessera.config.Settings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, TypeVar

import click

from ..datasets import PLAUSIBLE_YEARS

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


YEAR_RANGE = PLAUSIBLE_YEARS
"""Years outside this range are refused as implausible (checked before a range is expanded)."""
N_BANDS = 128


def parse_int_list(
    text: str, option: str, *, bounds: tuple[int, int] | None = None, what: str = "value"
) -> list[int]:
    """Comma-separated whole numbers, with ranges ``a-b`` allowed (e.g. ``0,1,2`` or ``0-15``).

    With ``bounds=(lo, hi)`` every number must lie in ``lo..hi``; this is checked before a
    range is expanded, so ``0-999999999`` costs nothing.
    """
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part[0] + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1]
                lo, hi = int(a), int(b)
            else:
                lo = hi = int(part)
        except ValueError:
            raise click.BadParameter(
                f"expected comma-separated whole numbers or ranges like 0-15, got {text!r}", param_hint=option
            ) from None
        if bounds is not None:
            for n in (lo, hi):
                if not bounds[0] <= n <= bounds[1]:
                    raise click.BadParameter(
                        f"{what} {n} is outside {bounds[0]}..{bounds[1]}", param_hint=option
                    )
        if hi < lo:
            raise click.BadParameter(f"the range {part!r} is reversed (write {hi}-{lo})", param_hint=option)
        out.extend(range(lo, hi + 1))
    if not out:
        raise click.BadParameter("the list is empty", param_hint=option)
    return out


def _bands(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    bands = parse_int_list(value, "--bands", bounds=(0, N_BANDS - 1), what="band index")
    if len(set(bands)) != len(bands):
        raise click.BadParameter(f"duplicate band indices in {value!r}", param_hint="--bands")
    return bands


def parse_years(values: str | tuple[str, ...] | list[str], option: str = "--year") -> list[int]:
    """Years from one or more values, each ``2024``, ``2023,2024`` or ``2017-2025``: sorted, unique.

    The one parser of ``--year``/``--years`` for every command; years outside
    :data:`YEAR_RANGE` are refused before a range is expanded.
    """
    texts = [values] if isinstance(values, str) else list(values)
    years: set[int] = set()
    for text in texts:
        years.update(parse_int_list(text, option, bounds=YEAR_RANGE, what="year"))
    return sorted(years)


def years_option(
    default: tuple[str, ...] | None = ("2024",), *, plural: bool = False, default_help: str | None = None
) -> Callable[[F], F]:
    """``--year``/``--years`` (both spellings, repeatable): ``2024``, ``2023,2024``, ``2017-2025``.

    The command receives ``years``: a sorted list of years, or None when no default is given
    and the user typed none. ``plural`` shows ``--years`` first in the help; ``default_help``
    describes a default the command works out itself.
    """

    def _cb(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[int] | None:
        return parse_years(value, "--year/--years") if value else None

    shown = default_help or (",".join(default) if default else "all")
    spellings = ("--years", "--year") if plural else ("--year", "--years")
    return click.option(
        *spellings,
        "years",
        multiple=True,
        default=default or (),
        callback=_cb,
        metavar="YEARS",
        help=f"Year(s): 2024, 2023,2024 or 2017-2025; repeatable  [default: {shown}].",
    )


year_option = years_option()
"""``--year``/``--years`` defaulting to 2024 (the seed's ``download`` default)."""


def _format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ..errors import InvalidInputError
    from ..pipeline import normalize_format

    try:
        return normalize_format(value)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--format") from None


def format_option(f: F) -> F:
    """``-f/--format``: tiff (also tif, geotiff, GTiff) or npy (also numpy), in any case."""
    return click.option(
        "-f",
        "--format",
        "fmt",
        default="tiff",
        show_default=True,
        callback=_format,
        metavar="tiff|npy",
        help="Output format: tiff (GeoTIFF; also tif, geotiff) or npy (quantised arrays); any case.",
    )(f)


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


def exactly_one(**named: object) -> str:
    """The one option name (keyword ``region_file`` -> ``--region-file``) whose value is not None.

    Raises a usage error listing every option (and those given) when not exactly one was given.
    """
    flags = {"--" + k.replace("_", "-"): v for k, v in named.items()}
    given = [flag for flag, value in flags.items() if value is not None]
    if len(given) != 1:
        raise click.UsageError(
            f"give exactly one of {', '.join(flags)}" + (f" (got {', '.join(given)})" if given else "")
        )
    return given[0]


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


def source_options(f: F, *, workers: bool = True) -> F:
    """--base-url, --cache-dir, --registry-dir, --offline and (unless ``workers=False``) --workers."""
    opts = [
        click.option(
            "--base-url",
            default=None,
            metavar="URL|DIR",
            help="Bucket URL, with the bucket (e.g. http://127.0.0.1:9000/tessera-embeddings), or a local "
            "mirror directory (env GEOTESSERA_BASE_URL; default: the public S3 bucket).",
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
    ]
    if workers:
        opts.append(
            click.option(
                "--workers",
                type=click.IntRange(1, 64),
                default=None,
                help="Concurrent downloads (env GEOTESSERA_WORKERS; default 8).",
            )
        )
    for opt in reversed(opts):
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


def client_options(f: F | None = None, *, workers: bool = True) -> Any:
    """``dataset_options`` + ``source_options``, handed to the command as one ``client_args`` dict.

    Use as ``@client_options``, or ``@client_options(workers=False)`` for a command that
    downloads no tiles (no ``--workers``).
    """
    names = [n for n in CLIENT_PARAMS if workers or n != "workers"]

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs["client_args"] = {name: kwargs.pop(name) for name in names}
            return f(*args, **kwargs)

        return dataset_options(source_options(wrapper, workers=workers))  # type: ignore[return-value]

    return decorate if f is None else decorate(f)


class ClientArgs(TypedDict):
    """What :func:`client_options` hands a command: the client options the user typed (or None)."""

    dataset_version: str | None
    dataset_variant: str | None
    base_url: str | None
    cache_dir: Path | None
    registry_dir: Path | None
    offline: bool | None
    workers: NotRequired[int | None]
    """Absent for commands that download no tiles (``client_options(workers=False)``)."""
    embeddings_dir: NotRequired[Path | None]
    """Where tiles go, for commands that offer it."""


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
        workers=a.get("workers"),
        embeddings_dir=a.get("embeddings_dir"),
    )


def bbox4(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """Callback for a 4-number ``min_lon,min_lat,max_lon,max_lat`` option (validated)."""
    if value is None:
        return None
    nums = parse_floats(value, f"--{param.name}")
    if len(nums) != 4:
        raise click.BadParameter(f"{value!r} is not 'minlon,minlat,maxlon,maxlat' (four numbers)")
    return _bbox(ctx, param, value)
