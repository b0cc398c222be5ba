"""Where analysis reads embeddings: a ``GeoTessera`` client (tiles) or a ``GeoTesseraZarr`` store.

:func:`as_source` wraps either in a :class:`Source` with one interface: the dataset,
the pixel size, which cells of a region hold data for a year, embeddings at points
(with a status, the tile and the pixel row/col in it), and a picklable
:class:`~geotessera.analysis.windows.WindowSource` that dask workers use to read
windows of an output grid themselves.

Both give the same values for the same dataset: a pixel is the one of the tile
owning the 0.1-degree cell under it. Statuses: ``valid``; ``water`` (a NaN scale:
water in the published data); ``nodata`` (no usable embedding: an unwritten or
implausible scale); ``outside`` (no tile for that year, or outside the store's zones).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

from ..datasets import DatasetId
from ..errors import InvalidInputError
from ..grid import Cell, PixelGrid, points_to_keys
from ..regions import Region
from ..tiles import dequantize_embedding, load_tile_arrays, read_landmask_grid
from .windows import TilePiece, TileWindows, WindowSource, ZarrWindows

log = logging.getLogger(__name__)

N_BANDS = 128
STATUSES = ("valid", "water", "nodata", "outside")


@dataclass(frozen=True)
class PointSample:
    """Embeddings at N points: ``values`` (N, 128) float32 (NaN unless valid), ``status`` (N,) str,
    ``tile`` (N,) tile names, ``row``/``col`` (N,) int64 pixel indices in the tile (-1: none)."""

    values: npt.NDArray[np.float32]
    status: npt.NDArray[np.str_]
    tile: npt.NDArray[np.str_]
    row: npt.NDArray[np.int64]
    col: npt.NDArray[np.int64]


def _status_of(scales: npt.NDArray[np.float32]) -> npt.NDArray[np.str_]:
    """Status of pixels from their scales: NaN water, other non-finite or outside [0, 1) nodata."""
    st = np.full(scales.shape, "nodata", dtype="<U7")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(scales) & (scales >= 0) & (scales < 1)
    st[ok] = "valid"
    st[np.isnan(scales)] = "water"
    return st


def _tile_rowcol(
    cells: Sequence[Cell], lonlat: npt.NDArray[np.float64], grids: dict[Cell, PixelGrid]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row and column of each point in its cell's tile grid (-1 outside the grid)."""
    n = len(lonlat)
    row = np.full(n, -1, dtype=np.int64)
    col = np.full(n, -1, dtype=np.int64)
    idx_by_cell: dict[Cell, list[int]] = {}
    for i, c in enumerate(cells):
        idx_by_cell.setdefault(c, []).append(i)
    for c, idx_list in idx_by_cell.items():
        g = grids[c]
        idx = np.asarray(idx_list)
        x, y = Transformer.from_crs(4326, g.epsg, always_xy=True).transform(lonlat[idx, 0], lonlat[idx, 1])
        cc, rr = ~g.transform @ (np.asarray(x), np.asarray(y))
        rr, cc = np.floor(rr).astype(np.int64), np.floor(cc).astype(np.int64)
        inside = (rr >= 0) & (rr < g.height) & (cc >= 0) & (cc < g.width)
        row[idx[inside]], col[idx[inside]] = rr[inside], cc[inside]
    return row, col


class Source:
    """Common interface of the two sources (see the module docstring)."""

    kind = "source"
    dataset: DatasetId | None

    @property
    def pixel_size_m(self) -> float:
        raise NotImplementedError

    def covered_cells(self, region: Region, year: int) -> list[Cell]:
        """Cells of ``region`` with data for ``year``, ordered by (lat, lon)."""
        raise NotImplementedError

    def sample(self, lonlat: npt.ArrayLike, year: int) -> PointSample:
        """Embeddings at (N, 2) lon/lat points (degrees); input order kept."""
        raise NotImplementedError

    def windows(self, year: int, cells: Sequence[Cell], epsg: int) -> WindowSource:
        """A picklable window reader of ``cells`` (one UTM grid ``epsg``) for ``year``."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class TileSource(Source):
    """A :class:`~geotessera.client.GeoTessera`: tiles fetched on demand into its ``embeddings_dir``.

    Workers memory-map the tile files, so on a cluster ``embeddings_dir`` (or the local
    mirror) must be on a filesystem the workers share.
    """

    kind = "tiles"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.dataset = client.dataset
        self._pixel: float | None = None

    def describe(self) -> str:
        return f"tiles of {self.dataset} from {self.client.settings.base_url}"

    def _files(self, cells: Sequence[Cell], year: int) -> dict[Cell, tuple[Path, Path, Path]]:
        paths = self.client.local_tile_files([(year, c.lon, c.lat) for c in cells])
        return {t.cell: p for t, p in paths.items()}

    @property
    def pixel_size_m(self) -> float:
        if self._pixel is None:
            raise InvalidInputError("the pixel size is known once a tile is read")
        return self._pixel

    def _learn_pixel(self, files: dict[Cell, tuple[Path, Path, Path]]) -> dict[Cell, PixelGrid]:
        grids = {c: read_landmask_grid(p[2]) for c, p in files.items()}
        if grids and self._pixel is None:
            self._pixel = next(iter(grids.values())).res
        return grids

    def covered_cells(self, region: Region, year: int) -> list[Cell]:
        cov = self.client.region_coverage(region, [int(year)], examples=0)
        cells = sorted({t.cell for t in cov.covered}, key=lambda c: (c.iy, c.ix))
        if cells and self._pixel is None:
            self._learn_pixel(self._files(cells[:1], year))
        return cells

    def sample(self, lonlat: npt.ArrayLike, year: int) -> PointSample:
        pts = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        n = len(pts)
        values = np.full((n, N_BANDS), np.nan, dtype=np.float32)
        status = np.full(n, "outside", dtype="<U7")
        lon_i, lat_i = points_to_keys(pts[:, 0], pts[:, 1])
        cells = [Cell.from_key(int(a), int(b)) for a, b in zip(lon_i, lat_i, strict=True)]
        found = self.client.registry.tiles_for_points(pts[:, 0], pts[:, 1], int(year)).covered
        need = sorted({c for c, f in zip(cells, found, strict=True) if f}, key=lambda c: (c.iy, c.ix))
        files = self._files(need, year)
        grids = self._learn_pixel(files)
        have = [c in grids for c in cells]
        sel = np.flatnonzero(have)
        row, col = _tile_rowcol([cells[i] for i in sel], pts[sel], grids)
        rows = np.full(n, -1, dtype=np.int64)
        cols = np.full(n, -1, dtype=np.int64)
        rows[sel], cols[sel] = row, col
        by_cell: dict[Cell, list[int]] = {}
        for i in sel.tolist():
            if rows[i] >= 0:
                by_cell.setdefault(cells[i], []).append(i)
        for c, idx_list in by_cell.items():  # one memory-mapped read per tile
            idx = np.asarray(idx_list)
            arrays = load_tile_arrays(files[c][0], files[c][1])
            q = np.asarray(arrays.quantized[rows[idx], cols[idx]])[:, None, :]
            s = np.asarray(arrays.scales[rows[idx], cols[idx]], dtype=np.float32)
            values[idx] = dequantize_embedding(q, s[:, None], threads=1, name=c.name)[:, 0]
            status[idx] = _status_of(s if s.ndim == 1 else s.max(axis=1))
        return PointSample(values, status, np.array([c.name for c in cells]), rows, cols)

    def windows(self, year: int, cells: Sequence[Cell], epsg: int) -> WindowSource:
        files = self._files(cells, year)
        grids = self._learn_pixel(files)
        pieces = tuple(
            TilePiece(c.ix, c.iy, str(p[0]), str(p[1]), grids[c]) for c, p in files.items() if c in grids
        )
        return TileWindows(pieces)


class ZarrSource(Source):
    """A :class:`~geotessera.store.GeoTesseraZarr`; workers open the store (by its URL) themselves."""

    kind = "zarr"

    def __init__(self, store: Any) -> None:
        self.store = store
        self.dataset = store.info.dataset
        objects = getattr(store, "objects", None)
        url = str(store.url)
        if url.startswith("s3://") and hasattr(objects, "base_url"):
            url = str(objects.base_url)  # type: ignore[union-attr]  # the resolved http(s) form, so workers need no endpoint
        self.url = url

    def describe(self) -> str:
        return f"Zarr store {self.url}"

    @property
    def pixel_size_m(self) -> float:
        return float(self.store.info.gsd)

    def covered_cells(self, region: Region, year: int) -> list[Cell]:
        if int(year) not in self.store.years:
            return []
        cells = region.cells
        if not cells:
            return []
        # five probes per cell (centre and four inner points): written pixels are valid or water
        offsets = np.array([(0.5, 0.5), (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)])
        ix = np.asarray(region.ix, dtype=np.float64)
        iy = np.asarray(region.iy, dtype=np.float64)
        lon = ((ix[:, None] + offsets[None, :, 0]) / 10).ravel()
        lat = ((iy[:, None] + offsets[None, :, 1]) / 10).ravel()
        _, st = self.store.sample_points(np.c_[lon, lat], year=int(year), return_status=True)
        ok = np.asarray(
            np.isin(np.asarray(st).reshape(len(cells), len(offsets)), ("valid", "water")).any(axis=1)
        )
        return [c for c, k in zip(cells, ok, strict=True) if k]

    def sample(self, lonlat: npt.ArrayLike, year: int) -> PointSample:
        pts = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            e = np.zeros(0, dtype=np.int64)
            return PointSample(
                np.zeros((0, N_BANDS), np.float32), np.zeros(0, "<U7"), np.zeros(0, "<U1"), e, e
            )
        values, status = self.store.sample_points(pts, year=int(year), return_status=True)
        lon_i, lat_i = points_to_keys(pts[:, 0], pts[:, 1])
        cells = [Cell.from_key(int(a), int(b)) for a, b in zip(lon_i, lat_i, strict=True)]
        grids = {c: PixelGrid.from_cell(c, self.pixel_size_m) for c in set(cells)}
        row, col = _tile_rowcol(cells, pts, grids)
        status = np.asarray(status).astype("<U7")
        # "nodata" in a cell the store holds nothing of means no tile there: "outside", as for tiles
        suspect = sorted({cells[i] for i in np.flatnonzero(status == "nodata")}, key=lambda c: (c.iy, c.ix))
        if suspect:
            have = set(self.covered_cells(Region.from_cells(suspect, "cells"), year))
            none = np.array([s == "nodata" and c not in have for s, c in zip(status, cells, strict=True)])
            status[none] = "outside"
        row[status == "outside"] = -1
        col[status == "outside"] = -1
        return PointSample(
            np.asarray(values, dtype=np.float32), status, np.array([c.name for c in cells]), row, col
        )

    def windows(self, year: int, cells: Sequence[Cell], epsg: int) -> WindowSource:
        from ..grid import utm_zone

        zones = {utm_zone(c.lon) for c in cells}
        if len(zones) != 1:
            raise InvalidInputError(f"cells of one output grid span zones {sorted(zones)}")
        return ZarrWindows(self.url, zones.pop(), int(year))


def as_source(source: Any) -> Source:
    """Wrap a ``GeoTessera`` client or a ``GeoTesseraZarr`` store (a :class:`Source` passes through)."""
    if isinstance(source, Source):
        return source
    from ..client import GeoTessera

    if isinstance(source, GeoTessera):
        return TileSource(source)
    try:
        from ..store import GeoTesseraZarr
    except ImportError:  # the zarr extra is missing: then it cannot be a store
        GeoTesseraZarr = None  # type: ignore[assignment, misc]
    if GeoTesseraZarr is not None and isinstance(source, GeoTesseraZarr):
        return ZarrSource(source)
    raise InvalidInputError(
        f"source must be a GeoTessera client or a GeoTesseraZarr store, not {type(source).__name__}"
    )
