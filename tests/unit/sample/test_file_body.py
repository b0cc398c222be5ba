"""FileBody: a byte range of a file that moto serves as an object's value, read while iterated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.sample._moto import READ_CHUNK, FileBody

DATA = os.urandom(3 * READ_CHUNK + 123)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("body") / "object.bin"
    path.write_bytes(DATA)
    return path


@settings(max_examples=150, deadline=None)
@given(
    start=st.one_of(st.none(), st.integers(-len(DATA) - 5, len(DATA) + 5)),
    stop=st.one_of(st.none(), st.integers(-len(DATA) - 5, len(DATA) + 5)),
    inner=st.tuples(st.integers(0, 2000), st.integers(0, 2000)),
)
def test_slices_behave_as_bytes_slices(
    data_file: Path, start: int | None, stop: int | None, inner: tuple[int, int]
) -> None:
    body = FileBody(data_file, 0, len(DATA))
    part, expected = body[start:stop], DATA[start:stop]
    assert len(part) == len(expected) and bytes(part) == expected
    a, b = inner  # a slice of a slice (moto slices once; the arithmetic must still compose)
    assert bytes(part[a:b]) == expected[a:b]
    assert all(len(piece) <= READ_CHUNK for piece in part)


def test_reads_lazily_and_refuses_other_indexing(data_file: Path, tmp_path: Path) -> None:
    missing = FileBody(tmp_path / "not-yet", 0, 10)  # nothing is opened until iterated
    assert len(missing) == 10 and bool(missing)
    with pytest.raises(FileNotFoundError):
        bytes(missing)
    body = FileBody(data_file, 0, len(DATA))
    with pytest.raises(TypeError):
        body[3]  # type: ignore[index]
    with pytest.raises(ValueError):
        body[::2]
    assert bytes(FileBody(data_file, 5, 0)) == b"" and not FileBody(data_file, 5, 0)


def test_a_file_shorter_than_registered_cuts_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "shrunk.bin"
    path.write_bytes(b"x" * 100)
    with pytest.raises(OSError, match="shorter"):
        bytes(FileBody(path, 0, 200))
