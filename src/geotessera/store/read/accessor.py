"""The ``.tessera`` xarray accessor on zone datasets (registered when this module is imported).

``GeoTesseraZarr.open_zone`` imports it; ``import geotessera.xr`` registers it for datasets
opened by other means (``xr.open_zarr(store, group="utm31")``). Everything is derived from the
dataset's attributes on access (``proj:code``, ``spatial:transform``, the ``geoemb:``
quantisation): no state beyond the dataset. Coordinates are the zone grid's, eastings and
northings in metres in EPSG:326NN (negative northings south of the equator); nothing is
projected here. Lookups follow the reader's rules (:mod:`.sampling`): the pixel containing the
point, a full pixel of tolerance at the grid's edge, and the nearest valid pixel within
``search_px`` for a never-written one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS

from ..._optional import require
from ...errors import CorruptDataError, InvalidInputError, NotCoveredError
from ..conventions import NODATA_INF, ZoneInfo, depth_array_name, parse_zone, zone_group_name
from .sampling import nearest_valid, window_offsets
from .zones import OUTSIDE, STATUS_NAMES, VALID, classify, unwritten

xr = require("xarray", "zarr")


@xr.register_dataset_accessor("tessera")
class TesseraAccessor:
    """``ds.tessera``: the zone grid, dequantisation and point lookups of a Tessera zone dataset.

    Raises :class:`~geotessera.errors.CorruptDataError` (never ``AttributeError``) when the
    dataset carries no ``proj:code`` / ``spatial:transform`` of a UTM zone group.
    """

    def __init__(self, ds: Any) -> None:
        self._ds = ds
        attrs = dict(ds.attrs)
        code = attrs.get("proj:code")
        if not isinstance(code, str) or not code.upper().startswith("EPSG:326"):
            raise CorruptDataError(
                "this dataset is not a Tessera zone group (no 'proj:code' EPSG:326NN attribute); "
                "open one with GeoTesseraZarr.open_zone or xr.open_zarr(store, group='utmNN')"
            )
        shape = (int(ds.sizes.get("y", 0)), int(ds.sizes.get("x", 0)))
        self.info: ZoneInfo = parse_zone(zone_group_name(int(code[-2:])), attrs, fallback_shape=shape)
        quant = attrs.get("geoemb:quantization") or {}
        self._nodata = str((quant.get("scale") or {}).get("nodata", NODATA_INF))
        self._nodata = NODATA_INF if self._nodata.lower().lstrip("+") in ("inf", "infinity") else "NaN"

    # --- the grid -------------------------------------------------------------------------
    @property
    def crs(self) -> CRS:
        """The zone's CRS, EPSG:326NN."""
        return CRS.from_epsg(self.info.epsg)

    @property
    def transform(self) -> Affine:
        """Affine transform of the zone grid's top-left corner (``spatial:transform``)."""
        return self.info.transform

    @property
    def pixel_size(self) -> float:
        """Pixel size in metres."""
        return self.info.res

    @property
    def years(self) -> list[int]:
        """Years of the ``time`` axis."""
        return [int(y) for y in np.asarray(self._ds["time"].values)]

    @property
    def n_bands(self) -> int:
        """Bands of the full embedding (``geoemb:dimensions``, else the ``band`` size)."""
        dims = self._ds.attrs.get("geoemb:dimensions")
        return int(dims) if isinstance(dims, int) else int(self._ds.sizes["band"])

    def _array(self, depth: int | None) -> Any:
        name = "embeddings" if depth is None or depth == self.n_bands else depth_array_name(depth)
        if name not in self._ds:
            have = sorted(
                int(v[len("embeddings_d") :]) for v in self._ds.data_vars if v.startswith("embeddings_d")
            )
            raise InvalidInputError(f"no depth {depth} in this dataset; its depths: {[*have, self.n_bands]}")
        return self._ds[name]

    def _t(self, year: int) -> int:
        years = self.years
        if int(year) not in years:
            raise NotCoveredError(f"this zone has no data for {year}; its years: {years}")
        return years.index(int(year))

    # --- dequantisation ---------------------------------------------------------------------
    def dequantise(self, emb: Any = None, scales: Any = None, *, depth: int | None = None) -> Any:
        """Embedding values ``float32(q) * scale``, NaN where the scale is not usable.

        With no arguments: the whole zone as a lazy (dask-backed) DataArray (time, y, x, band)
        float32 (``depth``: the store's copy of the first bands). With ``emb`` (B, H, W) and
        ``scales`` (H, W) arrays (the published form): a NumPy (H, W, B) float32 array.
        """
        if emb is not None or scales is not None:
            if emb is None or scales is None:
                raise InvalidInputError("give both emb (B, H, W) and scales (H, W), or neither")
            q = np.asarray(emb)
            s = np.asarray(scales, dtype=np.float32)
            if q.ndim != 3 or s.shape != q.shape[1:]:
                raise InvalidInputError(f"emb must be (B, H, W) and scales (H, W); got {q.shape}, {s.shape}")
            st, _ = classify(s, self._nodata)
            seff = np.where(st == VALID, s, np.float32(np.nan))
            return np.ascontiguousarray(q.transpose(1, 2, 0), dtype=np.float32) * seff[..., None]
        arr = self._array(depth)
        s = self._ds["scales"]
        ok = np.isfinite(s) & (s >= 0) & (s < 1)  # the one validity rule (tiles.valid_scale_mask)
        out = (arr.astype(np.float32) * s.where(ok)).astype(np.float32)
        band = arr.dims[1]
        return out.transpose("time", "y", "x", band).rename("embedding")

    # --- points -----------------------------------------------------------------------------
    def _pixels(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        info = self.info
        h, w = info.shape
        with np.errstate(invalid="ignore"):
            fc, fr = (x - info.x0) / info.res, (info.y0 - y) / info.res
        ok = np.isfinite(fc) & np.isfinite(fr)
        col = np.floor(np.where(ok, fc, -9)).astype(np.int64)
        row = np.floor(np.where(ok, fr, -9)).astype(np.int64)
        inside = ok & (row >= -1) & (row <= h) & (col >= -1) & (col <= w)
        return np.clip(row, 0, h - 1), np.clip(col, 0, w - 1), inside

    def _scales_at(self, t: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]) -> Any:
        if len(rows) == 0:
            return np.empty(0, dtype=np.float32)
        sel = self._ds["scales"].isel(time=t, y=xr.DataArray(rows, dims="p"), x=xr.DataArray(cols, dims="p"))
        return np.asarray(sel.values, dtype=np.float32)

    def sample_points(
        self,
        xy: npt.ArrayLike,
        year: int,
        *,
        search_px: int = 1,
        depth: int | None = None,
        return_status: bool = False,
    ) -> Any:
        """Embeddings (N, B) float32 at (N, 2) eastings, northings of the zone CRS (metres);
        NaN rows where not valid; with ``return_status`` also the (N,) statuses (valid, water,
        nodata, outside)."""
        pts = np.asarray(xy, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise InvalidInputError(f"xy must be an (N, 2) array of x, y; got shape {pts.shape}")
        if isinstance(search_px, bool) or not isinstance(search_px, int) or search_px < 0:
            raise InvalidInputError(f"search_px must be a whole number >= 0, got {search_px!r}")
        t = self._t(year)
        arr = self._array(depth)
        n = len(pts)
        out = np.full((n, int(arr.shape[1])), np.nan, dtype=np.float32)
        status = np.full(n, OUTSIDE, dtype=np.uint8)
        rows, cols, inside = self._pixels(pts[:, 0], pts[:, 1])
        idx = np.flatnonzero(inside)
        r, c = rows[idx], cols[idx]
        s = self._scales_at(t, r, c)
        st, _ = classify(s, self._nodata)
        if search_px > 0:
            hole = np.flatnonzero(unwritten(s, self._nodata))
            if len(hole):
                dr, dc, _ = window_offsets(search_px)
                wr, wc = r[hole, None] + dr, c[hole, None] + dc
                h, w = self.info.shape
                ingrid = (wr >= 0) & (wr < h) & (wc >= 0) & (wc < w)
                ws = np.full(wr.shape, np.nan, dtype=np.float32)
                ws[ingrid] = self._scales_at(t, wr[ingrid], wc[ingrid])
                wst, _ = classify(ws, self._nodata)
                found, k = nearest_valid((wst == VALID) & ingrid, dr, dc)
                fix = hole[found]
                r[fix], c[fix] = wr[found, k[found]], wc[found, k[found]]
                s[fix], st[fix] = ws[found, k[found]], VALID
        status[idx] = st
        good = st == VALID
        if good.any():
            band = arr.dims[1]
            q = arr.isel(time=t, y=xr.DataArray(r[good], dims="p"), x=xr.DataArray(c[good], dims="p"))
            vals = np.asarray(q.transpose("p", band).values, dtype=np.float32)
            out[idx[good]] = vals * s[good, None]
        names = STATUS_NAMES[status]
        return (out, names) if return_status else out

    def sample(self, x: Any, y: Any, year: int, *, search_px: int = 1, depth: int | None = None) -> Any:
        """The embedding at easting ``x``, northing ``y`` (metres, zone CRS): (B,) for scalars,
        (N, B) for arrays; NaN where the status is not valid."""
        xs, ys = (
            np.atleast_1d(np.asarray(x, dtype=np.float64)),
            np.atleast_1d(np.asarray(y, dtype=np.float64)),
        )
        if xs.shape != ys.shape or xs.ndim != 1:
            raise InvalidInputError(
                f"x and y must be scalars or 1-d arrays of one length; got {xs.shape}, {ys.shape}"
            )
        vals = self.sample_points(np.c_[xs, ys], year, search_px=search_px, depth=depth)
        return vals[0] if np.ndim(x) == 0 else vals

    def sample_at(
        self, x: float, y: float, year: int, *, search_px: int = 1, depth: int | None = None
    ) -> Any:
        """The embedding (B,) float32 at one point; NaN unless valid."""
        return self.sample(float(x), float(y), year, search_px=search_px, depth=depth)

    def probe(
        self, x: float, y: float, year: int, *, search_px: int = 1, depth: int | None = None
    ) -> tuple[npt.NDArray[np.float32] | None, str]:
        """``(vector (B,) or None, status)`` at easting ``x``, northing ``y`` (zone CRS)."""
        vals, status = self.sample_points(
            [(float(x), float(y))], year, search_px=search_px, depth=depth, return_status=True
        )
        st = str(status[0])
        return (vals[0] if st == "valid" else None), st

    # --- regions ------------------------------------------------------------------------------
    def read_region(
        self, bbox: tuple[float, float, float, float], year: int, *, depth: int | None = None
    ) -> tuple[npt.NDArray[np.float32], Affine]:
        """Values (H, W, B) float32 of the pixels whose centres lie in a zone-CRS box
        ``(min_x, min_y, max_x, max_y)`` (metres), and the window's transform; NaN where not valid."""
        x0, y0, x1, y1 = (float(v) for v in bbox)
        if not (x0 < x1 and y0 < y1):
            raise InvalidInputError(f"bbox {bbox} must have min < max on both axes")
        info = self.info
        c0 = max(0, int(np.ceil((x0 - info.x0) / info.res - 0.5)))
        c1 = min(info.shape[1], int(np.floor((x1 - info.x0) / info.res - 0.5)) + 1)
        r0 = max(0, int(np.ceil((info.y0 - y1) / info.res - 0.5)))
        r1 = min(info.shape[0], int(np.floor((info.y0 - y0) / info.res - 0.5)) + 1)
        t = self._t(year)
        arr = self._array(depth)
        band = arr.dims[1]
        q = np.asarray(arr.isel(time=t, y=slice(r0, r1), x=slice(c0, c1)).transpose("y", "x", band).values)
        s = np.asarray(
            self._ds["scales"].isel(time=t, y=slice(r0, r1), x=slice(c0, c1)).values, dtype=np.float32
        )
        st, _ = classify(s, self._nodata)
        vals = q.astype(np.float32) * np.where(st == VALID, s, np.float32(np.nan))[..., None]
        return vals, info.transform * Affine.translation(c0, r0)
