"""`geotessera info`: the dataset summary and `--tiles` on directories and single files."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from geotessera.cli import cli
from geotessera.sample.serve import SampleServer


def test_info_summarises_the_dataset(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["info", "--base-url", s3_endpoint.base_url, "--cache-dir", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    assert "years: 2023, 2024; total tiles: 31" in r.stdout
    assert "variant vultr" in r.stdout


def test_info_tiles_counts_bands_and_flags_corrupt_files(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = [
        "download",
        "--tile",
        "0.15,52.05",
        "-o",
        str(out),
        "--base-url",
        s3_endpoint.base_url,
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert CliRunner().invoke(cli, [*args, "--bands", "0,1,2"]).exit_code == 0
    r = CliRunner().invoke(cli, ["info", "--tiles", str(out), "--list-files"])
    assert r.exit_code == 0, r.stderr
    rows = [ln.split("\t") for ln in r.stdout.splitlines() if "\t" in ln]
    tiff = [row for row in rows if row[1] == "geotiff"]
    assert len(tiff) == 1 and tiff[0][2] == "2024" and tiff[0][3] == "3"  # the true band count
    one = CliRunner().invoke(cli, ["info", "--tiles", tiff[0][0]])
    assert one.exit_code == 0 and "1 files, 1 GeoTIFF" in one.stdout
    (out / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    r = CliRunner().invoke(cli, ["info", "--tiles", str(out)])
    assert r.exit_code == 1 and "corrupt file" in r.stderr and "broken.npy" in r.stderr
    r = CliRunner().invoke(cli, ["info", "--tiles", str(tmp_path / "c")])
    assert r.exit_code == 2 and "no GeoTIFF or .npy tile files" in r.stderr
