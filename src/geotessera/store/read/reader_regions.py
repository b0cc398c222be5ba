"""``GeoTesseraZarr`` over regions: :meth:`read_region`, :meth:`read_region_quantized`,
:meth:`iter_region` (and, from :mod:`.export`, :meth:`export_geotiffs`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS

from ...errors import InvalidInputError
from ...progress import ProgressSink
from .reader_core import StoreCore
from .regions import (
    STRIP_ROWS,
    RegionPlan,
    Strip,
    iter_quantized_strips,
    iter_strips,
    region_grid,
    strips_of,
)


def _check_out(out: npt.NDArray[Any], shape: tuple[int, ...], dtype: type, name: str) -> None:
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        got = f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
        raise InvalidInputError(f"{name} must be a {np.dtype(dtype)} array of shape {shape}, got {got}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise InvalidInputError(f"{name} must be a writeable C-contiguous array")


class RegionsMixin(StoreCore):
    """Mosaics of lon/lat boxes on one grid, whole, in strips, or quantised."""

    def _plan(
        self, bbox: Any, year: int, target_crs: Any, resolution: float | None, depth: int | None
    ) -> RegionPlan:
        self._require_year(year)
        crs, transform, shape, zones = region_grid(bbox, self.info.gsd, target_crs, resolution)
        return RegionPlan(self._lookup(depth), crs, transform, shape, zones, int(year))

    def region_shape(
        self, bbox: Any, *, target_crs: Any = None, resolution: float | None = None, depth: int | None = None
    ) -> tuple[int, int, int]:
        """(H, W, B) of what :meth:`read_region` returns for ``bbox`` (to allocate ``out=``)."""
        _, _, (h, w), _ = region_grid(bbox, self.info.gsd, target_crs, resolution)
        return h, w, self._bands(self._depth(depth))

    def iter_region(
        self,
        bbox: Any,
        year: int,
        *,
        target_crs: Any = None,
        resolution: float | None = None,
        strip_rows: int = STRIP_ROWS,
        depth: int | None = None,
    ) -> Iterator[Strip]:
        """Stream a region as row strips ``Strip(data (h, W, B) float32, transform, crs)`` from
        top to bottom; ``strip.row`` is the strip's first row.

        Strips end on the zone's inner-chunk rows (32 rows, or the depth array's chunk height),
        so no chunk is decoded twice: each strip is ``strip_rows`` rounded down to whole chunk
        rows, the first one shorter when the region does not start on a chunk row (a
        ``strip_rows`` below one chunk row is honoured as asked). Memory is one strip
        (``strip_rows`` x W x B x 4 bytes) plus the chunks in flight. See :meth:`read_region`.
        """
        d = self._depth(depth)
        self._require_year(year)
        if isinstance(strip_rows, bool) or not isinstance(strip_rows, int) or strip_rows < 1:
            raise InvalidInputError(f"strip_rows must be a whole number >= 1, got {strip_rows!r}")
        return iter_strips(
            self._lookup(d),
            self.reader,
            self.info.gsd,
            bbox,
            year,
            n_bands=self._bands(d),
            target_crs=target_crs,
            resolution=resolution,
            strip_rows=strip_rows,
        )

    def read_region(
        self,
        bbox: Any,
        year: int,
        *,
        target_crs: Any = None,
        resolution: float | None = None,
        depth: int | None = None,
        out: npt.NDArray[np.float32] | None = None,
    ) -> tuple[npt.NDArray[np.float32], Affine, CRS]:
        """Mosaic of a lon/lat box: (data (H, W, B) float32, transform, crs).

        The grid is the UTM zone of the box centre (EPSG:326NN / 327NN) at the store's pixel
        size unless ``target_crs`` / ``resolution`` (CRS units) say otherwise. A box across a
        zone seam is merged onto that grid (nearest neighbour for the other zone). NaN where
        there is no data or water. ``depth``: the store's copy of the first ``depth`` bands
        (B = depth). ``out``: a float32 (H, W, B) C-contiguous array to write into (every
        pixel is written; :meth:`region_shape` gives its shape), so repeated reads of
        same-size windows allocate nothing; it is returned. Raises :class:`InvalidInputError`
        for an empty box or one crossing the antimeridian.
        """
        d = self._depth(depth)
        plan = self._plan(bbox, year, target_crs, resolution, d)
        h, w = plan.shape
        shape = (h, w, self._bands(d))
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        else:
            _check_out(out, shape, np.float32, "out")
        for _ in strips_of(plan, self.reader, shape[2], None, into=out):
            pass
        return out, plan.transform, plan.crs

    def read_region_quantized(
        self,
        bbox: Any,
        year: int,
        *,
        target_crs: Any = None,
        resolution: float | None = None,
        depth: int | None = None,
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32], Affine, CRS]:
        """The stored values of a region: (int8 (H, W, B), scales (H, W) float32, transform, crs).

        A quarter of :meth:`read_region`'s memory, for users who dequantise themselves:
        ``q.astype(np.float32) * scales[..., None]`` equals :meth:`read_region` (same grid,
        same merging across zones). Where a pixel has no value (water, no data, implausible
        scale, outside every zone) its values are 0 and its scale NaN.
        """
        d = self._depth(depth)
        plan = self._plan(bbox, year, target_crs, resolution, d)
        h, w = plan.shape
        q = np.empty((h, w, self._bands(d)), dtype=np.int8)
        s = np.empty((h, w), dtype=np.float32)
        for _ in iter_quantized_strips(self.reader, plan, None, q.shape[2], into=(q, s)):
            pass
        return q, s, plan.transform, plan.crs

    def export_geotiffs(
        self,
        bbox: Any,
        year: int,
        output_dir: str | os.PathLike[str],
        *,
        bands: Sequence[int] | None = None,
        depth: int | None = None,
        strip_rows: int = 128,
        compress: str = "lzw",
        progress: ProgressSink | None = None,
        progress_callback: Callable[[int, int, str], None] | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """GeoTIFFs of a region straight from the store: ``tessera_{year}_utm{NN}.tif`` in
        ``output_dir``, one per UTM zone the box touches (the box cut at the zone seams, each
        part on its zone's grid, unresampled). Returns their paths.

        Same file layout, options and tags as a tile export (``geotessera download``): float32,
        NaN nodata, tiled 256 x 256, ``compress`` (lzw, deflate[:1-12], zstd[:1-22], none),
        ``bands`` (0-based indices), band descriptions ``Tessera_Band_{i}``, ``TESSERA_*`` tags
        (dataset, year, source store, model, build, bands, box), atomic, BigTIFF when needed;
        ``tessera_metadata.json`` records the dataset and the files. A directory holding another
        dataset or GeoTIFFs of other bands is refused. ``depth``: write the store's copy of the
        first bands. Memory: one strip of at most ``strip_rows`` rows and about 64 MiB.
        ``progress``: events (``PlanReady``, ``ItemDone`` per file); ``progress_callback(done,
        total, status)`` as the published reader calls it. ``dry_run``: only the paths.
        """
        from .export import export_geotiffs

        return export_geotiffs(
            self,
            bbox,
            year,
            output_dir,
            bands=bands,
            depth=depth,
            strip_rows=strip_rows,
            compress=compress,
            progress=progress,
            progress_callback=progress_callback,
            dry_run=dry_run,
        )

    # --- the preview pyramid ------------------------------------------------------------------
    @property
    def preview_info(self) -> dict[str, Any] | None:
        """The preview pyramid's ``tessera:preview`` attributes (``year``, ``levels``, ``bbox``:
        the lon/lat extent of its data, the PCA and stretch that coloured it), or None when the
        store has no pyramid."""
        from .preview import preview_info

        return preview_info(self)

    def preview(self, bbox: Any, level: int | None = None) -> npt.NDArray[np.uint8]:
        """An RGB picture of a lon/lat box from the store's preview pyramid: (H, W, 4) uint8
        RGBA in EPSG:4326 (rows from north to south), alpha 0 where there is no data.

        ``level``: 0 (0.0001 degree, about 11 m) to 9 (each level halves the one before);
        default the finest level at which the box is at most 2048 pixels across. The pyramid
        shows one year (:attr:`preview_info`); ``geotessera zarr build ... --preview YEAR``
        renders it. Raises :class:`NotCoveredError` for a store without one.
        """
        from .preview import read_preview

        rgba, _, _ = read_preview(self, bbox, level)
        return rgba
