"""Reading tile files from hostile bytes: every malformed ``.npy`` is a CorruptDataError, never more."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geotessera.errors import CorruptDataError
from geotessera.tiles import load_npy, load_tile_arrays, read_npy_header


def _header(shape: object, descr: object = "|i1", fortran: object = False, version: int = 1) -> bytes:
    """A .npy header written by numpy's own writer (any shape, even one no array can have)."""
    f = io.BytesIO()
    d = {"descr": descr, "fortran_order": fortran, "shape": shape}
    if version == 1:
        np.lib.format.write_array_header_1_0(f, d)
    else:
        np.lib.format.write_array_header_2_0(f, d)
    return f.getvalue()


def test_an_element_count_overflowing_int64_is_corrupt(tmp_path: Path) -> None:
    # (2**32, 2**32, 1) int8: the product wraps to 0 in int64, so the 128-byte file "matched"
    p = tmp_path / "huge.npy"
    p.write_bytes(_header((2**32, 2**32, 1)))
    with pytest.raises(CorruptDataError, match="header implies"):
        read_npy_header(p)
    with pytest.raises(CorruptDataError):
        load_npy(p, dtype="int8", ndim=(3,))


def test_absurd_headers_are_corrupt(tmp_path: Path) -> None:
    cases = {
        "negative.npy": _header((-1, 4, 128)),
        "object.npy": _header((1, 1, 1), descr="|O"),
        "fortran.npy": _header((2, 2, 128), fortran=True) + bytes(512),
        "descr.npy": _header((1,), descr="not a dtype"),
        "magic.npy": b"\x93NUMPX\x01\x00" + bytes(64),
        "empty.npy": b"",
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CorruptDataError):
            read_npy_header(p)


def test_an_empty_array_is_not_a_tile(tmp_path: Path) -> None:
    p = tmp_path / "empty.npy"
    np.save(p, np.zeros((0, 4, 128), np.int8))
    with pytest.raises(CorruptDataError, match="empty"):
        load_npy(p, dtype="int8", ndim=(3,))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CorruptDataError, match="missing"):
        read_npy_header(tmp_path / "gone.npy")


def test_wrong_scale_shapes_are_corrupt(tmp_path: Path) -> None:
    emb, sc = tmp_path / "e.npy", tmp_path / "s.npy"
    np.save(emb, np.zeros((4, 5, 128), np.int8))
    for shape in [(5, 4), (4, 5, 3), (4,), (4, 5, 128, 1)]:
        np.save(sc, np.zeros(shape, np.float32))
        with pytest.raises(CorruptDataError):
            load_tile_arrays(emb, sc)


_dims = st.lists(st.integers(min_value=-3, max_value=2**40), min_size=0, max_size=4).map(tuple)
_descrs = st.sampled_from(["|i1", "<f4", ">f4", "<i8", "|b1", "<c16", "|V3", "|O", "<U4", "bogus", 7])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=_dims,
    descr=_descrs,
    fortran=st.sampled_from([False, True, "yes"]),
    version=st.sampled_from([1, 2]),
    body=st.integers(min_value=0, max_value=2048),
)
def test_read_npy_header_accepts_only_consistent_files(
    tmp_path: Path, shape: tuple[int, ...], descr: object, fortran: object, version: int, body: int
) -> None:
    try:
        header = _header(shape, descr, fortran, version)
    except (ValueError, TypeError):  # numpy's writer refuses it: no such file can be made this way
        return
    p = tmp_path / "h.npy"
    p.write_bytes(header + bytes(body))
    try:
        dtype, got_shape, offset = read_npy_header(p)
    except CorruptDataError:
        return
    # accepted: the header is sane and the file holds exactly the bytes it announces
    assert offset == len(header)
    assert all(n >= 0 for n in got_shape)
    assert not dtype.hasobject
    assert p.stat().st_size == offset + math.prod(got_shape) * dtype.itemsize


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=400))
def test_read_npy_header_of_arbitrary_bytes_never_escapes(tmp_path: Path, data: bytes, cut: int) -> None:
    good = _header((2, 3, 128)) + bytes(2 * 3 * 128)
    p = tmp_path / "b.npy"
    for blob in (data, good[:cut] + data, b"\x93NUMPY\x01\x00" + data):
        p.write_bytes(blob)
        try:
            dtype, shape, offset = read_npy_header(p)
        except CorruptDataError:
            continue
        assert len(blob) == offset + math.prod(shape) * dtype.itemsize
