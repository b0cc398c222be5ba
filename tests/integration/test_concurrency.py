"""Two downloads into one directory at once: both finish (exit 0) and the result is right.

Each process writes under its own temporary names and converts a tile under a lock of the
tile's directory; the second to convert finds the GeoTIFF done, and the sidecar's
read-modify-write is locked, so it lists every tile whoever wrote it last.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geotessera.sample.serve import SampleServer
from support.killpoints import count_moments, run_beside_stopped
from support.outputs import assert_complete, download_args, run_together

WAITING = "waiting for another process writing"
"""What a download logs (-v) when it waits for a lock another process holds."""


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


@pytest.mark.slow
def test_a_download_stopped_at_each_moment_while_another_runs_into_its_directory(
    s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path
) -> None:
    """The windows of two downloads into one directory (and one manifest cache), each in turn:
    download A stops at one of its file-system moments (``support.killpoints``), download B runs
    meanwhile until it ends or waits for a lock A holds, then A goes on. Both must exit 0 with
    the result an uninterrupted run makes, and no temporary left."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["download", "-o", str(out), "--bbox", "0.0,52.0,0.2,52.1", "-f", "tiff", "--bands", "0,1,2"]
    args += ["--base-url", s3_endpoint.base_url, "--cache-dir", str(cache), "-v"]
    moments = count_moments(args, tmp_path / "count").moments
    reference = tmp_path / "reference"
    out.rename(reference)
    for at in range(1, moments + 1):
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache)
        ran_a, ran_b = run_beside_stopped(args, at, args, tmp_path, waits=WAITING)
        assert ran_a.moment, f"download A never came to moment {at} of {moments}: {ran_a.log}"
        where = f"A stopped at moment {at} of {moments}, {ran_a.moment}"
        assert ran_a.code == 0 and ran_b.code == 0, f"{where}:\nA: {ran_a.log}\nB: {ran_b.log}"
        try:
            assert_complete(out, tiny_store, "tiff", reference, n_tiles=2)
            assert sorted(cache.rglob("*.part")) == []
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}\nA: {ran_a.log}\nB: {ran_b.log}") from exc
