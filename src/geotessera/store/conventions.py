"""The ``geoemb:`` / ``proj:`` / ``spatial:`` attributes of a Tessera Zarr store (``formats.md`` §6).

Writing: :func:`root_attributes` and :func:`zone_attributes` build the
attribute dicts. Reading: :func:`parse_root` and :func:`parse_zone` turn them
into validated :class:`StoreInfo` / :class:`ZoneInfo` values. A store that
declares a convention and breaks it fails with :class:`CorruptDataError`
naming the attribute, never a silent "no CRS".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from ..datasets import DatasetId
from ..errors import CorruptDataError, InvalidInputError

GEOEMB_CONVENTION: dict[str, str] = {
    "uuid": "61c12cc5-0e28-4056-999a-480cf3fb7e4c",
    "name": "geoemb:",
    "spec_url": "https://github.com/geo-embeddings/embeddings-zarr-convention/blob/v1/README.md",
    "schema_url": (
        "https://raw.githubusercontent.com/geo-embeddings/embeddings-zarr-convention/refs/tags/v1/schema.json"
    ),
    "description": "Geospatial embedding arrays with model provenance",
}
PROJ_CONVENTION: dict[str, str] = {
    "uuid": "f17cb550-5864-4468-aeb7-f3180cfb622f",
    "name": "proj:",
    "spec_url": "https://github.com/zarr-experimental/geo-proj/blob/v1/README.md",
    "schema_url": "https://raw.githubusercontent.com/zarr-experimental/geo-proj/refs/tags/v1/schema.json",
    "description": "Coordinate reference system information for geospatial data",
}
SPATIAL_CONVENTION: dict[str, str] = {
    "uuid": "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4",
    "name": "spatial:",
    "spec_url": "https://github.com/zarr-conventions/spatial/blob/v1/README.md",
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v1/schema.json",
    "description": "Spatial coordinate information",
}

MODEL_URL = "https://github.com/ucam-eo/tessera"
SOURCE_DATA = ["Sentinel-1", "Sentinel-2"]
N_BANDS = 128
NODATA_INF = "+inf"
NODATA_NAN = "NaN"
_ZONE_RE = re.compile(r"^utm(\d{2})$")


def depth_array_name(depth: int) -> str:
    """Array of the first ``depth`` bands: ``embeddings_d4``, ``embeddings_d16``."""
    return f"embeddings_d{int(depth)}"


def depth_inner_side(depth: int) -> int:
    """Inner chunk side of a depth array: the largest power of two ``s`` with ``depth * s**2``
    at most 128 KiB (the main array's inner chunk size): 128 for depth 4, 64 for depth 16."""
    side = 1
    while depth * (2 * side) ** 2 <= 128 * 1024:
        side *= 2
    return side


def check_depths(depths: Iterable[int], n_bands: int = N_BANDS) -> tuple[int, ...]:
    """Validate depths (each 1 <= d < n_bands; duplicates dropped) and sort them."""
    out: set[int] = set()
    for d in depths:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or not 1 <= int(d) < n_bands:
            raise InvalidInputError(f"depths must be whole numbers from 1 to {n_bands - 1}, got {d!r}")
        out.add(int(d))
    return tuple(sorted(out))


def zone_group_name(zone: int) -> str:
    """Group name of a UTM zone: ``utm07``, ``utm31``."""
    return f"utm{zone:02d}"


def zone_from_group_name(name: str) -> int | None:
    """Zone number of a group name like ``utm31``, or None for other names."""
    m = _ZONE_RE.match(name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """Validated root attributes: dataset, ground sample distance (m) and scale nodata sentinel."""

    gsd: float
    scale_nodata: str  # "+inf" (NaN = water) or "NaN" (NaN = not embedded)
    dimensions: int
    dataset: DatasetId | None
    declared: bool  # True when zarr_conventions registers geoemb:
    depths: tuple[int, ...] = ()  # truncated copies held (``geoemb:depths``), ascending
    build_version: str | None = None
    model: str | None = None  # ``geoemb:model``

    @property
    def depth_arrays(self) -> dict[int, str]:
        """``{depth: array name}`` of the truncated copies, e.g. ``{4: "embeddings_d4"}``."""
        return {d: depth_array_name(d) for d in self.depths}


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """A zone group's grid: EPSG code (always 326NN), transform of the top-left corner, shape (H, W)."""

    zone: int
    epsg: int
    transform: Affine
    shape: tuple[int, int]

    @property
    def res(self) -> float:
        """Pixel size in metres."""
        return float(self.transform.a)

    @property
    def x0(self) -> float:
        """Easting of the grid's left edge (m)."""
        return float(self.transform.c)

    @property
    def y0(self) -> float:
        """Northing of the grid's top edge (m); negative south of the equator."""
        return float(self.transform.f)


def root_attributes(
    dataset: DatasetId, *, gsd: float, build_version: str, depths: Iterable[int] = ()
) -> dict[str, Any]:
    """Root attributes of a store we write (scale nodata ``+inf``, NaN = water).

    ``depths``: the truncated copies the store holds (``geoemb:depths``, ascending; left out
    when there are none).
    """
    held = check_depths(depths)
    extra: dict[str, Any] = {"geoemb:depths": list(held)} if held else {}
    return {
        "zarr_conventions": [GEOEMB_CONVENTION, PROJ_CONVENTION, SPATIAL_CONVENTION],
        "geoemb:type": "pixel",
        "geoemb:dimensions": N_BANDS,
        "geoemb:model": f"{MODEL_URL}/{dataset.vpath}/{dataset.variant}",
        "geoemb:source_data": list(SOURCE_DATA),
        "geoemb:data_type": "int8",
        "geoemb:gsd": float(gsd),
        "geoemb:spatial_layout": "utm_zones",
        "geoemb:build_version": build_version,
        "geoemb:quantization": {
            "method": "per_pixel_scale",
            "original_dtype": "float32",
            "quantized_dtype": "int8",
            "scale": {"type": "array", "array_name": "scales", "nodata": NODATA_INF},
        },
        "tessera:dataset_version": dataset.version,
        "tessera:dataset_variant": dataset.variant,
        **extra,
    }


def zone_attributes(zone: int, transform: Affine, shape: tuple[int, int]) -> dict[str, Any]:
    """Attributes of group ``utmNN``: EPSG:326NN, the grid transform, shape and bbox (metres)."""
    h, w = shape
    x0, y0, res = float(transform.c), float(transform.f), float(transform.a)
    return {
        "zarr_conventions": [PROJ_CONVENTION, SPATIAL_CONVENTION],
        "proj:code": f"EPSG:{32600 + zone}",
        "spatial:dimensions": ["y", "x"],
        "spatial:transform": [res, 0.0, x0, 0.0, -res, y0],
        "spatial:shape": [int(h), int(w)],
        "spatial:bbox": [x0, y0 - res * h, x0 + res * w, y0],
        "spatial:registration": "pixel",
    }


def _declares(attrs: Mapping[str, Any], name: str, uuid: str) -> bool:
    conv = attrs.get("zarr_conventions")
    if conv is None:
        return False
    if not isinstance(conv, list):
        raise CorruptDataError(f"attribute 'zarr_conventions' must be a list, got {type(conv).__name__}")
    for entry in conv:
        if isinstance(entry, Mapping) and (entry.get("uuid") == uuid or entry.get("name") == name):
            return True
    return False


def _bad(attr: str, value: object, why: str) -> CorruptDataError:
    return CorruptDataError(f"Zarr attribute {attr!r} is invalid ({why}): {value!r}")


def parse_root(attrs: Mapping[str, Any]) -> StoreInfo:
    """Validate root attributes. Missing ``geoemb:`` keys default (gsd 10, nodata +inf) only if undeclared."""
    declared = _declares(attrs, "geoemb:", GEOEMB_CONVENTION["uuid"])
    required = ("geoemb:type", "geoemb:dimensions", "geoemb:data_type", "geoemb:gsd", "geoemb:quantization")
    if declared:
        for key in required:
            if key not in attrs:
                raise CorruptDataError(f"store declares geoemb: but attribute {key!r} is missing")
    typ = attrs.get("geoemb:type", "pixel")
    if typ != "pixel":
        raise _bad("geoemb:type", typ, "only 'pixel' embeddings are supported")
    dims = attrs.get("geoemb:dimensions", N_BANDS)
    if not isinstance(dims, int) or isinstance(dims, bool) or dims <= 0:
        raise _bad("geoemb:dimensions", dims, "expected a positive integer")
    dtype = attrs.get("geoemb:data_type", "int8")
    if dtype != "int8":
        raise _bad("geoemb:data_type", dtype, "expected 'int8'")
    gsd = attrs.get("geoemb:gsd", 10.0)
    if not isinstance(gsd, int | float) or isinstance(gsd, bool) or not math.isfinite(gsd) or gsd <= 0:
        raise _bad("geoemb:gsd", gsd, "expected a positive number of metres")
    layout = attrs.get("geoemb:spatial_layout", "utm_zones")
    if layout != "utm_zones":
        raise _bad("geoemb:spatial_layout", layout, "only 'utm_zones' is supported")
    nodata = NODATA_INF
    quant = attrs.get("geoemb:quantization")
    if quant is not None:
        if not isinstance(quant, Mapping):
            raise _bad("geoemb:quantization", quant, "expected an object")
        method = quant.get("method", "per_pixel_scale")
        if method != "per_pixel_scale":
            raise _bad("geoemb:quantization.method", method, "expected 'per_pixel_scale'")
        scale = quant.get("scale", {})
        if not isinstance(scale, Mapping):
            raise _bad("geoemb:quantization.scale", scale, "expected an object")
        name = scale.get("array_name", "scales")
        if name != "scales":
            raise _bad("geoemb:quantization.scale.array_name", name, "expected 'scales'")
        raw = str(scale.get("nodata", NODATA_INF)).strip().lower()
        if raw in ("+inf", "inf", "infinity", "+infinity"):
            nodata = NODATA_INF
        elif raw == "nan":
            nodata = NODATA_NAN
        else:
            raise _bad("geoemb:quantization.scale.nodata", scale.get("nodata"), "expected '+inf' or 'NaN'")
    dataset = None
    if "tessera:dataset_version" in attrs:
        dataset = DatasetId.parse(attrs["tessera:dataset_version"], attrs.get("tessera:dataset_variant"))
    build = attrs.get("geoemb:build_version")
    model = attrs.get("geoemb:model")
    return StoreInfo(
        float(gsd),
        nodata,
        int(dims),
        dataset,
        declared,
        depths=_parse_depths(attrs.get("geoemb:depths"), int(dims)),
        build_version=None if build is None else str(build),
        model=None if model is None else str(model),
    )


def _parse_depths(raw: Any, n_bands: int) -> tuple[int, ...]:
    """``geoemb:depths``: a list of depths (``[4, 16]``) or a mapping ``{"4": "embeddings_d4"}``."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        items: list[Any] = []
        for k, name in raw.items():
            if not str(k).isdigit() or name != depth_array_name(int(k)):
                raise _bad("geoemb:depths", raw, "expected {depth: 'embeddings_d<depth>'}")
            items.append(int(k))
    elif isinstance(raw, list):
        items = list(raw)
    else:
        raise _bad("geoemb:depths", raw, "expected a list of depths")
    try:
        return check_depths(items, n_bands)
    except InvalidInputError as exc:
        raise _bad("geoemb:depths", raw, str(exc)) from None


def _number_list(attrs: Mapping[str, Any], key: str, n: int) -> list[float]:
    value = attrs.get(key)
    if not isinstance(value, list) or len(value) < n:
        raise _bad(key, value, f"expected a list of {n} numbers")
    out = []
    for v in value[:n]:
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise _bad(key, value, "expected finite numbers")
        out.append(float(v))
    return out


def parse_zone(
    name: str, attrs: Mapping[str, Any], *, fallback_shape: tuple[int, int] | None = None
) -> ZoneInfo:
    """Validate a zone group's ``proj:`` / ``spatial:`` attributes.

    ``fallback_shape`` (the arrays' (H, W)) is used when ``spatial:shape`` is absent.
    """
    zone = zone_from_group_name(name)
    if zone is None or not 1 <= zone <= 60:
        raise CorruptDataError(f"Zarr group {name!r} is not a UTM zone group (utm01..utm60)")
    code = attrs.get("proj:code")
    if not isinstance(code, str) or not re.fullmatch(r"EPSG:32[67]\d{2}", code):
        raise _bad(f"{name}/proj:code", code, "expected 'EPSG:326NN'")
    epsg = int(code.split(":")[1])
    if epsg % 100 != zone:
        raise _bad(f"{name}/proj:code", code, f"zone does not match group {name}")
    if epsg >= 32700:
        raise _bad(f"{name}/proj:code", code, "zone groups use the northern code with negative northings")
    dims = attrs.get("spatial:dimensions", ["y", "x"])
    if list(dims) != ["y", "x"]:
        raise _bad(f"{name}/spatial:dimensions", dims, "expected ['y', 'x']")
    reg = attrs.get("spatial:registration", "pixel")
    if reg != "pixel":
        raise _bad(f"{name}/spatial:registration", reg, "expected 'pixel'")
    a, b, c, d, e, f = _number_list(attrs, "spatial:transform", 6)
    if b != 0 or d != 0 or a <= 0 or e != -a:
        raise _bad(f"{name}/spatial:transform", attrs["spatial:transform"], "expected a north-up square grid")
    if "spatial:shape" in attrs:
        sh = _number_list(attrs, "spatial:shape", 2)
        if any(s < 0 or s != int(s) for s in sh):
            raise _bad(f"{name}/spatial:shape", attrs["spatial:shape"], "expected non-negative integers")
        shape = (int(sh[0]), int(sh[1]))
    elif fallback_shape is not None:
        shape = fallback_shape
    else:
        raise CorruptDataError(f"Zarr group {name}: attribute 'spatial:shape' is missing")
    return ZoneInfo(zone, epsg, Affine(a, b, c, d, e, f), shape)
