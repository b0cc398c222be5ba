"""What a download did: :class:`DownloadResult`, with its failures grouped by cause.

A download of many tiles can fail for one reason many times over (an endpoint down, a full
disk). :meth:`DownloadResult.failure_groups` folds the per-tile messages into one
:class:`FailureGroup` per cause, so a summary says each cause once, with the count of tiles
and what to do next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorruptDataError, IntegrityError, OutputError, SourceError
from .grid import Cell
from .transfer import UnreachableError


@dataclass(frozen=True, order=True, slots=True)
class TileRef:
    """One tile of one year."""

    year: int
    cell: Cell

    @property
    def name(self) -> str:
        """``grid_X_Y/YEAR``, for messages."""
        return f"{self.cell.name}/{self.year}"


_TIMING = re.compile(r"\s*\(\d+ attempts? in [\d.]+ s\)")
_NOT_ATTEMPTED = "not attempted: "


@dataclass
class FailureGroup:
    """Tiles that failed for one cause: ``cause`` (one line), ``advice`` (what to do), ``tiles``."""

    cause: str
    advice: str
    tiles: list[TileRef] = field(default_factory=list)
    """The failed tiles, in plan order."""

    def describe(self, shown: int = 5) -> str:
        """``3 tiles (grid_a/2024, ...): <cause>; <advice>``."""
        names = [t.name for t in self.tiles]
        listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
        count = f"{len(names)} tile" + ("" if len(names) == 1 else "s")
        return f"{count} ({listed}): {self.cause}; {self.advice}"


def _cause(tile: TileRef, message: str, exc: BaseException | None, multiple: bool) -> tuple[str, str, str]:
    """(grouping key, cause, advice) of one tile's failure."""
    text = _TIMING.sub("", message.removeprefix(_NOT_ATTEMPTED)).strip()
    # the tiles are listed before the cause: it reads the same for each of them
    text = text.replace(tile.name, "the tile")
    text = re.sub(rf"(?<![\w/.]){re.escape(tile.cell.name)}(?![\w/.])", "the tile", text)  # not in paths
    if isinstance(exc, UnreachableError):
        return (
            f"unreachable {text}",
            text,
            "check that the endpoint is up and the URL (--base-url / GEOTESSERA_BASE_URL), then rerun",
        )
    status = getattr(exc, "status", None) if isinstance(exc, SourceError) else None
    if status is not None and (status == 429 or status >= 500):
        cause = f"the server answered HTTP {status} after retries"
        return f"http {status}", cause, "the server is busy or failing: rerun the same command later"
    if status in (403, 404):
        cause = f"files missing from the source (HTTP {status})" if multiple else text
        return (
            f"http {status}",
            cause,
            "the source does not hold what its manifest lists: try another --base-url",
        )
    if isinstance(exc, IntegrityError):
        cause = "downloaded bytes failed verification (checksum or size)" if multiple else text
        return "integrity", cause, "rerun the same command to fetch them again"
    if isinstance(exc, OutputError) and "disk full" in text:  # one cause, whichever file it hit
        return "disk full", text, "free some space (or choose another output directory), then rerun"
    if isinstance(exc, CorruptDataError):
        return f"corrupt {type(exc).__name__}", text, "rerun the same command to fetch them again"
    return f"other {text}", text, "rerun the same command to fetch only what is missing"


def group_failures(
    failed: Sequence[tuple[TileRef, str]], errors: Mapping[TileRef, BaseException]
) -> list[FailureGroup]:
    """One group per cause, in order of first appearance; ``failed`` is ``(tile, message)`` pairs."""
    keyed = [(t, *_cause(t, m, errors.get(t), multiple=True)) for t, m in failed]
    counts: dict[str, int] = {}
    for _, key, _, _ in keyed:
        counts[key] = counts.get(key, 0) + 1
    groups: dict[str, FailureGroup] = {}
    for (tile, message), (_, key, cause, advice) in zip(failed, keyed, strict=True):
        if counts[key] == 1:  # alone: its own message says more than the category
            _, cause, advice = _cause(tile, message, errors.get(tile), multiple=False)
        group = groups.setdefault(key, FailureGroup(cause, advice))
        if group.cause != cause:  # one cause said in different words (e.g. naming each file)
            group.cause = _GENERIC_CAUSES.get(key, group.cause)
        group.tiles.append(tile)
    return list(groups.values())


_GENERIC_CAUSES = {"disk full": "the disk is full (no space left on the device)"}


def unreachable_error(
    failed: Sequence[tuple[TileRef, str]], errors: Mapping[TileRef, BaseException]
) -> UnreachableError | None:
    """The :class:`UnreachableError` behind every failure, when one unreachable host explains them all."""
    excs = [errors.get(t) for t, _ in failed]
    if not excs or not all(isinstance(e, UnreachableError) for e in excs):
        return None
    first = excs[0]
    return first if isinstance(first, UnreachableError) else None


@dataclass
class DownloadResult:
    """Outcome of :func:`execute`."""

    files: list[Path] = field(default_factory=list)
    done: list[TileRef] = field(default_factory=list)
    skipped: list[TileRef] = field(default_factory=list)
    failed: list[tuple[TileRef, str]] = field(default_factory=list)
    not_covered: list[TileRef] = field(default_factory=list)
    errors: dict[TileRef, BaseException] = field(default_factory=dict)
    """The exception behind each failed tile (first one wins)."""
    bytes_transferred: int = 0
    seconds: float = 0.0
    sidecar_error: OutputError | None = None
    """Why ``tessera_metadata.json`` could not be updated after the tiles (e.g. a full disk):
    the tiles listed as done are complete, the directory's record of them is not."""

    @property
    def ok(self) -> bool:
        """True when every planned tile is complete and recorded."""
        return not self.failed and self.sidecar_error is None

    def summary(self) -> str:
        """One line: counts, bytes and time."""
        done = f"{len(self.done)} tile{'' if len(self.done) == 1 else 's'} done"
        return (
            f"{done}, {len(self.skipped)} already complete, {len(self.failed)} failed; "
            f"{self.bytes_transferred / 1e6:.1f} MB fetched in {self.seconds:.1f} s"
        )

    def failure_groups(self) -> list[FailureGroup]:
        """The failed tiles grouped by cause, each group with what to do (one line per cause)."""
        return group_failures(self.failed, self.errors)

    @property
    def unreachable(self) -> UnreachableError | None:
        """The error when nothing completed because the source could not be reached at all."""
        if self.done or self.skipped:
            return None
        return unreachable_error(self.failed, self.errors)
