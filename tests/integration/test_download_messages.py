"""What `geotessera download` (and its neighbours) tell a user: few lines, true bars, right grammar."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from geotessera import GeoTessera
from geotessera.cli import cli
from geotessera.progress import BytesReceived, Event, ItemDone, ItemFailed
from geotessera.sample.serve import SampleServer

CAMBRIDGE = "0.0,52.0,0.4,52.3"  # 12 tiles of the sample store


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tessera-embeddings"  # nothing listens there any more


def _download(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["download", *args])
    return r.exit_code, r.stdout, r.stderr


def test_an_unreachable_endpoint_is_one_error_line_and_leaves_no_claim(
    tiny_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    code, _, stderr = _download(
        "--bbox", CAMBRIDGE, "-o", str(out), "--base-url", _closed_port_url(),
        "--registry-dir", str(tiny_store / "v1"), "--cache-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert code == 1
    lines = stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1]
    assert "cannot reach 127.0.0.1:" in errors[0] and "none of the 12 tiles could be downloaded" in errors[0]
    assert "attempts in" not in errors[0] and "not attempted" not in errors[0]
    assert not [ln for ln in lines if "retry" in ln.lower() or ln.startswith("failed")]
    assert len(lines) <= 6, stderr  # header, coverage, two bars, the error
    tiles_bar = next(ln for ln in lines if ln.startswith("tiles"))
    assert "0/12 tiles (12 failed)" in tiles_bar  # the bar shows what was done
    assert not (out / "tessera_metadata.json").exists() and not out.exists()


def test_retries_are_logged_with_verbose(tiny_store: Path, tmp_path: Path) -> None:
    code, _, stderr = _download(
        "--tile", "0.15,52.05", "-o", str(tmp_path / "o"), "--base-url", _closed_port_url(),
        "--registry-dir", str(tiny_store / "v1"), "-v",
    )  # fmt: skip
    assert code == 1 and "retrying" in stderr and "INFO" in stderr


def test_a_partial_failure_says_each_cause_once(
    s3_endpoint: SampleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geotessera.export.records as records

    real = records.write_embedding_geotiff

    def full_for_one(path: object, *a: object, **k: object) -> object:
        if "grid_0.15_52.05" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(records, "write_embedding_geotiff", full_for_one)
    out = tmp_path / "o"
    code, _, stderr = _download(
        "--bbox", "0.0,52.0,0.2,52.1", "-o", str(out),
        "--base-url", s3_endpoint.base_url, "--cache-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert code == 1
    assert stderr.count("grid_0.15_52.05") == 1  # said once, not twice
    (failed,) = [ln for ln in stderr.splitlines() if ln.startswith("failed:")]
    assert "1 tile (grid_0.15_52.05/2024): disk full" in failed and "free some space" in failed
    assert "1 tile done, 0 already complete, 1 failed" in stderr  # grammar
    meta = (out / "tessera_metadata.json").read_text()
    assert '"tile_count": 1' in meta and "grid_0.05_52.05/2024" in meta and "grid_0.15" not in meta


def _recording() -> tuple[list[Event], object]:
    events: list[Event] = []
    return events, events.append


def test_a_tile_counts_as_soon_as_its_files_are_verified(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    gt = GeoTessera(base_url=s3_endpoint.base_url, cache_dir=tmp_path / "c", workers=1)
    tiles = gt.registry.load_blocks_for_region(bounds=(0.0, 52.0, 0.4, 52.1), year=2024)
    events, sink = _recording()
    gt.download(gt.plan(tiles, tmp_path / "npy", fmt="npy"), progress=sink)  # type: ignore[arg-type]
    done = [k for k, e in enumerate(events) if isinstance(e, ItemDone)]
    received = [k for k, e in enumerate(events) if isinstance(e, BytesReceived)]
    assert len(done) == 4 and not any(isinstance(e, ItemFailed) for e in events)
    assert done[0] < received[-1]  # the first tile counted while later ones still download


def test_a_geotiff_tile_counts_once_converted(s3_endpoint: SampleServer, tmp_path: Path) -> None:
    gt = GeoTessera(base_url=s3_endpoint.base_url, cache_dir=tmp_path / "c", workers=1)
    tiles = gt.registry.load_blocks_for_region(bounds=(0.0, 52.0, 0.4, 52.1), year=2024)
    plan = gt.plan(tiles, tmp_path / "tif", fmt="tiff")
    tiffs = {j.tile.name: j.outputs[0] for j in plan.jobs}
    seen: list[tuple[str, bool]] = []

    def sink(event: Event) -> None:
        if isinstance(event, ItemDone):
            seen.append((event.key, tiffs[event.key].exists()))

    gt.download(plan, progress=sink)
    assert sorted(k for k, _ in seen) == sorted(tiffs) and all(exists for _, exists in seen)


def test_sample_build_and_zarr_errors_print_no_blank_lines(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli,
        [
            *("sample", "build", str(tmp_path / "s"), "--pixel-size", "200", "--years", "2024"),
            *("--versions", "v1", "--no-edge-tiles", "--bbox", "0.0,52.0,0.1,52.1"),
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert r.stderr.splitlines()[0].startswith("wrote 1 tile")
    r = CliRunner().invoke(
        cli, ["zarr", "build", str(tmp_path / "s"), str(tmp_path / "z"), "--years", "2019"]
    )
    assert r.exit_code != 0
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: ")
