"""Coverage maps from the manifest alone: ``visualize_global_coverage``, ``visualize_sources_coverage``.

:func:`year_coverage` and :func:`source_coverage` build a :class:`~.cells.CoverageMap`
(layers of cells, extent, outline, facts); :func:`~.coverage_draw.render_png` draws it.
The published functions chain the two.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._version import __version__
from ..datasets import KNOWN_VARIANTS, DatasetId
from ..errors import GeoTesseraError, InvalidInputError, NotCoveredError
from ..progress import ProgressSink
from ._progress import ProgressCallback, Reporter
from .areas import area_from
from .cells import CoverageMap, padded_extent, region_share, source_layers, year_layers
from .coverage_draw import check_style, render_png

log = logging.getLogger(__name__)


def _years_of(year: int | Sequence[int] | None, available: Sequence[int]) -> list[int]:
    if year is None:
        return list(available)
    wanted = [int(year)] if isinstance(year, int) else [int(y) for y in year]
    missing = [y for y in wanted if y not in available]
    if missing:
        raise NotCoveredError(
            f"no tiles of {', '.join(map(str, missing))} in this dataset "
            f"(years: {', '.join(map(str, available))})"
        )
    return wanted


def _area(
    region_bbox: Sequence[float] | None, region_file: str | os.PathLike[str] | None, region: Any
) -> tuple[Any, Any, tuple[float, float, float, float] | None]:
    """(region as cells or None, outline geometry or None, bbox or None) of the area asked for."""
    if region is not None:
        w, s, e, n = region.bbox
        return region, None, (w, s, e, n)
    cells, geom = area_from(bbox=region_bbox, region_file=region_file)
    if cells is None:
        return None, None, None
    if region_file is not None:
        w, s, e, n = geom.bounds
    else:
        w, s, e, n = (float(v) for v in region_bbox)  # type: ignore[union-attr]
    return cells, geom, (w, s, e, n)


def year_coverage(
    registry: Any,
    *,
    years: Sequence[int] | int | None = None,
    region_bbox: Sequence[float] | None = None,
    region_file: str | os.PathLike[str] | None = None,
    region: Any = None,
    outline: Any = None,
    multi_year_colors: bool = True,
    tile_color: str = "red",
    dataset: str = "",
) -> CoverageMap:
    """The coverage of one dataset's ``registry``: by year category, or one colour.

    The area is the whole world, ``region_bbox``, ``region_file`` or a
    :class:`~geotessera.regions.Region` (with ``outline``, its geometry, for the drawing);
    tiles are shown in its bounding box (grown by 5%).
    """
    ys = _years_of(years, registry.available_years())
    cells, geom, bbox = _area(region_bbox, region_file, region)
    geom = outline if outline is not None else geom
    extent = padded_extent(bbox)
    layers, counts = year_layers(
        registry, ys, extent, multi_year_colors=multi_year_colors, tile_color=tile_color
    )
    where = f" - {cells.description}" if cells is not None else ""
    when = f"{ys[0]}" if len(ys) == 1 else f"{min(ys)}-{max(ys)}"
    cmap = CoverageMap(f"Tessera embedding coverage, {when}{where}", extent, layers, geom)
    cmap.facts = _facts(cmap, {dataset or "dataset": counts}, ys)
    if cells is not None:
        share = region_share(registry, cells, ys)
        cmap.facts["region"] = {"description": cells.description, "cells": len(cells), "covered": share}
    return cmap


def _facts(cmap: CoverageMap, counts: dict[str, dict[int, int]], years: Sequence[int]) -> dict[str, Any]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    names = ", ".join(counts)
    return {
        "generator": f"geotessera {__version__}",
        "generated_at": stamp,
        "datasets": list(counts),
        "years": list(years),
        "extent": list(cmap.extent),
        "tiles_per_year": {name: {str(y): n for y, n in c.items()} for name, c in counts.items()},
        "locations": cmap.locations,
        "layers": [
            {"label": layer.label, "colour": layer.colour, "locations": layer.count} for layer in cmap.layers
        ],
        "subtitle": f"{names} - {cmap.locations:,} tile locations shown - {stamp}",
    }


def _draw(
    rep: Reporter,
    cmap: CoverageMap,
    output_path: str | os.PathLike[str],
    width_pixels: int,
    show_countries: bool,
    tile_alpha: float,
    tile_size: float,
) -> str:
    """Render ``cmap`` to the PNG ``output_path`` (``width_pixels`` wide), reporting; return the path."""
    rep.done("manifest", f"drawing {cmap.locations:,} tile locations")
    render_png(
        cmap,
        output_path,
        width_pixels=width_pixels,
        show_countries=show_countries,
        tile_alpha=tile_alpha,
        tile_size=tile_size,
    )
    rep.done("png", "done")
    return str(output_path)


def visualize_global_coverage(
    tessera_client: Any,
    output_path: str | os.PathLike[str] = "tessera_coverage.png",
    year: int | Sequence[int] | None = None,
    width_pixels: int = 2000,
    show_countries: bool = True,
    tile_color: str = "red",
    tile_alpha: float = 0.6,
    tile_size: float = 1.0,
    progress_callback: ProgressCallback | None = None,
    multi_year_colors: bool = True,
    region_bbox: Sequence[float] | None = None,
    region_file: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressSink | None = None,
) -> str:
    """A PNG map of where ``tessera_client``'s dataset has tiles, from its manifest alone.

    ``year`` None shows every year in three colours (all years / latest only / some
    years) unless ``multi_year_colors`` is False; a year (or a list of years) shows those.
    ``region_bbox`` (min_lon, min_lat, max_lon, max_lat) or ``region_file`` (outlined)
    zooms in. ``width_pixels`` is the PNG's width in pixels (200..20000), ``tile_alpha`` the
    cells' opacity in [0, 1], ``tile_size`` a multiplier of each 0.1 degree cell's true size.
    ``progress_callback(current, total, status)`` and ``progress=`` events report two steps
    (manifest, drawing). Returns ``output_path`` as a string.
    """
    check_style(width_pixels, tile_alpha, tile_size, [tile_color])
    rep = Reporter(progress_callback, progress)
    rep.plan(2, "coverage")  # two steps: read the manifest, draw the PNG
    rep.status("reading the manifest")
    cmap = year_coverage(
        tessera_client.registry,
        years=year,
        region_bbox=region_bbox,
        region_file=region_file,
        multi_year_colors=multi_year_colors,
        tile_color=tile_color,
        dataset=str(getattr(tessera_client, "dataset", "")),
    )
    return _draw(rep, cmap, output_path, width_pixels, show_countries, tile_alpha, tile_size)


def datasets_in_manifest(path: str | os.PathLike[str]) -> list[DatasetId]:
    """The (version, variant) datasets a manifest file holds (the default one when it has no such columns)."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    try:
        names = set(pq.read_schema(path).names)
        cols = [c for c in ("version", "variant") if c in names]
        if not cols:
            return [DatasetId()]
        table = pq.read_table(path, columns=cols)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path} is not a readable Parquet manifest ({exc})") from exc
    pairs = table.group_by(cols).aggregate([])
    versions = pairs.column("version").to_pylist() if "version" in cols else [None] * pairs.num_rows
    variants = pairs.column("variant").to_pylist() if "variant" in cols else [None] * pairs.num_rows
    return sorted(
        {DatasetId.parse(v, var) for v, var in zip(versions, variants, strict=True)},
        key=lambda d: (d.version, d.variant),
    )


def manifest_registries(
    manifest_paths: Sequence[str | os.PathLike[str]],
    versions: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
) -> list[tuple[str, Any]]:
    """``(name, Registry)`` of every (version, variant) in the manifest files, filtered by the lists."""
    from ..registry import Registry, load_manifest

    want_v = {DatasetId.parse(v).version for v in versions} if versions else None
    want_var = {DatasetId.parse(None, v).variant for v in variants} if variants else None
    out = []
    for path in manifest_paths:
        for ds in datasets_in_manifest(path):
            if (want_v is None or ds.version in want_v) and (want_var is None or ds.variant in want_var):
                out.append((str(ds), Registry(load_manifest(ds, registry_path=path))))
    if not out:
        raise NotCoveredError("the manifest(s) hold none of the chosen versions and variants")
    return out


def manifest_path_of(version: str, **client_args: Any) -> Path:
    """The local manifest file of a dataset ``version`` (fetched and cached as the client does)."""
    from ..client import GeoTessera

    last: GeoTesseraError | None = None
    for variant in KNOWN_VARIANTS:
        gt = GeoTessera(version, variant, **client_args)
        try:
            path = gt.registry.manifest.path
        except NotCoveredError as exc:  # that variant is not in this version's manifest
            last = exc
            continue
        if path is not None:
            return Path(path)
    raise last or NotCoveredError(f"no manifest of version {version}")


def source_registries(
    dataset_version: str | None = None, dataset_variant: str | None = None, **client_args: Any
) -> list[tuple[str, Any]]:
    """``(name, Registry)`` of every (version, variant) chosen (None or ``"all"``: every one).

    Manifests are found as the client finds them (``registry_dir``, a local mirror as
    ``base_url``, or fetched and cached); ``client_args`` are :class:`~geotessera.GeoTessera`'s.
    """
    versions = None if dataset_version in (None, "all") else [str(dataset_version)]
    variants = None if dataset_variant in (None, "all") else [str(dataset_variant)]
    client_args.pop("workers", None)
    registry_dir = client_args.get("registry_dir")
    if registry_dir is not None:
        paths = [Path(registry_dir) / "manifest.parquet"]
        if not paths[0].is_file():
            raise InvalidInputError(f"{registry_dir} holds no manifest.parquet")
    else:
        wanted = versions or ["v1", "v1.1"]
        paths = list(
            dict.fromkeys(manifest_path_of(DatasetId.parse(v).version, **client_args) for v in wanted)
        )
    return manifest_registries(paths, versions, variants)


def source_coverage(
    registries: Sequence[tuple[str, Any]],
    *,
    years: Sequence[int] | int | None = None,
    region_bbox: Sequence[float] | None = None,
    region_file: str | os.PathLike[str] | None = None,
    region: Any = None,
    outline: Any = None,
) -> CoverageMap:
    """One layer per (version, variant) source; ``years`` None = each source's every year."""
    ys = None if years is None else ([int(years)] if isinstance(years, int) else [int(y) for y in years])
    cells, geom, bbox = _area(region_bbox, region_file, region)
    geom = outline if outline is not None else geom
    extent = padded_extent(bbox)
    layers, counts = source_layers(registries, ys, extent)
    where = f" - {cells.description}" if cells is not None else ""
    when = "" if ys is None else (f", {ys[0]}" if len(ys) == 1 else f", {min(ys)}-{max(ys)}")
    cmap = CoverageMap(f"Tessera coverage by source{when}{where}", extent, layers, geom)
    all_years = sorted({y for c in counts.values() for y in c})
    cmap.facts = _facts(cmap, counts, all_years)
    if cells is not None:
        cmap.facts["region"] = {
            "description": cells.description,
            "cells": len(cells),
            "covered": {name: region_share(reg, cells, sorted(counts[name])) for name, reg in registries},
        }
    return cmap


def visualize_sources_coverage(
    manifest_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_path: str | os.PathLike[str] = "tessera_sources.png",
    year: int | None = None,
    width_pixels: int = 2000,
    show_countries: bool = True,
    tile_alpha: float = 0.6,
    tile_size: float = 1.0,
    versions: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    region_bbox: Sequence[float] | None = None,
    region_file: str | os.PathLike[str] | None = None,
    progress_callback: ProgressCallback | None = None,
    *,
    progress: ProgressSink | None = None,
) -> str:
    """A PNG map with each (version, variant) of the manifest(s) in its own colour.

    ``manifest_path`` is one Parquet manifest or a list (manifests are per version).
    Sizes, opacity and progress as in :func:`visualize_global_coverage`. Returns
    ``output_path`` as a string.
    """
    check_style(width_pixels, tile_alpha, tile_size)
    rep = Reporter(progress_callback, progress)
    paths = [manifest_path] if isinstance(manifest_path, str | os.PathLike) else list(manifest_path)
    rep.plan(2, "coverage")  # two steps: read the manifest(s), draw the PNG
    rep.status("reading the manifest(s)")
    regs = manifest_registries(paths, versions, variants)
    cmap = source_coverage(regs, years=year, region_bbox=region_bbox, region_file=region_file)
    return _draw(rep, cmap, output_path, width_pixels, show_countries, tile_alpha, tile_size)
