"""A disk that fills up during a download: each affected tile is reported, nothing broken is left
at a final path, the run exits 1, and once there is room a plain rerun completes.

The filesystem is a real tmpfs of a few MB (see ``support/small_fs.py``) where the tests run
as root, and ``RLIMIT_FSIZE`` (each file limited; writes past it fail with EFBIG) in both cases,
so the check after GDAL's writer, not only the space reserved before it, is exercised.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from geotessera.cli import cli
from geotessera.errors import OutputError
from geotessera.sample.serve import SampleServer
from support.outputs import (
    N_TILES,
    assert_complete,
    check_final_paths,
    download_args,
    run_cli,
    temporaries,
    tile_outputs,
)
from support.small_fs import small_filesystem, tmpfs_possible

SIZE_MB = {"tmpfs": 22, "fsize": 3}
"""tmpfs: the quantised tiles fit, a few GeoTIFFs beside them; fsize: no GeoTIFF fits in a file."""
_TILE = re.compile(r"grid_-?\d+\.\d+_-?\d+\.\d+/2024")


@pytest.mark.parametrize("kind", ["tmpfs", "fsize"])
def test_a_full_disk_fails_each_affected_tile_and_a_rerun_completes(
    kind: str, s3_endpoint: SampleServer, tiny_store: Path, tiff_reference: Path, tmp_path: Path
) -> None:
    if kind == "tmpfs" and not tmpfs_possible():
        pytest.skip("mounting a tmpfs needs root and unshare; the fsize variant covers the rest")
    with small_filesystem(kind, tmp_path / "fs", SIZE_MB[kind]) as fs:
        args = download_args(fs.cli_path / "out", s3_endpoint.base_url, tmp_path / "cache", "tiff")
        out = fs.view / "out"
        first = run_cli(args, prefix=fs.prefix, preexec_fn=fs.preexec_fn)
        assert first.returncode == 1, first.stderr
        report = first.stderr[first.stderr.index("output:") :]
        failed = set(_TILE.findall(report))
        done = {f"{p.parent.name}/2024" for p in tile_outputs(out, "tiff")}
        assert failed and not failed & done and len(failed | done) == N_TILES, (failed, done, report)
        if kind == "tmpfs":
            assert re.search("disk (is )?full", report), report
        check_final_paths(out, tiny_store, tiff_reference)  # no empty or cut-short GeoTIFF
        assert temporaries(out) == []
        assert "Traceback" not in first.stderr and "unexpected" not in first.stderr
        fs.grow()
        second = run_cli(args, prefix=fs.prefix, preexec_fn=fs.preexec_fn)
        assert second.returncode == 0, second.stderr
        assert_complete(out, tiny_store, "tiff", tiff_reference)


def test_a_sidecar_that_cannot_be_written_still_reports_the_tiles(
    s3_endpoint: SampleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geotessera.pipeline as pipeline

    real = pipeline.write_sidecar

    def full_at_the_end(out_dir: Path, dataset: object, *, tiles: list[str], **kw: object) -> Path:
        if tiles:  # the claim before the run works; the record after it meets a full disk
            raise OutputError(
                f"disk full ({errno.errorcode[errno.ENOSPC]}) writing {out_dir}/tessera_metadata.json"
            )
        return real(out_dir, dataset, tiles=tiles, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "write_sidecar", full_at_the_end)
    args = download_args(tmp_path / "out", s3_endpoint.base_url, tmp_path / "cache", "npy")
    result = CliRunner().invoke(cli, [*args[:3], "--tile", "0.15,52.05", *args[5:]])
    assert result.exit_code == 1, result.stderr
    assert "1 tile done" in result.stderr  # the per-tile outcome is still said...
    assert "tessera_metadata.json" in result.stderr  # ...and so is what failed after it
    assert "Traceback" not in result.stderr
