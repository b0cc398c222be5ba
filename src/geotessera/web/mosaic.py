"""``prepare_mosaic_for_web``: an RGB(A) mosaic reprojected to Web Mercator, cloud-optimised."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidInputError, OutputError
from ..files import atomic_path
from ..visualization._progress import ProgressCallback, Reporter
from .tiles import check_rgb_mosaic


def prepare_mosaic_for_web(
    input_mosaic: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    target_crs: str = "EPSG:3857",
    progress_callback: ProgressCallback | None = None,
) -> str:
    """Reproject an 8-bit RGB(A) mosaic to ``target_crs`` (nearest neighbour, alpha kept or added).

    The output is a cloud-optimised GeoTIFF (deflate, 256 x 256 blocks, overviews),
    written atomically. Returns ``output_path`` as a string.
    """
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from ..visualization.mosaic import as_crs

    check_rgb_mosaic(input_mosaic)
    dst_crs = as_crs(target_crs)
    out = Path(output_path)
    if out.is_dir():
        raise InvalidInputError(f"{out} is a directory; give a file name")
    rep = Reporter(progress_callback)
    rep.plan(1, "mosaic")
    try:
        with (
            atomic_path(out, fsync=False) as tmp,
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            rasterio.open(input_mosaic) as src,
            WarpedVRT(src, crs=dst_crs, resampling=Resampling.nearest, add_alpha=src.count == 3) as vrt,
        ):
            rasterio.shutil.copy(
                vrt,
                tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                BLOCKSIZE="256",
                OVERVIEW_RESAMPLING="AVERAGE",
                BIGTIFF="IF_SAFER",
            )
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
    rep.done(out.name, "done")
    return str(out)
