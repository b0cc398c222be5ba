"""Download outcomes: failures grouped by cause, each with what to do; grammar of the summary."""

from __future__ import annotations

from geotessera.errors import IntegrityError, OutputError, SourceError
from geotessera.grid import Cell
from geotessera.outcome import DownloadResult, TileRef
from geotessera.transfer import UnreachableError


def _tiles(n: int) -> list[TileRef]:
    return [TileRef(2024, Cell.from_point(0.05 + 0.1 * i, 52.05)) for i in range(n)]


def test_one_unreachable_host_is_one_cause_whatever_the_timing() -> None:
    tiles = _tiles(12)
    down = UnreachableError("cannot reach 127.0.0.1:9: Connection refused (6 attempts in 10.7 s)")
    result = DownloadResult()
    for k, t in enumerate(tiles):
        timing = f"(6 attempts in {9.8 + k / 10:.1f} s)"
        message = f"cannot reach 127.0.0.1:9: Connection refused {timing}"
        result.failed.append((t, message if k < 2 else f"not attempted: {message}"))
        result.errors[t] = down
    (group,) = result.failure_groups()
    assert group.cause == "cannot reach 127.0.0.1:9: Connection refused"
    assert "check that the endpoint is up" in group.advice
    assert (
        group.describe().startswith("12 tiles (grid_0.05_52.05/2024, ")
        and " and 7 more): " in group.describe()
    )
    assert result.unreachable is down
    result.done.append(_tiles(1)[0])
    assert result.unreachable is None  # something worked: a partial failure, not an unreachable source


def test_causes_are_grouped_with_advice_and_a_lone_failure_keeps_its_message() -> None:
    a, b, c, d, e = _tiles(5)
    result = DownloadResult(
        failed=[
            (
                a,
                "v1/x/grid_0.05_52.05.npy: server h answered HTTP 503 (6 attempts in 3.0 s); try again later",
            ),
            (
                b,
                "v1/x/grid_0.15_52.05.npy: server h answered HTTP 503 (6 attempts in 3.1 s); try again later",
            ),
            (c, "checksum mismatch for v1/x/grid_0.25_52.05.npy: expected A, got B"),
            (d, f"disk full while exporting {d.name}"),
            (e, f"disk full while exporting {e.name}"),
        ],
        errors={
            a: SourceError("503", status=503),
            b: SourceError("503", status=503),
            c: IntegrityError("checksum"),
            d: OutputError("disk full"),
            e: OutputError("disk full"),
        },
    )
    groups = result.failure_groups()
    assert [(len(g.tiles), g.cause) for g in groups] == [
        (2, "the server answered HTTP 503 after retries"),
        (1, "checksum mismatch for v1/x/grid_0.25_52.05.npy: expected A, got B"),
        (2, "disk full while exporting the tile"),
    ]
    assert "rerun the same command later" in groups[0].advice
    assert "fetch them again" in groups[1].advice and "free some space" in groups[2].advice
    assert result.unreachable is None


def test_summary_counts_read_right() -> None:
    one = DownloadResult(done=_tiles(1))
    assert one.summary().startswith("1 tile done, 0 already complete, 0 failed")
    assert DownloadResult(done=_tiles(2)).summary().startswith("2 tiles done")
