"""The client's defaults for a newcomer: where tiles go, what an export leaves, what an empty region says."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from geotessera import GeoTessera
from geotessera.datasets import DatasetId
from geotessera.errors import CoverageWarning, NotCoveredError
from geotessera.export import default_tiles_dir, write_sidecar
from geotessera.sample.serve import SampleServer

REGION = (0.0, 52.0, 0.2, 52.2)  # 4 tiles of the sample store


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def fresh_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: SampleServer) -> Path:
    """An empty working directory, the served store as the default source, a private cache."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("GEOTESSERA_BASE_URL", s3_endpoint.base_url)
    monkeypatch.setenv("GEOTESSERA_CACHE_DIR", str(tmp_path / "cache"))
    return work


def test_default_tiles_dir_rules(tmp_path: Path) -> None:
    v1, v11 = DatasetId(), DatasetId.parse("v1.1", "cambridge")
    assert default_tiles_dir(v1, tmp_path) == tmp_path  # the seed's: the current directory
    assert default_tiles_dir(v11, tmp_path) == tmp_path / "tessera-v1.1-cambridge"
    write_sidecar(tmp_path, v11, fmt="npy", tiles=[], source_url="x")  # a directory of v1.1 already
    assert default_tiles_dir(v11, tmp_path) == tmp_path  # its tiles stay in use
    assert default_tiles_dir(v1, tmp_path) == tmp_path / "tessera-v1-vultr"


def test_a_second_dataset_coexists_without_naming_a_directory(fresh_dir: Path) -> None:
    emb, _, _ = GeoTessera().fetch_embedding(lon=0.15, lat=52.05, year=2024)
    assert (fresh_dir / "global_0.1_degree_representation" / "2024" / "grid_0.15_52.05").is_dir()
    gt = GeoTessera(dataset_version="v1.1", dataset_variant="cambridge")
    other, _, _ = gt.fetch_embedding(lon=0.15, lat=52.05, year=2024)
    assert gt.embeddings_dir == fresh_dir / "tessera-v1.1-cambridge"
    assert (gt.embeddings_dir / "global_0.1_degree_representation" / "2024" / "grid_0.15_52.05").is_dir()
    assert emb.shape == other.shape and not (emb == other).all()
    again, _, _ = GeoTessera().fetch_embedding(lon=0.15, lat=52.05, year=2024)  # and back again
    np.testing.assert_array_equal(again, emb)


def test_an_export_after_a_fetch_reads_the_tiles_in_place_and_writes_only_its_output(
    fresh_dir: Path,
) -> None:
    gt = GeoTessera()
    tiles = gt.registry.load_blocks_for_region(bounds=REGION, year=2024)
    assert len(list(gt.fetch_embeddings(tiles))) == 4
    before = _files(fresh_dir)
    plan = gt.plan(tiles, "./output", fmt="tiff")
    assert plan.transfers and all("tiff_all" in t.key for t in plan.transfers)  # only the landmasks
    files = gt.export_embedding_geotiffs(tiles_to_fetch=tiles, output_dir="./output", bands=[0, 1, 2])
    assert len(files) == 4
    after = _files(fresh_dir)
    new = after - before
    assert new and all(p.parts[0] == "output" for p in new)  # nothing new outside ./output
    assert before <= after  # the fetched tiles are kept where they were
    assert not [p for p in new if p.suffix == ".npy"]  # no quantised copies in ./output either


def test_an_export_on_its_own_leaves_no_temporary_files(fresh_dir: Path) -> None:
    gt = GeoTessera()
    tiles = gt.registry.load_blocks_for_region(bounds=REGION, year=2024)
    gt.export_embedding_geotiffs(tiles_to_fetch=tiles, output_dir="./output")
    assert {p.parts[0] for p in _files(fresh_dir)} == {"output"}
    assert not [p for p in _files(fresh_dir) if p.suffix in (".npy", ".part", ".tmp")]


def test_a_region_without_coverage_warns_in_python_as_the_cli_says(fresh_dir: Path) -> None:
    gt = GeoTessera()
    with pytest.warns(CoverageWarning) as caught:
        tiles = gt.registry.load_blocks_for_region(bounds=(10.0, 10.0, 10.2, 10.2), year=2024)
    assert tiles == []
    assert str(caught[0].message) == (
        "none of the 4 tiles of bbox (10.0, 10.0, 10.2, 10.2) is covered for 2024 "
        "(dataset v1/vultr has data for 2023, 2024, elsewhere)"
    )
    with pytest.warns(CoverageWarning, match="nothing to export: the list of tiles is empty"):
        assert gt.export_embedding_geotiffs(tiles_to_fetch=tiles, output_dir="./empty") == []
    assert not (fresh_dir / "empty").exists()  # nothing written for nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gt.registry.load_blocks_for_region(bounds=REGION, year=2024)  # covered: no warning


def test_a_base_url_without_its_bucket_says_so(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    host = s3_endpoint.base_url.rsplit("/", 1)[0]
    gt = GeoTessera(base_url=host, cache_dir=tmp_path / "c", embeddings_dir=tmp_path / "e")
    with pytest.raises(NotCoveredError) as info:
        gt.registry  # noqa: B018
    message = str(info.value)
    assert f"the base URL {host} names no bucket: include it, e.g. {host}/tessera-embeddings" in message
    assert "published datasets" not in message
    assert os.fspath(tmp_path / "c") not in message
