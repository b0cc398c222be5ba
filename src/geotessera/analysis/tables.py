"""Label files in, extraction tables out.

Labels: GeoJSON, GeoPackage, Shapefile (anything GDAL reads, through pyogrio), GeoParquet,
or CSV with lon/lat columns (``lon``/``lat``, ``longitude``/``latitude`` or ``x``/``y``,
in degrees: a CSV has no CRS). Files with a CRS may use any; geometries are turned into
lon/lat (EPSG:4326).

Tables: GeoParquet by default; CSV when the file name ends in ``.csv`` (geometry as WKT).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import InvalidInputError, OutputError
from ..files import atomic_path

EXTRA = "ml"
LONLAT_NAMES = (("lon", "lat"), ("longitude", "latitude"), ("x", "y"))


def _lonlat_columns(df: Any, source: str) -> tuple[str, str]:
    lower = {str(c).lower(): c for c in df.columns}
    for lon, lat in LONLAT_NAMES:
        if lon in lower and lat in lower:
            return lower[lon], lower[lat]
    raise InvalidInputError(
        f"{source} has no lon/lat columns (looked for lon/lat, longitude/latitude, x/y); "
        f"its columns: {', '.join(map(str, df.columns))}"
    )


def _points_frame(df: Any, source: str) -> Any:
    gpd = require("geopandas", EXTRA)
    lon, lat = _lonlat_columns(df, source)
    try:
        x = df[lon].astype(float)
        y = df[lat].astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{source}: lon/lat columns are not numbers ({exc})") from exc
    bad = ~(x.between(-180, 180) & y.between(-90, 90))
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InvalidInputError(f"{source}: row {i} has lon/lat {x.iloc[i]}, {y.iloc[i]} outside degrees")
    rest = df.drop(columns=[lon, lat])
    return gpd.GeoDataFrame(rest, geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")


def read_labels(labels: Any) -> Any:
    """Labels as a GeoDataFrame in EPSG:4326 (see the module docstring for the formats)."""
    gpd = require("geopandas", EXTRA)
    pd = require("pandas", EXTRA)
    if isinstance(labels, gpd.GeoDataFrame):
        gdf = labels
        source = "the labels"
    elif isinstance(labels, pd.DataFrame):
        gdf = _points_frame(labels, "the labels")
        source = "the labels"
    elif isinstance(labels, (str, os.PathLike)):
        p = Path(labels)
        source = str(p)
        if not p.exists():
            raise InvalidInputError(f"label file {p} does not exist")
        gdf = _read_file(p)
    else:
        raise InvalidInputError(f"labels must be a file or a (Geo)DataFrame, not {type(labels).__name__}")
    if len(gdf) == 0:
        raise InvalidInputError(f"{source} holds no features")
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    elif gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs("EPSG:4326")
    keep = gdf.geometry.notna() & ~gdf.geometry.is_empty
    if not keep.all():
        gdf = gdf[keep]
    if len(gdf) == 0:
        raise InvalidInputError(f"{source} has no geometries")
    kinds = set(gdf.geom_type.unique())
    unknown = kinds - {"Point", "Polygon", "MultiPolygon"}
    if unknown:
        raise InvalidInputError(f"{source} holds {', '.join(sorted(unknown))}; labels are points or polygons")
    return gdf.reset_index(drop=True)


def _read_file(p: Path) -> Any:
    gpd = require("geopandas", EXTRA)
    pd = require("pandas", EXTRA)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return _points_frame(pd.read_csv(p), str(p))
        if suffix in (".parquet", ".geoparquet"):
            try:
                return gpd.read_parquet(p)
            except ValueError:  # plain Parquet without geo metadata
                return _points_frame(pd.read_parquet(p), str(p))
        return gpd.read_file(p)
    except InvalidInputError:
        raise
    except Exception as exc:  # pyogrio / pyarrow / pandas raise many types for unreadable files
        raise InvalidInputError(f"cannot read label file {p}: {exc}") from exc


def read_table(path: str | os.PathLike[str]) -> Any:
    """An extraction table written by :func:`write_table` (GeoParquet or CSV)."""
    gpd = require("geopandas", EXTRA)
    pd = require("pandas", EXTRA)
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"table {p} does not exist")
    try:
        if p.suffix.lower() == ".csv":
            df = pd.read_csv(p)
            if "geometry" in df.columns:
                geom = gpd.GeoSeries.from_wkt(df["geometry"], crs="EPSG:4326")
                return gpd.GeoDataFrame(df.drop(columns=["geometry"]), geometry=geom)
            return _points_frame(df, str(p))
        try:
            return gpd.read_parquet(p)
        except ValueError:
            return pd.read_parquet(p)
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(f"cannot read table {p}: {exc}") from exc


TABLE_SUFFIXES = (".parquet", ".geoparquet", ".pq", ".csv")


def check_table_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a table to write, refused (:class:`InvalidInputError`) unless it names GeoParquet
    (``.parquet``, ``.geoparquet``, ``.pq``) or CSV (``.csv``): checked before any work."""
    p = Path(path)
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise InvalidInputError(
            f"cannot write a table to {p}: expected a name ending in {', '.join(TABLE_SUFFIXES)}"
        )
    return p


def write_table(table: Any, path: str | os.PathLike[str]) -> Path:
    """Write a GeoDataFrame as GeoParquet (default) or CSV (``.csv``), atomically."""
    p = check_table_path(path)
    try:
        with atomic_path(p) as tmp:
            if p.suffix.lower() == ".csv":
                pd = require("pandas", EXTRA)
                df = pd.DataFrame(table)
                if hasattr(table, "geometry"):
                    df[table.geometry.name] = table.geometry.to_wkt()
                df.to_csv(tmp, index=False)
            else:
                table.to_parquet(tmp, index=False)
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc}") from exc
    return p
