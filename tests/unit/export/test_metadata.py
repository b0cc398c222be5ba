"""The output sidecar: the default tile directory of a dataset, and no claim on an empty directory."""

from __future__ import annotations

from pathlib import Path

from geotessera.datasets import DatasetId
from geotessera.export import default_tiles_dir, discard_empty_claim, read_sidecar, write_sidecar


def _claim(root: Path) -> None:
    write_sidecar(root, DatasetId(), fmt="npy", tiles=[], source_url="http://x/b")


def test_an_empty_claim_is_discarded_and_nothing_else_is_touched(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")  # e.g. the user's current directory
    (tmp_path / "global_0.1_degree_representation" / "2024" / "grid_0.15_52.05").mkdir(parents=True)
    _claim(tmp_path)
    assert discard_empty_claim(tmp_path, created=False)
    assert read_sidecar(tmp_path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_directory_made_for_nothing_goes(tmp_path: Path) -> None:
    out = tmp_path / "o"
    (out / "global_0.1_degree_tiff_all").mkdir(parents=True)
    _claim(out)
    assert discard_empty_claim(out, created=True) and not out.exists()


def test_a_claim_with_files_on_disk_stays(tmp_path: Path) -> None:
    lm = tmp_path / "global_0.1_degree_tiff_all" / "grid_0.15_52.05.tiff"
    lm.parent.mkdir(parents=True)
    lm.write_bytes(b"II*\0")
    _claim(tmp_path)
    assert not discard_empty_claim(tmp_path, created=True)
    assert read_sidecar(tmp_path) is not None and lm.exists()


def test_a_corrupt_sidecar_does_not_stop_choosing_a_directory(tmp_path: Path) -> None:
    (tmp_path / "tessera_metadata.json").write_text("{not json")
    assert default_tiles_dir(DatasetId(), tmp_path) == tmp_path
    v11 = DatasetId.parse("v1.1", "cambridge")
    assert default_tiles_dir(v11, tmp_path) == tmp_path / "tessera-v1.1-cambridge"
