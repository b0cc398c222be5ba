"""Planning, option checks and file writers of the sample store builder (geotessera.sample.build)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from geotessera.datasets import DatasetId
from geotessera.errors import InvalidInputError, OutputError
from geotessera.grid import Cell, utm_epsg
from geotessera.progress import Event, ItemDone, PlanReady
from geotessera.sample.build import (
    DEFAULT_BBOX,
    _atomic,
    _Writer,
    build_store,
    plan_store,
)


def test_default_plan() -> None:
    plan = plan_store()
    assert plan.datasets == (DatasetId("1.0", "vultr"), DatasetId("1.1", "cambridge"))
    assert plan.datasets[1].emb_dir == "global_0.1_degree_representation.cambridge"
    assert plan.years == (2023, 2024)
    names = {c.name for c in plan.cells}
    assert len(names) == 16
    region = {f"grid_{x:.2f}_{y:.2f}" for x in (0.05, 0.15, 0.25, 0.35) for y in (52.05, 52.15, 52.25)}
    assert region <= names
    extra = names - region
    assert extra == {"grid_5.95_45.05", "grid_6.05_45.05", "grid_-58.45_-34.55", "grid_1.75_52.45"}
    partial = Cell.from_name("grid_0.35_52.25")
    assert plan.absent == {partial: (2023,)}
    assert partial not in plan.cells_in_year(2023) and partial in plan.cells_in_year(2024)
    epsg = {c.name: utm_epsg(c.lon, c.lat) for c in plan.cells}
    assert epsg["grid_5.95_45.05"] == 32631 and epsg["grid_6.05_45.05"] == 32632
    assert epsg["grid_-58.45_-34.55"] == 32721
    assert list(plan.cells) == sorted(plan.cells, key=lambda c: (c.iy, c.ix))


def test_plan_without_edge_tiles_or_with_one_year() -> None:
    plan = plan_store(edge_tiles=False)
    assert len(plan.cells) == 12 and not plan.absent and not plan.roles
    plan = plan_store(years=[2024])
    assert not plan.absent and len(plan.cells) == 16
    plan = plan_store(bbox=DEFAULT_BBOX, years=[2024, 2022, 2024], versions=["1.1", "v1.1"])
    assert plan.years == (2022, 2024) and plan.absent[Cell.from_name("grid_0.35_52.25")] == (2022,)
    assert plan.datasets == (DatasetId("1.1", "cambridge"),)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"years": []},
        {"years": [2023.5]},
        {"years": [True]},
        {"years": [1066]},
        {"years": "2023"},
        {"versions": []},
        {"versions": ["v2"]},
        {"versions": ["nonsense"]},
        {"bbox": (1.0, 2.0, 0.0, 3.0)},
        {"bbox": (0.0, 52.0, 0.4)},
        {"bbox": (0.0, 0.0, 60.0, 60.0)},
    ],
)
def test_bad_options_raise_invalid_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        plan_store(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("pixel", [0.0, -10.0, float("nan"), float("inf"), 5000.0, "ten"])
def test_bad_pixel_size(tmp_path: Path, pixel: object) -> None:
    with pytest.raises(InvalidInputError):
        build_store(tmp_path / "s", pixel_size_m=pixel, edge_tiles=False)  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()  # nothing written for a bad request


def test_npy_strips_match_np_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(-127, 128, (23, 7, 128), dtype=np.int8)
    w = _Writer(tmp_path)
    size = w.npy_strips("a/b.npy", arr.shape, np.dtype(np.int8), iter([arr[:5], arr[5:6], arr[6:]]))
    buf = io.BytesIO()
    np.save(buf, arr)
    data = (tmp_path / "a/b.npy").read_bytes()
    assert data == buf.getvalue() and size == len(data)
    assert data[6:8] == b"\x01\x00"  # npy format version 1.0
    assert w.sizes == {tmp_path / "a/b.npy": size}


def test_npy_strips_short_write_leaves_nothing(tmp_path: Path) -> None:
    arr = np.zeros((4, 2, 128), dtype=np.int8)
    with pytest.raises(OutputError):
        _Writer(tmp_path).npy_strips("x.npy", (5, 2, 128), np.dtype(np.int8), iter([arr]))
    assert list(tmp_path.iterdir()) == []


def test_atomic_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    with pytest.raises(RuntimeError), _atomic(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with _atomic(target) as tmp:
        tmp.write_bytes(b"ok")
    assert target.read_bytes() == b"ok" and list(tmp_path.iterdir()) == [target]


def test_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        build_store(
            tmp_path,
            bbox=(0.15, 52.15, 0.15, 52.15),
            years=[2024],
            versions=["v1"],
            pixel_size_m=500.0,
            edge_tiles=False,
        )
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_small_build_progress_and_rebuild_in_place(tmp_path: Path) -> None:
    events: list[Event] = []
    root = tmp_path / "store"
    s = build_store(
        root,
        bbox=(0.1, 52.1, 0.3, 52.2),
        years=[2023, 2024],
        versions=["v1"],
        pixel_size_m=500.0,
        edge_tiles=False,
        progress=events.append,
    )
    assert isinstance(events[0], PlanReady) and events[0].items == 4
    done = [e for e in events if isinstance(e, ItemDone)]
    assert len(done) == 4 == len(s.tiles)
    assert {d.key for d in done} == {
        f"v1/global_0.1_degree_representation/{y}/{n}/{n}.npy"
        for y in (2023, 2024)
        for n in ("grid_0.15_52.15", "grid_0.25_52.15")
    }
    assert s.datasets == [DatasetId("1.0", "vultr")] and s.root == root
    files = [p for p in root.rglob("*") if p.is_file()]
    assert s.bytes_written == sum(p.stat().st_size for p in files) and s.files == len(files)
    assert not [p for p in files if p.name.startswith(".")]  # no temporaries left

    # rebuilding a sample store in place replaces it; files it no longer has are removed
    s2 = build_store(
        root, bbox=(0.1, 52.1, 0.2, 52.2), years=[2024], versions=["v1"], pixel_size_m=500.0, edge_tiles=False
    )
    assert [(y, c.name) for _, y, c in s2.tiles] == [(2024, "grid_0.15_52.15")]
    assert not (root / "v1/global_0.1_degree_representation/2023").exists()
    assert not (root / "v1/global_0.1_degree_tiff_all/grid_0.25_52.15.tiff").exists()
    assert not (root / "ground_truth/2023").exists()
    assert s2.bytes_written == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
