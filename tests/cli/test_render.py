"""The CLI's progress bars: labelled columns, a moving clock, counts of what is really done."""

from __future__ import annotations

import io

from rich.console import Console

from geotessera.cli.render import ProgressBars
from geotessera.progress import BytesReceived, ItemDone, ItemFailed, PlanReady, Retrying


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _bars(clock: _Clock) -> tuple[ProgressBars, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, color_system=None)
    return ProgressBars("tiles", console=console, get_time=clock), out


def _lines(bars: ProgressBars) -> list[str]:
    console = Console(width=120, color_system=None, file=io.StringIO())
    with console.capture() as cap:
        console.print(bars._progress.get_renderable())
    return [line.rstrip() for line in cap.get().splitlines() if line.strip()]


def test_columns_are_labelled_and_the_clock_moves() -> None:
    clock = _Clock()
    bars, _ = _bars(clock)
    with bars:
        bars(PlanReady(items=4, bytes=0, label="tiles"))
        bars(PlanReady(items=12, bytes=4_000_000, label="transfer"))
        clock.now += 5
        bars(BytesReceived("k", 1_000_000))
        clock.now += 2
        download, tiles = _lines(bars)
        assert download.startswith("download") and tiles.startswith("tiles")  # download on top
        assert "1.0/4.0 MB" in download and "elapsed 0:00:07" in download and "eta " in download
        assert "0/4 tiles" in tiles and "elapsed 0:00:07" in tiles
        clock.now += 60
        assert "elapsed 0:01:07" in _lines(bars)[0]  # still running: the clock moves


def test_tiles_count_only_what_is_done_and_failures_are_counted_not_printed() -> None:
    clock = _Clock()
    bars, out = _bars(clock)
    with bars:
        bars(PlanReady(items=3, bytes=0, label="tiles"))
        bars(PlanReady(items=9, bytes=300, label="transfer"))
        bars(Retrying("k", 1, 0.5, "HTTP 503"))
        bars(Retrying("k", 2, 1.0, "HTTP 503"))
        bars(ItemDone("grid_0.05_52.05/2024"))
        bars(ItemFailed("grid_0.15_52.05/2024", "cannot reach host"))
        bars(ItemFailed("grid_0.25_52.05/2024", "cannot reach host"))
        download, tiles = _lines(bars)
    assert "1/3 tiles (2 failed)" in tiles and "2 retries" in download
    assert bars.failures == 2 and bars.retries == 2
    text = out.getvalue()
    assert "retry" not in text.replace("2 retries", "") and "cannot reach" not in text


def test_a_run_that_never_starts_prints_nothing() -> None:
    bars, out = _bars(_Clock())
    with bars:
        pass
    assert out.getvalue() == ""
