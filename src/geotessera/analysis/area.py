"""The area a region-wide operation covers: a set of 0.1-degree cells and, optionally, a shape.

``as_area`` accepts what ``geotessera download`` accepts: a bbox (2 or 4 numbers), a
:class:`~geotessera.regions.Region`, a region file (GeoJSON, GeoPackage, Shapefile ...,
any CRS) or a country name / ISO code. Cells are chosen as ``download`` chooses them
(positive-area intersection, never a bounding box); outputs are then clipped to the
shape: a pixel is inside when its centre is (a bbox clips to the box, a file to its
features, a country to its land). A :class:`Region` alone has no shape: whole cells.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely

from ..errors import InvalidInputError
from ..grid import as_bbox
from ..regions import Region, read_region_file, to_wgs84

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".parquet", ".geoparquet", ".fgb", ".kml")


@dataclass(frozen=True, eq=False)
class Area:
    """Cells of a region plus its lon/lat shape (None: the cells themselves)."""

    region: Region
    geometry: shapely.Geometry | None
    description: str


def as_area(value: Any) -> Area:
    """Normalise a region argument (see the module docstring); raises :class:`InvalidInputError`."""
    if isinstance(value, Area):
        return value
    if isinstance(value, Region):
        return Area(value, None, value.description)
    if isinstance(value, shapely.Geometry):
        geom = to_wgs84(value, "EPSG:4326")
        return Area(Region.from_geometry(geom), geom, "geometry")
    if isinstance(value, (tuple, list)):
        b = as_bbox(value)
        region = Region.from_bbox(b)
        if b.min_lon == b.max_lon and b.min_lat == b.max_lat:
            return Area(region, None, region.description)
        if b.min_lon == b.max_lon or b.min_lat == b.max_lat:
            raise InvalidInputError(f"bbox {tuple(b)} has no area; give a box or a point")
        return Area(region, shapely.box(*b), region.description)
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.exists() or path.suffix.lower() in VECTOR_SUFFIXES:
            geom, crs = read_region_file(path)
            geom = to_wgs84(geom, crs)
            return Area(Region.from_geometry(geom), geom, f"region file {path.name}")
        from ..countries import country_geometry

        geom, name = country_geometry(str(value))
        return Area(Region.from_geometry(geom), geom, f"country {name}")
    raise InvalidInputError(f"region {value!r} is not a bbox, Region, geometry, region file or country name")
