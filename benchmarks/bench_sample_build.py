"""Sample store build of 9 real-size tiles vs. np.save of the same arrays (the floor).

``build_store`` synthesises land cover and embeddings and writes, per tile, the int8
(H, W, 128) embedding, the float32 (H, W) scales and a landmask GeoTIFF, plus manifests
and ground truth. The floor writes only the same int8 and float32 arrays with plain
``np.save`` (arrays generated beforehand by one untimed build, then held in memory).
Neither fsyncs. The ratio says how much synthesis and the extra files cost over the
bare writes.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Case

BBOX = (0.0, 52.0, 0.3, 52.3)  # 3 x 3 tiles near Cambridge, UTM 31N
BUILD_OPTIONS: dict[str, Any] = {
    "bbox": BBOX,
    "years": (2023,),
    "versions": ("v1",),
    "pixel_size_m": 10.0,
    "edge_tiles": False,
}
PARAMETERS = {**BUILD_OPTIONS, "bbox": list(BBOX), "years": [2023], "versions": ["v1"], "tiles": 9}


@dataclass
class _State:
    work: Path
    out: Path
    arrays: list[tuple[str, np.ndarray]] = field(default_factory=list)


def _fresh_state() -> _State:
    work = Path(tempfile.mkdtemp(prefix="gt-bench-build-"))
    return _State(work=work, out=work / "out")


def _reset(state: _State) -> None:
    shutil.rmtree(state.out, ignore_errors=True)


def _teardown(state: _State) -> None:
    shutil.rmtree(state.work, ignore_errors=True)


def _run_build(state: _State) -> dict[str, float]:
    from geotessera.sample.build import build_store

    summary = build_store(state.out, **BUILD_OPTIONS)
    if len(summary.tiles) != PARAMETERS["tiles"]:
        raise RuntimeError(f"expected {PARAMETERS['tiles']} tiles, built {len(summary.tiles)}")
    return {"bytes": summary.bytes_written, "tiles": len(summary.tiles)}


def _setup_arrays() -> _State:
    """Build once (untimed) and load every embedding and scales array into memory."""
    from geotessera.sample.build import build_store

    state = _fresh_state()
    src = state.work / "source"
    build_store(src, **BUILD_OPTIONS)
    for path in sorted(src.rglob("grid_*.npy")):
        state.arrays.append((path.relative_to(src).as_posix(), np.load(path)))
    shutil.rmtree(src)
    n_tiles = sum(1 for name, a in state.arrays if a.dtype == np.int8)
    if n_tiles != PARAMETERS["tiles"]:
        raise RuntimeError(f"expected {PARAMETERS['tiles']} int8 arrays, found {n_tiles}")
    return state


def _run_np_save(state: _State) -> dict[str, float]:
    written = 0
    for rel, array in state.arrays:
        path = state.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
        written += path.stat().st_size
    return {"bytes": written, "tiles": PARAMETERS["tiles"]}


def cases() -> list[Case]:
    """The floor (np.save of the pre-generated arrays) and the full build."""
    return [
        Case(
            name="np.save int8+float32",
            baseline=True,
            setup=_setup_arrays,
            run=_run_np_save,
            reset=_reset,
            teardown=_teardown,
            repeats=3,
            description="np.save of the 9 int8 embeddings and 9 float32 scales, arrays in memory",
        ),
        Case(
            name="build_store 9 tiles",
            setup=_fresh_state,
            run=_run_build,
            reset=_reset,
            teardown=_teardown,
            repeats=3,
            description="build_store(bbox=(0,52,0.3,52.3), one version, one year, 10 m, no edge tiles)",
        ),
    ]
