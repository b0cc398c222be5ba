"""``geotessera zarr build``: convert a Tessera tile set into a cloud-native Zarr store."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import click

from .options import dataset_options, verbose_option, years_option

if TYPE_CHECKING:
    from ..progress import Event
    from .render import ProgressBars


def _parse_depths(text: str | None) -> tuple[int, ...]:
    """``--depths 4,16`` -> (4, 16); bad values are a usage error naming the option."""
    if text is None:
        return ()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts) or not all(1 <= int(p) < 128 for p in parts):
        raise click.BadParameter(
            f"expected whole numbers from 1 to 127 separated by commas (e.g. 4,16), got {text!r}",
            param_hint="--depths",
        )
    return tuple(sorted({int(p) for p in parts}))


@click.group("zarr")
def command() -> None:
    """Build geoemb Zarr stores from Tessera tiles."""


class _Phases:
    """A progress sink showing each phase of a build (tiles fetched, then shards) on its own bars."""

    def __init__(self) -> None:
        self._bars: ProgressBars | None = None

    def __call__(self, event: Event) -> None:
        from ..progress import PlanReady
        from .render import ProgressBars

        if isinstance(event, PlanReady) and event.label in ("tiles", "shards", "preview"):
            self._close()
            self._bars = ProgressBars(event.label).__enter__()
        if self._bars is not None:
            self._bars(event)

    def _close(self) -> None:
        if self._bars is not None:
            self._bars.__exit__(None, None, None)
            self._bars = None

    def __enter__(self) -> _Phases:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()


@command.command("build")
@click.argument("source")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
@years_option(None, plural=True)
@click.option(
    "--zones", multiple=True, type=click.IntRange(1, 60), help="UTM zones (repeatable; default all)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Shards written in parallel (about 40 MiB of memory each).",
)
@click.option(
    "--download-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where tiles of an http(s)/s3 SOURCE are downloaded and kept (default: STORE.tiles).",
)
@click.option(
    "--depths",
    "depths_text",
    default=None,
    metavar="D[,D...]",
    help="Also write copies of the first D bands (e.g. 4,16: embeddings_d4, embeddings_d16), so "
    "reads of few bands decode few (depth= in GeoTesseraZarr).",
)
@click.option(
    "--preview",
    "preview_year",
    type=click.IntRange(1900, 2100),
    default=None,
    metavar="YEAR",
    help="Also render the store's preview pyramid (global_rgb: RGB of a PCA, EPSG:4326, 10 levels) "
    "of YEAR, replacing any other year's.",
)
@click.option(
    "--checksums/--no-checksums",
    default=True,
    show_default=True,
    help="End every inner chunk of new arrays with its crc32c and record which shards hold data, "
    "so damage and lost shards are reported; --no-checksums writes stores like the published ones.",
)
@dataset_options
@verbose_option
def build(
    source: str,
    store: Path,
    years: list[int] | None,
    zones: tuple[int, ...],
    workers: int,
    download_dir: Path | None,
    depths_text: str | None,
    preview_year: int | None,
    checksums: bool,
    dataset_version: str | None,
    dataset_variant: str | None,
) -> None:
    """Convert the tiles under SOURCE into STORE.

    SOURCE is a local mirror directory, a geotessera download directory (--format npy), or an
    http(s)/s3 base URL whose tiles are downloaded (verified, concurrently: GEOTESSERA_WORKERS)
    into a kept directory first. Resumable: rerun after an interruption and finished downloads
    and complete shards (by receipt) are skipped; adding a year or a tile rewrites only the
    shards it touches.
    """
    from ..config import Settings
    from ..datasets import DatasetId
    from ..store import build_zarr
    from .render import plural

    depths = _parse_depths(depths_text)
    with _Phases() as bars:
        report = build_zarr(
            source,
            store,
            dataset=DatasetId.parse(dataset_version, dataset_variant),
            years=years,
            zones=zones or None,
            workers=workers,
            download_dir=download_dir,
            settings=Settings.resolve(),
            progress=bars,
            depths=depths,
            checksums=checksums,
        )
    click.echo(
        f"{store}: {plural(report.shards_written, 'shard')} written, "
        f"{report.shards_skipped} already complete, "
        f"{report.bytes_written / 1e6:.1f} MB, zones {report.zones}, years {report.years}, "
        f"{report.elapsed_s:.1f} s"
    )
    if preview_year is not None:
        from ..store.write import build_preview

        with _Phases() as bars:
            pv = build_preview(store, preview_year, progress=bars)
        click.echo(
            f"{store}: preview of {pv.year}: {pv.levels} levels, {pv.chunks_written} chunks "
            f"({pv.chunks_level0} at level 0), colours from {pv.sample_pixels} pixels, {pv.elapsed_s:.1f} s"
        )
