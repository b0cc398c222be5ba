"""A ``zarr build`` killed at any of its metadata writes is completed by a rerun, to the byte.

The random SIGKILLs of ``test_zarr_faults`` land mostly in the shard writes (most of a build's
time); the metadata phase (root, zone groups, arrays, resizes, coordinates, attributes, the shard
record, consolidation) takes milliseconds, and a kill there once left a store a rerun could not
finish. Here every one of those writes is the moment of a simulated kill, in turn: the write
leaves zarr-python's temporary cut short, as a killed process would, and the build stops. A
plain rerun must then give the reference store: same values, attributes, shards; no temporary.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
import zarr.storage._local as zarr_local

from geotessera.datasets import DatasetId
from geotessera.sample.build import build_store
from geotessera.store import GeoTesseraZarr, build_zarr
from support.killpoints import count_moments, run_killed_at

DS = DatasetId.parse("v1")
BBOX = (5.8, 51.9, 6.2, 52.1)  # both sides of the zone 31/32 seam at 6 E
POINTS = np.array([[5.85, 51.95], [5.95, 52.05], [6.05, 51.95], [6.15, 52.05]])


class Killed(Exception):
    """The simulated SIGKILL (the test catches it; the build has no handler that would tidy up)."""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zarr_kills_sample")
    build_store(root, bbox=BBOX, years=(2023, 2024), versions=("v1",), pixel_size_m=100.0, edge_tiles=False)
    return root


@pytest.fixture(scope="module")
def references(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``first``: a new store of 2023; ``grown``: that store after a second build adds 2024."""
    base = tmp_path_factory.mktemp("zarr_kills_ref")
    first, grown = base / "first.zarr", base / "grown.zarr"
    build_zarr(sample, first, dataset=DS, years=[2023], workers=1)
    shutil.copytree(first, grown)
    build_zarr(sample, grown, dataset=DS, years=[2024], workers=1)
    return {"first": first, "grown": grown}


class _KillAt:
    """Counts zarr-python's object writes; at write number ``at`` leaves half the temporary and
    raises :class:`Killed` (``at=None``: only count)."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.writes = 0
        self.paths: list[Path] = []
        self._put = zarr_local._put

    def __call__(self, path: Path, value: Any, exclusive: bool = False) -> int:
        self.writes += 1
        self.paths.append(path)
        if self.writes == self.at:
            data = bytes(value.as_buffer_like())
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(f".{uuid.uuid4().hex}.partial").write_bytes(data[: len(data) // 2])
            raise Killed(f"killed at zarr write {self.at}: {path}")
        return self._put(path, value, exclusive=exclusive)


@pytest.fixture
def kill_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def install(at: int | None) -> _KillAt:
        killer = _KillAt(at)
        monkeypatch.setattr(zarr_local, "_put", killer)
        return killer

    yield install


def _values(store: Path, year: int) -> np.ndarray:
    with GeoTesseraZarr(store) as gz:
        return gz.sample_points(POINTS, year, search_px=0)


def _files(store: Path) -> dict[str, bytes]:
    return {
        p.relative_to(store).as_posix(): p.read_bytes()
        for p in store.rglob("*")
        if p.is_file() and "c" in p.relative_to(store).parts  # chunk and shard objects
    }


def _assert_same_store(store: Path, reference: Path, years: tuple[int, ...]) -> None:
    for year in years:
        np.testing.assert_array_equal(_values(store, year), _values(reference, year))
    built, ref = zarr.open_group(store, mode="r"), zarr.open_group(reference, mode="r")
    assert dict(built.attrs) == dict(ref.attrs)
    assert sorted(built.group_keys()) == sorted(ref.group_keys())
    for zone in ref.group_keys():
        assert dict(built[zone].attrs) == dict(ref[zone].attrs)
        assert sorted(built[zone].array_keys()) == sorted(ref[zone].array_keys())
        for name in ref[zone].array_keys():
            a, b = built[f"{zone}/{name}"], ref[f"{zone}/{name}"]
            assert a.shape == b.shape, f"{zone}/{name}"
            assert dict(a.attrs) == dict(b.attrs), f"{zone}/{name}"
            if name not in ("embeddings", "scales"):
                np.testing.assert_array_equal(a[:], b[:], err_msg=f"{zone}/{name}")
    got, want = _files(store), _files(reference)
    assert got.keys() == want.keys() and all(got[k] == want[k] for k in want)
    assert not list(store.rglob("*.partial")) and not list(store.rglob(".*.part"))


@pytest.mark.parametrize("case", ["first", "grown"])
def test_a_build_killed_at_each_metadata_write_is_finished_by_a_rerun(
    case: str, sample: Path, references: dict[str, Path], tmp_path: Path, kill_at: Any
) -> None:
    """``first``: a build into a new store; ``grown``: a build adding a year to a store (resizes,
    the time axis, coordinates, attributes and the shard record of existing arrays)."""
    years = (2023,) if case == "first" else (2023, 2024)
    build_year = 2023 if case == "first" else 2024

    def start(store: Path) -> None:
        if case == "grown":
            shutil.copytree(references["first"], store)

    counting = kill_at(None)
    start(tmp_path / "count.zarr")
    build_zarr(sample, tmp_path / "count.zarr", dataset=DS, years=[build_year], workers=1)
    n_writes = counting.writes
    assert n_writes >= 10  # the phase under test is there at all
    for at in range(1, n_writes + 1):
        store = tmp_path / f"{case}-{at}.zarr"
        start(store)
        kill_at(at)
        with pytest.raises(Killed):
            build_zarr(sample, store, dataset=DS, years=[build_year], workers=1)
        kill_at(None)
        build_zarr(sample, store, dataset=DS, years=[build_year], workers=1)
        _assert_same_store(store, references[case], years)
        shutil.rmtree(store)


def test_a_rerun_killed_while_removing_a_zone_cut_short_is_finished_by_the_next(
    sample: Path, references: dict[str, Path], tmp_path: Path, kill_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first kill leaves zone group utm31 with some arrays but no attributes; the rerun removes
    it to make it again, and is itself killed once that removal took the group's ``zarr.json``
    but not its arrays (``shutil.rmtree`` goes in directory order). The next rerun must not find
    an array in the way of the group it makes."""
    store = tmp_path / "twice.zarr"
    killer = kill_at(None)
    build_zarr(sample, tmp_path / "count.zarr", dataset=DS, years=[2023], workers=1)
    at = 1 + killer.paths.index(tmp_path / "count.zarr" / "utm31" / "scales" / "zarr.json")
    kill_at(at)
    with pytest.raises(Killed):
        build_zarr(sample, store, dataset=DS, years=[2023], workers=1)
    kill_at(None)
    assert (store / "utm31" / "embeddings" / "zarr.json").is_file()

    def rmtree_cut_short(path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path, "zarr.json").unlink()
        raise Killed(f"killed while removing {path}")

    with monkeypatch.context() as m:
        m.setattr(shutil, "rmtree", rmtree_cut_short)
        with pytest.raises(Killed):
            build_zarr(sample, store, dataset=DS, years=[2023], workers=1)
    assert not (store / "utm31" / "zarr.json").exists() and (store / "utm31" / "embeddings").is_dir()
    build_zarr(sample, store, dataset=DS, years=[2023], workers=1)
    _assert_same_store(store, references["first"], (2023,))


@pytest.mark.slow
def test_a_build_killed_at_each_shard_and_receipt_moment_is_finished_by_a_rerun(
    sample: Path, references: dict[str, Path], tmp_path: Path
) -> None:
    """The shard phase, by real SIGKILLs (``support.killpoints``): just before and after each
    shard's and each receipt's rename into place, and before each unlink. After every kill each
    shard at a final path is the reference's; a plain rerun gives the reference store."""
    store, scratch = tmp_path / "v1.zarr", tmp_path / "scratch"
    args = ["zarr", "build", str(sample), str(store), "--dataset-version", "v1", "--years", "2023"]
    args += ["--workers", "1"]
    trace = count_moments(args, scratch).trace
    # zarr-python's writes (its *.partial unlinks among them) are the metadata phase, killed
    # in-process at each write above: here the shards and receipts of geotessera.files
    moments = [at for at, what in enumerate(trace, 1) if not what.endswith(".partial")]
    assert len(moments) >= 16  # two zones: a shard of each array and its receipt, before and after
    want = _files(references["first"])
    for at in moments:
        shutil.rmtree(store)
        run = run_killed_at(args, at, scratch)
        where = f"killed at moment {at} of {len(trace)}, {run.moment}"
        assert run.killed, f"moment {at} never came (exit {run.code}): {run.log}"
        got = {k: v for k, v in _files(store).items() if not k.endswith(".part")}  # final paths
        assert [k for k in got if got[k] != want.get(k)] == [], where
        rerun = run_killed_at(args, None, scratch)
        assert rerun.code == 0, f"{where}; the rerun failed: {rerun.log}"
        try:
            _assert_same_store(store, references["first"], (2023,))
        except AssertionError as exc:
            raise AssertionError(f"{where}; after the rerun: {exc}") from exc
