"""Manifests with hostile content: every one is refused with CorruptDataError or read exactly.

A manifest is data from a server: keys that overflow int32, NaN or absurd coordinates, years
that would overflow the registry's int64 keys, negative sizes, nulls, text where numbers
belong, ``..`` in the optional path columns. None of them may crash, wrap around into another
tile's key, or allocate memory in proportion to a value.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geotessera.datasets import DatasetId
from geotessera.errors import CorruptDataError, NotCoveredError
from geotessera.registry import Registry, load_manifest
from geotessera.registry.manifest import prepare_landmasks

V1 = DatasetId()


def _table(**columns: object) -> pa.Table:
    base: dict[str, object] = {
        "version": ["1.0"],
        "variant": ["vultr"],
        "year": pa.array([2024], pa.int64()),
        "lon": [0.15],
        "lat": [52.05],
        "grid_size": pa.array([100], pa.int64()),
        "scales_size": pa.array([10], pa.int64()),
    }
    base.update(columns)
    return pa.table({k: v for k, v in base.items() if v is not None})


def _load(tmp_path: Path, table: pa.Table) -> Registry:
    (tmp_path / "m").mkdir(exist_ok=True)
    pq.write_table(table, tmp_path / "m" / "manifest.parquet")
    reg = Registry(load_manifest(V1, registry_dir=tmp_path / "m"))
    for y in reg.available_years()[:1]:  # sizes are read on demand: read them too
        reg.file_sizes(reg.load_blocks_for_region((-180, -90, 180, 90), y)[:1])
    return reg


@pytest.mark.parametrize(
    "columns",
    [
        {
            "lon": None,
            "lat": None,
            "lon_i": pa.array([2**32 + 15], pa.int64()),
            "lat_i": [5205],
        },  # wraps to 15
        {"lon": None, "lat": None, "lon_i": [15], "lat_i": pa.array([-(2**40)], pa.int64())},
        {"lon": [float("nan")]},
        {"lon": [float("inf")]},
        {"lon": [1e300]},
        {"lat": [-1e19]},
        {"lon": ["east"]},
        {"year": pa.array([10**15], pa.int64())},  # (year - 2000) * 6.48e6 overflows int64
        {"year": pa.array([-(2**62)], pa.int64())},
        {"year": pa.array([999_999_999], pa.int64())},  # a year range this wide would fill memory
        {"year": pa.array([2024.5])},
        {"year": pa.array([None], pa.int64())},
        {"grid_size": pa.array([-1], pa.int64())},
        {"scales_size": pa.array([-(2**63)], pa.int64())},
        {"grid_size": ["a lot"]},
        {"lon": [0.12]},  # not a tile centre
    ],
)
def test_hostile_manifest_values_are_corrupt(tmp_path: Path, columns: dict[str, object]) -> None:
    with pytest.raises(CorruptDataError):
        _load(tmp_path, _table(**columns))


def test_path_columns_never_make_paths(tmp_path: Path) -> None:
    # directory/grid_path/scales_path are informative URIs: a '..' in them goes nowhere
    table = _table(
        directory=["../../../../etc"],
        grid_path=["s3://bucket/../../etc/passwd"],
        scales_path=["/etc/shadow"],
        version=["../1.0"],
    )
    with pytest.raises(NotCoveredError):  # a version no dataset has: no row of v1 is left
        _load(tmp_path, table)
    reg = _load(tmp_path, _table(directory=["../../x"], grid_path=["../../y.npy"]))
    assert reg.load_blocks_for_region((0.1, 52.0, 0.2, 52.1), 2024) == [(2024, 0.15, 52.05)]


def test_hostile_landmasks_are_corrupt() -> None:
    for table in (
        pa.table({"lon": [0.15], "lat": [52.05], "file_size": pa.array([-5], pa.int64())}),
        pa.table({"lon": [float("nan")], "lat": [52.05], "file_size": [5]}),
        pa.table({"lon_i": pa.array([2**33], pa.int64()), "lat_i": [5205], "file_size": [5]}),
        pa.table({"lon": [0.15], "lat": [52.05], "file_size": ["x"]}),
    ):
        with pytest.raises(CorruptDataError):
            prepare_landmasks(table, V1)


_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-1800, 1800).map(lambda i: (i * 10 + 5) / 100),  # tile centres, most of the time valid
)
_ints = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(1990, 2030), st.integers(-20, 20))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(_ints, _floats, st.one_of(_floats, st.just(52.05)), _ints, _ints), min_size=1, max_size=6
    ),
    keys=st.booleans(),
)
def test_manifest_reader_refuses_or_reads_exactly(
    tmp_path: Path, rows: list[tuple[int, float, float, int, int]], keys: bool
) -> None:
    years, lons, lats, grid, scales = (list(c) for c in zip(*rows, strict=True))
    if keys:  # integer keys, as the real manifests carry them
        lon_col: dict[str, object] = {
            "lon_i": pa.array(
                [round(x * 100) if math.isfinite(x) and abs(x) < 1e15 else 2**40 for x in lons]
            ),
            "lat_i": pa.array(
                [round(x * 100) if math.isfinite(x) and abs(x) < 1e15 else 2**40 for x in lats]
            ),
            "lon": None,
            "lat": None,
        }
    else:
        lon_col = {"lon": lons, "lat": lats}
    table = _table(
        version=["1.0"] * len(rows),
        variant=["vultr"] * len(rows),
        year=pa.array(years, pa.int64()),
        grid_size=pa.array(grid, pa.int64()),
        scales_size=pa.array(scales, pa.int64()),
        **lon_col,
    )
    try:
        reg = _load(tmp_path, table)
    except CorruptDataError:
        return
    # accepted: every row was a plausible year, a tile centre and non-negative sizes, read as given
    assert all(1900 <= y <= 2100 for y in years) and all(g >= 0 for g in grid) and all(s >= 0 for s in scales)
    want = {(y, round(lo * 100), round(la * 100)) for y, lo, la in zip(years, lons, lats, strict=True)}
    got = set()
    for y in reg.available_years():
        got |= {
            (y, round(lo * 100), round(la * 100))
            for _, lo, la in reg.load_blocks_for_region((-180, -90, 180, 90), y)
        }
    assert got == want
    assert all(abs(lo) <= 180 and abs(la) <= 90 for _, lo, la in want for lo, la in [(lo / 100, la / 100)])
    for y, lo, la in sorted(want)[:2]:
        e, s = reg.file_sizes([(y, lo / 100, la / 100)])
        assert e >= 0 and s >= 0
    np.testing.assert_equal(len(reg), len(want))
