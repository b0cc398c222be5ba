"""Every Python block of the project README runs, unchanged, against the served sample store.

The store served here is the 100 m sample store with its Zarr store built into
``zarr/v1.zarr`` (as ``geotessera zarr build STORE STORE/zarr/v1.zarr`` makes it), so the
README's ``GeoTessera()`` and ``GeoTesseraZarr()`` read it through ``GEOTESSERA_BASE_URL`` alone.
A block that cannot run here must say so in an HTML comment on the line before its fence,
``<!-- docs: skip (reason) -->``; :func:`test_every_block_is_run_or_skipped_with_a_reason`
fails for a block that is neither.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from geotessera.sample.serve import SampleServer

README = Path(__file__).resolve().parents[2] / "README.md"
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_SKIP = re.compile(r"<!--\s*docs:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")


def _blocks() -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason or None) of every ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(before)
        out.append((line, m.group(1), skip["reason"] if skip else None))
    return out


BLOCKS = _blocks()


@pytest.fixture(scope="module")
def served(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleServer]:
    """The sample store plus its Zarr store (v1, 2024), on the moto S3 endpoint (127.0.0.1, port 0)."""
    from geotessera.datasets import DatasetId
    from geotessera.store import build_zarr

    root = tmp_path_factory.mktemp("readme") / "store"
    shutil.copytree(tiny_store, root, copy_function=os.link)  # hard links: no copy of the bytes
    build_zarr(root, root / "zarr" / "v1.zarr", dataset=DatasetId(), years=[2024], workers=2)
    server = SampleServer(root, bucket="readme-docs")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2  # quick start and Zarr, at least


def test_every_block_is_run_or_skipped_with_a_reason() -> None:
    ids = {line for line, _, _ in BLOCKS}
    run = {line for line, _, reason in BLOCKS if reason is None}
    skipped = {line for line, _, reason in BLOCKS if reason is not None and reason.strip()}
    assert run | skipped == ids, "a README block is neither run nor skipped with a reason"


@pytest.mark.parametrize(("line", "code", "skip"), BLOCKS, ids=[f"README.md:{b[0]}" for b in BLOCKS])
def test_readme_block_runs(
    served: SampleServer, tmp_path: Path, line: int, code: str, skip: str | None
) -> None:
    if skip is not None:
        pytest.skip(f"README.md:{line}: {skip}")
    env = {**os.environ, "GEOTESSERA_BASE_URL": served.base_url, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    for var in ("GEOTESSERA_CACHE_DIR", "GEOTESSERA_OFFLINE", "GEOTESSERA_WORKERS", "GEOTESSERA_RETRIES"):
        env.pop(var, None)
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"README.md:{line} failed:\n{r.stderr[-3000:]}"
