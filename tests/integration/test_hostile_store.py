"""A store that serves hostile content, checksummed and sized as its manifest says (so every byte
arrives verified): object arrays, headers whose sizes overflow or lie, scales of the wrong shape,
a landmask that is not a TIFF. Each such tile fails alone with a message naming the file and the
problem, never a traceback, and nothing of it is written at a GeoTIFF's final path; the others
complete. ``..`` in the manifest's path columns is covered by the manifest unit tests.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from geotessera.datasets import DatasetId
from geotessera.errors import CorruptDataError
from geotessera.grid import Cell
from geotessera.outcome import TileRef
from geotessera.pipeline import execute, plan_tiles
from geotessera.registry import Registry, load_manifest
from geotessera.tiles import open_tile
from geotessera.transfer import HttpSource, RetryPolicy
from support.fault_server import FaultServer
from support.outputs import check_final_paths

DIR = "v1/global_0.1_degree_representation/2024"


def _tile(lon: float) -> TileRef:
    return TileRef(2024, Cell.from_point(lon, 52.05))


def _npy_header(shape: tuple[int, ...], descr: str = "|i1") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue()


def _object_npy() -> bytes:
    f = io.BytesIO()
    np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return f.getvalue() + pickle.dumps("payload")


# tile -> (file it breaks, its hostile bytes, what the failure must say)
HOSTILE = {
    _tile(0.05): ("emb", _object_npy(), "object arrays are refused"),
    _tile(0.15): ("emb", _npy_header((2**32, 2**32, 1)), "header implies"),
    _tile(0.25): ("emb", _npy_header((10**6, 10**6, 128)) + bytes(1000), "header implies"),
    _tile(0.35): ("scales", b"", "scales shape"),  # replaced below by wrong-shape scales
}
LANDMASK_TILE = TileRef(2024, Cell.from_point(0.05, 52.15))
GOOD = TileRef(2024, Cell.from_point(0.15, 52.15))


def _keys(t: TileRef) -> dict[str, str]:
    n = t.cell.name
    return {
        "emb": f"{DIR}/{n}/{n}.npy",
        "scales": f"{DIR}/{n}/{n}_scales.npy",
        "landmask": f"v1/global_0.1_degree_tiff_all/{n}.tiff",
    }


@pytest.fixture(scope="module")
def hostile(
    tiny_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FaultServer, Registry]]:
    srv = FaultServer.from_tree(tiny_store, under=DIR)
    for p in (tiny_store / "v1" / "global_0.1_degree_tiff_all").glob("*.tiff"):
        srv.put(p.relative_to(tiny_store).as_posix(), p.read_bytes())
    for t, (which, data, _) in HOSTILE.items():
        if which == "scales":
            emb = np.load(tiny_store / _keys(t)["emb"], mmap_mode="r")
            f = io.BytesIO()
            np.save(f, np.ones((emb.shape[0], emb.shape[1] + 1), np.float32))
            data = f.getvalue()
        srv.put(_keys(t)[which], data)
    srv.put(_keys(LANDMASK_TILE)["landmask"], b"II*\x00 not really a TIFF" + bytes(100))
    # a manifest that agrees with the hostile sizes, so every object arrives verified
    table = pq.read_table(tiny_store / "v1" / "manifest.parquet")
    grid, scales = table.column("grid_size").to_pylist(), table.column("scales_size").to_pylist()
    for i, (lon_i, lat_i, year) in enumerate(
        zip(
            table.column("lon_i").to_pylist(),
            table.column("lat_i").to_pylist(),
            table.column("year").to_pylist(),
            strict=True,
        )
    ):
        for t in [*HOSTILE, LANDMASK_TILE]:
            if (t.cell.lon_i, t.cell.lat_i, t.year) == (lon_i, lat_i, year):
                grid[i] = len(srv.objects[_keys(t)["emb"]])
                scales[i] = len(srv.objects[_keys(t)["scales"]])
    table = table.set_column(
        table.schema.get_field_index("grid_size"), "grid_size", pa.array(grid, pa.int64())
    )
    table = table.set_column(
        table.schema.get_field_index("scales_size"), "scales_size", pa.array(scales, pa.int64())
    )
    root = tmp_path_factory.mktemp("hostile_manifest")
    pq.write_table(table, root / "manifest.parquet")
    lm = pq.read_table(tiny_store / "v1" / "landmasks.parquet")
    sizes = pc.if_else(
        pc.equal(lm.column("key"), _keys(LANDMASK_TILE)["landmask"]),
        len(srv.objects[_keys(LANDMASK_TILE)["landmask"]]),
        lm.column("file_size"),
    )
    pq.write_table(
        lm.set_column(lm.schema.get_field_index("file_size"), "file_size", sizes), root / "landmasks.parquet"
    )
    try:
        srv.start()
        yield srv, Registry(load_manifest(DatasetId(), registry_dir=root))
    finally:
        srv.stop()


def test_hostile_tiles_fail_alone_with_their_cause(
    hostile: tuple[FaultServer, Registry], tiny_store: Path, tiff_reference: Path, tmp_path: Path
) -> None:
    srv, registry = hostile
    tiles = [*HOSTILE, LANDMASK_TILE, GOOD]
    out = tmp_path / "out"
    with HttpSource(srv.url, retry=RetryPolicy(max_retries=0)) as src:
        plan = plan_tiles(registry, src, DatasetId(), tiles, out, fmt="tiff")
        result = execute(plan, src, workers=2)
    failures = dict(result.failed)
    assert result.done == [GOOD], failures
    for t, (_, _, words) in HOSTILE.items():
        assert words in failures[t], (t, failures[t])
    assert "cannot read landmask GeoTIFF" in failures[LANDMASK_TILE]
    assert not any("unexpected" in m for m in failures.values()), failures
    # no hostile tile has a GeoTIFF, the good one has the right one, and every other file at a
    # final path holds exactly the (verified) bytes the store served
    tiffs = sorted(p.name for p in out.rglob("*_2024.tiff"))
    assert tiffs == [f"{GOOD.cell.name}_2024.tiff"]
    served = tmp_path / "served"
    for key, data in srv.objects.items():
        (served / key).parent.mkdir(parents=True, exist_ok=True)
        (served / key).write_bytes(data)
    check_final_paths(out, served, tiff_reference)


def test_hostile_npy_downloads_are_refused_when_read(
    hostile: tuple[FaultServer, Registry], tmp_path: Path
) -> None:
    srv, registry = hostile
    out = tmp_path / "out"
    with HttpSource(srv.url, retry=RetryPolicy(max_retries=0)) as src:
        plan = plan_tiles(registry, src, DatasetId(), [*HOSTILE, LANDMASK_TILE], out, fmt="npy")
        result = execute(plan, src, workers=2)
    assert result.ok, result.failed  # verified bytes, stored as the store holds them...
    for job in plan.jobs:  # ...and refused, with the file named, by whatever reads them
        with pytest.raises(CorruptDataError, match=job.tile.cell.name):
            open_tile(job.embedding, job.scales, job.landmask)
