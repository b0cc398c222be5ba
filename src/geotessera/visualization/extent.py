"""Where things are: bounding boxes of region files and points, and a summary of GeoTIFF tiles."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError

log = logging.getLogger(__name__)


def calculate_bbox_from_file(filepath: str | os.PathLike[str]) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of a region file in any CRS.

    GeoJSON is read natively; Shapefile / GeoPackage need the ``regions`` extra.
    """
    from ..regions import read_region_file, to_wgs84

    geom, crs = read_region_file(filepath)
    w, s, e, n = to_wgs84(geom, crs).bounds
    return float(w), float(s), float(e), float(n)


def calculate_bbox_from_points(
    points: Iterable[Mapping[str, Any]] | Any, buffer_degrees: float = 0.1
) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of points grown by ``buffer_degrees``, clipped to the world.

    ``points`` is a list of dicts with ``lon`` and ``lat`` keys, or a table with such
    columns (a pandas DataFrame, a dict of arrays).
    """
    if not (
        isinstance(buffer_degrees, int | float) and math.isfinite(buffer_degrees) and buffer_degrees >= 0
    ):
        raise InvalidInputError(f"buffer_degrees must be a non-negative number, got {buffer_degrees!r}")
    try:
        if hasattr(points, "columns") or isinstance(points, Mapping):
            table: Any = points
            lon = np.asarray(table["lon"], np.float64)
            lat = np.asarray(table["lat"], np.float64)
        else:
            rows = list(points)
            lon = np.asarray([r["lon"] for r in rows], np.float64)
            lat = np.asarray([r["lat"] for r in rows], np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"points must have numeric 'lon' and 'lat' values ({exc})") from None
    if lon.size == 0:
        raise InvalidInputError("no points given")
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise InvalidInputError("points must have finite 'lon' and 'lat' values")
    if np.abs(lon).max() > 180 or np.abs(lat).max() > 90:
        raise InvalidInputError("point coordinates are outside lon [-180, 180], lat [-90, 90]")
    return (
        max(-180.0, float(lon.min()) - buffer_degrees),
        max(-90.0, float(lat.min()) - buffer_degrees),
        min(180.0, float(lon.max()) + buffer_degrees),
        min(90.0, float(lat.max()) + buffer_degrees),
    )


def analyze_geotiff_coverage(geotiff_paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """A summary of GeoTIFF tiles read from their headers: bounds (lon/lat), bands, years, CRSs.

    Returns a dict with ``total_files``, ``tiles`` (path, bounds [w, s, e, n], bands, year,
    tile_lon, tile_lat per file), ``bounds`` (min_lon ... max_lat over all), ``band_counts``,
    ``years``, ``crs`` and ``failed`` (path and reason of unreadable files, which are skipped).
    """
    import rasterio
    from rasterio.warp import transform_bounds

    info: dict[str, Any] = {"total_files": len(geotiff_paths), "tiles": [], "band_counts": {}, "failed": []}
    years: set[str] = set()
    crss: set[str] = set()
    boxes = []
    for path in geotiff_paths:
        try:
            with rasterio.open(path) as ds:
                if ds.crs is None:
                    raise InvalidInputError("no CRS")
                w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
                tags = ds.tags()
                count, crs = ds.count, ds.crs.to_string()
        except (rasterio.errors.RasterioIOError, InvalidInputError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            info["failed"].append({"path": str(path), "error": str(exc)})
            continue
        year = tags.get("TESSERA_YEAR")
        tile = {
            "path": str(path),
            "bounds": [w, s, e, n],
            "bands": count,
            "year": year,
            "tile_lon": float(tags["TESSERA_TILE_LON"]) if "TESSERA_TILE_LON" in tags else (w + e) / 2,
            "tile_lat": float(tags["TESSERA_TILE_LAT"]) if "TESSERA_TILE_LAT" in tags else (s + n) / 2,
            "name": Path(path).stem,
        }
        info["tiles"].append(tile)
        info["band_counts"][count] = info["band_counts"].get(count, 0) + 1
        if year:
            years.add(year)
        crss.add(crs)
        boxes.append((w, s, e, n))
    arr = np.asarray(boxes) if boxes else np.full((1, 4), np.nan)
    info["bounds"] = {
        "min_lon": float(np.min(arr[:, 0])),
        "min_lat": float(np.min(arr[:, 1])),
        "max_lon": float(np.max(arr[:, 2])),
        "max_lat": float(np.max(arr[:, 3])),
    }
    info["years"] = sorted(years)
    info["crs"] = sorted(crss)
    return info
