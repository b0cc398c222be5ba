"""Commands killed at each of their file-system moments, in turn, are finished by a plain rerun.

``test_kill.py`` kills downloads at random moments: they land in the transfers, and only by luck
in the milliseconds of the manifest cache, the sidecar, a receipt, a GeoTIFF's rename, its export
record or the removal of the quantised arrays. Here every one of those moments is the moment of
a SIGKILL, in turn (``support.killpoints``): of a download (npy, tiff), a ``sample build`` and a
``registry build``. After each kill nothing wrong may sit at a final path, and a plain rerun
must end with what an uninterrupted run makes, leaving no temporary behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from geotessera.sample.serve import SampleServer
from support.killpoints import Run, count_moments, run_killed_at
from support.outputs import assert_complete, check_final_paths

BBOX = "0.0,52.0,0.2,52.1"
"""Two tiles (grid_0.05_52.05, grid_0.15_52.05)."""
TIFF_BANDS = "0,1,2"
"""GeoTIFFs of three bands: the same steps as 128, a fortieth of the conversion time."""


def _names(root: Path) -> list[str]:
    """Every file under ``root``, hidden ones too (receipts, records; any leftover)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _killed(args: list[str], at: int, moments: int, scratch: Path) -> str:
    """Run ``args`` killed at moment ``at``; returns the words that say where."""
    run = run_killed_at(args, at, scratch)
    assert run.killed, f"moment {at} of {moments} never came (exit {run.code}): {run.log}"
    return f"killed at moment {at} of {moments}, {run.moment}"


def _rerun(args: list[str], where: str, scratch: Path) -> Run:
    run = run_killed_at(args, None, scratch)
    assert run.code == 0, f"{where}; the rerun failed: {run.log}"
    return run


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "tiff"])
def test_a_download_killed_at_each_moment_is_finished_by_a_rerun(
    fmt: str, s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path
) -> None:
    out, cache, scratch = tmp_path / "out", tmp_path / "cache", tmp_path / "scratch"
    args = ["download", "-o", str(out), "--bbox", BBOX, "-f", fmt, "--base-url", s3_endpoint.base_url]
    args += ["--cache-dir", str(cache), *(["--bands", TIFF_BANDS] if fmt == "tiff" else [])]
    moments = count_moments(args, scratch).moments
    assert moments >= 30  # the cache, the sidecar, the files, their receipts (and the GeoTIFFs)
    reference, cached = tmp_path / "reference", tmp_path / "cached"
    out.rename(reference)  # the GeoTIFFs of an uninterrupted run (npy files equal the store's)
    cache.rename(cached)
    for at in range(1, moments + 1):
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        where = _killed(args, at, moments, scratch)
        try:
            check_final_paths(out, tiny_store, reference)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from exc
        rerun = _rerun(args, where, scratch)
        try:
            assert_complete(out, tiny_store, fmt, reference, n_tiles=2)
            assert _names(out) == _names(reference)  # nothing left over, not even a hidden file
            assert _names(cache) == _names(cached)
        except AssertionError as exc:
            raise AssertionError(f"{where}; after the rerun: {exc}\n{rerun.log}") from exc


SMALL = ["--versions", "v1", "--pixel-size", "500", "--no-edge-tiles"]
SAMPLE = ["--bbox", "0.0,52.0,0.1,52.1", "--years", "2024", *SMALL]
"""One tile of one year: every kind of file a sample store holds, in a tenth of a second."""
OLD_SAMPLE = ["--bbox", "0.0,52.0,0.2,52.1", "--years", "2022,2023", *SMALL]
"""A store built before with other options: a rebuild over it removes what it no longer holds."""


def _store_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (temporaries too) by its path relative to ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _final_files(root: Path) -> dict[str, bytes]:
    return {rel: data for rel, data in _store_files(root).items() if not rel.endswith(".part")}


def _checksums(root: Path) -> dict[str, str]:
    """Each file's CRC64NVMe in ``sample_checksums.json`` (its times are the files' own)."""
    files = json.loads((root / "sample_checksums.json").read_text())["files"]
    return {rel: entry[3] for rel, entry in files.items()}


def _assert_same_store(root: Path, reference: Path, *, final: bool = False) -> None:
    """``root`` holds what ``reference`` does (with ``final``: at its final paths)."""
    got, want = (_final_files if final else _store_files)(root), _store_files(reference)
    assert sorted(got) == sorted(want)
    del got["sample_checksums.json"], want["sample_checksums.json"]
    assert [k for k in want if got[k] != want[k]] == []
    assert _checksums(root) == _checksums(reference)


@pytest.mark.parametrize("case", ["new", "rebuild"])
def test_a_sample_build_killed_at_each_moment_is_finished_by_a_rerun(case: str, tmp_path: Path) -> None:
    """After every kill each file at a final path is the reference's or the old store's, and a
    store whose marker says ``complete`` is the reference, whole (``make demo`` skips the build
    of such a store); a plain rerun ends with the reference store."""
    root, old, scratch = tmp_path / "store", tmp_path / "old", tmp_path / "scratch"
    args = ["sample", "build", str(root), *SAMPLE]
    moments = count_moments(args, scratch).moments
    reference = tmp_path / "reference"
    root.rename(reference)
    if case == "rebuild":
        assert run_killed_at(["sample", "build", str(old), *OLD_SAMPLE], None, scratch).code == 0
        moments = count_moments(_start(old, root, args), scratch).moments
    want, before = _store_files(reference), _store_files(old) if old.exists() else {}
    for at in range(1, moments + 1):
        where = _killed(_start(old, root, args), at, moments, scratch)
        try:
            for rel, data in _final_files(root).items():
                if rel not in ("sample_store.json", "sample_checksums.json"):
                    assert data in (want.get(rel), before.get(rel)), f"{rel} is neither the old nor the new"
            marker = root / "sample_store.json"
            if marker.exists() and json.loads(marker.read_text())["complete"]:
                is_old = marker.read_bytes() == before.get("sample_store.json")
                _assert_same_store(root, old if is_old else reference, final=True)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from exc
        rerun = _rerun(args, where, scratch)
        try:
            _assert_same_store(root, reference)
        except AssertionError as exc:
            raise AssertionError(f"{where}; after the rerun: {exc}\n{rerun.log}") from exc


def _start(old: Path, root: Path, args: list[str]) -> list[str]:
    """``args``, after putting the starting store in place: none, or a copy of ``old``."""
    shutil.rmtree(root, ignore_errors=True)
    if old.exists():
        shutil.copytree(old, root)
    return args


def test_a_registry_build_killed_at_each_moment_is_finished_by_a_rerun(tmp_path: Path) -> None:
    store, out, scratch = tmp_path / "store", tmp_path / "out", tmp_path / "scratch"
    assert run_killed_at(["sample", "build", str(store), *SAMPLE], None, scratch).code == 0
    args = ["registry", "build", str(store), "-o", str(out)]
    moments = count_moments(args, scratch).moments
    assert moments >= 4  # manifest.parquet and landmasks.parquet
    reference = tmp_path / "reference"
    out.rename(reference)
    names = ("manifest.parquet", "landmasks.parquet")
    for at in range(1, moments + 1):
        shutil.rmtree(out, ignore_errors=True)
        where = _killed(args, at, moments, scratch)
        for name in names:  # whole or absent
            if (out / name).exists():
                assert pq.read_table(out / name).equals(pq.read_table(reference / name)), f"{where}: {name}"
        _rerun(args, where, scratch)
        assert sorted(p.name for p in out.iterdir()) == sorted(names), where
        for name in names:
            assert (out / name).read_bytes() == (reference / name).read_bytes(), f"{where}: {name}"


def test_a_visualize_killed_at_each_moment_leaves_nothing_a_rerun_does_not_clear(
    tiny_store: Path, tmp_path: Path
) -> None:
    """visualize draws into a work directory beside its output (a scratch canvas: gigabytes for
    a large region); killed at any moment, the rerun must end with the mosaic and quick-look of
    an uninterrupted run and nothing else in the output's directory."""
    tiles, out, scratch = tmp_path / "tiles", tmp_path / "out", tmp_path / "scratch"
    for cell in ("grid_0.05_52.05", "grid_0.15_52.05"):
        src = tiny_store / "v1" / "global_0.1_degree_representation" / "2024" / cell
        shutil.copytree(src, tiles / "global_0.1_degree_representation" / "2024" / cell)
        lm = tiny_store / "v1" / "global_0.1_degree_tiff_all" / f"{cell}.tiff"
        (tiles / "global_0.1_degree_tiff_all").mkdir(exist_ok=True)
        shutil.copy(lm, tiles / "global_0.1_degree_tiff_all" / lm.name)
    args = ["visualize", str(tiles), str(out / "mosaic.tif")]
    moments = count_moments(args, scratch).moments
    assert moments >= 4  # the mosaic and its quick-look, before and after their renames
    reference = tmp_path / "reference"
    out.rename(reference)
    want = _store_files(reference)
    for at in range(1, moments + 1):
        shutil.rmtree(out, ignore_errors=True)
        where = _killed(args, at, moments, scratch)
        rerun = _rerun(args, where, scratch)
        got = _store_files(out)
        assert sorted(got) == sorted(want), f"{where}; after the rerun:\n{rerun.log}"
        assert [k for k in want if got[k] != want[k]] == [], where
