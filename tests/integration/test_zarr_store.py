"""Zarr store end to end: build from a 100 m sample store, read back through our reader, xarray and zarr."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from pyproj import Transformer

from geotessera.config import Settings
from geotessera.datasets import DatasetId
from geotessera.errors import CorruptDataError, InvalidInputError, SourceError
from geotessera.grid import Cell
from geotessera.progress import Event, ItemDone
from geotessera.sample.build import build_store
from geotessera.sample.serve import SampleServer
from geotessera.store import GeoTesseraZarr, build_zarr
from geotessera.store.read.chunk_reader import usable_cores
from geotessera.store.write.sources import tile_files
from geotessera.store.write.tiles import TileInput, cell_mask, tile_inputs
from geotessera.tiles import dequantize_embedding, load_tile_arrays

DS = DatasetId.parse("v1")
BBOX = (5.8, 51.9, 6.2, 52.1)  # straddles the zone 31/32 seam at 6 E
YEARS = (2023, 2024)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zarr_sample")
    build_store(root, bbox=BBOX, years=YEARS, versions=("v1",), pixel_size_m=100.0)
    return root


@pytest.fixture(scope="module")
def store(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zarr_store") / "v1.zarr"
    build_zarr(sample, path, dataset=DS, workers=2)
    return path


@pytest.fixture(scope="module")
def tiles(sample: Path) -> list[TileInput]:
    files = tile_files(
        sample, DS, years=None, zones=None, download_dir=sample / "unused", settings=Settings()
    )
    return tile_inputs(files)


@pytest.fixture(scope="module")
def reader(store: Path) -> Iterator[GeoTesseraZarr]:
    with GeoTesseraZarr(store) as gz:
        yield gz


def _cell_pixels(tile: TileInput) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tile rows, cols of pixels whose centres lie in the tile's own cell, and their lon, lat."""
    g = tile.grid
    xs = g.transform.c + (np.arange(g.width) + 0.5) * g.res
    ys = g.transform.f - (np.arange(g.height) + 0.5) * g.res
    rr, cc = np.nonzero(cell_mask(tile.cell, g.epsg, xs, ys))
    lon, lat = Transformer.from_crs(g.epsg, 4326, always_xy=True).transform(xs[cc], ys[rr])
    return rr, cc, np.asarray(lon), np.asarray(lat)


def _expected(tile: TileInput) -> np.ndarray:
    ta = load_tile_arrays(tile.embedding_path, tile.scales_path)
    return dequantize_embedding(ta.quantized, ta.scales)


def _tile_at(tiles: list[TileInput], lon: float, lat: float, year: int) -> TileInput:
    cell = Cell.from_point(lon, lat)
    return next(t for t in tiles if t.cell == cell and t.year == year)


def _expected_at(tiles: list[TileInput], lon: float, lat: float, year: int) -> np.ndarray:
    t = _tile_at(tiles, lon, lat, year)
    x, y = Transformer.from_crs(4326, t.grid.epsg, always_xy=True).transform(lon, lat)
    col = int(np.floor((x - t.grid.transform.c) / t.grid.res))
    row = int(np.floor((t.grid.transform.f - y) / t.grid.res))
    return _expected(t)[row, col]


def _point_in(tiles: list[TileInput], name: str, year: int, *, water: bool) -> tuple[float, float]:
    """A pixel centre inside tile ``name``'s cell that is water (NaN scale) or valid."""
    tile = next(t for t in tiles if t.cell.name == name and t.year == year)
    rr, cc, lon, lat = _cell_pixels(tile)
    s = load_tile_arrays(tile.embedding_path, tile.scales_path).scales[rr, cc]
    i = int(np.flatnonzero(np.isnan(s) if water else np.isfinite(s))[len(s) // 7 % 5])
    return float(lon[i]), float(lat[i])


def test_store_layout_and_attributes(store: Path) -> None:
    root = zarr.open_group(store, mode="r")
    assert root.attrs["geoemb:gsd"] == 100.0
    assert root.attrs["geoemb:quantization"]["scale"]["nodata"] == "+inf"
    assert any(c["uuid"] == "61c12cc5-0e28-4056-999a-480cf3fb7e4c" for c in root.attrs["zarr_conventions"])
    g = root["utm31"]
    assert g.attrs["proj:code"] == "EPSG:32631"
    emb, scl = g["embeddings"], g["scales"]
    assert emb.dtype == np.int8 and emb.shards == (1, 128, 4096, 4096) and emb.chunks == (1, 128, 32, 32)
    assert scl.dtype == np.float32 and scl.shards == (1, 4096, 4096) and np.isinf(scl.fill_value)
    h, w = scl.shape[1:]
    assert h % 4096 == 0 and w % 4096 == 0
    assert list(g.attrs["spatial:shape"]) == [h, w]
    y = g["y"][:]
    assert np.all(np.diff(y) < 0) and list(g["time"][:]) == list(YEARS)
    assert "utm21" in root  # the southern edge tile lives in the northern code's group
    assert root["utm21"].attrs["proj:code"] == "EPSG:32621" and root["utm21"]["y"][-1] < 0


def test_reader_equals_tiles_inside_each_cell(reader: GeoTesseraZarr, tiles: list[TileInput]) -> None:
    assert reader.years == list(YEARS)
    for tile in tiles:
        rr, cc, lon, lat = _cell_pixels(tile)
        vals, status = reader.sample_points(np.c_[lon, lat], tile.year, return_status=True)
        exp = _expected(tile)[rr, cc]
        np.testing.assert_array_equal(vals, exp, err_msg=tile.key)
        assert set(np.unique(status)) <= {"valid", "water"}, tile.key


def test_xarray_and_zarr_equal_tiles(store: Path, tiles: list[TileInput]) -> None:
    ds = xr.open_zarr(store, group="utm31", chunks={"time": 1, "band": -1, "y": 4096, "x": 4096})
    g = zarr.open_group(store, mode="r")["utm31"]
    x0, y0 = float(ds.x[0]) - 50.0, float(ds.y[0]) + 50.0
    checked = 0
    for tile in tiles:
        if tile.zone != 31:
            continue
        rr, cc, _, _ = _cell_pixels(tile)
        zr = rr + round((y0 - tile.grid.transform.f) / 100.0)
        zc = cc + round((tile.grid.transform.c - x0) / 100.0)
        t = list(ds.time.values).index(tile.year)
        r0, r1, c0, c1 = zr.min(), zr.max() + 1, zc.min(), zc.max() + 1
        q = ds.embeddings[t, :, r0:r1, c0:c1].values[:, zr - r0, zc - c0].T
        s = ds.scales[t, r0:r1, c0:c1].values[zr - r0, zc - c0]
        got = np.where(np.isfinite(s)[:, None], q.astype(np.float32) * s[:, None], np.nan)
        np.testing.assert_array_equal(got, _expected(tile)[rr, cc], err_msg=tile.key)
        s_zarr = g["scales"][t, r0:r1, c0:c1][zr - r0, zc - c0]
        np.testing.assert_array_equal(s_zarr, s)
        checked += 1
    assert checked >= 4


def test_point_statuses(reader: GeoTesseraZarr, tiles: list[TileInput]) -> None:
    west, east = (5.99, 52.04), (6.01, 52.04)
    south = _point_in(tiles, "grid_-58.45_-34.55", 2023, water=False)
    water = _point_in(tiles, "grid_1.75_52.45", 2023, water=True)
    nodata = (5.75, 52.0)  # inside zone 31's grid, no tile there
    outside = (100.0, 10.0)  # no such zone in the store
    pts = np.array([west, east, south, water, nodata, outside])
    vals, status = reader.sample_points(pts, 2023, return_status=True)
    assert list(status) == ["valid", "valid", "valid", "water", "nodata", "outside"]
    for i, p in enumerate((west, east, south)):
        np.testing.assert_array_equal(vals[i], _expected_at(tiles, *p, 2023))
    assert np.isnan(vals[3:]).all()
    multi, mstatus = reader.sample_points(pts[:3], years=[2023, 2024], return_status=True)
    assert multi.shape == (2, 3, 128) and (mstatus == "valid").all()
    np.testing.assert_array_equal(multi[1, 0], _expected_at(tiles, *west, 2024))


def test_region_across_seam_has_no_gap(reader: GeoTesseraZarr) -> None:
    bbox = (5.91, 51.96, 6.07, 52.04)
    data, transform, crs = reader.read_region(bbox, 2023)
    assert crs.to_epsg() == 32631 and data.shape[2] == 128
    h, w = data.shape[:2]
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = transform @ (cols.ravel(), rows.ravel())
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    vals, status = reader.sample_points(np.c_[lon, lat], 2023, return_status=True)
    np.testing.assert_array_equal(data.reshape(-1, 128), vals)
    inside = (lon > bbox[0]) & (lon < bbox[2]) & (lat > bbox[1]) & (lat < bbox[3])
    assert set(np.unique(status[inside])) <= {"valid", "water"}
    east = inside & (lon > 6.0)
    assert east.sum() > 100 and (status[east] == "valid").mean() > 0.9
    strips = list(reader.iter_region(bbox, 2023, strip_rows=16))
    np.testing.assert_array_equal(np.concatenate([s.data for s in strips]), data)


def test_region_in_one_zone_equals_points(reader: GeoTesseraZarr) -> None:
    bbox = (1.2, 52.3, 2.3, 52.6)  # zone 31 only: water, no-data and partial chunks at the edges
    data, transform, crs = reader.read_region(bbox, 2023)
    assert crs.to_epsg() == 32631
    h, w = data.shape[:2]
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = transform @ (cols.ravel(), rows.ravel())
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    vals, status = reader.sample_points(np.c_[lon, lat], 2023, return_status=True)
    np.testing.assert_array_equal(data.reshape(-1, 128), vals)
    assert {"valid", "water"} <= set(np.unique(status))
    for strip_rows in (16, 40, 100):  # 40, 100: strips cut on chunk rows, the first one shorter
        strips = list(reader.iter_region(bbox, 2023, strip_rows=strip_rows))
        assert all(0 < len(st.data) <= strip_rows for st in strips)
        assert [st.row for st in strips] == list(np.cumsum([0] + [len(st.data) for st in strips[:-1]]))
        np.testing.assert_array_equal(np.concatenate([st.data for st in strips]), data)


def test_region_southern_and_errors(reader: GeoTesseraZarr, tiles: list[TileInput]) -> None:
    data, transform, crs = reader.read_region((-58.48, -34.58, -58.42, -34.52), 2024)
    assert crs.to_epsg() == 32721
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(*(transform @ (10.5, 10.5)))
    np.testing.assert_array_equal(data[10, 10], _expected_at(tiles, lon, lat, 2024))
    with pytest.raises(InvalidInputError, match="empty"):
        reader.read_region((6.0, 52.0, 6.0, 52.1), 2023)
    with pytest.raises(InvalidInputError, match="antimeridian"):
        reader.read_region((179.9, 0.0, -179.9, 0.1), 2023)


def test_open_zone_dask_and_crs(reader: GeoTesseraZarr) -> None:
    ds = reader.open_zone(lon=5.95)
    assert ds.embeddings.chunks is not None and max(ds.embeddings.chunks[2]) <= 1024
    assert "crs_wkt" in ds.spatial_ref.attrs and ds.spatial_ref.attrs["GeoTransform"].split()[1] == "100.0"
    assert ds.embeddings.attrs["grid_mapping"] == "spatial_ref"


def _files(store: Path) -> dict[str, bytes]:
    return {
        p.relative_to(store).as_posix(): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and ".receipts" not in p.parts and not p.name.startswith(".")
    }


def test_killed_build_resumes_to_clean_result(sample: Path, store: Path, tmp_path: Path) -> None:
    target = tmp_path / "resumed.zarr"
    done: list[str] = []

    def killer(event: Event) -> None:
        if isinstance(event, ItemDone):
            done.append(event.key)
            if len(done) == 3:
                raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        build_zarr(sample, target, dataset=DS, workers=1, progress=killer)
    report = build_zarr(sample, target, dataset=DS, workers=2)
    assert report.shards_skipped >= 3 and report.shards_written >= 1
    assert _files(target) == _files(store)


def test_receipts_gate_completeness_and_years_are_incremental(
    sample: Path, store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "incremental.zarr"
    first = build_zarr(sample, target, dataset=DS, years=[2023])
    second = build_zarr(sample, target, dataset=DS)
    assert second.shards_skipped == first.shards_written
    assert second.shards_written == first.shards_written + 1  # 2024 has one extra tile in its own shard
    receipt = next((target / "utm31" / ".receipts" / "embeddings" / "2024").glob("*.json"))
    receipt.unlink()
    third = build_zarr(sample, target, dataset=DS)
    assert third.shards_written == 1 and receipt.is_file()
    with GeoTesseraZarr(target) as gz:
        assert gz.years == list(YEARS)
        pts = np.array([[5.99, 52.04], [6.01, 52.04], [0.35, 52.25]])
        with GeoTesseraZarr(store) as ref:
            np.testing.assert_array_equal(gz.sample_points(pts, 2024), ref.sample_points(pts, 2024))


@pytest.fixture(scope="module")
def served(store: Path) -> Iterator[SampleServer]:
    server = SampleServer(None, port=0, bucket="zarr-test")
    try:
        server.start()
        server.add_tree(store, "zarr/v1.zarr")
        yield server
    finally:
        server.stop()


def test_reader_over_local_s3_endpoint(served: SampleServer, reader: GeoTesseraZarr, tmp_path: Path) -> None:
    pts = np.array([[5.99, 52.04], [6.01, 52.04], [-58.45, -34.55], [5.75, 52.0]])
    expected = reader.sample_points(pts, 2023)
    with GeoTesseraZarr(f"{served.base_url}/zarr/v1.zarr", cache_dir=tmp_path / "cache") as gz:
        np.testing.assert_array_equal(gz.sample_points(pts, 2023), expected)
        bbox = (5.95, 51.98, 6.05, 52.02)
        first, _, _ = gz.read_region(bbox, 2024)
        before = gz.source.requests
        again, _, _ = gz.read_region(bbox, 2024)
        assert gz.source.requests == before  # warm disk cache: no network traffic
        np.testing.assert_array_equal(again, first)
        np.testing.assert_array_equal(first, reader.read_region(bbox, 2024)[0])
        ds: Any = gz.open_zone(zone=32)
        assert int(ds.time[0]) == 2023
    with GeoTesseraZarr("s3://zarr-test/zarr/v1.zarr", endpoint_url=served.endpoint_url) as gz:
        np.testing.assert_array_equal(gz.sample_points(pts, 2023), expected)


def test_nan_fill_convention(store: Path, tmp_path: Path, tiles: list[TileInput]) -> None:
    import json

    copy = tmp_path / "nanfill.zarr"
    shutil.copytree(store, copy)
    meta = json.loads((copy / "zarr.json").read_text())
    meta["attributes"]["geoemb:quantization"]["scale"]["nodata"] = "NaN"
    (copy / "zarr.json").write_text(json.dumps(meta))
    water = _point_in(tiles, "grid_1.75_52.45", 2023, water=True)
    with GeoTesseraZarr(copy) as gz:
        _, status = gz.sample_points(np.array([water]), 2023, return_status=True)
    assert list(status) == ["nodata"]


def test_cli_build_is_resumable(sample: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from geotessera.cli.zarr_store import command

    target = tmp_path / "cli.zarr"
    args = ["build", str(sample), str(target), "--years", "2023", "--zones", "31", "--workers", "2"]
    first = CliRunner().invoke(command, args)
    assert first.exit_code == 0, first.output
    assert "shards written" in first.output
    again = CliRunner().invoke(command, args)
    assert again.exit_code == 0 and "0 shards written" in again.output
    with GeoTesseraZarr(target) as gz:
        assert gz.zones == [31] and gz.years == [2023]


def test_a_rerun_removes_the_temporary_shards_of_a_killed_build(
    sample: Path, store: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from geotessera.files._names import temp_path

    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    arrays = copy / "utm31" / "embeddings"
    shard = next(p for p in arrays.rglob("*") if p.is_file() and p.name != "zarr.json")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a writer that has exited, as a killed build's worker
    left = shard.with_name(temp_path(shard).name.replace(f"-{os.getpid()}-", f"-{proc.pid}-"))
    left.write_bytes(b"half a shard")
    report = build_zarr(sample, copy, dataset=DS, years=[2023], zones=[31], workers=1)
    assert report.shards_written == 0 and report.shards_skipped > 0  # nothing else to redo
    assert not left.exists() and shard.exists()


def test_settings_come_from_the_environment_like_geotessera(
    served: SampleServer, store: Path, reader: GeoTesseraZarr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pts = np.array([[5.99, 52.04], [6.01, 52.04]])
    expected = reader.sample_points(pts, 2023)
    monkeypatch.setenv("GEOTESSERA_BASE_URL", served.base_url)  # the store is {base}/zarr/v1.zarr
    monkeypatch.setenv("GEOTESSERA_WORKERS", "3")
    monkeypatch.setenv("GEOTESSERA_CACHE_DIR", str(tmp_path / "cache"))
    with GeoTesseraZarr() as gz:
        assert gz.url == f"{served.base_url}/zarr/v1.zarr" and gz.reader.workers == 3
        np.testing.assert_array_equal(gz.sample_points(pts, 2023), expected)
    assert list((tmp_path / "cache" / "zarr").rglob("*"))  # the chosen cache holds what was read
    monkeypatch.setenv("GEOTESSERA_OFFLINE", "1")  # offline: the cache serves what it holds
    with GeoTesseraZarr() as gz:
        np.testing.assert_array_equal(gz.sample_points(pts, 2023), expected)
        assert gz.source.requests == 0
        with pytest.raises(SourceError, match="offline"):
            gz.read_region((5.7, 51.95, 5.8, 52.0), 2024)  # never read, so never cached
    monkeypatch.delenv("GEOTESSERA_CACHE_DIR")
    with pytest.raises(SourceError, match="offline"):
        GeoTesseraZarr()  # remote, offline and nothing cached: at once, not after timeouts
    with GeoTesseraZarr(store) as gz:  # an explicit location wins; a local one is read in place
        assert gz.url == str(store) and gz.reader.workers == 3
        np.testing.assert_array_equal(gz.sample_points(pts, 2023), expected)
    monkeypatch.delenv("GEOTESSERA_WORKERS")
    monkeypatch.delenv("GEOTESSERA_BASE_URL")
    base = tmp_path / "mirror"
    (base / "zarr").mkdir(parents=True)
    (base / "zarr" / "v1.zarr").symlink_to(store)
    with GeoTesseraZarr(base_url=base) as gz:  # a local base: {base}/zarr/v1.zarr, on the usable cores
        assert gz.url == str(base / "zarr" / "v1.zarr") and gz.reader.workers == usable_cores()
        np.testing.assert_array_equal(gz.sample_points(pts, 2023), expected)


def test_a_forbidden_shard_raises_and_an_absent_one_reads_as_fill(
    store: Path, reader: GeoTesseraZarr, tmp_path: Path
) -> None:
    from support.fault_server import Fault, FaultServer

    objects = {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    pts = np.array([[5.99, 52.04]])
    expected = reader.sample_points(pts, 2023)
    shards = [k for k in objects if k.startswith("utm31/scales/c/")]
    with FaultServer(objects) as server:
        with GeoTesseraZarr(server.url, retries=0) as gz:
            np.testing.assert_array_equal(gz.sample_points(pts, 2023), expected)
        for key in shards:
            server.script(key, Fault.http_status(403, times=None))
        with (
            GeoTesseraZarr(server.url, retries=0) as gz,
            pytest.raises(SourceError, match="access denied") as info,
        ):
            gz.sample_points(pts, 2023)
        assert info.value.status == 403
        server.clear_faults()
        for key in shards:
            del server.objects[key]  # absent (404), though the store records that they hold data
        with GeoTesseraZarr(server.url, retries=0) as gz, pytest.raises(CorruptDataError, match="missing"):
            gz.sample_points(pts, 2023)
        # a store without that record (a published one)
        for key in ("zarr.json", "utm31/embeddings/zarr.json", "utm31/scales/zarr.json"):
            server.put(key, _without_shard_record(server.objects[key]))
        with GeoTesseraZarr(server.url, retries=0) as gz:  # absent: all fill, so no data, and no error
            values, status = gz.sample_points(pts, 2023, return_status=True)
        assert np.isnan(values).all() and list(status) == ["nodata"]


def _without_shard_record(meta: bytes) -> bytes:
    """A zarr.json (an array's, or the consolidated root's) without geotessera's shard records."""
    doc = json.loads(meta)
    for node in [doc, *(doc.get("consolidated_metadata") or {}).get("metadata", {}).values()]:
        node.get("attributes", {}).pop("geotessera:shards", None)
    return json.dumps(doc).encode()


def test_a_killed_http_build_resumes_without_refetching_finished_tiles(
    sample: Path, reader: GeoTesseraZarr, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from geotessera.files import read_receipt
    from support.fault_server import Fault, FaultServer

    objects = {p.relative_to(sample).as_posix(): p.read_bytes() for p in sample.rglob("*") if p.is_file()}
    tiles_keys = [k for k in objects if k.endswith(".npy")]
    download, target = tmp_path / "tiles", tmp_path / "http.zarr"
    env = {**os.environ, "GEOTESSERA_CACHE_DIR": str(tmp_path / "cache"), "GEOTESSERA_WORKERS": "2"}
    with FaultServer(objects) as server:
        for key in tiles_keys:
            server.script(key, Fault.slow(0.4))  # the killed run gets through only part of them
        cli = "import sys; from geotessera.cli import main; sys.exit(main())"
        cmd = [sys.executable, "-c", cli, "zarr", "build", server.url, str(target)]
        log = (tmp_path / "build.log").open("wb")
        proc = subprocess.Popen([*cmd, "--download-dir", str(download)], env=env, stderr=log, stdout=log)
        try:
            deadline = time.monotonic() + 60
            while len(list(download.rglob(".*.npy.receipt.json"))) < 4 and time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "build.log").read_text()
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log.close()
        finished = {r.key: p for p in download.rglob("*.npy") if (r := read_receipt(p)) is not None and r.key}
        assert 4 <= len(finished) < len(tiles_keys)  # killed mid-download
        server.clear_faults()
        before = len(server.requests)
        report = build_zarr(server.url, target, dataset=DS, download_dir=download, workers=2)
        fetched = {r.key for r in server.requests[before:] if r.method == "GET"}
    assert not fetched & set(finished)  # finished tiles were not fetched again
    assert set(tiles_keys) - set(finished) <= fetched  # the rest were
    assert report.shards_written > 0 and not list(download.rglob("*.part"))
    pts = np.array([[5.99, 52.04], [6.01, 52.04], [5.85, 51.95]])
    with GeoTesseraZarr(target) as gz:
        for year in YEARS:
            np.testing.assert_array_equal(gz.sample_points(pts, year), reader.sample_points(pts, year))
    # the kept download directory is itself a valid source (a download output directory, npy),
    # read directly or through the manifest `geotessera registry build` writes into it
    from geotessera.registry.scan import build_manifest

    n_2024 = len([k for k in tiles_keys if "/2024/" in k and not k.endswith("_scales.npy")])
    again = build_zarr(download, tmp_path / "again.zarr", dataset=DS, years=[2024], workers=2)
    build_manifest(download)
    indexed = build_zarr(download, tmp_path / "indexed.zarr", dataset=DS, years=[2024], workers=2)
    assert again.tiles == indexed.tiles == n_2024
    with GeoTesseraZarr(tmp_path / "again.zarr") as a, GeoTesseraZarr(tmp_path / "indexed.zarr") as b:
        np.testing.assert_array_equal(a.sample_points(pts, 2024), b.sample_points(pts, 2024))
