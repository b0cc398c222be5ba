"""LocalSource (a mirror read in place or copied atomically) and source_from_url."""

from __future__ import annotations

from pathlib import Path

import pytest

from geotessera.errors import IntegrityError, InvalidInputError, SourceError
from geotessera.files import crc64nvme_b64, is_complete, read_receipt, write_receipt
from geotessera.progress import BytesReceived, Event
from geotessera.transfer import (
    HttpSource,
    LocalSource,
    Source,
    source_from_url,
)

KEY = "v1/global_0.1_degree_representation/2024/grid_0.15_52.05/grid_0.15_52.05.npy"


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    path = root / KEY
    path.parent.mkdir(parents=True)
    path.write_bytes(b"0123456789" * 1000)
    return root


def test_is_a_source(mirror: Path) -> None:
    assert isinstance(LocalSource(mirror), Source)
    assert "mirror" in LocalSource(mirror).describe()


def test_local_path_is_in_place(mirror: Path) -> None:
    src = LocalSource(mirror)
    assert src.local_path(KEY) == mirror / KEY
    result = src.get(KEY)
    assert result.path == mirror / KEY
    assert result.size == 10_000
    assert src.exists(KEY) and not src.exists("v1/missing.npy")


def test_copy_is_atomic_with_receipt_and_progress(mirror: Path, tmp_path: Path) -> None:
    src = LocalSource(mirror, chunk_size=3000)
    events: list[Event] = []
    dest = tmp_path / "out" / "t.npy"
    result = src.get(KEY, dest_path=dest, expected_size=10_000, progress=events.append)
    assert dest.read_bytes() == (mirror / KEY).read_bytes()
    assert result.crc64nvme == crc64nvme_b64(dest.read_bytes())
    assert not result.verified  # the mirror had no receipt to check against
    assert is_complete(dest, expected_size=10_000)
    receipt = read_receipt(dest)
    assert receipt is not None and receipt.key == KEY
    assert sum(e.n for e in events if isinstance(e, BytesReceived)) == 10_000
    assert sorted(p.name for p in dest.parent.iterdir()) == [".t.npy.receipt.json", "t.npy"]


def test_mirror_receipt_is_checked(mirror: Path, tmp_path: Path) -> None:
    data = (mirror / KEY).read_bytes()
    write_receipt(mirror / KEY, size=len(data), crc64nvme=crc64nvme_b64(data))
    src = LocalSource(mirror)
    assert src.get(KEY, dest_path=tmp_path / "ok.npy").verified
    assert src.head(KEY).crc64nvme == crc64nvme_b64(data)
    # Damage the mirror file without changing its size.
    (mirror / KEY).write_bytes(b"X" + data[1:])
    dest = tmp_path / "bad.npy"
    with pytest.raises(IntegrityError, match="discarded"):
        src.get(KEY, dest_path=dest)
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    with pytest.raises(IntegrityError):
        src.read_bytes(KEY)


def test_missing_and_size_mismatch(mirror: Path, tmp_path: Path) -> None:
    src = LocalSource(mirror)
    with pytest.raises(SourceError) as info:
        src.get("v1/nope.npy", dest_path=tmp_path / "x")
    assert info.value.status == 404
    with pytest.raises(IntegrityError, match="size mismatch"):
        src.get(KEY, dest_path=tmp_path / "y", expected_size=5)
    assert not (tmp_path / "y").exists()


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a\\b", "./a"])
def test_bad_keys(mirror: Path, key: str) -> None:
    with pytest.raises(InvalidInputError):
        LocalSource(mirror).local_path(key)


def test_read_bytes(mirror: Path) -> None:
    assert LocalSource(mirror).read_bytes(KEY) == (mirror / KEY).read_bytes()


def test_source_from_url(mirror: Path, tmp_path: Path) -> None:
    http = source_from_url("https://s3.us-west-2.amazonaws.com/tessera-embeddings/")
    assert isinstance(http, HttpSource)
    assert http.url(KEY) == f"https://s3.us-west-2.amazonaws.com/tessera-embeddings/{KEY}"
    http.close()
    assert isinstance(source_from_url(str(mirror)), LocalSource)
    assert isinstance(source_from_url(mirror), LocalSource)
    local = source_from_url(mirror.as_uri())
    assert isinstance(local, LocalSource) and local.root == mirror


def test_s3_urls_are_read_anonymously_path_style_on_their_endpoint() -> None:
    src = source_from_url("s3://tessera-embeddings/v1/")
    assert isinstance(src, HttpSource)
    assert src.url("a/b.npy") == "https://s3.us-west-2.amazonaws.com/tessera-embeddings/v1/a/b.npy"
    local = source_from_url("s3://bucket", s3_endpoint="http://127.0.0.1:9000/")
    assert isinstance(local, HttpSource) and local.base_url == "http://127.0.0.1:9000/bucket"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("s3:///v1", "has no bucket"),
        ("ftp://host/x", "unsupported source URL scheme"),
        ("", "empty"),
        ("/definitely/not/here", "neither an http"),
        ("file:///definitely/not/here", "not an existing directory"),
    ],
)
def test_source_from_url_rejects(value: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        source_from_url(value)


def test_source_from_url_rejects_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="is a file"):
        source_from_url(str(f))
