"""A damaged Zarr store is reported, never read as wrong values; two builds into one store both finish.

Stores geotessera writes carry a crc32c checksum after every inner chunk (the Zarr v3 ``crc32c``
codec at the end of the inner chain) and record, per array, which shards hold data; the reader
checks both and raises :class:`CorruptDataError` naming the array and the chunk. Published stores
without them keep working (``checksums=False`` writes one).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from geotessera.datasets import DatasetId
from geotessera.errors import CorruptDataError, OutputError
from geotessera.sample.build import build_store
from geotessera.store import GeoTesseraZarr, build_zarr
from geotessera.store.shard_record import RECORD_ATTR
from support.outputs import run_cli, run_together, start_cli

DS = DatasetId.parse("v1")
BBOX = (5.8, 51.9, 6.2, 52.1)  # both sides of the zone 31/32 seam at 6 E
POINTS = np.array([[5.85, 51.95], [5.95, 52.05], [6.05, 51.95], [6.15, 52.05]])


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zarr_faults_sample")
    build_store(root, bbox=BBOX, years=(2024,), versions=("v1",), pixel_size_m=100.0, edge_tiles=False)
    return root


@pytest.fixture(scope="module")
def reference(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zarr_faults_ref") / "v1.zarr"
    build_zarr(sample, path, dataset=DS, workers=2)
    return path


def _copy(store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "v1.zarr"
    shutil.copytree(store, target)
    return target


def _values(store: Path) -> np.ndarray:
    with GeoTesseraZarr(store) as gz:
        return gz.sample_points(POINTS, 2024)


def _shard_chunks(shard: Path) -> list[tuple[int, int, int]]:
    """(linear index, offset, length) of the inner chunks a shard holds: 128 x 128 inner chunks
    of 32 x 32 pixels, an index of 16-byte entries at the end, then its crc32c."""
    data = shard.read_bytes()
    n = 128 * 128
    index = np.frombuffer(data[-(16 * n + 4) : -4], dtype="<u8").reshape(n, 2)
    return [(k, int(o), int(ln)) for k, (o, ln) in enumerate(index) if o != 2**64 - 1]


def _shards(store: Path, array: str, zone: int = 31) -> list[Path]:
    return sorted(p for p in (store / f"utm{zone}" / array / "c").rglob("*") if p.is_file())


@pytest.mark.parametrize("array", ["embeddings", "scales"])
def test_a_flipped_byte_inside_an_inner_chunk_is_reported(
    array: str, reference: Path, tmp_path: Path
) -> None:
    store = _copy(reference, tmp_path)
    shard = max(_shards(store, array), key=lambda p: p.stat().st_size)
    _, offset, length = max(_shard_chunks(shard), key=lambda c: c[2])
    data = bytearray(shard.read_bytes())
    data[offset + length // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with GeoTesseraZarr(store) as gz, pytest.raises(CorruptDataError, match=rf"utm31/{array}.*chunk"):
        gz.read_region((5.8, 51.9, 6.0, 52.1), 2024)


def test_a_deleted_shard_is_reported_not_read_as_fill(reference: Path, tmp_path: Path) -> None:
    store = _copy(reference, tmp_path)
    for shard in _shards(store, "embeddings"):
        shard.unlink()
    with GeoTesseraZarr(store) as gz, pytest.raises(CorruptDataError, match=r"utm31/embeddings.*missing"):
        gz.sample_points(POINTS, 2024)


def test_a_shard_of_water_only_is_not_recorded_and_reads_as_water(sample: Path, tmp_path: Path) -> None:
    """Zone 32's tiles turn to water (q = 0, scale NaN): its embeddings shard holds only fill, so
    the rebuild removes it and its record, and the points there read as water, without error."""
    source = tmp_path / "source"
    shutil.copytree(sample, source)
    store = tmp_path / "v1.zarr"
    build_zarr(source, store, dataset=DS, workers=2)
    assert _shards(store, "embeddings", zone=32)
    for emb in source.glob("v1/global_0.1_degree_representation/2024/grid_6.*/*[0-9].npy"):
        np.save(emb, np.zeros_like(np.load(emb)))
        scales = emb.with_name(emb.stem + "_scales.npy")
        np.save(scales, np.full_like(np.load(scales), np.nan))
    build_zarr(source, store, dataset=DS, workers=2)
    assert not _shards(store, "embeddings", zone=32) and _shards(store, "scales", zone=32)
    with GeoTesseraZarr(store) as gz:
        values, status = gz.sample_points(POINTS, 2024, return_status=True)
        region, _, _ = gz.read_region((6.01, 51.91, 6.19, 52.09), 2024)
    assert list(status) == ["valid", "valid", "water", "water"]
    assert region.size and np.isnan(region).all()
    assert np.isnan(values[2:]).all() and np.isfinite(values[:2]).all()


def test_a_store_without_checksums_keeps_working(sample: Path, reference: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.zarr"
    build_zarr(sample, plain, dataset=DS, workers=2, checksums=False)
    meta = (plain / "utm31" / "embeddings" / "zarr.json").read_text()
    assert "crc32c" not in meta.split('"index_codecs"')[0]  # a published store's inner chain
    np.testing.assert_array_equal(_values(plain), _values(reference))
    # zarr-python reads the checksummed chain: the fullest inner chunk of a shard, as we read it
    shard = max(_shards(reference, "embeddings"), key=lambda p: p.stat().st_size)
    k, _, _ = max(_shard_chunks(shard), key=lambda c: c[2])
    sr, sc = (int(p) for p in shard.parts[-2:])
    r, c = (32 * i for i in divmod(k, 128))
    arr = zarr.open_group(reference, mode="r")["utm31/embeddings"]
    block = arr[0, :, sr * 4096 + r : sr * 4096 + r + 32, sc * 4096 + c : sc * 4096 + c + 32]
    assert block.any()
    with GeoTesseraZarr(reference) as gz:
        zone = gz.zone(31)
        assert zone is not None and zone.embeddings.inner_crc


def test_zarr_build_no_checksums_writes_a_store_like_the_published_ones(sample: Path, tmp_path: Path) -> None:
    plain, checked = tmp_path / "plain.zarr", tmp_path / "checked.zarr"
    base = ["zarr", "build", str(sample)]
    assert run_cli([*base, str(plain), "--no-checksums"]).returncode == 0
    assert run_cli([*base, str(checked)]).returncode == 0
    for store, crc in ((plain, False), (checked, True)):
        for name in ("embeddings", "scales"):
            meta = json.loads((store / "utm31" / name / "zarr.json").read_text())
            inner = meta["codecs"][0]["configuration"]["codecs"]
            assert any(c["name"] == "crc32c" for c in inner) is crc, (store.name, name)
            assert (RECORD_ATTR in meta.get("attributes", {})) is crc, (store.name, name)
    np.testing.assert_array_equal(_values(plain), _values(checked))


def test_two_concurrent_zarr_builds_into_one_new_store_both_succeed(
    sample: Path, reference: Path, tmp_path: Path
) -> None:
    """Defect 8: two ``zarr build`` runs into one new store failed one of them in 6 of 8 trials
    (an invalid zone attribute, ``KeyError: 'scales'``, ``ContainsArrayError``). Three trials of
    two processes, both exit 0, and the store is the reference, to the byte."""
    for trial in range(3):
        store = tmp_path / f"v1-{trial}.zarr"
        build = ["zarr", "build", str(sample), str(store), "--dataset-version", "v1", "--workers", "1"]
        for code, err in run_together(build, build):
            assert code == 0, f"trial {trial}: {err}"
        _assert_same_store(store, reference)


def test_concurrent_builds_started_at_one_instant_all_succeed(
    sample: Path, reference: Path, tmp_path: Path
) -> None:
    """Processes start at moments a second apart (their imports), so two builds in threads of
    one process, released by a barrier, race harder: without the store lock, every one of eight
    such trials failed (a half-made group, an existing array, a store 'not a Zarr store')."""
    for trial in range(6):
        store = tmp_path / f"v1-{trial}.zarr"
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_build_at, args=(barrier, sample, store, errors)) for _ in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, f"trial {trial}: {errors!r}"
        _assert_same_store(store, reference)


def test_a_first_build_keeps_the_directory_its_lock_is_held_on(sample: Path, tmp_path: Path) -> None:
    """The store lock is a ``flock`` on the store directory itself. A first build once let
    zarr-python remove that directory and make a new one (``open_group(mode="w")``): another
    build could then lock the new directory while the first still wrote, and a thread creating
    the directory at that moment failed with 'File exists' (a CI run saw it)."""
    store = tmp_path / "v1.zarr"
    store.mkdir()
    fd = os.open(store, os.O_RDONLY)  # keeps the inode alive, so its number cannot be reused
    try:
        build_zarr(sample, store, dataset=DS, workers=1)
        before, after = os.fstat(fd), os.stat(store)
        assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
        assert before.st_nlink > 0 and (store / "zarr.json").is_file()
    finally:
        os.close(fd)


def _build_at(barrier: threading.Barrier, sample: Path, store: Path, errors: list[BaseException]) -> None:
    barrier.wait()
    try:
        build_zarr(sample, store, dataset=DS, workers=1)
    except BaseException as exc:  # the test reports any failure
        errors.append(exc)


def test_a_rerun_removes_zarr_temporaries_a_kill_left_moments_ago(
    sample: Path, reference: Path, tmp_path: Path
) -> None:
    """A build killed while zarr-python rewrote the metadata (its last step) leaves
    ``zarr.<uuid>.partial`` files seconds old; the rerun, finding every shard complete, must
    still remove them: they were once kept until ten minutes old, and the store kept them."""
    store = _copy(reference, tmp_path)
    leftovers = [
        store / "zarr.08498b20c64d4003adcb670cba66ef1e.partial",
        store / "utm31" / "embeddings" / "zarr.1f2e3d4c5b6a79880123456789abcdef.partial",
    ]
    for p in leftovers:
        p.write_bytes(b'{"zarr_format": 3, "node_ty')  # cut short, as a kill leaves it
    report = build_zarr(sample, store, dataset=DS, workers=1)
    assert report.shards_written == 0 and report.shards_skipped > 0
    assert not any(p.exists() for p in leftovers)
    _assert_same_store(store, reference)


def test_where_the_store_cannot_be_locked_a_fresh_zarr_temporary_is_left_alone(
    sample: Path, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a filesystem without locks (some network filesystems) builds run unlocked, so a fresh
    ``*.partial`` may be another build's metadata write in flight: removing it makes that write
    fail. Only one untouched for ten minutes is a leftover there."""
    import errno
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    store = _copy(reference, tmp_path)
    fresh = store / "utm31" / "zarr.5e1d2c3b4a5968778695a4b3c2d1e0f9.partial"
    old = store / "zarr.0f1e2d3c4b5a69788796a5b4c3d2e1f0.partial"
    for p in (fresh, old):
        p.write_bytes(b"{")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    build_zarr(sample, store, dataset=DS, workers=1)
    assert fresh.exists() and not old.exists()


def test_a_build_into_a_directory_that_is_no_store_removes_nothing_there(
    sample: Path, tmp_path: Path
) -> None:
    """The sweep of temporaries is for a store's own leftovers: pointed by mistake at a directory
    of other files (a downloads folder), the build refuses it and deletes none of them."""
    folder = tmp_path / "Downloads"
    files = [folder / "film.mkv.partial", folder / "sub" / "data.zip.partial", folder / "notes.txt"]
    for p in files:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"someone else's")
    with pytest.raises(OutputError, match="not a Zarr store"):
        build_zarr(sample, folder, dataset=DS, workers=1)
    assert all(p.exists() for p in files)


def test_a_first_build_killed_at_its_first_write_is_finished_by_a_rerun(
    sample: Path, reference: Path, tmp_path: Path
) -> None:
    """Killed while writing the root's metadata, a new store holds only zarr-python's temporary."""
    store = tmp_path / "v1.zarr"
    store.mkdir()
    (store / "zarr.2b3c4d5e6f708192a3b4c5d6e7f80910.partial").write_bytes(b'{"zarr_fo')
    build_zarr(sample, store, dataset=DS, workers=1)
    _assert_same_store(store, reference)


def test_a_preview_removes_zarr_temporaries_a_kill_left(reference: Path, tmp_path: Path) -> None:
    """The preview writes through zarr-python too, under the same store lock, and sweeps first."""
    from geotessera.store.write.preview import build_preview

    store = _copy(reference, tmp_path)
    leftover = store / "zarr.0a1b2c3d4e5f60718293a4b5c6d7e8f9.partial"
    leftover.write_bytes(b"{")
    build_preview(store, 2024, levels=2)
    assert not leftover.exists()
    assert not list(store.rglob("*.partial")) and not list(store.rglob(".*.part"))


def test_a_preview_killed_midway_is_no_preview_until_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuilding a preview removes the old one's chunks first; killed before the new one's
    attributes are written, the store must not go on announcing the old preview (its year, its
    colours) over levels now empty or half new: a reader finds none, and a rerun makes it."""
    from geotessera.store.write import preview

    build_store(
        tmp_path / "s",
        bbox=(5.80, 51.90, 5.84, 51.92),
        years=(2024,),
        versions=("v1",),
        pixel_size_m=100.0,
        edge_tiles=False,
    )
    store = tmp_path / "v1.zarr"
    build_zarr(tmp_path / "s", store, dataset=DS, workers=1)
    preview.build_preview(store, 2024, levels=2)
    with GeoTesseraZarr(store) as gz:
        bbox = gz.preview_info["bbox"]
        want = [gz.preview(bbox, level=lv) for lv in range(2)]
    assert all(w[..., 3].any() for w in want)

    def killed(*args: object) -> bool:
        raise KeyboardInterrupt  # the process stops here, between level 0 and level 1

    with monkeypatch.context() as m:
        m.setattr(preview, "_downsample", killed)
        with pytest.raises(KeyboardInterrupt):
            preview.build_preview(store, 2024, levels=2, seed=1)
    with GeoTesseraZarr(store) as gz:
        assert gz.preview_info is None
    preview.build_preview(store, 2024, levels=2)
    with GeoTesseraZarr(store) as gz:
        for lv in range(2):
            np.testing.assert_array_equal(gz.preview(bbox, level=lv), want[lv])


ZARR_KILLS = 8
"""SIGKILLs of ``zarr build`` at random moments (downloads take 24 in tests/integration/test_kill.py)."""


@pytest.mark.slow
def test_sigkill_of_a_zarr_build_at_random_moments_then_rerun(
    sample: Path, reference: Path, tmp_path: Path
) -> None:
    """After every kill each shard at a final path is the reference's, to the byte, and the
    store's metadata parses; a plain rerun ends with the reference store and no temporary."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    store = tmp_path / "v1.zarr"
    args = ["zarr", "build", str(sample), str(store), "--dataset-version", "v1", "--workers", "1"]
    arrays = [(zone, name) for zone in ("utm31", "utm32") for name in ("embeddings", "scales")]
    want = {a: _chunk_files(reference.joinpath(*a)) for a in arrays}
    kills = runs = 0
    while kills < ZARR_KILLS:
        runs += 1
        assert runs <= 4 * ZARR_KILLS, (
            f"only {kills} of {runs} runs were still going when killed (seed {seed})"
        )
        proc = start_cli(args)
        moment = rng.uniform(0.3, 2.5)  # start-up, then the build (about 2 s)
        try:
            code = proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills += 1
        else:
            assert code == 0, f"run {runs} failed on its own (seed {seed})"
            shutil.rmtree(store)  # it finished: start over, so the next kills land mid-work
            continue
        for meta in store.rglob("zarr.json"):
            json.loads(meta.read_text())  # whole, never cut short
        for zone, name in arrays:
            got = _chunk_files(store / zone / name) if (store / zone / name).is_dir() else {}
            wrong = [k for k, v in got.items() if v != want[zone, name].get(k)]
            assert not wrong, f"after kill {kills} at {moment:.2f} s (seed {seed}): {zone}/{name} {wrong}"
    done = run_cli(args)
    assert done.returncode == 0, f"{done.stderr} (seed {seed})"
    _assert_same_store(store, reference)


def _assert_same_store(store: Path, reference: Path) -> None:
    """``store`` holds what ``reference`` does: the values at the points, the zone groups and
    their attributes, every shard byte for byte and each array's shard record; no temporary."""
    np.testing.assert_array_equal(_values(store), _values(reference))
    built, ref = zarr.open_group(store, mode="r"), zarr.open_group(reference, mode="r")
    assert sorted(built.group_keys()) == sorted(ref.group_keys())
    for zone in ref.group_keys():
        assert dict(built[zone].attrs) == dict(ref[zone].attrs)
        for name in ("embeddings", "scales"):
            assert dict(built[f"{zone}/{name}"].attrs) == dict(ref[f"{zone}/{name}"].attrs)
            got, want = (_chunk_files(s / zone / name) for s in (store, reference))
            assert got.keys() == want.keys() and all(got[k] == want[k] for k in want)
    assert not list(store.rglob("*.part")) and not list(store.rglob("*.partial"))


def _chunk_files(array: Path) -> dict[str, bytes]:
    """The shard files at their final paths (a writer's temporaries are hidden: ``.*.part``)."""
    files = (p for p in (array / "c").rglob("*") if p.is_file() and not p.name.startswith("."))
    return {p.relative_to(array).as_posix(): p.read_bytes() for p in files}
