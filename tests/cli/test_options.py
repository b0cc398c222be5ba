"""Shared option parsing: one --year/--years parser, --format aliases, bounds before ranges, help text."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.cli import cli
from geotessera.cli.options import YEAR_RANGE, parse_int_list, parse_years
from geotessera.pipeline import normalize_format


@pytest.mark.parametrize(
    ("values", "years"),
    [
        (["2024"], [2024]),
        (["2023,2024"], [2023, 2024]),
        (["2017-2020"], [2017, 2018, 2019, 2020]),
        (["2024", "2023"], [2023, 2024]),  # repeated
        (["2023-2024", "2024,2017"], [2017, 2023, 2024]),
        ([" 2023 , 2024 "], [2023, 2024]),
    ],
)
def test_years_take_every_form(values: list[str], years: list[int]) -> None:
    assert parse_years(values) == years


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(2000, 2030), st.integers(0, 5)), min_size=1, max_size=5))
def test_years_parser_is_the_union_of_its_parts(parts: list[tuple[int, int]]) -> None:
    texts = [f"{a}-{a + n}" if n else str(a) for a, n in parts]
    want = sorted({y for a, n in parts for y in range(a, a + n + 1)})
    assert parse_years(texts) == want
    assert parse_years([",".join(texts)]) == want


@pytest.mark.parametrize("text", ["1-999999999", "2024-99999999999", "999999999", "0-2024", "2024,3000"])
def test_years_out_of_range_are_refused_before_expanding(text: str) -> None:
    with pytest.raises(click.BadParameter, match=rf"outside {YEAR_RANGE[0]}\.\.{YEAR_RANGE[1]}"):
        parse_years([text])


def test_bands_out_of_range_are_refused_before_expanding() -> None:
    with pytest.raises(click.BadParameter, match=r"band index 999999999 is outside 0\.\.127"):
        parse_int_list("0-999999999", "--bands", bounds=(0, 127), what="band index")


@pytest.mark.parametrize(
    "args",
    [
        ["download", "--tile", "0.15,52.05", "-o", "o", "--year", "1-999999999"],
        ["download", "--tile", "0.15,52.05", "-o", "o", "--years", "2024-99999999"],
        ["download", "--tile", "0.15,52.05", "-o", "o", "--bands", "0-999999999"],
        ["zarr", "build", ".", "z", "--years", "1-999999999"],
        ["sample", "build", "s", "--years", "2024-99999999"],
    ],
)
def test_huge_ranges_are_usage_errors_at_once(args: list[str], tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: ") and "is outside" in line


def test_zarr_build_takes_the_same_year_forms(
    tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geotessera.store as store

    seen: list[object] = []

    def fake_build(*args: object, **kwargs: object) -> object:
        seen.append(kwargs["years"])
        raise click.ClickException("stop here")

    monkeypatch.setattr(store, "build_zarr", fake_build, raising=False)
    for years in (["--years", "2023,2024"], ["--years", "2023", "--years", "2024"], ["--year", "2023-2024"]):
        r = CliRunner().invoke(cli, ["zarr", "build", str(tiny_store), str(tmp_path / "z"), *years])
        assert r.exit_code == 1 and "stop here" in r.stderr, r.stderr
    assert seen == [[2023, 2024]] * 3


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("tiff", "tiff"),
        ("TIFF", "tiff"),
        ("tif", "tiff"),
        ("GeoTIFF", "tiff"),
        ("gtiff", "tiff"),
        ("npy", "npy"),
        ("NPY", "npy"),
        ("numpy", "npy"),
        (" Npy ", "npy"),
    ],
)
def test_format_aliases(text: str, fmt: str) -> None:
    assert normalize_format(text) == fmt


def test_format_option_accepts_aliases_and_names_them_when_wrong(s3_endpoint: object, tmp_path: Path) -> None:
    base = ["download", "--tile", "0.15,52.05", "-o", str(tmp_path / "o"), "--dry-run"]
    src = ["--base-url", s3_endpoint.base_url, "--cache-dir", str(tmp_path / "c")]  # type: ignore[attr-defined]
    for fmt in ("TIFF", "geotiff", "NPY"):
        r = CliRunner().invoke(cli, [*base, "--format", fmt, *src])
        assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(cli, [*base, "-f", "png", *src])
    assert r.exit_code == 2 and "choose tiff (also tif, geotiff) or npy" in r.stderr


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = []
    for name, cmd in group.commands.items():
        out.append(((*path, name), cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, (*path, name)))
    return out


def test_the_version_example_reads_the_same_in_every_help() -> None:
    helps = {}
    for path, cmd in _commands(cli):
        for param in cmd.params:
            if isinstance(param, click.Option) and "version" in param.name and param.help:  # type: ignore[operator]
                helps[(" ".join(path), param.opts[0])] = param.help
    assert len(helps) >= 4  # download, info, registry build, zarr build, sample build
    odd = {k: v for k, v in helps.items() if "e.g. v1, v1.1" not in v}
    assert not odd, odd


def test_the_command_list_is_never_cut() -> None:
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    listed = r.stdout.split("Commands:", 1)[1]
    assert "..." not in listed
    for name, cmd in cli.commands.items():
        first = (cmd.help or "").split(".")[0].split()
        assert re.search(r"\s+".join(map(re.escape, first)), listed), name


def test_info_options_that_do_nothing_are_gone_or_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["info", "--workers", "2"])
    assert r.exit_code == 2 and "No such option" in r.stderr
    r = CliRunner().invoke(cli, ["info", "--list-files"])
    assert r.exit_code == 2 and "--list-files lists the files of --tiles" in r.stderr
    (tmp_path / "t").mkdir()
    r = CliRunner().invoke(cli, ["info", "--tiles", str(tmp_path / "t"), "--dataset-version", "v1.1"])
    assert r.exit_code == 2 and "--dataset-version does not apply to --tiles" in r.stderr
    r = CliRunner().invoke(cli, ["info", "--tiles", str(tmp_path / "t"), "--offline", "--base-url", "x"])
    assert r.exit_code == 2 and "--base-url, --offline do not apply to --tiles" in r.stderr
