"""The area a coverage map shows: a :class:`~geotessera.regions.Region` (cells) and its outline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError


def area_from(
    *,
    bbox: Any = None,
    tile: tuple[float, float] | None = None,
    region_file: str | os.PathLike[str] | None = None,
    country: str | None = None,
) -> tuple[Any, Any]:
    """(Region, outline geometry in lon/lat) of the one area given, or (None, None) for the world.

    ``bbox`` is (min_lon, min_lat, max_lon, max_lat) or a point (lon, lat); ``tile`` a point
    whose cell is meant; ``region_file`` any region file (any CRS); ``country`` a name or
    ISO code. Raises :class:`InvalidInputError` when more than one is given.
    """
    import shapely

    from ..regions import Region, read_region_file, to_wgs84

    given = [v for v in (bbox, tile, region_file, country) if v is not None]
    if len(given) > 1:
        raise InvalidInputError("give at most one of --bbox, --tile, --region-file, --country")
    if bbox is not None:
        region = Region.from_bbox(bbox)
        return region, shapely.box(*region.bbox) if len(bbox) == 2 else shapely.box(*bbox)
    if tile is not None:
        region = Region.from_point(*tile)
        return region, shapely.box(*region.bbox)
    if region_file is not None:
        geom, crs = read_region_file(region_file)
        geom = to_wgs84(geom, crs)
        return Region.from_geometry(geom, description=f"region file {Path(region_file).name}"), geom
    if country is not None:
        from ..countries import country_geometry

        geom, name = country_geometry(country)
        return Region.from_geometry(geom, description=f"country {name}"), geom
    return None, None
