"""``coverage`` of a synthetic 1.6-million-location manifest, at 2000 px: goal under 5 s.

The manifest (built once, cached under the temp directory) has the real one's size:
1.6 million tile locations over three years, about 4.4 million rows, in the formats.md
section 4 columns. Locations are random cells between 60 S and 75 N.

- baseline, "published PolyCollection": the published client's fastest path
  (``visualize_sources_coverage``): one matplotlib ``PolyCollection`` of a rectangle per
  location, built from numpy, drawn at 2000 px over a grey background (no countries, which
  would only add to its time), one run;
- "ours": ``visualize_global_coverage`` at 2000 px with countries, everything included:
  the manifest read into a registry, the three year layers, the rasterised cells, land and
  borders, the PNG.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks._store import TMP
from benchmarks.harness import Case, CaseResult

LOCATIONS = 1_600_000
YEARS = (2023, 2024, 2025)
SHARE = {2023: 0.55, 2024: 0.9, 2025: 1.0}  # share of the locations present each year
WIDTH = 2000
PARAMETERS = {"locations": LOCATIONS, "years": list(YEARS), "width_px": WIDTH}


def manifest_path() -> Path:
    """The cached synthetic manifest (built on first use)."""
    key = hashlib.sha256(repr((LOCATIONS, YEARS, SHARE)).encode()).hexdigest()[:12]
    path = TMP / f"geotessera-bench-coverage-{key}.parquet"
    if path.exists():
        return path
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        import pyarrow as pa
        import pyarrow.parquet as pq

        rng = np.random.default_rng(0)
        cells = rng.choice(3600 * 1350, size=LOCATIONS, replace=False)  # lat -60 .. 75
        ix, iy = cells % 3600 - 1800, cells // 3600 - 600
        parts = []
        for year in YEARS:
            keep = rng.random(LOCATIONS) < SHARE[year]
            lon_i, lat_i = (ix[keep] * 10 + 5).astype(np.int32), (iy[keep] * 10 + 5).astype(np.int32)
            n = int(keep.sum())
            parts.append(
                pa.table(
                    {
                        "version": pa.array(["1.0"] * n),
                        "variant": pa.array(["vultr"] * n),
                        "year": pa.array(np.full(n, year, np.int64)),
                        "lon": pa.array(lon_i / 100),
                        "lat": pa.array(lat_i / 100),
                        "grid_size": pa.array(np.full(n, 106_000_000, np.int64)),
                        "scales_size": pa.array(np.full(n, 3_300_000, np.int64)),
                        "lon_i": pa.array(lon_i),
                        "lat_i": pa.array(lat_i),
                    }
                )
            )
        fd, tmp = tempfile.mkstemp(dir=TMP, suffix=".parquet")
        os.close(fd)
        pq.write_table(pa.concat_tables(parts), tmp)
        os.replace(tmp, path)
    return path


@dataclass
class _State:
    work: Path
    manifest: Path

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _setup() -> _State:
    return _State(Path(tempfile.mkdtemp(prefix="gt-bench-cov-")), manifest_path())


def _ours(state: _State) -> dict[str, float]:
    from geotessera.client import GeoTessera
    from geotessera.visualization import visualize_global_coverage

    gt = GeoTessera(registry_path=state.manifest)
    out = visualize_global_coverage(gt, state.work / "coverage.png", width_pixels=WIDTH)
    return {"bytes": float(Path(out).stat().st_size), "rows": float(len(gt.registry))}


def _published(state: _State) -> dict[str, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow.parquet as pq
    from matplotlib.collections import PolyCollection

    t = pq.read_table(state.manifest, columns=["lon", "lat", "year", "version", "variant"]).to_pandas()
    t = t.drop_duplicates(subset=["version", "variant", "lon", "lat"])
    lons, lats = t["lon"].to_numpy(), t["lat"].to_numpy()
    w, e, s, n = lons - 0.05, lons + 0.05, lats - 0.05, lats + 0.05
    verts = np.stack([np.stack(p, axis=1) for p in ((w, s), (e, s), (e, n), (w, n))], axis=1)
    fig, ax = plt.subplots(1, 1, figsize=(WIDTH / 100, WIDTH / 200), dpi=100)
    try:
        ax.set_facecolor("lightgray")
        ax.add_collection(PolyCollection(verts, facecolors="tab:blue", alpha=0.6, linewidths=0))  # type: ignore[arg-type]
        ax.set_xlim(-180, 180)
        ax.set_ylim(-90, 90)
        fig.savefig(state.work / "published.png", dpi=100)
    finally:
        plt.close(fig)
    return {"bytes": float((state.work / "published.png").stat().st_size), "rows": float(len(t))}


def cases() -> list[Case]:
    """The published PolyCollection (baseline, once) and ours."""
    return [
        Case(
            "published PolyCollection",
            _published,
            setup=_setup,
            teardown=_State.close,
            baseline=True,
            repeats=1,
            description="one PolyCollection of 1.6 M rectangles (the published sources map)",
        ),
        Case(
            "ours",
            _ours,
            setup=_setup,
            teardown=_State.close,
            repeats=3,
            description="visualize_global_coverage at 2000 px, manifest read included",
        ),
    ]


def summary(results: dict[str, CaseResult]) -> list[str]:
    """The goal: under 5 s."""
    ours = results.get("ours")
    if ours is None:
        return []
    verdict = "met" if ours.median_s < 5 else "NOT met"
    return [f"ours: {ours.median_s:.2f} s for {LOCATIONS:,} locations at {WIDTH} px (goal < 5 s: {verdict})"]
