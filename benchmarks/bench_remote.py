"""Download through a proxy modelling a remote store: 8 workers vs. one file at a time.

The local moto endpoint answers in about a millisecond at GB/s, so it hides what
concurrency is for. Here every request goes through :mod:`benchmarks.throttle_proxy`
(separate process, 127.0.0.1): 30 ms per request round trip and 60 MB/s per connection,
roughly one S3 GET stream from a distant region. moto closes the connection after each
response, so every request is a new connection (for both sides alike).

Data: 16 tiles (4 x 4 near Cambridge, 2024, v1) at **20 m pixels** (570 x 366 x 128, 27 MB
per embedding; 48 objects, about 438 MB), not real size: one file at a time at 60 MB/s takes
about 9 s per run, and 16 equal tiles over 8 workers make exactly two rounds, so the ideal
speed-up is the worker count (9 tiles would cap it near 5x by granularity alone). The store
is cached under the temp directory and shared with ``bench_download_memory``.

Cases (ratio = time over the baseline's; speed-up = 1 / ratio):

- ``GeoTessera workers=1`` (baseline): one file at a time, how the existing client works;
- ``GeoTessera workers=8``: the default worker count;
- ``bare GET workers=8``: urllib3, 8 threads, no verification, no fsync, through the same
  proxy: what the proxy + moto + 2 cores can deliver to 8 streams (the transport's ceiling).

Model of the serial time: 48 x 30 ms + 438 MB / 60 MB/s = 8.7 s; the ideal 8-worker time is
about 2 x (27.4 MB / 60 MB/s + 30 ms) = 1.0 s plus the small files.
"""

from __future__ import annotations

from benchmarks._store import Session, bare_get, build_options, open_session
from benchmarks.harness import Case

BBOX = (0.0, 52.0, 0.4, 52.4)  # 4 x 4 tiles
YEAR = 2024
PIXEL_SIZE_M = 20.0
N_TILES = 16
LATENCY_MS = 30.0
RATE_MBPS = 60.0
OPTIONS = build_options(BBOX, PIXEL_SIZE_M, YEAR)
PARAMETERS = {
    "bbox": list(BBOX),
    "year": YEAR,
    "pixel_size_m": PIXEL_SIZE_M,
    "tiles": N_TILES,
    "latency_ms": LATENCY_MS,
    "rate_mb_per_s_per_connection": RATE_MBPS,
}


def _setup(workers: int) -> Session:
    return open_session(
        OPTIONS,
        BBOX,
        YEAR,
        N_TILES,
        workers=workers,
        prefix="gt-bench-remote-",
        proxy={"latency_ms": LATENCY_MS, "rate_mbps": RATE_MBPS},
    )


def _replan(state: Session) -> None:
    state.replan(fmt="npy")


def _run_geotessera(state: Session) -> dict[str, float]:
    result = state.gt.download(state.plan)
    if not result.ok or len(result.done) != N_TILES:
        raise RuntimeError(f"download incomplete: {result.summary()} {result.failed[:3]}")
    return {"bytes": result.bytes_transferred, "tiles": len(result.done)}


def _run_bare(state: Session) -> dict[str, float]:
    return {"bytes": bare_get(state.objs, state.workers)}


def cases() -> list[Case]:
    """One at a time (baseline), 8 workers, and the bare 8-stream ceiling."""
    return [
        Case(
            name="GeoTessera workers=1",
            baseline=True,
            setup=lambda: _setup(1),
            reset=_replan,
            run=_run_geotessera,
            teardown=Session.close,
            repeats=3,
            description="one file at a time through the throttling proxy",
        ),
        Case(
            name="GeoTessera workers=8",
            setup=lambda: _setup(8),
            reset=_replan,
            run=_run_geotessera,
            teardown=Session.close,
            repeats=3,
            description="8 concurrent verified downloads through the throttling proxy",
        ),
        Case(
            name="bare GET workers=8",
            setup=lambda: _setup(8),
            reset=Session.reset_out,
            run=_run_bare,
            teardown=Session.close,
            repeats=3,
            description="urllib3, 8 threads, unverified, through the same proxy (transport ceiling)",
        ),
    ]
