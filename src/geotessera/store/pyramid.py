"""The preview pyramid's geometry and attributes (``global_rgb``), shared by writer and reader.

One RGBA uint8 image of the whole world in EPSG:4326 per level, ``global_rgb/{level}/rgb``,
(rows, cols, 4) with rows from 90 N down and columns from 180 W east: level 0 at
:data:`LEVEL0_DEG` degrees (about 11 m; 1,800,000 x 3,600,000 pixels), each further level
halving it (2 x 2 mean), :data:`LEVELS` levels, chunked 512 x 512 x 4 (absent chunks are
transparent). Alpha is 255 where the embeddings are valid. The pyramid holds one year, the
"preview year"; rendering another year replaces it.
"""

from __future__ import annotations

import math
from typing import Any

from affine import Affine

from .conventions import PROJ_CONVENTION, SPATIAL_CONVENTION

GROUP = "global_rgb"
LEVEL0_DEG = 1e-4
LEVELS = 10
CHUNK = 512
ROWS0, COLS0 = 1_800_000, 3_600_000
MULTISCALES_CONVENTION: dict[str, str] = {
    "uuid": "d35379db-88df-4056-af3a-620245f8e347",
    "name": "multiscales",
    "spec_url": "https://github.com/zarr-conventions/multiscales/blob/v1/README.md",
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/multiscales/refs/tags/v1/schema.json",
    "description": "Multiscale layout of zarr datasets",
}


def level_res(level: int) -> float:
    """Pixel size of ``level`` in degrees."""
    return LEVEL0_DEG * 2**level


def level_shape(level: int) -> tuple[int, int]:
    """(rows, cols) of ``level``."""
    return math.ceil(ROWS0 / 2**level), math.ceil(COLS0 / 2**level)


def level_transform(level: int) -> Affine:
    """Affine transform of ``level`` (top-left corner at 180 W, 90 N; degrees)."""
    r = level_res(level)
    return Affine(r, 0.0, -180.0, 0.0, -r, 90.0)


def array_path(level: int) -> str:
    """``global_rgb/{level}/rgb``."""
    return f"{GROUP}/{level}/rgb"


def group_attributes(levels: int, info: dict[str, Any]) -> dict[str, Any]:
    """Attributes of ``global_rgb``: conventions, the multiscales layout with each level's
    shape and transform, the CRS, and ``tessera:preview`` (year, PCA and stretch: ``info``)."""
    layout = []
    for lv in range(levels):
        t = level_transform(lv)
        entry: dict[str, Any] = {
            "asset": f"{lv}/rgb",
            "transform": {"scale": [float(2**lv)] * 2, "translation": [0.0, 0.0]},
            "spatial:shape": list(level_shape(lv)),
            "spatial:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
        }
        if lv:
            entry.update(
                {
                    "derived_from": f"{lv - 1}/rgb",
                    "transform": {"scale": [2.0, 2.0], "translation": [0.0, 0.0]},
                    "resampling_method": "mean",
                }
            )
        layout.append(entry)
    return {
        "zarr_conventions": [MULTISCALES_CONVENTION, PROJ_CONVENTION, SPATIAL_CONVENTION],
        "multiscales": {"layout": layout, "resampling_method": "mean"},
        "proj:code": "EPSG:4326",
        "spatial:dimensions": ["lat", "lon"],
        "spatial:bbox": [-180.0, -90.0, 180.0, 90.0],
        "spatial:registration": "pixel",
        "tessera:preview": info,
    }
