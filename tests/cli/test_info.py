"""`geotessera info`: the dataset summary and `--tiles` on directories and single files."""

from __future__ import annotations

import re
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


def test_info_tiles_table_fits_80_columns(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    out = tmp_path / "o"
    src = ["--base-url", s3_endpoint.base_url, "--cache-dir", str(tmp_path / "c")]
    for args in (["--tile", "6.05,45.05", "-f", "npy"], ["--bbox", "0.0,52.0,0.2,52.1"]):
        r = CliRunner().invoke(cli, ["download", *args, "--year", "2024", "-o", str(out), *src])
        assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(cli, ["info", "--tiles", str(out)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("embedding", "geotiff")]
    assert len(rows) == 2
    for row in rows:  # every cell on its one line: nothing wrapped or cut
        assert re.fullmatch(r"\d+(-\d+)? x \d+(-\d+)?", " ".join(row[4:7])), row
        assert row[-2].startswith(("EPSG:", "-")) and re.fullmatch(r"\d+\.\d", row[-1]), row
    landmask = next(line for line in lines if line.startswith("landmask"))
    assert "EPSG:32631 +1" in landmask  # two zones (31 and 32) said compactly
