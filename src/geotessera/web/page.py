"""HTML pages: the Leaflet viewer of web tiles (``create_simple_web_viewer``) and how pages are written.

Pages are written from packaged templates with their settings as one JSON object, and
Leaflet is copied beside them, so they work from a plain directory with no internet.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, OutputError
from ..files import write_atomic
from .assets import copy_leaflet, template


def region_geojson(region_file: str | os.PathLike[str], tolerance_deg: float = 1e-4) -> dict[str, Any]:
    """A region file's geometry in lon/lat as a GeoJSON dict (simplified to ``tolerance_deg``)."""
    import shapely

    from ..regions import read_region_file, to_wgs84

    geom, crs = read_region_file(region_file)
    geom = shapely.simplify(to_wgs84(geom, crs), tolerance_deg, preserve_topology=True)
    mapping: dict[str, Any] = shapely.geometry.mapping(geom)
    return mapping


def write_page(name: str, config: dict[str, Any], title: str, output_html: str | os.PathLike[str]) -> Path:
    """Fill template ``name`` with ``config`` and ``title``, write it atomically, copy Leaflet beside it."""
    out = Path(output_html)
    text = template(name)
    payload = json.dumps(config, allow_nan=False).replace("</", "<\\/")
    text = text.replace("__GEOTESSERA_CONFIG__", payload).replace("__GEOTESSERA_TITLE__", html.escape(title))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        copy_leaflet(out.parent)
        write_atomic(out, text.encode("utf-8"), fsync=False)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
    return out


def create_simple_web_viewer(
    tiles_dir: str | os.PathLike[str],
    output_html: str | os.PathLike[str],
    center_lon: float = 0,
    center_lat: float = 0,
    zoom: int | None = 10,
    title: str = "GeoTessera Visualization",
    region_file: str | os.PathLike[str] | None = None,
    *,
    min_zoom: int = 0,
    max_zoom: int = 18,
    bounds: tuple[float, float, float, float] | None = None,
    footprint: Sequence[tuple[float, float, float, float]] = (),
    footprint_max_zoom: int | None = None,
) -> str:
    """Write a Leaflet page showing the XYZ tiles of ``tiles_dir`` (``{z}/{x}/{y}.png``).

    The page has an opacity slider, the tiles' extent (``bounds``, (min_lon, min_lat,
    max_lon, max_lat); default: a box around the centre) and the outline of
    ``region_file`` when given. With ``zoom=None`` it opens fitted to the extent.
    ``footprint``: boxes (same order as ``bounds``) outlined where the data is, so data far
    smaller than the extent is found at a glance; shown up to ``footprint_max_zoom``
    (default: always). Returns the page path as a string.
    """
    out = Path(output_html)
    tiles = Path(tiles_dir)
    try:
        rel = os.path.relpath(tiles, out.parent).replace(os.sep, "/")
    except ValueError:  # another drive (Windows)
        rel = tiles.resolve().as_uri()
    if not (0 <= min_zoom <= max_zoom <= 24):
        raise InvalidInputError(f"zoom levels must satisfy 0 <= min <= max <= 24, got {min_zoom}..{max_zoom}")
    if bounds is None:
        bounds = (center_lon - 0.5, center_lat - 0.5, center_lon + 0.5, center_lat + 0.5)
    w, s, e, n = (float(v) for v in bounds)
    config = {
        "title": title,
        "tiles": f"{rel}/{{z}}/{{x}}/{{y}}.png",
        "min_zoom": int(min_zoom),
        "max_zoom": int(max_zoom),
        "bounds": [[s, w], [n, e]],
        "center": [float(center_lat), float(center_lon)],
        "zoom": None if zoom is None else int(zoom),
        "region": region_geojson(region_file) if region_file is not None else None,
        "footprint": [[[float(b[1]), float(b[0])], [float(b[3]), float(b[2])]] for b in footprint],
        "footprint_max_zoom": 99 if footprint_max_zoom is None else int(footprint_max_zoom),
    }
    return str(write_page("viewer.html", config, title, out))
