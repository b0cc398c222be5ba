"""``registry build``: scanning tile trees of each layout into manifests that round-trip."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from geotessera.datasets import DatasetId
from geotessera.errors import InvalidInputError
from geotessera.registry import Registry, load_manifest
from geotessera.registry.scan import build_manifest, scan_tree

V1 = DatasetId()
CAM = DatasetId.parse("1.1", "cambridge")


def put_tile(emb_dir: Path, year: int, name: str, size: int, *, scales: bool = True) -> None:
    d = emb_dir / str(year) / name
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.npy").write_bytes(b"\0" * size)
    if scales:
        (d / f"{name}_scales.npy").write_bytes(b"\1" * (size // 10 + 1))


def put_landmask(directory: Path, name: str, size: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.tiff").write_bytes(b"\2" * size)


def s3_tree(root: Path) -> None:
    put_tile(root / "v1" / "global_0.1_degree_representation", 2024, "grid_0.15_52.05", 1000)
    put_tile(root / "v1" / "global_0.1_degree_representation", 2024, "grid_-0.05_52.05", 1100)
    put_tile(root / "v1" / "global_0.1_degree_representation", 2023, "grid_0.15_52.05", 1200)
    put_tile(root / "v1" / "global_0.1_degree_representation", 2023, "grid_0.25_52.05", 900, scales=False)
    put_tile(root / "v1.1" / "global_0.1_degree_representation.cambridge", 2024, "grid_0.15_52.05", 1300)
    put_landmask(root / "v1" / "global_0.1_degree_tiff_all", "grid_0.15_52.05", 77)
    put_landmask(root / "v1" / "global_0.1_degree_tiff_all", "grid_-0.05_52.05", 78)
    (root / "v1" / "global_0.1_degree_representation" / "2024" / "not_a_tile").mkdir()
    (root / "v1" / "README.txt").write_text("ignored")


def test_s3_layout_round_trips(tmp_path: Path) -> None:
    s3_tree(tmp_path)
    result, written = build_manifest(tmp_path)
    assert written == [tmp_path / "manifest.parquet", tmp_path / "landmasks.parquet"]
    assert result.incomplete == 1
    rows = {(r["version"], r["variant"], r["year"], r["lon"], r["lat"]) for r in result.tiles.to_pylist()}
    assert rows == {
        ("1.0", "vultr", 2024, 0.15, 52.05),
        ("1.0", "vultr", 2024, -0.05, 52.05),
        ("1.0", "vultr", 2023, 0.15, 52.05),
        ("1.1", "cambridge", 2024, 0.15, 52.05),
    }
    schema = pq.read_schema(written[0])
    for col in ("version", "variant", "year", "lon", "lat", "grid_size", "scales_size", "lon_i", "lat_i"):
        assert col in schema.names
    assert str(schema.field("lon_i").type) == "int32" and str(schema.field("year").type) == "int64"

    reg = Registry.from_manifest(load_manifest(V1, registry_dir=tmp_path))
    assert reg.tile_counts_by_year() == {2023: 1, 2024: 2}
    emb = tmp_path / "v1" / "global_0.1_degree_representation"
    for year, name in [(2024, "grid_0.15_52.05"), (2024, "grid_-0.05_52.05"), (2023, "grid_0.15_52.05")]:
        lon, lat = (float(v) for v in name.removeprefix("grid_").split("_"))
        d = emb / str(year) / name
        want = ((d / f"{name}.npy").stat().st_size, (d / f"{name}_scales.npy").stat().st_size)
        assert reg.file_sizes([(year, lon, lat)]) == want
    assert reg.landmask_size(0.15, 52.05) == 77
    cam = Registry.from_manifest(load_manifest(CAM, registry_dir=tmp_path))
    assert cam.file_sizes([(2024, 0.15, 52.05)]) == (1300, 131)


def test_local_output_layout_reads_metadata(tmp_path: Path) -> None:
    out = tmp_path / "out"
    put_tile(out / "global_0.1_degree_representation", 2022, "grid_10.05_-3.95", 500)
    put_landmask(out / "global_0.1_degree_tiff_all", "grid_10.05_-3.95", 55)
    (out / "tessera_metadata.json").write_text(
        json.dumps({"dataset_version": "v1.1", "dataset_variant": "cambridge", "format": "npy"})
    )
    result, _ = build_manifest(out, tmp_path / "reg")
    assert result.tiles.column("variant").to_pylist() == ["cambridge"]
    reg = Registry.from_manifest(load_manifest(CAM, registry_dir=tmp_path / "reg"))
    assert reg.load_blocks_for_region((10.0, -4.0, 10.1, -3.9), 2022) == [(2022, 10.05, -3.95)]
    assert reg.landmask_size(10.05, -3.95) == 55


def test_local_layout_without_metadata_uses_options(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    put_tile(tmp_path / "global_0.1_degree_representation", 2024, "grid_0.15_52.05", 10)
    result = scan_tree(tmp_path, version="1.1", variant="cambridge")
    assert result.tiles.column("version").to_pylist() == ["1.1"]
    with caplog.at_level(logging.WARNING, logger="geotessera"):
        result = scan_tree(tmp_path)
    assert result.tiles.column("variant").to_pylist() == ["vultr"]
    assert "does not say which dataset" in caplog.text


def test_options_skip_trees_of_other_datasets(tmp_path: Path) -> None:
    s3_tree(tmp_path)
    result = scan_tree(tmp_path, version="v1.1", variant="cambridge")
    assert result.tiles.num_rows == 1
    assert result.landmasks is None  # landmasks found are v1's
    with pytest.raises(InvalidInputError, match="no tiles found"):
        scan_tree(tmp_path, version="1.1", variant="vultr")


def test_source_coop_layout(tmp_path: Path) -> None:
    put_tile(tmp_path / "npy" / "v1.1-cam", 2024, "grid_0.15_52.05", 300)
    put_tile(tmp_path / "npy" / "v1", 2024, "grid_0.25_52.05", 400)
    put_landmask(tmp_path / "landmasks" / "v1.1", "grid_0.15_52.05", 33)
    result = scan_tree(tmp_path)
    got = {(r["version"], r["variant"], r["lon"], r["grid_size"]) for r in result.tiles.to_pylist()}
    assert got == {("1.1", "cambridge", 0.15, 300), ("1.0", "vultr", 0.25, 400)}
    assert result.landmasks is not None
    assert result.landmasks.column("version").to_pylist() == ["1.1"]


def test_empty_tree_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no tiles found"):
        scan_tree(tmp_path)
    with pytest.raises(InvalidInputError, match="not a directory"):
        scan_tree(tmp_path / "missing")
