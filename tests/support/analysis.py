"""Helpers for the analysis tests: ground-truth class maps of the sample store, labelled points.

The sample store writes ``ground_truth/{year}/{tile}_classes.tif`` (uint8 class codes of
``content.CLASS_NAMES``: 0 water, 1 urban, 2 cropland, 3 grassland, 4 forest) on each tile's
own pixel grid; the same land cover at a pixel centre whichever tile holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from pyproj import Transformer

from geotessera.grid import Cell
from geotessera.sample.content import CLASS_NAMES

CAMBRIDGE = (0.0, 52.0, 0.4, 52.3)


@dataclass
class ClassMap:
    """One tile's class map: codes (H, W), transform, EPSG and the tile's cell."""

    codes: npt.NDArray[np.uint8]
    transform: Affine
    epsg: int
    cell: Cell


def class_maps(store: Path, year: int, bbox: tuple[float, float, float, float] = CAMBRIDGE) -> list[ClassMap]:
    """The class maps of the tiles whose cells lie inside ``bbox``."""
    out = []
    for f in sorted((store / "ground_truth" / str(year)).glob("grid_*_classes.tif")):
        cell = Cell.from_name(f.name.removesuffix("_classes.tif"))
        if not (bbox[0] <= cell.lon <= bbox[2] and bbox[1] <= cell.lat <= bbox[3]):
            continue
        with rasterio.open(f) as ds:
            out.append(ClassMap(ds.read(1), ds.transform, ds.crs.to_epsg(), cell))
    return out


def owned_pixels(
    m: ClassMap,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """(lon, lat, flat index) of the pixels of a class map whose centre lies in its own cell."""
    h, w = m.codes.shape
    rows, cols = np.mgrid[0:h, 0:w]
    x, y = m.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
    lon, lat = Transformer.from_crs(m.epsg, 4326, always_xy=True).transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    b = m.cell.bounds
    own = (lon >= b.min_lon) & (lon < b.max_lon) & (lat >= b.min_lat) & (lat < b.max_lat)
    idx = np.flatnonzero(own)
    return lon[idx], lat[idx], idx


def labelled_points(
    store: Path, year: int, per_class: int, seed: int = 0
) -> tuple[npt.NDArray[np.float64], list[str]]:
    """``per_class`` random land pixels per class from the class maps: ((N, 2) lon/lat, class names)."""
    lons, lats, codes = [], [], []
    for m in class_maps(store, year):
        lon, lat, idx = owned_pixels(m)
        lons.append(lon)
        lats.append(lat)
        codes.append(m.codes.ravel()[idx])
    lon, lat, code = np.concatenate(lons), np.concatenate(lats), np.concatenate(codes)
    rng = np.random.default_rng(seed)
    pick = np.concatenate(
        [rng.choice(np.flatnonzero(code == k), per_class, replace=False) for k in range(1, 5)]
    )
    return np.c_[lon[pick], lat[pick]], [CLASS_NAMES[c] for c in code[pick]]


def values_at(tif: Path, m: ClassMap) -> npt.NDArray[np.float64]:
    """Values of band 1 of ``tif`` (same lattice) at the pixels of class map ``m``; NaN outside."""
    with rasterio.open(tif) as ds:
        assert ds.crs.to_epsg() == m.epsg
        data = ds.read(1).astype(np.float64)
        nod = ds.nodata
        t = ds.transform
    if nod is not None and not np.isnan(nod):
        data[data == nod] = np.nan
    r0 = round((t.f - m.transform.f) / t.a)
    c0 = round((m.transform.c - t.c) / t.a)
    h, w = m.codes.shape
    out = np.full((h, w), np.nan)
    rr = np.arange(h) + r0
    cc = np.arange(w) + c0
    okr = (rr >= 0) & (rr < data.shape[0])
    okc = (cc >= 0) & (cc < data.shape[1])
    out[np.ix_(okr, okc)] = data[np.ix_(rr[okr], cc[okc])]
    return out
