"""geoemb: / proj: / spatial: attributes: round trip and named failures."""

from __future__ import annotations

import copy

import pytest
from affine import Affine

from geotessera.datasets import DatasetId
from geotessera.errors import CorruptDataError
from geotessera.store.conventions import (
    NODATA_INF,
    NODATA_NAN,
    parse_root,
    parse_zone,
    root_attributes,
    zone_attributes,
)

ROOT = root_attributes(DatasetId.parse("v1.1", "cambridge"), gsd=10.0, build_version="test")


def test_root_round_trip() -> None:
    info = parse_root(ROOT)
    assert info.declared and info.gsd == 10.0 and info.scale_nodata == NODATA_INF
    assert info.dataset == DatasetId("1.1", "cambridge")
    assert ROOT["zarr_conventions"][0]["uuid"] == "61c12cc5-0e28-4056-999a-480cf3fb7e4c"


def test_nan_fill_convention() -> None:
    attrs = copy.deepcopy(ROOT)
    attrs["geoemb:quantization"]["scale"]["nodata"] = "NaN"
    assert parse_root(attrs).scale_nodata == NODATA_NAN


@pytest.mark.parametrize(
    ("key", "value"),
    [("geoemb:gsd", -1), ("geoemb:data_type", "float32"), ("geoemb:type", "patch"), ("geoemb:gsd", "10")],
)
def test_broken_root_attribute_is_named(key: str, value: object) -> None:
    attrs = copy.deepcopy(ROOT)
    attrs[key] = value
    with pytest.raises(CorruptDataError, match=key):
        parse_root(attrs)


def test_declared_convention_missing_attribute() -> None:
    attrs = copy.deepcopy(ROOT)
    del attrs["geoemb:quantization"]
    with pytest.raises(CorruptDataError, match="geoemb:quantization"):
        parse_root(attrs)


def test_bad_nodata_is_named() -> None:
    attrs = copy.deepcopy(ROOT)
    attrs["geoemb:quantization"]["scale"]["nodata"] = "zero"
    with pytest.raises(CorruptDataError, match=r"scale\.nodata"):
        parse_root(attrs)


def test_zone_round_trip_and_errors() -> None:
    t = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 9420800.0)
    attrs = zone_attributes(31, t, (8192, 4096))
    z = parse_zone("utm31", attrs)
    assert z.epsg == 32631 and z.transform == t and z.shape == (8192, 4096) and z.res == 10.0
    assert attrs["spatial:bbox"] == [0.0, 9420800.0 - 81920.0, 40960.0, 9420800.0]
    with pytest.raises(CorruptDataError, match="proj:code"):
        parse_zone("utm31", {**attrs, "proj:code": "EPSG:32632"})
    with pytest.raises(CorruptDataError, match="proj:code"):
        parse_zone("utm31", {**attrs, "proj:code": "EPSG:32731"})
    with pytest.raises(CorruptDataError, match="spatial:transform"):
        parse_zone("utm31", {**attrs, "spatial:transform": [10, 0, 0, 0, 10, 0]})
    with pytest.raises(CorruptDataError, match="not a UTM zone group"):
        parse_zone("zone31", attrs)
