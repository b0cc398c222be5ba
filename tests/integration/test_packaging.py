"""Wheels and sdists built from a clean checkout carry every run-time asset, or fail saying why.

A clean checkout is what a fresh clone holds: the files git knows (tracked, or new and not
ignored), without ``src/geotessera/_data/`` or ``assets/node_modules/``. Builds use the test
environment's setuptools (``--no-isolation``), so nothing but npm packages is fetched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _clean_checkout(dest: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        src = REPO / os.fsdecode(name)
        if src.is_file():  # (a file deleted but not yet committed is skipped)
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(name))
    assert not (dest / "src" / "geotessera" / "_data").exists()
    assert not (dest / "assets" / "node_modules").exists()
    return dest


def _build(
    src: Path, out: Path, kind: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", f"--{kind}", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def _asset_names() -> list[str]:
    spec = json.loads((REPO / "assets" / "assets.json").read_text())
    return [entry["to"] for entry in spec["files"]] + ["ASSETS.json"]


def _check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for asset in _asset_names():
            assert f"geotessera/_data/{asset}" in names, f"{asset} missing from {wheel.name}"
            assert z.getinfo(f"geotessera/_data/{asset}").file_size > 0
        codes = json.loads(z.read("geotessera/_data/country-codes.json"))
        rows = {row[0]: row for row in codes["countries"]}
        assert rows["GB"][1:3] == ["GBR", "826"] and "UK" in rows["GB"][3]
        assert len(rows) >= 240
        topo = json.loads(z.read("geotessera/_data/countries-10m.json"))
        assert len(topo["objects"]["countries"]["geometries"]) > 200


def test_wheel_from_a_clean_checkout_carries_every_asset(tmp_path: Path) -> None:
    src = _clean_checkout(tmp_path / "src")
    r = _build(src, tmp_path / "dist", "wheel")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("geotessera-*.whl")
    _check_wheel(wheel)


def test_sdist_carries_the_assets_and_their_inputs_so_its_wheel_needs_no_npm(tmp_path: Path) -> None:
    src = _clean_checkout(tmp_path / "src")
    r = _build(src, tmp_path / "dist", "sdist")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (sdist,) = (tmp_path / "dist").glob("geotessera-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
        t.extractall(tmp_path / "unpacked", filter="data")
    for asset in _asset_names():
        assert f"src/geotessera/_data/{asset}" in names
    for name in ("assets/package.json", "assets/package-lock.json", "assets/assets.json", "assets/build.py"):
        assert name in names
    (root,) = (tmp_path / "unpacked").iterdir()
    no_npm = {**os.environ, "PATH": str(tmp_path / "no-such-dir")}
    r = _build(root, tmp_path / "wheels", "wheel", env=no_npm)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = (tmp_path / "wheels").glob("geotessera-*.whl")
    _check_wheel(wheel)


def test_a_build_without_npm_or_assets_stops_and_says_why(tmp_path: Path) -> None:
    src = _clean_checkout(tmp_path / "src")
    no_npm = {**os.environ, "PATH": str(tmp_path / "no-such-dir")}
    r = _build(src, tmp_path / "dist", "wheel", env=no_npm)
    assert r.returncode != 0
    text = " ".join((r.stdout + r.stderr).split())
    assert "`npm` was not found" in text and "assets/package.json" in text
    assert not list((tmp_path / "dist").glob("*.whl"))
