"""SIGKILL at random moments, then a plain rerun: nothing wrong ever sits at a final path.

A download is killed at a random moment (start-up, manifest, transfers, conversions, the
sidecar), again and again, each run resuming what the last one left; after every kill every
file at a final path is checked against the store (or the reference export), and a final
plain rerun must finish byte-correct with no temporary left behind.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from geotessera.sample.serve import SampleServer
from support.outputs import assert_complete, check_final_paths, download_args, run_cli, start_cli

KILLS = 12
"""Kills per format (24 in all)."""
EARLIEST_S = 0.1
"""The earliest moment of a kill after the process starts (within its start-up); the latest is
the duration of an uninterrupted run, measured first, so the kills cover the whole run however
fast this machine and the writers are."""


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "tiff"])
def test_sigkill_at_random_moments_then_rerun(
    fmt: str, s3_endpoint: SampleServer, tiny_store: Path, tiff_reference: Path, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = download_args(out, s3_endpoint.base_url, cache, fmt)
    t0 = time.perf_counter()
    first = run_cli(args)
    assert first.returncode == 0, f"{first.stderr} (seed {seed})"
    window = (EARLIEST_S, max(2 * EARLIEST_S, time.perf_counter() - t0))
    shutil.rmtree(out)
    kills = runs = 0
    while kills < KILLS:
        runs += 1
        assert runs <= 4 * KILLS, f"only {kills} of {runs} runs were still going when killed (seed {seed})"
        proc = start_cli(args)
        moment = rng.uniform(*window)
        try:
            code = proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills += 1
        else:
            assert code == 0, f"run {runs} failed on its own (seed {seed})"
            shutil.rmtree(out)  # it finished: start over, so the next kills land mid-work
            continue
        try:
            check_final_paths(out, tiny_store, tiff_reference)
        except AssertionError as exc:
            raise AssertionError(f"after kill {kills} at {moment:.2f} s (seed {seed}): {exc}") from exc
    done = run_cli(args)
    assert done.returncode == 0, f"{done.stderr} (seed {seed})"
    assert_complete(out, tiny_store, fmt, tiff_reference)
