"""`make demo`'s closing block: it says how to serve the store again, and its next commands work.

The demo's own server stops when the script ends, so its URL is dead by the time a user reads
it. The closing block must give the command that serves the store again and the commands to
try next; each of those is run here, as written, against a served sample store.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geotessera.cli import cli
from geotessera.sample.serve import SampleServer
from support.signals import default_sigint

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"


def _closing_block() -> str:
    """The text of the demo's final heredoc (``cat <<NEXT ... NEXT``)."""
    match = re.search(r"^cat <<NEXT\n(.*?)^NEXT$", DEMO.read_text(), flags=re.S | re.M)
    assert match, "scripts/demo.sh has no closing block"
    return match.group(1)


def test_the_closing_block_comes_last_and_says_how_to_serve_again() -> None:
    script = DEMO.read_text()
    assert script.rstrip().endswith("NEXT")  # nothing printed after it
    block = _closing_block()
    assert 'geotessera sample serve "$STORE_ABS" --port 9000' in block
    assert "export GEOTESSERA_BASE_URL=http://127.0.0.1:9000/tessera-embeddings" in block
    assert "stops with the demo" in block  # the printed endpoint is not left looking alive


def test_the_next_commands_work_against_a_served_store(
    s3_endpoint: SampleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [ln.strip() for ln in _closing_block().splitlines()]
    commands = [ln for ln in lines if ln.startswith(("geotessera ", "python -c"))]
    commands = [c for c in commands if not c.startswith("geotessera sample serve")]
    assert len(commands) >= 4
    env = {"GEOTESSERA_BASE_URL": s3_endpoint.base_url, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "geotessera":  # in process: as the console script, minus the start-up time
            r = CliRunner().invoke(cli, argv[1:], env=env)
            assert r.exit_code == 0, f"{command}\n{r.stderr[-2000:]}"
        else:
            done = subprocess.run(
                [sys.executable, *argv[1:]], env={**os.environ, **env}, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert (tmp_path / "cambridge_2023" / "tessera_metadata.json").is_file()
    assert (tmp_path / "one_tile" / "global_0.1_degree_representation" / "2023").is_dir()


def test_the_demo_runs_end_to_end_on_a_small_store(tmp_path: Path) -> None:
    """`make demo` as a user runs it (the script, the console scripts on PATH), on a 100 m store."""
    out = tmp_path / "demo"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "DEMO_OUT": str(out),
        "DEMO_PIXEL_SIZE": "100",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
    }
    env.pop("GEOTESSERA_BASE_URL", None)
    done = subprocess.run(
        ["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=600, preexec_fn=default_sigint
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr

    tiffs = out / "cambridge_tiffs" / "global_0.1_degree_representation" / "2024"
    assert len(list(tiffs.glob("grid_*/grid_*_2024.tiff"))) == 12
    with rasterio.open(out / "cambridge_pca.tif") as ds:
        assert ds.count == 4 and ds.dtypes[0] == "uint8" and ds.crs.to_epsg() == 3857
        assert ds.read(4).any()  # alpha: there is data
    assert (out / "cambridge_web" / "index.html").is_file()
    assert any((out / "cambridge_web").rglob("*.png"))
    assert (out / "coverage.png").stat().st_size > 0 and (out / "coverage.json").is_file()

    # The land-cover model learned the sample store's classes and mapped them.
    assert "overall accuracy" in done.stdout
    with rasterio.open(out / "landcover_2024.tif") as ds:
        classes = np.unique(ds.read(1))
    assert len(set(classes.tolist()) - {ds.nodata}) >= 3
    assert "Results:" in done.stdout and "land-cover map:" in done.stdout
