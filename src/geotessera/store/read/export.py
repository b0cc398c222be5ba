"""GeoTIFFs of a region straight from a Zarr store: one file per UTM zone the region touches.

The box is cut at the zone seams; each part is read on its zone's grid (EPSG:326NN, or
327NN when the part's centre is south of the equator) as quantised strips and written by the
export layer's writer (:func:`~geotessera.export.write_embedding_strips`): float32, NaN nodata,
the layout and options of a tile export (``compress``, ``bands``), band descriptions
``Tessera_Band_{i}``, ``TESSERA_*`` tags, atomic, BigTIFF when needed. The directory's
``tessera_metadata.json`` records the dataset and the files; a directory holding another
dataset (or GeoTIFFs of another band selection) is refused before anything is read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._version import __version__
from ...errors import InvalidInputError
from ...export import (
    check_output_dataset,
    make_output_dir,
    normalize_bands,
    normalize_compress,
    write_embedding_strips,
    write_sidecar,
)
from ...grid import PixelGrid, as_bbox, cells_in_bbox, utm_zone
from ...progress import ItemDone, PlanReady, ProgressSink, emit
from .regions import RegionPlan, iter_quantized_strips, region_grid

if TYPE_CHECKING:
    from .reader_core import StoreCore

log = logging.getLogger(__name__)

STRIP_BYTES = 64 * 2**20
"""Working memory of one strip (int8 values, scales and the float32 rows written)."""


def zone_parts(bbox: Any) -> list[tuple[int, tuple[float, float, float, float]]]:
    """[(zone, the box clipped to the zone's 6-degree band)] of the zones whose cells the box
    overlaps, west to east."""
    b = as_bbox(bbox)
    if b.min_lon == b.max_lon or b.min_lat == b.max_lat:
        raise InvalidInputError(f"bbox {tuple(b)} is empty (zero width or height); give a box with area")
    zones = sorted({utm_zone(c.lon) for c in cells_in_bbox(b)})
    parts = []
    for z in zones:
        west, east = (z - 1) * 6 - 180.0, z * 6 - 180.0
        parts.append((z, (max(b.min_lon, west), b.min_lat, min(b.max_lon, east), b.max_lat)))
    return parts


def export_geotiffs(
    store: StoreCore,
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
    """Write ``{output_dir}/tessera_{year}_utm{NN}.tif`` for each zone part of ``bbox``; see
    :meth:`GeoTesseraZarr.export_geotiffs`."""
    d = store._depth(depth)
    n_bands = store._bands(d)
    band_list = normalize_bands(bands, n_bands)
    spec = normalize_compress(compress)
    if isinstance(strip_rows, bool) or not isinstance(strip_rows, int) or strip_rows < 1:
        raise InvalidInputError(f"strip_rows must be a whole number >= 1, got {strip_rows!r}")
    store._require_year(year)
    parts = zone_parts(bbox)
    out = Path(output_dir)
    paths = [out / f"tessera_{int(year)}_utm{z:02d}.tif" for z, _ in parts]
    if dry_run:
        return [str(p) for p in paths]
    ds = store.dataset
    # a depth copy's files hold its bands: recorded as such, so full exports are not mixed in
    recorded = band_list if band_list is not None or d is None else list(range(n_bands))
    check_output_dataset(out, ds, fmt="tiff", bands=recorded)
    make_output_dir(out)
    emit(progress, PlanReady(len(parts), 0, label="files"))
    nout = n_bands if band_list is None else len(band_list)
    records = []
    for i, ((z, part), path) in enumerate(zip(parts, paths, strict=True)):
        if progress_callback is not None:
            progress_callback(i, len(parts), f"zone {z}: reading and writing {path.name}")
        crs, transform, (h, w), zones = region_grid(part, store.info.gsd)
        plan = RegionPlan(store._lookup(d), crs, transform, (h, w), zones, int(year))
        per_row = w * (n_bands * 5 + 4 + nout * 4)
        rows = max(1, min(strip_rows, STRIP_BYTES // max(per_row, 1)))
        epsg = crs.to_epsg()
        if epsg is None:  # pragma: no cover - region grids are UTM
            raise InvalidInputError(f"zone {z}: no EPSG code for {crs}")
        tags = {
            "TESSERA_DATASET_VERSION": ds.version,
            "TESSERA_DATASET_VERSION_PATH": ds.vpath,
            "TESSERA_DATASET_VARIANT": ds.variant,
            "TESSERA_YEAR": str(int(year)),
            "TESSERA_DESCRIPTION": f"Tessera embeddings {ds.vpath}/{ds.variant} {int(year)} UTM zone {z}",
            "TESSERA_SOURCE": store.url,
            "TESSERA_MODEL": store.info.model or "",
            "TESSERA_BUILD_VERSION": store.info.build_version or "",
            "TESSERA_BANDS": ",".join(map(str, band_list)) if band_list is not None else f"0-{n_bands - 1}",
            "TESSERA_BBOX": ",".join(f"{v:.6f}" for v in part),
            "GEOTESSERA_VERSION": __version__,
        }
        write_embedding_strips(
            path,
            PixelGrid(int(epsg), transform, (h, w)),
            n_bands,
            iter_quantized_strips(store.reader, plan, rows, n_bands),
            bands=band_list,
            compress=spec,
            tags=tags,
        )
        size = path.stat().st_size
        emit(progress, ItemDone(path.name, size))
        records.append({"file": path.name, "year": int(year), "zone": z, "bbox": list(part), "size": size})
        log.info("wrote %s (%d x %d, %d bands)", path, h, w, nout)
    if progress_callback is not None:
        progress_callback(len(parts), len(parts), "done")
    write_sidecar(
        out, ds, fmt="tiff", tiles=[], source_url=store.url, bands=recorded, compress=spec, exports=records
    )
    return [str(p) for p in paths]
