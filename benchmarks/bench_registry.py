"""Registry: start-up from a cached 4.4M-row manifest and region queries vs a pyarrow filter.

The synthetic manifest has the real size (1.6 million locations, 4.4 million (year, tile)
rows over 2017-2025, rows in no useful order) plus a 1.6M-row landmasks manifest. It is
generated once into the temp directory and reused by every case.

Cases (each in a fresh process; the ratio column is relative to the baseline):

- ``pyarrow_filter_queries`` (baseline): 20 region queries, each a pyarrow compute filter over
  all rows of the loaded table (what a pandas-free naive client does);
- ``registry_queries``: the same 20 queries through :meth:`Registry.load_blocks_for_region`;
- ``startup_offline``: ``load_manifest(offline=True)`` + ``Registry.from_manifest`` from the cache;
- ``startup_unreachable``: the same, online, with the base URL on a closed loopback port (the
  freshness check fails at once and only warns);
- ``startup_registry_dir``: from a local ``registry_dir`` (no cache, no network);
- ``read_whole_manifest``: for scale, ``pq.read_table`` of every column (a naive start-up).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import Case
from geotessera.datasets import DatasetId
from geotessera.layouts import DEFAULT_BASE_URL
from geotessera.registry import Registry, cached_manifest_paths, load_manifest

N_LOCATIONS = 1_600_000
#: fraction of locations covered per year: 2.75 rows per location on average -> 4.4M rows
YEAR_FRACTIONS = {2017: 0.1, 2018: 0.1, 2019: 0.15, 2020: 0.2, 2021: 0.25, 2022: 0.3, 2023: 0.5, 2024: 1.0}
YEAR_FRACTIONS[2025] = 0.15
SEED = 20240
N_QUERIES = 20
PARAMETERS = {"locations": N_LOCATIONS, "year_fractions": YEAR_FRACTIONS, "queries_per_run": N_QUERIES}

log = logging.getLogger(__name__)
_DIR = Path(tempfile.gettempdir()) / f"geotessera-bench-registry-{N_LOCATIONS}-{SEED}"


def synthetic_tables() -> tuple[pa.Table, pa.Table]:
    """(manifest, landmasks) of the real size, formats.md section 4 schema, rows shuffled."""
    rng = np.random.default_rng(SEED)
    cells = rng.choice(3600 * 1800, N_LOCATIONS, replace=False)
    lon_i = ((cells // 1800 - 1800) * 10 + 5).astype(np.int32)
    lat_i = ((cells % 1800 - 900) * 10 + 5).astype(np.int32)
    parts = []
    for year, frac in YEAR_FRACTIONS.items():
        idx = np.flatnonzero(rng.random(N_LOCATIONS) < frac)
        parts.append((np.full(idx.size, year, np.int64), idx))
    years = np.concatenate([p[0] for p in parts])
    idx = np.concatenate([p[1] for p in parts])
    order = rng.permutation(idx.size)
    years, idx = years[order], idx[order]
    n = idx.size
    grid_size = (1140 * 731 * 128 + rng.integers(-5_000_000, 5_000_000, N_LOCATIONS))[idx]
    manifest = pa.table(
        {
            "version": pa.array(["1.0"] * n).dictionary_encode(),
            "variant": pa.array(["vultr"] * n).dictionary_encode(),
            "year": years,
            "lon": lon_i[idx] / 100,
            "lat": lat_i[idx] / 100,
            "grid_size": grid_size.astype(np.int64),
            "scales_size": (grid_size // 32).astype(np.int64),
            "lon_i": lon_i[idx],
            "lat_i": lat_i[idx],
        }
    )
    landmasks = pa.table(
        {
            "lon": lon_i / 100,
            "lat": lat_i / 100,
            "file_size": rng.integers(100_000, 900_000, N_LOCATIONS).astype(np.int64),
            "lon_i": lon_i,
            "lat_i": lat_i,
        }
    )
    return manifest, landmasks


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _seed_cache(cache: Path, url: str, src: Path) -> None:
    """Place the synthetic files where load_manifest caches the manifest of ``url``."""
    paths = cached_manifest_paths(DatasetId(), base_url=url, cache_dir=cache)
    keys = ("v1/manifest.parquet", "v1/landmasks.parquet")
    for path, key in zip(paths, keys, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.link(src / path.name, path)
        meta = {"url": f"{url}/{key}", "etag": '"bench"', "last_modified": None}
        path.with_name(path.name + ".json").write_text(json.dumps(meta))


def _data_dir() -> Path:
    """Generate the synthetic files once (reused across runs), return their directory."""
    src = _DIR / "src"
    if not (src / "landmasks.parquet").exists():
        src.mkdir(parents=True, exist_ok=True)
        manifest, landmasks = synthetic_tables()
        pq.write_table(manifest, src / "manifest.parquet")
        pq.write_table(landmasks, src / "landmasks.parquet")
    return src


def _queries() -> list[tuple[tuple[float, float, float, float], int]]:
    """20 boxes of 0.05-2 degrees on a side, some aligned to cells, over several years."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(N_QUERIES):
        lon, lat = rng.uniform(-170, 170), rng.uniform(-80, 80)
        side = float(rng.choice([0.1, 0.5, 1.0, 2.0, 0.05]))
        if i % 4 == 0:
            lon, lat = round(lon, 1), round(lat, 1)
        out.append(((lon, lat, lon + side, lat + side), 2017 + i % 9))
    return out


# --- cases ------------------------------------------------------------------------------------
def _setup_table() -> dict[str, Any]:
    src = _data_dir()
    table = pq.read_table(src / "manifest.parquet", columns=["year", "lon", "lat"])
    return {"table": table, "queries": _queries()}


def _run_naive(state: dict[str, Any]) -> dict[str, float]:
    t: pa.Table = state["table"]
    total = 0
    for (x0, y0, x1, y1), year in state["queries"]:
        # tiles whose cell [c - 0.05, c + 0.05] overlaps the box with positive area
        mask = pc.and_(
            pc.and_(
                pc.equal(t["year"], year),
                pc.and_(pc.greater(t["lon"], x0 - 0.05), pc.less(t["lon"], x1 + 0.05)),
            ),
            pc.and_(pc.greater(t["lat"], y0 - 0.05), pc.less(t["lat"], y1 + 0.05)),
        )
        total += t.filter(mask).num_rows
    return {"tiles": total}


def _setup_registry() -> dict[str, Any]:
    reg = Registry.from_manifest(load_manifest(DatasetId(), registry_dir=_data_dir()))
    return {"registry": reg, "queries": _queries()}


def _run_registry(state: dict[str, Any]) -> dict[str, float]:
    reg: Registry = state["registry"]
    total = sum(len(reg.load_blocks_for_region(box, year)) for box, year in state["queries"])
    return {"tiles": total}


def _run_read_all(state: dict[str, Any]) -> dict[str, float]:
    return {"rows": pq.read_table(state["dir"] / "manifest.parquet").num_rows}


def _setup_cache(url: str) -> dict[str, Any]:
    cache = _DIR / "cache"
    _seed_cache(cache, url, _data_dir())
    return {"cache": cache, "url": url}


def _run_startup(state: dict[str, Any], offline: bool) -> dict[str, float]:
    m = load_manifest(DatasetId(), base_url=state["url"], cache_dir=state["cache"], offline=offline)
    reg = Registry.from_manifest(m)
    return {"rows": len(reg)}


def _run_dir(state: dict[str, Any]) -> dict[str, float]:
    reg = Registry.from_manifest(load_manifest(DatasetId(), registry_dir=state["dir"]))
    return {"rows": len(reg)}


def cases() -> list[Case]:
    """The cases of this benchmark (see the module docstring)."""
    logging.getLogger("geotessera").setLevel(logging.ERROR)  # the unreachable case warns by design
    return [
        Case(
            "pyarrow_filter_queries",
            _run_naive,
            setup=_setup_table,
            baseline=True,
            repeats=5,
            description=f"{N_QUERIES} region queries, pyarrow filter over all rows",
        ),
        Case(
            "registry_queries",
            _run_registry,
            setup=_setup_registry,
            repeats=5,
            description=f"{N_QUERIES} region queries, Registry.load_blocks_for_region",
        ),
        Case(
            "startup_offline",
            lambda s: _run_startup(s, True),
            setup=lambda: _setup_cache(DEFAULT_BASE_URL),
            repeats=5,
            description="cached manifest + landmasks -> Registry, offline",
        ),
        Case(
            "startup_unreachable",
            lambda s: _run_startup(s, False),
            setup=lambda: _setup_cache(_closed_port_url()),
            repeats=5,
            description="cached manifest, base URL on a closed loopback port",
        ),
        Case(
            "startup_registry_dir",
            _run_dir,
            setup=lambda: {"dir": _data_dir()},
            repeats=5,
            description="registry_dir -> Registry",
        ),
        Case(
            "read_whole_manifest",
            _run_read_all,
            setup=lambda: {"dir": _data_dir()},
            repeats=5,
            description="pq.read_table of every column (naive start-up)",
        ),
    ]
