"""End to end: the seed API and `geotessera download` through the real HTTP/S3 path on loopback."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geotessera import GeoTessera
from geotessera.cli import cli
from geotessera.datasets import DatasetId
from geotessera.errors import CoverageWarning, NotCoveredError, OutputError
from geotessera.grid import Cell
from geotessera.layouts import S3_LAYOUT
from geotessera.sample.serve import SampleServer
from geotessera.tiles import read_landmask_grid
from support.fault_server import Fault, FaultServer

DATASETS = [("v1", "vultr"), ("v1.1", "cambridge")]


def _store_arrays(store: Path, ds: DatasetId, year: int, cell: Cell) -> tuple[np.ndarray, np.ndarray, Path]:
    q = np.load(store / S3_LAYOUT.embedding_key(ds, year, cell))
    s = np.load(store / S3_LAYOUT.scales_key(ds, year, cell))
    return q, s, store / S3_LAYOUT.landmask_key(ds, cell)


def _expected(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    out = q.astype(np.float32) * s[:, :, None]
    out[~np.isfinite(s)] = np.nan
    return out


@pytest.fixture
def client(s3_endpoint: SampleServer, tmp_path: Path) -> GeoTessera:
    return GeoTessera(
        base_url=s3_endpoint.base_url, cache_dir=tmp_path / "cache", embeddings_dir=tmp_path / "emb"
    )


@pytest.mark.parametrize(("version", "variant"), DATASETS)
def test_fetch_embedding_equals_q_times_s(
    s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path, version: str, variant: str
) -> None:
    gt = GeoTessera(
        version,
        variant,
        cache_dir=tmp_path / "c",
        embeddings_dir=tmp_path / "e",
        base_url=s3_endpoint.base_url,
    )
    emb, crs, transform = gt.fetch_embedding(lon=0.15, lat=52.05, year=2024)
    q, s, lm = _store_arrays(tiny_store, gt.dataset, 2024, Cell.from_name("grid_0.15_52.05"))
    np.testing.assert_array_equal(emb, _expected(q, s))
    grid = read_landmask_grid(lm)
    assert crs.to_epsg() == grid.epsg == 32631
    assert transform == grid.transform
    # downloaded files persist in the local layout and are verified by receipts
    tile_dir = tmp_path / "e" / "global_0.1_degree_representation" / "2024" / "grid_0.15_52.05"
    assert (tile_dir / "grid_0.15_52.05.npy").read_bytes() == (
        tiny_store / S3_LAYOUT.embedding_key(gt.dataset, 2024, Cell.from_name("grid_0.15_52.05"))
    ).read_bytes()


def test_versions_differ(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    a = GeoTessera(
        "v1", cache_dir=tmp_path / "c", embeddings_dir=tmp_path / "a", base_url=s3_endpoint.base_url
    )
    b = GeoTessera(
        "v1.1",
        "cambridge",
        cache_dir=tmp_path / "c",
        embeddings_dir=tmp_path / "b",
        base_url=s3_endpoint.base_url,
    )
    ea, _, _ = a.fetch_embedding(0.15, 52.05, 2024)
    eb, _, _ = b.fetch_embedding(0.15, 52.05, 2024)
    assert not np.allclose(np.nan_to_num(ea), np.nan_to_num(eb))


def test_seed_region_workflow_and_geotiff_georeferencing(
    client: GeoTessera, tiny_store: Path, tmp_path: Path
) -> None:
    tiles = client.registry.load_blocks_for_region(bounds=(0.1, 52.0, 0.3, 52.1), year=2024)
    assert sorted(tiles) == [(2024, 0.15, 52.05), (2024, 0.25, 52.05)]
    seen = {(lon, lat) for _, lon, lat, arr, _, _ in client.fetch_embeddings(tiles)}
    assert seen == {(0.15, 52.05), (0.25, 52.05)}
    files = client.export_embedding_geotiffs(tiles_to_fetch=tiles, output_dir=tmp_path / "out")
    assert len(files) == 2
    for f in files:
        cell = Cell.from_name(Path(f).parent.name)
        q, s, lm = _store_arrays(tiny_store, client.dataset, 2024, cell)
        with rasterio.open(f) as ds, rasterio.open(lm) as mask:
            assert ds.crs == mask.crs and ds.transform == mask.transform
            assert (ds.height, ds.width) == (mask.height, mask.width)
            assert ds.count == 128 and ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
            assert ds.descriptions[5] == "Tessera_Band_5"
            tags = ds.tags()
            assert tags["TESSERA_DATASET_VERSION"] == "1.0" and tags["TESSERA_DATASET_VARIANT"] == "vultr"
            assert tags["TESSERA_YEAR"] == "2024" and tags["TESSERA_TILE_LON"] == f"{cell.lon:.2f}"
            assert tags["TESSERA_DATASET_VERSION_PATH"] == "v1" and "GEOTESSERA_VERSION" in tags
            np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), _expected(q, s))
        # the quantised temporaries are gone, the landmask stays
        assert not (Path(f).parent / f"{cell.name}.npy").exists()
    meta = json.loads((tmp_path / "out" / "tessera_metadata.json").read_text())
    assert (
        meta["dataset_version"] == "1.0" and meta["dataset_variant"] == "vultr" and meta["format"] == "tiff"
    )
    assert meta["dataset_version_path"] == "v1" and meta["years"] == [2024] and meta["tile_count"] == 2
    assert meta["source_url"] == client.settings.base_url and meta["generated_at"].endswith("Z")


def test_band_selection(client: GeoTessera, tiny_store: Path, tmp_path: Path) -> None:
    files = client.export_embedding_geotiffs(
        [(2024, 0.15, 52.05)], tmp_path / "rgb", bands=[0, 1, 2], compress="zstd"
    )
    q, s, _ = _store_arrays(tiny_store, client.dataset, 2024, Cell.from_name("grid_0.15_52.05"))
    with rasterio.open(files[0]) as ds:
        assert ds.count == 3 and ds.descriptions == ("Tessera_Band_0", "Tessera_Band_1", "Tessera_Band_2")
        assert ds.compression is not None and ds.compression.name.lower() == "zstd"
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), _expected(q, s)[:, :, :3])


def test_points_nan_where_not_covered(client: GeoTessera, tiny_store: Path) -> None:
    pts = [(0.151, 52.051), (50.0, 10.0), (0.351, 52.251)]  # covered; nowhere; absent in 2023
    with pytest.warns(CoverageWarning, match="2 of 3 points lie in tiles not covered for 2023"):
        x = client.sample_embeddings_at_points(pts, year=2023)
    assert x.shape == (3, 128) and x.dtype == np.float32
    assert np.isfinite(x[0]).all() and np.isnan(x[1]).all() and np.isnan(x[2]).all()
    e, _, transform = client.fetch_embedding(0.151, 52.051, 2023)
    from pyproj import Transformer

    xx, yy = Transformer.from_crs(4326, 32631, always_xy=True).transform(0.151, 52.051)
    col, row = ~transform * (xx, yy)
    np.testing.assert_array_equal(x[0], e[int(row), int(col)])


def test_not_covered_names_tile_and_years(client: GeoTessera) -> None:
    with pytest.raises(NotCoveredError, match=r"grid_0\.35_52\.25.*2024"):
        client.fetch_embedding(0.35, 52.25, 2023)


def test_refuses_mixing_datasets(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    a = GeoTessera("v1", cache_dir=tmp_path / "c", base_url=s3_endpoint.base_url)
    a.download(a.plan([(2024, 0.15, 52.05)], out, fmt="npy"))
    b = GeoTessera("v1.1", "cambridge", cache_dir=tmp_path / "c", base_url=s3_endpoint.base_url)
    with pytest.raises(OutputError, match="refusing to mix"):
        b.plan([(2024, 0.15, 52.05)], out, fmt="npy")


# --- the CLI ------------------------------------------------------------------------------


def _run(args: list[str]) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, args)
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize(("version", "variant"), DATASETS)
@pytest.mark.parametrize("fmt", ["tiff", "npy"])
def test_cli_download_both_versions_and_formats(
    s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path, version: str, variant: str, fmt: str
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        [
            "download",
            "--bbox",
            "0.0,52.0,0.2,52.1",
            "--year",
            "2024",
            "-f",
            fmt,
            "--dataset-version",
            version,
            "--dataset-variant",
            variant,
            "-o",
            str(out),
            "--base-url",
            s3_endpoint.base_url,
            "--cache-dir",
            str(tmp_path / "c"),
            "--list-files",
        ]
    )
    assert code == 0, stderr
    ds = DatasetId.parse(version, variant)
    for name in ("grid_0.05_52.05", "grid_0.15_52.05"):
        cell = Cell.from_name(name)
        tdir = out / "global_0.1_degree_representation" / "2024" / name
        if fmt == "tiff":
            assert (tdir / f"{name}_2024.tiff").exists()
        else:
            for key, local in (
                (S3_LAYOUT.embedding_key(ds, 2024, cell), tdir / f"{name}.npy"),
                (S3_LAYOUT.scales_key(ds, 2024, cell), tdir / f"{name}_scales.npy"),
            ):
                assert local.read_bytes() == (tiny_store / key).read_bytes()
        assert (out / "global_0.1_degree_tiff_all" / f"{name}.tiff").exists()
    assert len([ln for ln in stdout.splitlines() if ln.strip()]) >= 2  # --list-files
    meta = json.loads((out / "tessera_metadata.json").read_text())
    assert (meta["dataset_version"], meta["dataset_variant"], meta["format"]) == (ds.version, ds.variant, fmt)


def test_cli_dry_run_transfers_nothing(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    code, stdout, _ = _run(
        [
            "download",
            "--bbox",
            "0.1,52.0,0.2,52.1",
            "-o",
            str(tmp_path / "o"),
            "--dry-run",
            "--base-url",
            s3_endpoint.base_url,
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    assert "tiles: 1" in stdout and "grid_0.15_52.05" in stdout and "bytes to fetch:" in stdout
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--bbox", "0,52,1"], "--bbox"),
        (["--bbox", "0.4,52,0.0,52.3"], "min_lon > max_lon"),
        (["--bbox", "0,95,1,96"], "latitude"),
        (["--country", "Narnia"], "unknown country"),
        (["--tile", "0.15"], "--tile"),
        (
            ["--bbox", "0,52,1,53", "--tile", "0.1,52"],
            "exactly one of --bbox, --tile, --region-file, --country (got --bbox, --tile)",
        ),
        ([], "exactly one"),
        (["--bbox", "0,52,0.1,52.1", "--bands", "0,200"], "--bands"),
        (
            ["--bbox", "0,52,0.1,52.1", "--year", "2019"],
            "is not covered for 2019 (dataset v1/vultr has data for 2023, 2024",
        ),
        (["--bbox", "10,10,10.1,10.1"], "the only tile of bbox (10.0, 10.0, 10.1, 10.1) is not covered"),
        (["--region-file", "/nonexistent.geojson"], "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    s3_endpoint: SampleServer, tmp_path: Path, args: list[str], needle: str
) -> None:
    code, _, stderr = _run(
        [
            "download",
            "-o",
            str(tmp_path / "o"),
            "--base-url",
            s3_endpoint.base_url,
            "--cache-dir",
            str(tmp_path / "c"),
            *args,
        ]
    )
    assert code == 2, stderr
    assert needle in stderr
    assert "Traceback" not in stderr


def test_cli_unreachable_endpoint_is_one_line(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    code, _, stderr = _run(
        [
            "download",
            "--bbox",
            "0.1,52.0,0.2,52.1",
            "-o",
            str(tmp_path / "o"),
            "--base-url",
            f"http://127.0.0.1:{port}/tessera-embeddings",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 1
    assert "error:" in stderr and "Traceback" not in stderr


# --- faults: one failed tile never sinks the batch; a rerun finishes the job ----------------


@pytest.fixture
def faulty(tiny_store: Path) -> FaultServer:
    server = FaultServer()
    for p in tiny_store.rglob("*"):
        if p.is_file() and not p.relative_to(tiny_store).parts[0].startswith(
            ("ground_truth", "sample_store")
        ):
            server.put(p.relative_to(tiny_store).as_posix(), p.read_bytes())
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.corrupt(times=None), "mismatch"),
        (Fault.no_checksum(times=None), "checksum"),
        (Fault.http_status(404, times=None), "404"),
    ],
)
def test_failed_tile_reported_then_rerun_completes(
    faulty: FaultServer, tmp_path: Path, fault: Fault, message: str
) -> None:
    ds = DatasetId()
    bad = Cell.from_name("grid_0.15_52.05")
    faulty.script(S3_LAYOUT.embedding_key(ds, 2024, bad), fault)
    args = [
        "download",
        "--bbox",
        "0.0,52.0,0.3,52.1",
        "-o",
        str(tmp_path / "o"),
        "--base-url",
        faulty.url,
        "--cache-dir",
        str(tmp_path / "c"),
        "--workers",
        "3",
    ]
    code, _, stderr = _run(args)
    assert code == 1
    assert "grid_0.15_52.05" in stderr and message in stderr.lower()
    tdir = tmp_path / "o" / "global_0.1_degree_representation" / "2024"
    assert not (tdir / "grid_0.15_52.05" / "grid_0.15_52.05_2024.tiff").exists()
    assert not (tdir / "grid_0.15_52.05" / "grid_0.15_52.05.npy").exists()  # rejected bytes never land
    for good in ("grid_0.05_52.05", "grid_0.25_52.05"):
        assert (tdir / good / f"{good}_2024.tiff").exists()
    faulty.clear_faults()
    n_before = len(faulty.requests)
    code, _, stderr = _run(args)
    assert code == 0, stderr
    assert (tdir / "grid_0.15_52.05" / "grid_0.15_52.05_2024.tiff").exists()
    fetched = {r.key for r in faulty.requests[n_before:] if r.method == "GET"}
    assert all("grid_0.15_52.05" in k or k.endswith(".parquet") for k in fetched), fetched


def test_503_then_success(faulty: FaultServer, tmp_path: Path) -> None:
    ds = DatasetId()
    key = S3_LAYOUT.scales_key(ds, 2024, Cell.from_name("grid_0.15_52.05"))
    faulty.script(key, Fault.http_status(503, times=2))
    gt = GeoTessera(base_url=faulty.url, cache_dir=tmp_path / "c", embeddings_dir=tmp_path / "e")
    from geotessera.transfer import RetryPolicy, source_from_url

    gt._source = source_from_url(faulty.url, retry=RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.05))
    emb, _, _ = gt.fetch_embedding(0.15, 52.05, 2024)
    assert emb.shape[2] == 128
    assert len(faulty.requests_for(key)) == 3


def test_interrupted_download_resumes(faulty: FaultServer, tmp_path: Path) -> None:
    ds = DatasetId()
    key = S3_LAYOUT.embedding_key(ds, 2024, Cell.from_name("grid_0.15_52.05"))
    faulty.script(key, Fault.reset(fraction=0.5, times=1))
    code, _, stderr = _run(
        [
            "download",
            "--tile",
            "0.15,52.05",
            "-f",
            "npy",
            "-o",
            str(tmp_path / "o"),
            "--base-url",
            faulty.url,
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0, stderr
    local = (
        tmp_path
        / "o"
        / "global_0.1_degree_representation"
        / "2024"
        / "grid_0.15_52.05"
        / "grid_0.15_52.05.npy"
    )
    assert local.read_bytes() == faulty.objects[key]


def test_export_warns_for_uncovered(client: GeoTessera, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = client.export_embedding_geotiffs([(2024, 0.15, 52.05), (2024, 10.05, 10.05)], tmp_path / "x")
    assert len(files) == 1
    assert any(
        issubclass(w.category, CoverageWarning) and "grid_10.05_10.05" in str(w.message) for w in caught
    )


def test_row_strips_equal_the_whole_tile(client: GeoTessera) -> None:
    whole, _, _ = client.fetch_embedding(0.15, 52.05, 2024)
    strips = list(client.iter_embedding_strips(0.15, 52.05, 2024, rows=16, bands=[3, 7]))
    assert [r0 for r0, _ in strips] == list(range(0, whole.shape[0], 16))
    np.testing.assert_array_equal(np.concatenate([s for _, s in strips]), whole[:, :, [3, 7]])


def _source_coop_tree(store: Path, root: Path) -> None:
    """Re-lay the sample store's v1.1/cambridge tiles in the Source Cooperative layout."""
    import shutil

    from geotessera.layouts import SOURCE_COOP_LAYOUT

    ds = DatasetId.parse("v1.1", "cambridge")
    for year in (2023, 2024):
        for p in (store / "v1.1" / ds.emb_dir / str(year)).glob("grid_*"):
            cell = Cell.from_name(p.name)
            for src, key in (
                (p / f"{p.name}.npy", SOURCE_COOP_LAYOUT.embedding_key(ds, year, cell)),
                (p / f"{p.name}_scales.npy", SOURCE_COOP_LAYOUT.scales_key(ds, year, cell)),
            ):
                (root / key).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, root / key)
    for p in (store / "v1.1" / "global_0.1_degree_tiff_all").glob("*.tiff"):
        key = SOURCE_COOP_LAYOUT.landmask_key(ds, Cell.from_name(p.stem))
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, root / key)
    shutil.copy(store / "v1.1" / "manifest.parquet", root / SOURCE_COOP_LAYOUT.manifest_key(ds))
    shutil.copy(store / "v1.1" / "landmasks.parquet", root / SOURCE_COOP_LAYOUT.landmasks_manifest_key(ds))


def test_source_cooperative_layout_over_http_without_crc(tiny_store: Path, tmp_path: Path) -> None:
    root = tmp_path / "sc"
    _source_coop_tree(tiny_store, root)
    with FaultServer() as server:
        for p in root.rglob("*"):
            if p.is_file():
                key = p.relative_to(root).as_posix()
                server.put(key, p.read_bytes())
                server.script(key, Fault.no_checksum(times=None))  # Source Cooperative sends no CRC64NVMe
        gt = GeoTessera(
            "v1.1",
            "cambridge",
            base_url=server.url,
            cache_dir=tmp_path / "c",
            embeddings_dir=tmp_path / "e",
            layout="source-coop",
        )
        emb, _, _ = gt.fetch_embedding(0.15, 52.05, 2024)
        assert all(r.key.startswith(("npy/v1.1-cam/", "landmasks/v1.1/")) for r in server.requests)
    q, s, _ = _store_arrays(tiny_store, gt.dataset, 2024, Cell.from_name("grid_0.15_52.05"))
    np.testing.assert_array_equal(emb, _expected(q, s))


def test_fetch_embedding_raises_the_integrity_error(faulty: FaultServer, tmp_path: Path) -> None:
    from geotessera.errors import IntegrityError

    key = S3_LAYOUT.embedding_key(DatasetId(), 2024, Cell.from_name("grid_0.15_52.05"))
    faulty.script(key, Fault.corrupt(times=None))
    gt = GeoTessera(base_url=faulty.url, cache_dir=tmp_path / "c", embeddings_dir=tmp_path / "e")
    with pytest.raises(IntegrityError, match=r"grid_0\.15_52\.05"):
        gt.fetch_embedding(0.15, 52.05, 2024)
    # the rejected bytes never reached their final path
    assert not list((tmp_path / "e").rglob("grid_0.15_52.05.npy"))


def _dl(server: SampleServer, out: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    return _run(
        [
            "download",
            "--tile",
            "0.15,52.05",
            "-o",
            str(out),
            "--base-url",
            server.base_url,
            "--cache-dir",
            str(tmp_path / "c"),
            *extra,
        ]
    )


def test_output_dir_problems_are_one_line(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for out, needle, want in ((blocker / "sub", "is not a directory", 1), (blocker, "is a file", 2)):
        code, _, stderr = _dl(s3_endpoint, out, tmp_path)
        assert code == want and needle in stderr and "unexpected" not in stderr, stderr
        assert stderr.count("error:") == 1


def test_tiff_export_keeps_an_existing_npy_download(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    out = tmp_path / "both"
    assert _dl(s3_endpoint, out, tmp_path, "-f", "npy")[0] == 0
    npy = out / "global_0.1_degree_representation" / "2024" / "grid_0.15_52.05" / "grid_0.15_52.05.npy"
    before = npy.read_bytes()
    assert _dl(s3_endpoint, out, tmp_path, "-f", "tiff")[0] == 0
    assert npy.read_bytes() == before  # the user's npy download is not a temporary of the export
    meta = json.loads((out / "tessera_metadata.json").read_text())
    assert (
        meta["formats"] == ["npy", "tiff"]
        and meta["tile_count"] == 1
        and meta["tiles"] == ["grid_0.15_52.05/2024"]
    )


def test_other_bands_into_the_same_directory_are_refused(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    out = tmp_path / "rgb"
    assert _dl(s3_endpoint, out, tmp_path, "--bands", "0,1,2")[0] == 0
    code, _, stderr = _dl(s3_endpoint, out, tmp_path, "--bands", "0-3")
    assert code == 2 and "bands [0, 1, 2]" in stderr
    assert _dl(s3_endpoint, out, tmp_path, "--bands", "0,1,2")[0] == 0  # the same selection resumes


def test_sidecar_counts_every_tile(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    out = tmp_path / "grow"
    assert _dl(s3_endpoint, out, tmp_path, "-f", "npy")[0] == 0
    code, _, _ = _run(
        [
            "download",
            "--tile",
            "0.25,52.05",
            "-f",
            "npy",
            "-o",
            str(out),
            "--base-url",
            s3_endpoint.base_url,
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    assert json.loads((out / "tessera_metadata.json").read_text())["tile_count"] == 2


def test_disk_full_is_reported_once_per_cause(
    s3_endpoint: SampleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import geotessera.export.records as records

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records, "write_embedding_geotiff", full)
    code, _, stderr = _run(
        [
            "download",
            "--bbox",
            "0.0,52.0,0.2,52.1",
            "-o",
            str(tmp_path / "o"),
            "--base-url",
            s3_endpoint.base_url,
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 1
    assert (
        "2 tiles (grid_0.05_52.05/2024, grid_0.15_52.05/2024): disk full while exporting the tile" in stderr
    )
    assert "unexpected" not in stderr and "Traceback" not in stderr


def test_an_output_directory_serves_as_a_mirror_once_indexed(
    s3_endpoint: SampleServer, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    assert _dl(s3_endpoint, mirror, tmp_path, "-f", "npy")[0] == 0
    args = [
        "download",
        "--tile",
        "0.15,52.05",
        "-o",
        str(tmp_path / "t"),
        "--base-url",
        str(mirror),
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    code, _, stderr = _run(args)
    assert code == 2 and f"geotessera registry build {mirror}" in stderr
    assert _run(["registry", "build", str(mirror)])[0] == 0
    code, _, stderr = _run(args)
    assert code == 0, stderr
    assert (
        tmp_path
        / "t"
        / "global_0.1_degree_representation"
        / "2024"
        / "grid_0.15_52.05"
        / "grid_0.15_52.05_2024.tiff"
    ).exists()


@pytest.mark.parametrize(
    ("base", "needle"),
    [
        ("ftp://example/bucket", "not ftp://"),
        ("/nonexistent/mirror", "neither an http(s) URL nor an existing"),
    ],
)
def test_bad_base_urls_are_usage_errors(tmp_path: Path, base: str, needle: str) -> None:
    code, _, stderr = _run(
        ["download", "--tile", "0.15,52.05", "-o", str(tmp_path / "o"), "--base-url", base]
    )
    assert code == 2 and needle in stderr


def test_unknown_version_names_the_published_ones(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    code, _, stderr = _dl(s3_endpoint, tmp_path / "o", tmp_path, "--dataset-version", "v9")
    assert code == 2 and "v1.1 variant cambridge" in stderr
    code, _, stderr = _dl(s3_endpoint, tmp_path / "o", tmp_path, "--dataset-version", "v1.1")
    assert code == 2 and "the manifest of version v1.1 holds v1.1/cambridge" in stderr
    assert "--dataset-variant" in stderr and ".parquet" not in stderr  # no cache path


def test_two_datasets_never_share_a_directory(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    a = GeoTessera("v1", cache_dir=tmp_path / "c", embeddings_dir=shared, base_url=s3_endpoint.base_url)
    a.fetch_embedding(0.15, 52.05, 2024)
    b = GeoTessera(
        "v1.1", "cambridge", cache_dir=tmp_path / "c", embeddings_dir=shared, base_url=s3_endpoint.base_url
    )
    with pytest.raises(OutputError, match="refusing to mix"):
        b.fetch_embedding(0.15, 52.05, 2024)


def test_an_interrupted_run_cannot_be_resumed_with_another_dataset(
    s3_endpoint: SampleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geotessera.pipeline as pipeline_mod

    out = tmp_path / "o"
    a = GeoTessera("v1", cache_dir=tmp_path / "c", base_url=s3_endpoint.base_url)
    plan = a.plan([(2024, 0.15, 52.05)], out, fmt="npy")
    real_execute = pipeline_mod.execute

    def killed(*args: object, **kwargs: object) -> object:
        real_execute(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # dies after the files landed, before the sidecar is updated

    monkeypatch.setattr(pipeline_mod, "execute", killed)
    with pytest.raises(KeyboardInterrupt):
        a.download(plan)
    monkeypatch.undo()
    b = GeoTessera("v1.1", "cambridge", cache_dir=tmp_path / "c", base_url=s3_endpoint.base_url)
    with pytest.raises(OutputError, match="refusing to mix"):
        b.plan([(2024, 0.15, 52.05)], out, fmt="npy")


def test_receipts_name_their_object(s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path) -> None:
    # same local path, same size, another dataset: the receipt's key tells them apart
    from geotessera.pipeline import TileRef, plan_tiles

    out = tmp_path / "o"
    a = GeoTessera("v1", cache_dir=tmp_path / "c", base_url=s3_endpoint.base_url)
    a.download(a.plan([(2024, 0.15, 52.05)], out, fmt="npy"))
    b = GeoTessera("v1.1", "cambridge", cache_dir=tmp_path / "c", base_url=s3_endpoint.base_url)
    plan = plan_tiles(
        b.registry, b.source, b.dataset, [TileRef(2024, Cell.from_name("grid_0.15_52.05"))], out, fmt="npy"
    )
    assert plan.complete == [] and len(plan.transfers) == 3


def test_files_start_in_the_queue_order(
    s3_endpoint: SampleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # largest first within windows of `workers` tiles (unit-tested in tests/unit/transfer/test_order.py)
    import geotessera.pipeline as pipeline
    from geotessera.transfer import TransferItem, queue_order

    started: list[list[TransferItem]] = []
    real_run = pipeline.run

    def run(source: object, items: list[TransferItem], **kw: object) -> object:
        started.append(list(items))
        return real_run(source, items, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "run", run)
    gt = GeoTessera(cache_dir=tmp_path / "c", base_url=s3_endpoint.base_url, workers=2)
    plan = gt.plan([(2024, 0.05, 52.05), (2024, 0.15, 52.05), (2024, 0.05, 52.15)], tmp_path / "o")
    result = gt.download(plan)
    assert result.ok and len(result.done) == 3
    assert started == [queue_order(plan.transfers, 2)] and started[0] != plan.transfers
    sizes = [i.expected_size or 0 for i in started[0]]
    # one tile alone, then a window of two: each window's files largest first
    assert sizes[:3] == sorted(sizes[:3], reverse=True) and sizes[3:] == sorted(sizes[3:], reverse=True)
    assert len({i.label for i in started[0][:3]}) == 1


def test_a_failed_export_leaves_no_quantised_copies_after_the_rerun(
    s3_endpoint: SampleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import geotessera.export.records as records

    real = records.write_embedding_geotiff

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records, "write_embedding_geotiff", full)
    assert _dl(s3_endpoint, tmp_path / "o", tmp_path)[0] == 1
    monkeypatch.setattr(records, "write_embedding_geotiff", real)
    assert _dl(s3_endpoint, tmp_path / "o", tmp_path)[0] == 0
    tdir = tmp_path / "o" / "global_0.1_degree_representation" / "2024" / "grid_0.15_52.05"
    assert sorted(p.name for p in tdir.iterdir() if not p.name.startswith(".")) == [
        "grid_0.15_52.05_2024.tiff"
    ]
    assert not [p for p in tdir.iterdir() if p.name.endswith(".receipt.json")]


@pytest.mark.parametrize(
    ("spec", "codec", "interleave"), [("zstd:9", "zstd", "band"), ("deflate:1", "deflate", "pixel")]
)
def test_cli_compress_levels_write_exact_geotiffs(
    s3_endpoint: SampleServer, tiny_store: Path, tmp_path: Path, spec: str, codec: str, interleave: str
) -> None:
    out = tmp_path / "o"
    args = ["download", "--tile", "0.15,52.05", "--year", "2024", "--compress", spec, "-o", str(out)]
    code, _, stderr = _run([*args, "--base-url", s3_endpoint.base_url, "--cache-dir", str(tmp_path / "c")])
    assert code == 0, stderr
    cell = Cell.from_name("grid_0.15_52.05")
    tiff = out / "global_0.1_degree_representation" / "2024" / cell.name / f"{cell.name}_2024.tiff"
    q, s, _ = _store_arrays(tiny_store, DatasetId(), 2024, cell)
    with rasterio.open(tiff) as ds:
        assert ds.compression.name.lower() == codec and ds.interleaving.name.lower() == interleave
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), _expected(q, s))
    record = json.loads((tiff.parent / f".{tiff.name}.export.json").read_text())
    assert record["compress"] == spec


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("jpeg", "unknown compression"),
        ("zstd:99", "zstd level must be an integer 1-22"),
        ("deflate:0", "deflate level must be an integer 1-12"),
        ("lzw:5", "lzw takes no level"),
    ],
)
def test_cli_bad_compress_is_one_line_exit_2(tmp_path: Path, spec: str, needle: str) -> None:
    code, _, stderr = _run(
        ["download", "--tile", "0.15,52.05", "--compress", spec, "-o", str(tmp_path / "o")]
    )
    assert code == 2 and needle in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_cli_help_says_which_compression_is_fastest_and_smallest() -> None:
    code, stdout, _ = _run(["download", "--help"])
    text = " ".join(stdout.split())
    assert code == 0 and "zstd (level 1; e.g. zstd:9): the fastest" in text
    assert "deflate (level 6; e.g. deflate:1): the smallest files" in text
