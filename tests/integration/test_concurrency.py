"""Two downloads into one directory at once: both finish (exit 0) and the result is right.

Each process writes under its own temporary names and converts a tile under a lock of the
tile's directory; the second to convert finds the GeoTIFF done, and the sidecar's
read-modify-write is locked, so it lists every tile whoever wrote it last.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from geotessera.sample.serve import SampleServer
from support.outputs import assert_complete, download_args, run_together


@pytest.mark.parametrize("fmt", ["tiff", "npy"])
def test_two_concurrent_downloads_into_one_directory_both_succeed(
    fmt: str, s3_endpoint: SampleServer, tiny_store: Path, tiff_reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    runs = run_together(
        *(download_args(out, s3_endpoint.base_url, tmp_path / f"cache{i}", fmt) for i in range(2))
    )
    for code, err in runs:
        assert code == 0, err
    assert_complete(out, tiny_store, fmt, tiff_reference)
