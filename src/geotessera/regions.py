"""Regions of interest turned into sets of 0.1-degree cells.

A region comes from a bbox, a point, a shapely geometry (any CRS), a region
file (GeoJSON natively; Shapefile / GeoPackage / anything GDAL reads with the
``regions`` extra) or a country name. Geometries select the cells they
intersect with positive area, never their bounding box.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer

from ._optional import require
from .errors import InvalidInputError
from .grid import BBox, Cell, as_bbox, cell_index_ranges

log = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True, eq=False)
class Region:
    """A set of cells, held as sorted integer index arrays, plus a human description.

    ``ix``/``iy`` are int32 arrays of shape (N,), ordered by (iy, ix) and free of
    duplicates, so a region as large as the globe (6.5 million cells) stays cheap;
    :attr:`cells` builds the :class:`Cell` objects on demand.
    """

    ix: npt.NDArray[np.int32]
    iy: npt.NDArray[np.int32]
    description: str

    def __len__(self) -> int:
        return len(self.ix)

    @property
    def cells(self) -> tuple[Cell, ...]:
        """The cells as :class:`Cell` objects, ordered by (lat, lon)."""
        return tuple(Cell(int(a), int(b)) for a, b in zip(self.ix, self.iy, strict=True))

    @property
    def centres(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Cell centres (lon, lat) in degrees, arrays of shape (N,)."""
        return (self.ix + 0.5) / 10, (self.iy + 0.5) / 10

    @property
    def bbox(self) -> BBox:
        """Bounds (min_lon, min_lat, max_lon, max_lat) of the selected cells in degrees."""
        if not len(self):
            raise InvalidInputError(f"region {self.description} is empty")
        return BBox(
            int(self.ix.min()) / 10,
            int(self.iy.min()) / 10,
            (int(self.ix.max()) + 1) / 10,
            (int(self.iy.max()) + 1) / 10,
        )

    @classmethod
    def from_indices(cls, ix: npt.ArrayLike, iy: npt.ArrayLike, description: str) -> Region:
        """Deduplicate and order cell indices by (iy, ix)."""
        packed = np.unique(np.asarray(iy, np.int64) * 4096 + (np.asarray(ix, np.int64) + 2048))
        return cls((packed % 4096 - 2048).astype(np.int32), (packed // 4096).astype(np.int32), description)

    @classmethod
    def from_cells(cls, cells: Iterable[Cell], description: str) -> Region:
        """Deduplicate and order cells by (lat, lon)."""
        cs = list(cells)
        return cls.from_indices([c.ix for c in cs], [c.iy for c in cs], description)

    @classmethod
    def from_bbox(cls, bbox: object) -> Region:
        """Cells overlapping a (min_lon, min_lat, max_lon, max_lat) box with positive area.

        Two numbers mean a point: the one cell containing it.
        """
        b = as_bbox(bbox)
        xs, ys = cell_index_ranges(b)
        ix, iy = np.meshgrid(np.arange(xs.start, xs.stop), np.arange(ys.start, ys.stop))
        return cls.from_indices(ix.ravel(), iy.ravel(), f"bbox {tuple(b)}")

    @classmethod
    def from_point(cls, lon: float, lat: float) -> Region:
        """The one cell containing (lon, lat)."""
        c = Cell.from_point(lon, lat)
        return cls.from_indices([c.ix], [c.iy], f"tile {c.name} (containing {lon}, {lat})")

    @classmethod
    def from_geometry(
        cls, geometry: shapely.Geometry, crs: Any = WGS84, description: str = "geometry"
    ) -> Region:
        """Cells a geometry (in ``crs``, any pyproj-understood CRS) intersects with positive area."""
        geom = to_wgs84(geometry, crs)
        return cls.from_indices(*cell_indices_intersecting(geom), description)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Region:
        """Cells intersecting the union of all features of a region file."""
        geom, crs = read_region_file(path)
        return cls.from_geometry(geom, crs, f"region file {Path(path).name}")

    @classmethod
    def from_country(cls, name: str) -> Region:
        """Cells intersecting a country's land (names, ISO-2/3 codes and common aliases)."""
        from .countries import country_geometry

        geom, canonical = country_geometry(name)
        return cls.from_indices(*cell_indices_intersecting(geom), f"country {canonical}")


def to_wgs84(geometry: shapely.Geometry, crs: Any) -> shapely.Geometry:
    """Reproject a geometry to lon/lat (EPSG:4326), validating the result."""
    try:
        src = CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError (a generic Exception subclass)
        raise InvalidInputError(f"unknown CRS {crs!r}: {exc}") from exc
    geom = geometry
    if not src.equals(WGS84, ignore_axis_order=True):
        tr = Transformer.from_crs(src, WGS84, always_xy=True)
        geom = shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    if geom.is_empty:
        raise InvalidInputError("the region geometry is empty")
    minx, miny, maxx, maxy = geom.bounds
    if not (
        np.isfinite([minx, miny, maxx, maxy]).all()
        and minx >= -180
        and maxx <= 180
        and miny >= -90
        and maxy <= 90
    ):
        raise InvalidInputError(
            f"region bounds {geom.bounds} are not valid lon/lat; is the file's CRS declared correctly?"
        )
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


def cells_intersecting(geom: shapely.Geometry) -> list[Cell]:
    """:func:`cell_indices_intersecting` as :class:`Cell` objects."""
    ix, iy = cell_indices_intersecting(geom)
    return [Cell(int(a), int(b)) for a, b in zip(ix, iy, strict=True)]


def cell_indices_intersecting(geom: shapely.Geometry) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Cells overlapping ``geom`` (lon/lat) with positive area; lines and points select the cells they touch.

    Candidates come from rasterising the geometry on the 0.1-degree grid with
    ``all_touched``, grown by one cell because GDAL can miss a cell that a
    sub-pixel polygon only enters at a corner (a superset, cheap even for a
    continent); each candidate is
    then tested exactly against the prepared geometry. For polygons the cell is
    shrunk by 1e-9 degrees first, so a polygon that merely shares a cell's edge
    does not select it.
    """
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    minx, miny, maxx, maxy = geom.bounds
    xs, ys = cell_index_ranges((minx, miny, maxx, maxy))
    # pad by one cell: a geometry lying on a grid line may touch cells outside its bounds' cells
    x0, x1 = max(xs.start - 1, -1800), min(xs.stop + 1, 1800)
    y0, y1 = max(ys.start - 1, -900), min(ys.stop + 1, 900)
    shape = (y1 - y0, x1 - x0)
    transform = from_origin(x0 / 10, y1 / 10, 0.1, 0.1)
    touched = _dilate(
        rasterize([geom], out_shape=shape, transform=transform, all_touched=True, dtype="uint8")
    )
    polygonal = shapely.get_dimensions(geom) == 2
    if polygonal:
        # cells whose centre lies inside overlap with positive area: only the rim needs the exact test
        inside = rasterize([geom], out_shape=shape, transform=transform, all_touched=False, dtype="uint8")
        touched &= ~inside.astype(bool)
    else:
        inside = np.zeros(shape, dtype="uint8")
    rows, cols = np.nonzero(touched)
    ix, iy = x0 + cols, y1 - 1 - rows
    eps = 1e-9 if polygonal else 0.0
    boxes = shapely.box(ix / 10 + eps, iy / 10 + eps, (ix + 1) / 10 - eps, (iy + 1) / 10 - eps)
    shapely.prepare(geom)
    hit = shapely.intersects(boxes, geom)
    in_rows, in_cols = np.nonzero(inside)
    all_ix = np.concatenate([ix[hit], x0 + in_cols])
    all_iy = np.concatenate([iy[hit], y1 - 1 - in_rows])
    return all_ix, all_iy


def _dilate(mask: np.ndarray) -> np.ndarray:
    """Boolean mask grown by one cell in the 8 directions."""
    m = mask.astype(bool)
    out = m.copy()
    out[1:, :] |= m[:-1, :]
    out[:-1, :] |= m[1:, :]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def read_region_file(path: str | os.PathLike[str]) -> tuple[shapely.Geometry, Any]:
    """Union of a region file's geometries and its CRS (GeoJSON natively, others via pyogrio)."""
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"region file {p} does not exist")
    if p.suffix.lower() in (".geojson", ".json"):
        return _read_geojson(p)
    pyogrio = require("pyogrio", "regions")
    try:
        meta, _, geoms, _ = pyogrio.raw.read(p, read_geometry=True, columns=[])
    except Exception as exc:
        raise InvalidInputError(f"cannot read region file {p}: {exc}") from exc
    if geoms is None:
        raise InvalidInputError(f"region file {p} has no geometry column (is it a vector GIS file?)")
    try:
        shapes = [g for g in shapely.from_wkb(geoms) if g is not None]
    except shapely.errors.GEOSException as exc:
        raise InvalidInputError(f"invalid geometry in {p}: {exc}") from exc
    return _union(shapes, p), meta.get("crs") or WGS84


def _union(shapes: list[shapely.Geometry], p: Path) -> shapely.Geometry:
    """The union of a file's non-empty geometries, refusing none at all and non-finite coordinates."""
    shapes = [g for g in shapes if not g.is_empty]
    if not shapes:
        raise InvalidInputError(f"region file {p} has no geometries")
    if not all(np.isfinite(shapely.get_coordinates(g)).all() for g in shapes):
        raise InvalidInputError(f"{p}: a geometry has a non-finite coordinate (NaN or infinity)")
    return shapely.union_all(shapes)


def _read_geojson(p: Path) -> tuple[shapely.Geometry, Any]:
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as exc:  # (UnicodeDecodeError is a ValueError)
        raise InvalidInputError(f"cannot read GeoJSON {p}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{p} is not GeoJSON: expected an object, found {type(doc).__name__}")
    features: list[Any]
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
        if not isinstance(features, list):
            raise InvalidInputError(f"{p}: 'features' of a FeatureCollection must be a list")
    elif doc.get("type") == "Feature":
        features = [doc]
    elif ("type" in doc and "coordinates" in doc) or doc.get("type") == "GeometryCollection":
        features = [{"geometry": doc}]
    else:
        raise InvalidInputError(
            f"{p} is not GeoJSON: expected a FeatureCollection, a Feature or a geometry, "
            f"found an object with type {doc.get('type')!r}"
        )
    try:
        shapes = [
            shapely.geometry.shape(f["geometry"])
            for f in features
            if isinstance(f, dict) and f.get("geometry")
        ]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, shapely.errors.GEOSException) as exc:
        raise InvalidInputError(f"invalid geometry in {p}: {exc}") from exc
    crs: Any = WGS84
    declared = doc.get("crs")
    props = declared.get("properties") if isinstance(declared, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    if isinstance(name, str) and name:
        crs = name
    return _union(shapes, p), crs
