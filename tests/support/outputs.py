"""Run the ``geotessera`` command as a real process, and judge what a download left on disk.

The guarantees under test: nothing wrong ever sits at a final path (every ``.npy`` and landmask
there equals the store's bytes, every GeoTIFF is whole and holds the reference pixels), and a
completed rerun leaves no temporary behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

BBOX = "0.0,52.0,0.4,52.3"
"""The twelve v1 tiles of the sample store (2024)."""
N_TILES = 12
EXE = str(Path(sys.executable).with_name("geotessera"))


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment without GEOTESSERA_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOTESSERA_")}
    return env | extra


def download_args(out: Path, base_url: str, cache: Path, fmt: str) -> list[str]:
    """The command line of a download of :data:`BBOX` into ``out``."""
    return [
        "download",
        "-o",
        str(out),
        "--bbox",
        BBOX,
        "-f",
        fmt,
        "--base-url",
        base_url,
        "--cache-dir",
        str(cache),
    ]


def run_cli(
    args: Sequence[str],
    *,
    prefix: Sequence[str] = (),
    timeout: float = 300,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``geotessera ARGS`` (after ``prefix``, e.g. ``nsenter ...``) and capture its output."""
    return subprocess.run(
        [*prefix, EXE, *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def run_together(*commands: Sequence[str], timeout: float = 300) -> list[tuple[int, str]]:
    """Run ``geotessera COMMAND`` for each command at the same time; (exit code, stderr) of each."""
    procs = [
        subprocess.Popen(
            [EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
        )
        for args in commands
    ]
    outs = [p.communicate(timeout=timeout) for p in procs]
    return [(p.returncode, err) for p, (_, err) in zip(procs, outs, strict=True)]


def start_cli(args: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start ``geotessera ARGS`` in the background, its output discarded."""
    return subprocess.Popen([EXE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())


def _data_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def temporaries(out: Path) -> list[Path]:
    """Temporary files of writers (``*.part``) anywhere under ``out``."""
    return sorted(p for p in out.rglob("*.part")) if out.exists() else []


def read_tiff(path: Path) -> tuple[np.ndarray, dict[str, str], tuple[object, ...]]:
    """Pixels (bands, H, W), tags and georeferencing of a GeoTIFF; raises if it does not decode."""
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(), ds.tags(), (ds.crs, ds.transform, ds.descriptions)


def check_final_paths(out: Path, store: Path, tiff_reference: Path | None = None) -> int:
    """Assert that every file at a final path under ``out`` is right; returns how many there are.

    ``.npy`` and landmask files must equal the store's bytes (``store/v1/...``); GeoTIFF
    exports must decode whole and hold the reference's pixels, tags and georeferencing
    (``tiff_reference``, a directory exported once without faults). The sidecar and the hidden
    receipts and records must be valid JSON.
    """
    if not out.exists():
        return 0
    files = _data_files(out)
    for p in files:
        rel = p.relative_to(out)
        if p.name == "tessera_metadata.json":
            json.loads(p.read_text())
        elif p.suffix == ".npy" or rel.parts[0] == "global_0.1_degree_tiff_all":
            assert p.read_bytes() == (store / "v1" / rel).read_bytes(), f"{rel} differs from the store"
        elif p.suffix == ".tiff":
            assert tiff_reference is not None, f"unexpected GeoTIFF {rel}"
            got, ref = read_tiff(p), read_tiff(tiff_reference / rel)
            np.testing.assert_array_equal(got[0], ref[0], err_msg=str(rel))
            assert got[1] == ref[1] and got[2] == ref[2], rel
        else:
            raise AssertionError(f"unexpected file {rel}")
    for p in out.rglob(".*.json"):
        json.loads(p.read_text())
    return len(files)


def tile_outputs(out: Path, fmt: str) -> list[Path]:
    """The per-tile outputs present: GeoTIFFs (tiff) or embedding ``.npy`` files (npy)."""
    pattern = "*_2024.tiff" if fmt == "tiff" else "grid_*[0-9].npy"
    return sorted((out / "global_0.1_degree_representation").rglob(pattern)) if out.exists() else []


def assert_complete(
    out: Path,
    store: Path,
    fmt: str,
    tiff_reference: Path | None = None,
    *,
    n_tiles: int = N_TILES,
    sidecar: bool = True,
) -> None:
    """Assert a finished download of ``n_tiles``: every tile right, nothing temporary left, and
    (``sidecar``: when the CLI or the client made it) the sidecar recording them all."""
    check_final_paths(out, store, tiff_reference)
    outputs = tile_outputs(out, fmt)
    assert len(outputs) == n_tiles, f"{len(outputs)} of {n_tiles} tiles: {outputs}"
    left = temporaries(out)
    assert left == [], f"temporary files left behind: {left}"
    if fmt == "tiff":  # the quantised arrays fetched for the conversion are gone
        npy = list(out.rglob("*.npy"))
        assert npy == [], f"quantised arrays left beside the GeoTIFFs: {npy}"
    else:
        scales = list(out.rglob("grid_*_scales.npy"))
        assert len(scales) == n_tiles, f"{len(scales)} scales files"
    if sidecar:
        meta = json.loads((out / "tessera_metadata.json").read_text())
        assert meta["tile_count"] == n_tiles, meta
