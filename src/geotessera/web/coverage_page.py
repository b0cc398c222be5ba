"""Coverage as web pages: ``coverage.json`` + ``coverage.html`` beside a coverage PNG, and the
published ``create_coverage_summary_map`` (the footprints of GeoTIFF tiles on a Leaflet map)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError, OutputError
from ..files import atomic_path, write_atomic
from .page import write_page

CELLS_PNG, BASE_PNG = "coverage_cells.png", "coverage_base.png"
JSON_FILE, HTML_FILE = "coverage.json", "coverage.html"


def _write_png(path: Path, rgba: npt.NDArray[np.uint8]) -> None:
    """(H, W, C) uint8 -> PNG (RGB or RGBA), written atomically."""
    import rasterio

    h, w, c = rgba.shape
    with (
        atomic_path(path, fsync=False) as tmp,
        rasterio.Env(GDAL_PAM_ENABLED="NO"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", driver="PNG", width=w, height=h, count=c, dtype="uint8") as dst:
            dst.write(np.moveaxis(rgba, 2, 0))


def write_coverage_page(
    cmap: Any,
    cells: Any,
    png_path: str | os.PathLike[str],
    *,
    tile_alpha: float = 0.6,
    show_countries: bool = True,
    also_as: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``coverage.json`` and an offline ``coverage.html`` beside ``png_path``.

    ``also_as`` names more copies of the page in the same directory (the CLI writes the seed's
    ``globe.html`` into an output directory).

    ``cmap`` is the :class:`~geotessera.visualization.cells.CoverageMap` drawn, ``cells``
    its :class:`~geotessera.visualization.CoverageImage`. The page shows the same cells
    (``coverage_cells.png``) over sea, land and borders (``coverage_base.png``) on a
    Leaflet map in plate carree, with the legend and the region outline. Returns the
    (json, html) paths.
    """
    import shapely

    from ..visualization.coverage_draw import base_image

    out_dir = Path(png_path).parent
    h, w = cells.rgba.shape[:2]
    west, south, east, north = cells.extent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_png(out_dir / CELLS_PNG, cells.rgba)
        base = (
            cells.base
            if cells.base is not None
            else base_image(cells.extent, (h, w), show_countries=show_countries)
        )
        _write_png(out_dir / BASE_PNG, base)
        facts = {k: v for k, v in cmap.facts.items() if k != "subtitle"}
        doc = {
            "title": cmap.title,
            **facts,
            "png": Path(png_path).name,
            "image": {
                "cells": CELLS_PNG,
                "base": BASE_PNG,
                "width": w,
                "height": h,
                "extent": [west, south, east, north],
            },
        }
        json_path = out_dir / JSON_FILE
        write_atomic(json_path, json.dumps(doc, indent=2, default=str).encode(), fsync=False)
    except OSError as exc:
        raise OutputError(f"cannot write the coverage files into {out_dir}: {exc}") from exc
    region = None
    if cmap.outline is not None:
        simple = shapely.simplify(cmap.outline, (east - west) / w / 2, preserve_topology=True)
        region = shapely.geometry.mapping(simple)
    config = {
        "title": cmap.title,
        "subtitle": cmap.facts.get("subtitle", ""),
        "bounds": [[south, west], [north, east]],
        "cells": CELLS_PNG,
        "base": BASE_PNG,
        "images": 2,
        "alpha": tile_alpha,
        "layers": [{"label": layer.label, "colour": layer.colour} for layer in cmap.layers],
        "region": region,
    }
    html_path = write_page("coverage.html", config, cmap.title, out_dir / HTML_FILE)
    for name in also_as:
        write_page("coverage.html", config, cmap.title, out_dir / name)
    return json_path, html_path


def create_coverage_summary_map(
    geotiff_paths: Sequence[str | os.PathLike[str]],
    output_html: str | os.PathLike[str],
    title: str = "GeoTessera Coverage Map",
) -> str:
    """A Leaflet page with the footprint of each GeoTIFF (name, year, bands on click); offline.

    Footprints come from the files' headers
    (:func:`~geotessera.visualization.analyze_geotiff_coverage`). Returns the page path.
    """
    from ..visualization import analyze_geotiff_coverage

    info = analyze_geotiff_coverage(list(geotiff_paths))
    if not info["tiles"]:
        raise InvalidInputError("none of the GeoTIFFs could be read: nothing to map")
    features = [
        {
            "type": "Feature",
            "properties": {"name": t["name"], "year": t["year"], "bands": t["bands"], "path": t["path"]},
            "geometry": shapely_box(*t["bounds"]),
        }
        for t in info["tiles"]
    ]
    b = info["bounds"]
    config = {
        "title": title,
        "subtitle": f"{len(features)} GeoTIFF tiles; years {', '.join(info['years']) or 'unknown'}",
        "bounds": [[b["min_lat"], b["min_lon"]], [b["max_lat"], b["max_lon"]]],
        "footprints": {"type": "FeatureCollection", "features": features},
    }
    return str(write_page("summary.html", config, title, output_html))


def shapely_box(w: float, s: float, e: float, n: float) -> dict[str, Any]:
    """A GeoJSON polygon of a lon/lat box."""
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
