"""Embeddings at labelled points and polygons: ``extract(source, labels, years) -> GeoDataFrame``.

Points give one row each; polygons give pixel samples (:mod:`.sampling`), each a row with
the polygon's columns, a ``polygon_id`` (the feature's index) and the pixel centre as its
geometry. Several years give one row per (sample, year), the same pixels every year.

Columns: the user's columns, ``polygon_id`` (polygons only), ``geometry`` (lon/lat points),
``year``, ``tile`` (e.g. ``grid_0.15_52.05``), ``row``/``col`` (pixel in the tile, -1 if
none), ``status`` (valid / water / nodata / outside), ``dataset`` (``version/variant``)
and ``emb_0`` ... ``emb_127`` (float32, NaN unless valid).

Reads are grouped: every point of a tile is read from that tile at once (or, from a Zarr
store, every inner chunk once), and tiles already on disk are never fetched again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError, NotCoveredError
from .sampling import ALLOCATIONS, sample_polygons
from .sources import as_source
from .tables import read_labels

log = logging.getLogger(__name__)

EXTRA = "ml"
EMB_COLUMNS = [f"emb_{i}" for i in range(128)]


def _years(years: int | Iterable[int]) -> list[int]:
    ys = [int(years)] if isinstance(years, (int, np.integer)) else sorted({int(y) for y in years})
    if not ys:
        raise InvalidInputError("give at least one year")
    return ys


def extract(
    source: Any,
    labels: Any,
    years: int | Iterable[int],
    label: str | None = None,
    per_class: int | None = None,
    allocation: str = "equal",
    seed: int = 0,
) -> Any:
    """Embeddings at the labels' points and polygon pixels (see the module docstring).

    Args:
        source: a :class:`~geotessera.client.GeoTessera` or a :class:`~geotessera.store.GeoTesseraZarr`.
        labels: a label file (GeoJSON, GeoPackage, Shapefile, GeoParquet, CSV with lon/lat) or a
            (Geo)DataFrame.
        years: one year or several.
        label: the class column stratifying polygon samples (must exist when given).
        per_class: polygon pixels per class (None: every pixel inside the polygons).
        allocation: ``equal``, ``proportional`` or ``sqrt`` (see :mod:`.sampling`).
        seed: seed of the pixel draw.

    Returns:
        A ``geopandas.GeoDataFrame`` in EPSG:4326.

    Raises:
        NotCoveredError: when no sample lies on a tile of any of ``years`` (every row would
            be ``outside``).
    """
    gpd = require("geopandas", EXTRA)
    pd = require("pandas", EXTRA)
    if allocation not in ALLOCATIONS:
        raise InvalidInputError(f"unknown allocation {allocation!r}; choose one of {', '.join(ALLOCATIONS)}")
    if per_class is not None and per_class < 1:
        raise InvalidInputError(f"per_class must be >= 1, got {per_class}")
    ylist = _years(years)
    src = as_source(source)
    gdf = read_labels(labels)
    if label is not None and label not in gdf.columns:
        cols = [c for c in gdf.columns if c != gdf.geometry.name]
        raise InvalidInputError(f"no label column {label!r}; the labels have: {', '.join(map(str, cols))}")
    geom_name = gdf.geometry.name
    attrs = pd.DataFrame(gdf.drop(columns=[geom_name])).reset_index(drop=True)
    is_point = (gdf.geom_type == "Point").to_numpy()
    pt_idx = np.flatnonzero(is_point)
    lonlat = (
        np.c_[gdf.geometry.x.to_numpy()[pt_idx], gdf.geometry.y.to_numpy()[pt_idx]]
        if len(pt_idx)
        else np.zeros((0, 2))
    )
    feature = pt_idx.astype(np.int64)
    polygon_id = np.full(len(pt_idx), -1, dtype=np.int64)
    poly_idx = np.flatnonzero(~is_point)
    if len(poly_idx):
        pixel = _pixel_size(src, gdf, ylist[0])
        polys = gdf.geometry.iloc[poly_idx].tolist()
        classes = gdf[label].iloc[poly_idx].tolist() if label is not None else None
        samples = sample_polygons(
            polys, classes, pixel, per_class=per_class, allocation=allocation, seed=seed
        )
        lonlat = np.concatenate([lonlat, samples.lonlat])
        feature = np.concatenate([feature, poly_idx[samples.feature]])
        polygon_id = np.concatenate([polygon_id, poly_idx[samples.feature]])
    if len(lonlat) == 0:
        raise InvalidInputError("the labels give no sample (polygons smaller than a pixel?)")
    dataset = f"{src.dataset.version}/{src.dataset.variant}" if src.dataset is not None else ""
    frames = []
    for year in ylist:
        s = src.sample(lonlat, year)
        base = attrs.iloc[feature].reset_index(drop=True)
        if len(poly_idx):
            base["polygon_id"] = np.where(polygon_id >= 0, polygon_id, -1)
        base["year"] = np.int64(year)
        base["tile"] = s.tile
        base["row"] = s.row
        base["col"] = s.col
        base["status"] = s.status
        base["dataset"] = dataset
        emb = pd.DataFrame(s.values.astype(np.float32), columns=EMB_COLUMNS)
        frame = pd.concat([base, emb], axis=1)
        frames.append(
            gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]), crs="EPSG:4326")
        )
        counts = pd.Series(s.status).value_counts().to_dict()
        log.info("extracted %d samples for %d: %s", len(lonlat), year, counts)
    out = pd.concat(frames, ignore_index=True)
    if (out["status"] == "outside").all():
        raise NotCoveredError(
            f"none of the {len(lonlat)} label samples lies on a tile of "
            f"{', '.join(map(str, ylist))} in {src.describe()}"
        )
    return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")


def _pixel_size(src: Any, gdf: Any, year: int) -> float:
    """The source's pixel size (a tile source learns it from the first tile the labels touch)."""
    try:
        return float(src.pixel_size_m)
    except InvalidInputError:
        from ..regions import Region

        region = Region.from_geometry(gdf.geometry.union_all())
        if not src.covered_cells(region, year):
            raise InvalidInputError(f"no tile under the label polygons holds data for {year}") from None
        return float(src.pixel_size_m)
