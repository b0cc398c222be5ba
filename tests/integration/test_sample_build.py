"""The synthetic sample store on disk: layout, schemas, georeferencing, content and determinism.

Uses the session ``tiny_store`` (100 m pixels) and one rebuild with the same options.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
from awscrt.checksums import crc64nvme
from click.testing import CliRunner

from geotessera.cli import cli
from geotessera.datasets import DatasetId
from geotessera.grid import Cell, PixelGrid
from geotessera.layouts import S3_LAYOUT
from geotessera.sample.build import CHECKSUM_SIDECAR, NON_STORE_ENTRIES, build_store
from geotessera.sample.content import CLASS_NAMES, class_signatures

V1 = DatasetId("1.0", "vultr")
V11 = DatasetId("1.1", "cambridge")
DATASETS = (V1, V11)
YEARS = (2023, 2024)

MANIFEST_TYPES = {
    "version": pa.string(),
    "variant": pa.string(),
    "year": pa.int64(),
    "lon": pa.float64(),
    "lat": pa.float64(),
    "grid_size": pa.int64(),
    "scales_size": pa.int64(),
    "lon_i": pa.int32(),
    "lat_i": pa.int32(),
    "directory": pa.string(),
    "grid_path": pa.string(),
    "scales_path": pa.string(),
    "grid_mtime": pa.timestamp("us", tz="UTC"),
    "scales_mtime": pa.timestamp("us", tz="UTC"),
}
LANDMASK_TYPES = {
    "lon": pa.float64(),
    "lat": pa.float64(),
    "file_size": pa.int64(),
    "lon_i": pa.int32(),
    "lat_i": pa.int32(),
    "mtime": pa.timestamp("us", tz="UTC"),
    "key": pa.string(),
}


@pytest.fixture(scope="module")
def store(tiny_store: Path) -> Path:
    opts = json.loads((tiny_store / "sample_store.json").read_text())["options"]
    assert opts == {
        "bbox": [0.0, 52.0, 0.4, 52.3],
        "years": list(YEARS),
        "versions": ["v1", "v1.1"],
        "pixel_size_m": 100.0,
        "edge_tiles": True,
    }, "these tests expect tiny_store to use the default options at 100 m"
    return tiny_store


@pytest.fixture(scope="module")
def classes_doc(store: Path) -> dict[str, Any]:
    return json.loads((store / "ground_truth" / "classes.json").read_text())


def _cells(doc: dict[str, Any], year: int) -> list[Cell]:
    return [Cell.from_name(n) for n in doc["tiles"][str(year)]]


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _gt(store: Path, year: int, cell: Cell) -> np.ndarray:
    with rasterio.open(store / "ground_truth" / str(year) / f"{cell.name}_classes.tif") as src:
        return src.read(1)


def _sidecar_crcs(root: Path) -> dict[str, str]:
    files = json.loads((root / CHECKSUM_SIDECAR).read_text())["files"]
    return {rel: entry[3] for rel, entry in files.items()}


def test_checksum_sidecar_holds_every_served_file(store: Path) -> None:
    served = {
        p.relative_to(store).as_posix(): p
        for p in store.rglob("*")
        if p.is_file() and p.relative_to(store).parts[0] not in NON_STORE_ENTRIES
    }
    expected = {
        rel: base64.b64encode(crc64nvme(p.read_bytes()).to_bytes(8, "big")).decode()
        for rel, p in served.items()
    }
    assert _sidecar_crcs(store) == expected


def test_rebuild_is_byte_identical(store: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    again = tmp_path_factory.mktemp("rebuild")
    summary = build_store(again, pixel_size_m=100.0)
    first, second = _hashes(store), _hashes(again)
    # the checksum sidecar records file times: only its checksums must be identical
    first.pop(CHECKSUM_SIDECAR), second.pop(CHECKSUM_SIDECAR)
    assert first == second
    assert _sidecar_crcs(store) == _sidecar_crcs(again)
    assert summary.bytes_written == sum(p.stat().st_size for p in again.rglob("*") if p.is_file())
    # parquet footers (created_by, schema metadata) are part of the bytes compared above
    assert any(k.endswith("manifest.parquet") for k in first)


def test_layout_is_exactly_the_bucket_plus_ground_truth(store: Path, classes_doc: dict[str, Any]) -> None:
    expected = {"sample_store.json", CHECKSUM_SIDECAR, "ground_truth/classes.json"}
    all_cells = {c for y in YEARS for c in _cells(classes_doc, y)}
    for ds in DATASETS:
        expected |= {S3_LAYOUT.manifest_key(ds), S3_LAYOUT.landmasks_manifest_key(ds)}
        expected |= {S3_LAYOUT.landmask_key(ds, c) for c in all_cells}
        for y in YEARS:
            for c in _cells(classes_doc, y):
                expected |= {S3_LAYOUT.embedding_key(ds, y, c), S3_LAYOUT.scales_key(ds, y, c)}
    for y in YEARS:
        expected |= {f"ground_truth/{y}/{c.name}_classes.tif" for c in _cells(classes_doc, y)}
    assert set(_hashes(store)) == expected
    assert {p.name for p in store.iterdir()} == {"v1", "v1.1", *NON_STORE_ENTRIES}
    assert (store / "v1.1/global_0.1_degree_representation.cambridge").is_dir()
    assert (store / "v1/global_0.1_degree_representation").is_dir()


def test_manifests_schema_rows_and_sizes(store: Path, classes_doc: dict[str, Any]) -> None:
    for ds in DATASETS:
        table = pq.read_table(store / S3_LAYOUT.manifest_key(ds))
        assert {f.name: f.type for f in table.schema} == MANIFEST_TYPES
        assert table.schema.names == list(MANIFEST_TYPES)
        rows = table.to_pylist()
        want = {(y, c) for y in YEARS for c in _cells(classes_doc, y)}
        assert {(r["year"], Cell.from_key(r["lon_i"], r["lat_i"])) for r in rows} == want
        assert len(rows) == len(want)
        for r in rows:
            cell = Cell.from_key(r["lon_i"], r["lat_i"])
            assert (r["version"], r["variant"]) == (ds.version, ds.variant)
            assert (r["lon"], r["lat"]) == (cell.lon, cell.lat)
            emb, sc = S3_LAYOUT.embedding_key(ds, r["year"], cell), S3_LAYOUT.scales_key(ds, r["year"], cell)
            assert r["grid_path"] == f"s3://tessera-embeddings/{emb}"
            assert r["scales_path"] == f"s3://tessera-embeddings/{sc}"
            assert r["directory"] == f"s3://tessera-embeddings/{emb.rsplit('/', 1)[0]}"
            assert r["grid_size"] == (store / emb).stat().st_size
            assert r["scales_size"] == (store / sc).stat().st_size
            assert r["grid_mtime"] == r["scales_mtime"] and r["grid_mtime"].year == 2025

        lm = pq.read_table(store / S3_LAYOUT.landmasks_manifest_key(ds))
        assert {f.name: f.type for f in lm.schema} == LANDMASK_TYPES
        lm_rows = lm.to_pylist()
        assert len(lm_rows) == len({c for _, c in want})
        for r in lm_rows:
            cell = Cell.from_key(r["lon_i"], r["lat_i"])
            assert r["key"] == S3_LAYOUT.landmask_key(ds, cell)
            assert r["file_size"] == (store / r["key"]).stat().st_size


def test_partial_year_tile_is_absent_from_its_year(store: Path, classes_doc: dict[str, Any]) -> None:
    cell = Cell.from_name("grid_0.35_52.25")
    assert classes_doc["absent"] == {cell.name: [2023]}
    for ds in DATASETS:
        table = pq.read_table(store / S3_LAYOUT.manifest_key(ds)).to_pylist()
        years = {r["year"] for r in table if r["lon_i"] == cell.lon_i and r["lat_i"] == cell.lat_i}
        assert years == {2024}
        assert not (store / S3_LAYOUT.embedding_key(ds, 2023, cell)).exists()
        assert (store / S3_LAYOUT.embedding_key(ds, 2024, cell)).exists()


def test_georeferencing_and_shapes(store: Path, classes_doc: dict[str, Any]) -> None:
    epsg = {"grid_5.95_45.05": 32631, "grid_6.05_45.05": 32632, "grid_-58.45_-34.55": 32721}
    for ds in DATASETS:
        for year in YEARS:
            for cell in _cells(classes_doc, year):
                grid = PixelGrid.from_cell(cell, 100.0)
                for path in (
                    store / S3_LAYOUT.landmask_key(ds, cell),
                    store / "ground_truth" / str(year) / f"{cell.name}_classes.tif",
                ):
                    with rasterio.open(path) as src:
                        assert PixelGrid.from_raster(src) == grid
                        assert src.count == 1 and src.dtypes == ("uint8",)
                        assert src.profile["tiled"]
                if cell.name in epsg:
                    assert grid.epsg == epsg[cell.name]
                q = np.load(store / S3_LAYOUT.embedding_key(ds, year, cell), mmap_mode="r")
                s = np.load(store / S3_LAYOUT.scales_key(ds, year, cell), mmap_mode="r")
                assert q.dtype == np.int8 and q.shape == (*grid.shape, 128) and q.flags.c_contiguous
                assert s.dtype == np.float32 and s.shape == grid.shape


def test_content_matches_ground_truth(store: Path, classes_doc: dict[str, Any]) -> None:
    assert [c["name"] for c in classes_doc["classes"]] == list(CLASS_NAMES)
    land_scales = []
    first_q: dict[tuple[int, Cell], dict[DatasetId, np.ndarray]] = {}
    for ds in DATASETS:
        sig = class_signatures(ds)
        for year in YEARS:
            for cell in _cells(classes_doc, year):
                q = np.load(store / S3_LAYOUT.embedding_key(ds, year, cell))
                s = np.load(store / S3_LAYOUT.scales_key(ds, year, cell))
                truth = _gt(store, year, cell)
                with rasterio.open(store / S3_LAYOUT.landmask_key(ds, cell)) as src:
                    landmask = src.read(1)
                land = truth != 0
                np.testing.assert_array_equal(landmask, land.astype(np.uint8))
                assert np.isnan(s[~land]).all() and not q[~land].any()
                assert np.isfinite(s[land]).all()
                v = q[land].astype(np.float32) * s[land][:, None]
                d2 = ((v[:, None, :] - sig[None, 1:, :]) ** 2).sum(-1)
                nearest = d2.argmin(axis=1) + 1
                assert (nearest == truth[land]).mean() > 0.95, (ds, year, cell)
                ref = sig[truth[land]]
                rel = np.linalg.norm(v - ref, axis=1) / np.linalg.norm(ref, axis=1)
                assert np.median(rel) < 0.25 and rel.max() < 0.5
                land_scales.append(s[land])
                first_q.setdefault((year, cell), {})[ds] = q
    scales = np.concatenate(land_scales)
    assert ((scales > 0) & (scales < 1)).all()
    assert 0.055 < float(np.median(scales)) < 0.075
    # the two datasets are different model runs
    for per_ds in first_q.values():
        assert not np.array_equal(per_ds[V1], per_ds[V11])


def test_coastal_tile_has_sea_and_land(store: Path) -> None:
    cell = Cell.from_name("grid_1.75_52.45")
    truth = _gt(store, 2024, cell)
    water = (truth == 0).mean()
    assert 0.2 < water < 0.8
    # sea is east: the eastern columns are mostly water, the western mostly land
    assert (truth[:, -5:] == 0).mean() > 0.9 and (truth[:, :5] != 0).mean() > 0.8


def test_some_pixels_change_class_between_years(store: Path, classes_doc: dict[str, Any]) -> None:
    changes = classes_doc["changes"]
    assert {(c["from"], c["to"]) for c in changes} == {("forest", "grassland"), ("cropland", "urban")}
    total = 0
    for ch in changes:
        assert ch["observed"], ch["name"]
        for obs in ch["observed"]:
            cell = Cell.from_name(obs["tile"])
            before = _gt(store, obs["from_year"], cell)
            after = _gt(store, obs["to_year"], cell)
            sel = (before == ch["from_code"]) & (after == ch["to_code"])
            assert int(sel.sum()) == obs["pixels"] > 0
            total += obs["pixels"]
    n_changed = 0
    for cell in _cells(classes_doc, 2023):
        n_changed += int((_gt(store, 2023, cell) != _gt(store, 2024, cell)).sum())
    assert n_changed == total
    # the embeddings follow: a cleared forest pixel looks like grassland in 2024
    sig = class_signatures(V1)
    obs = changes[0]["observed"][0]
    cell = Cell.from_name(obs["tile"])
    sel = (_gt(store, 2023, cell) == 4) & (_gt(store, 2024, cell) == 3)
    for year, code in ((2023, 4), (2024, 3)):
        q = np.load(store / S3_LAYOUT.embedding_key(V1, year, cell))[sel]
        s = np.load(store / S3_LAYOUT.scales_key(V1, year, cell))[sel]
        v = q.astype(np.float32) * s[:, None]
        nearest = ((v[:, None, :] - sig[None]) ** 2).sum(-1).argmin(axis=1)
        assert (nearest == code).mean() > 0.95


def test_cli_build(tmp_path: Path, cli_runner: CliRunner) -> None:
    out = tmp_path / "cli_store"
    args = [
        "sample",
        "build",
        str(out),
        "--bbox",
        "0.1,52.1,0.2,52.2",
        "--years",
        "2024",
        "--versions",
        "v1.1",
        "--pixel-size",
        "500",
        "--no-edge-tiles",
    ]
    result = cli_runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    table = pq.read_table(out / "v1.1/manifest.parquet")
    assert table.num_rows == 1 and table.column("variant").to_pylist() == ["cambridge"]
    assert (out / "v1.1/global_0.1_degree_representation.cambridge/2024/grid_0.15_52.15").is_dir()
    assert json.loads((out / "sample_store.json").read_text())["options"]["pixel_size_m"] == 500.0


@pytest.mark.parametrize(
    "extra",
    [
        ["--bbox", "0,52,0.4"],
        ["--bbox", "a,b,c,d"],
        ["--bbox", "1,52,0,53"],
        ["--years", "2023,last"],
        ["--years", "1066"],
        ["--versions", "v9"],
        ["--versions", "v1,,v1.1"],
        ["--pixel-size", "0"],
        ["--pixel-size", "ten"],
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, cli_runner: CliRunner, extra: list[str]) -> None:
    out = tmp_path / "bad"
    result = cli_runner.invoke(cli, ["sample", "build", str(out), "--no-edge-tiles", *extra])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error") or ln.startswith("Error")]
    assert len(lines) == 1, result.stderr
    assert not out.exists()
