"""Peak RSS of a GeoTIFF download (``download --format tiff``) of 4 vs. 16 tiles.

Memory must be bounded by the number of workers and converters, not by the number of
tiles: the 16-tile case should peak at about the 4-tile case's RSS. Each case runs
``GeoTessera(workers=8).download(plan)`` of a tiff plan (lzw, the CLI's default; 8
download workers and 2 converter threads, as ``geotessera download --format tiff``, which
is a thin wrapper over the same two calls) in the harness worker, so the table's "peak RSS"
is the client's peak during the call and "+RSS" its growth over what it held before. The
store is served by a separate process (moto keeps every object in memory; that is not
counted).

Data: tiles of 20 m pixels (570 x 366 x 128; 27 MB int8 per tile, 107 MB as float32),
not real size: 16 real-size tiles would write about 8 GB of GeoTIFF at about 6 s per tile
(lzw). The 4 tiles are the 2 x 2 south-west corner of the 4 x 4 store of ``bench_remote``
(same cached store). Ratio = time over the 4-tile case's time (expected about 4x); compare
the RSS columns.
"""

from __future__ import annotations

from benchmarks._store import Session, build_options, open_session
from benchmarks.harness import Case

STORE_BBOX = (0.0, 52.0, 0.4, 52.4)  # 4 x 4 tiles
YEAR = 2024
PIXEL_SIZE_M = 20.0
WORKERS = 8
COMPRESS = "lzw"
OPTIONS = build_options(STORE_BBOX, PIXEL_SIZE_M, YEAR)
REGIONS = {4: (0.0, 52.0, 0.2, 52.2), 16: STORE_BBOX}
PARAMETERS = {
    "store_bbox": list(STORE_BBOX),
    "year": YEAR,
    "pixel_size_m": PIXEL_SIZE_M,
    "workers": WORKERS,
    "compress": COMPRESS,
    "regions": {str(k): list(v) for k, v in REGIONS.items()},
}


def _setup(n_tiles: int) -> Session:
    return open_session(OPTIONS, REGIONS[n_tiles], YEAR, n_tiles, workers=WORKERS, prefix="gt-bench-dlmem-")


def _reset(state: Session) -> None:
    state.replan(fmt="tiff", compress=COMPRESS)


def _run(state: Session) -> dict[str, float]:
    result = state.gt.download(state.plan)
    if not result.ok or len(result.done) != len(state.tiles):
        raise RuntimeError(f"download incomplete: {result.summary()} {result.failed[:3]}")
    written = sum(p.stat().st_size for p in result.files)
    return {"bytes": written, "tiles": len(result.done), "fetched": result.bytes_transferred}


def cases() -> list[Case]:
    """4 tiles (baseline) and 16 tiles."""
    return [
        Case(
            name="download tiff 4 tiles",
            baseline=True,
            setup=lambda: _setup(4),
            reset=_reset,
            run=_run,
            teardown=Session.close,
            repeats=2,
            description="GeoTessera.download of a tiff plan (lzw), 2 x 2 tiles at 20 m",
        ),
        Case(
            name="download tiff 16 tiles",
            setup=lambda: _setup(16),
            reset=_reset,
            run=_run,
            teardown=Session.close,
            repeats=2,
            description="GeoTessera.download of a tiff plan (lzw), 4 x 4 tiles at 20 m",
        ),
    ]
