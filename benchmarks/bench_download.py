"""Verified download of 9 real-size tiles (npy) vs. a bare parallel GET of the same objects.

The store (3 x 3 tiles near Cambridge, 10 m pixels, 2024, v1 only: 27 objects, about
987 MB) is built once and cached under the temp directory (see ``benchmarks/_store.py``);
each case serves it with ``geotessera sample serve`` (moto on 127.0.0.1) in a separate
process, so the server neither shares the GIL with the client nor counts in its RSS; one
untimed bare GET of every object warms it up.
Both sides use the same worker count (8, GeoTessera's default) and write to the same disk.

Cases (the ratio column is time over the baseline's; throughput ratio = 1 / ratio, the goal
is >= 0.8, i.e. a time ratio <= 1.25):

- ``bare GET (floor)`` (baseline): urllib3, one pool, 8 threads, 1 MiB reads straight into
  the final files: no checksum, no temporary file, no fsync, no receipt;
- ``GeoTessera.download npy``: ``GeoTessera(workers=8).download(plan)`` of an npy plan:
  ``x-amz-checksum-mode`` GETs, CRC64NVMe while streaming and compared with the header,
  temporary file + fsync + rename, receipts;
- ``bare GET + fsync``: the floor plus an fsync of each file (what atomic, durable writes
  cost on this disk, part of the library's time);
- ``crc64nvme same bytes``: awscrt CRC64NVMe over the same 27 objects held in memory, in
  1 MiB pieces as the client streams them, one thread (the verification's CPU cost).

``cpu_s`` (user + system CPU seconds of the client process during the call) is recorded in
the JSON for each case: on a shared, noisy machine it is steadier than wall time.
"""

from __future__ import annotations

import os
import resource
import tempfile
from pathlib import Path

from benchmarks._store import CHUNK, Session, bare_get, build_options, cached_store, open_session, tiles_in
from benchmarks.harness import Case

BBOX = (0.0, 52.0, 0.3, 52.3)  # 3 x 3 tiles
YEAR = 2024
PIXEL_SIZE_M = 10.0
WORKERS = 8
N_TILES = 9
OPTIONS = build_options(BBOX, PIXEL_SIZE_M, YEAR)
PARAMETERS = {
    "bbox": list(BBOX),
    "year": YEAR,
    "pixel_size_m": PIXEL_SIZE_M,
    "tiles": N_TILES,
    "workers": WORKERS,
}


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _setup_served() -> Session:
    """Serve the cached store; a client with its registry loaded; the plan's objects."""
    return open_session(OPTIONS, BBOX, YEAR, N_TILES, workers=WORKERS, prefix="gt-bench-download-")


def _replan(state: Session) -> None:
    state.replan(fmt="npy")


def _run_bare(state: Session, fsync: bool = False) -> dict[str, float]:
    c0 = _cpu_s()
    n = bare_get(state.objs, WORKERS)
    if fsync:
        for o in state.objs:
            fd = os.open(o.dest, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return {"bytes": n, "cpu_s": _cpu_s() - c0}


def _run_geotessera(state: Session) -> dict[str, float]:
    c0 = _cpu_s()
    result = state.gt.download(state.plan)
    cpu = _cpu_s() - c0
    if not result.ok or len(result.done) != N_TILES:
        raise RuntimeError(f"download incomplete: {result.summary()} {result.failed[:3]}")
    return {"bytes": result.bytes_transferred, "cpu_s": cpu, "tiles": len(result.done)}


def _setup_blobs() -> Session:
    """The 27 objects' bytes, read from the cached store into memory (no server needed)."""
    from geotessera.client import GeoTessera

    root = cached_store(OPTIONS)
    state = Session(work=Path(tempfile.mkdtemp(prefix="gt-bench-crc-")))
    state.gt = GeoTessera(base_url=str(root), cache_dir=state.work / "cache")
    plan = state.gt.plan(tiles_in(state.gt, BBOX, YEAR), state.out, fmt="npy")
    state.blobs = [(root / t.key).read_bytes() for t in plan.transfers]
    return state


def _run_crc(state: Session) -> dict[str, float]:
    from awscrt.checksums import crc64nvme

    c0 = _cpu_s()
    total = 0
    for blob in state.blobs:
        view = memoryview(blob)
        crc = 0
        for i in range(0, len(view), CHUNK):
            crc = crc64nvme(view[i : i + CHUNK], crc)
        total += len(view)
    return {"bytes": total, "cpu_s": _cpu_s() - c0}


def cases() -> list[Case]:
    """Floor, library, floor + fsync, CRC alone (see the module docstring)."""
    return [
        Case(
            name="bare GET (floor)",
            baseline=True,
            setup=_setup_served,
            reset=Session.reset_out,
            run=_run_bare,
            teardown=Session.close,
            repeats=5,
            description=f"urllib3, {WORKERS} threads, no verification, no fsync",
        ),
        Case(
            name="GeoTessera.download npy",
            setup=_setup_served,
            reset=_replan,
            run=_run_geotessera,
            teardown=Session.close,
            repeats=5,
            description=f"GeoTessera(workers={WORKERS}).download(npy plan): verified, atomic, fsynced",
        ),
        Case(
            name="bare GET + fsync",
            setup=_setup_served,
            reset=Session.reset_out,
            run=lambda s: _run_bare(s, fsync=True),
            teardown=Session.close,
            repeats=5,
            description="the floor plus an fsync of every file",
        ),
        Case(
            name="crc64nvme same bytes",
            setup=_setup_blobs,
            run=_run_crc,
            teardown=Session.close,
            repeats=5,
            description="awscrt crc64nvme over the 27 objects in memory, 1 MiB pieces, one thread",
        ),
    ]
