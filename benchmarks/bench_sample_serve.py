"""``geotessera sample serve`` readiness on the real-size store: today's server against the one before.

Store: the default ``sample build`` at 10 m (12 Cambridge tiles plus the edge tiles, 2023 and
2024, v1 and v1.1) with a Zarr store of v1 built under it (``zarr/v1.zarr``), as ``make demo``
serves it: about 300 objects, 9 GB. Built once and cached under the temp directory
(``geotessera-bench-store-<key>``, shared by worktrees; never deleted here).

Each case starts ``geotessera sample serve STORE --port 0 --ready-file F`` in a child
process and is timed from the spawn until the ready file appears (Python start-up and
imports included); the server's RSS is read then. The server is stopped untimed.

- baseline: the server of commit :data:`BASELINE_COMMIT` (the code before objects were served
  from disk: every file uploaded into moto, which holds it), run from a ``git archive`` of that
  commit's ``src`` on ``PYTHONPATH``;
- today's server with its checksum sidecar current (as ``sample build`` leaves it);
- the same with ``--datasets v1``;
- the same after deleting the sidecar: every file is hashed again (a first serve of a store
  built by an older version), and the sidecar is written back.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._store import REPO, TMP, _Child, cached_store
from benchmarks.harness import Case, CaseResult

#: main before sample serve stopped uploading objects into moto
BASELINE_COMMIT = "868bbd882902d991e50993639e1ccbaeda97d6b0"
STORE_OPTIONS: dict[str, Any] = {"pixel_size_m": 10.0}  # build_store's defaults otherwise
GOAL_S = 10.0
PARAMETERS = {"store": "default sample build at 10 m + zarr/v1.zarr", "baseline_commit": BASELINE_COMMIT}


def _store() -> Path:
    """The cached real-size store with ``zarr/v1.zarr`` built under it (once, under a lock)."""
    root = cached_store(STORE_OPTIONS)
    ready = TMP / f"{root.name}.zarr-ready"
    if ready.exists():
        return root
    with open(TMP / f"{root.name}.zarr.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            from geotessera.datasets import DatasetId
            from geotessera.store import build_zarr

            build_zarr(root, root / "zarr" / "v1.zarr", dataset=DatasetId.parse("v1"), workers=2)
            ready.write_text("built\n")
    return root


@dataclass
class _State:
    root: Path
    cmd: list[str]
    env: dict[str, str] | None = None
    work: Path | None = None
    child: _Child | None = None
    drop_sidecar: bool = False


def _serve_cmd(extra: list[str]) -> list[str]:
    return [sys.executable, "-c", "from geotessera.cli import main; main()", "sample", "serve", *extra]


def _setup_today(extra: list[str], drop_sidecar: bool = False) -> _State:
    from geotessera.sample._checksums import SIDECAR, checksums, iter_files
    from geotessera.sample.build import NON_STORE_ENTRIES

    root = _store()
    checksums(root, iter_files(root, NON_STORE_ENTRIES), sidecar=root / SIDECAR)  # current, untimed
    return _State(root, _serve_cmd([str(root), "--port", "0", *extra]), drop_sidecar=drop_sidecar)


def _setup_baseline() -> _State:
    root = _store()
    work = Path(tempfile.mkdtemp(prefix="gt-bench-serve-"))
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASELINE_COMMIT, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    env = {**os.environ, "PYTHONPATH": str(work / "src")}
    return _State(root, _serve_cmd([str(root), "--port", "0"]), env=env, work=work)


def _stop(state: _State) -> None:
    if state.child is not None:
        state.child.stop()
        state.child = None


def _reset(state: _State) -> None:
    from geotessera.sample._checksums import SIDECAR

    _stop(state)
    if state.drop_sidecar:
        (state.root / SIDECAR).unlink(missing_ok=True)


def _teardown(state: _State) -> None:
    _stop(state)
    if state.work is not None:
        shutil.rmtree(state.work, ignore_errors=True)


def _run(state: _State) -> dict[str, float]:
    import psutil

    state.child = _Child(state.cmd, timeout_s=900, env=state.env)
    rss = psutil.Process(state.child.proc.pid).memory_info().rss
    objects = bytes_ = 0.0
    for line in (state.child._dir / "child.log").read_text(errors="replace").splitlines():
        if line.startswith("serving "):  # "serving N objects (X MB) from DIR"
            parts = line.split()
            objects, bytes_ = float(parts[1]), float(parts[3].lstrip("(")) * 1e6
    return {"server_rss_mib": rss / 2**20, "objects": objects, "store_bytes": bytes_}


def _case(name: str, setup: Any, repeats: int, description: str, baseline: bool = False) -> Case:
    return Case(
        name=name,
        baseline=baseline,
        setup=setup,
        reset=_reset,
        run=_run,
        teardown=_teardown,
        repeats=repeats,
        description=description,
    )


def cases() -> list[Case]:
    """Baseline (commit before), today's server with and without its sidecar, and a subset."""
    return [
        _case(
            "sample serve before (uploads into moto)",
            _setup_baseline,
            1,
            f"geotessera sample serve of commit {BASELINE_COMMIT[:10]}: every object uploaded into moto",
            baseline=True,
        ),
        _case(
            "sample serve (from disk, sidecar current)",
            lambda: _setup_today([]),
            3,
            "objects registered from the files, CRC64NVMe from sample_checksums.json",
        ),
        _case(
            "sample serve --datasets v1",
            lambda: _setup_today(["--datasets", "v1"]),
            3,
            "v1's tiles, manifests, landmasks and zarr/v1.zarr only",
        ),
        _case(
            "sample serve, no sidecar (hashes every file)",
            lambda: _setup_today([], drop_sidecar=True),
            1,
            "first serve of a store without sample_checksums.json: CRC64NVMe of every file",
        ),
    ]


def summary(results: dict[str, CaseResult]) -> list[str]:
    """Readiness against the goal and the baseline; the servers' memory."""
    lines = []
    base = results.get("sample serve before (uploads into moto)")
    for name, r in results.items():
        m = r.metrics
        rss = m.get("server_rss_mib", float("nan"))
        line = (
            f"{name}: ready in {r.median_s:.2f} s (goal < {GOAL_S:.0f} s), "
            f"{m.get('objects', 0):.0f} objects, {m.get('store_bytes', 0) / 1e9:.2f} GB, "
            f"server RSS {rss:.0f} MiB"
        )
        if base is not None and r is not base:
            line += f"; {base.median_s / r.median_s:.1f}x faster than before"
        lines.append(line)
    return lines
