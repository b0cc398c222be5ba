"""What every region-wide operation shares: planning the output grids, building the embedding
arrays, running the blocks and writing them, with progress.

An operation is a block function ``(h, w, 128) float32 -> (h, w, bands)`` applied with
``map_blocks`` to the embedding array of each output grid; :func:`run` streams the result
blocks into a :class:`~geotessera.analysis.rasters.BlockWriter` (and to any extra
per-block consumers: masks, statistics, candidates), in row-major order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError, NotCoveredError
from ..progress import ItemDone, PlanReady, ProgressSink, emit
from .area import Area, as_area
from .execution import Runner
from .grids import DEFAULT_BLOCK, OutputGrid, embedding_array, plan_grids
from .rasters import BlockWriter, RasterSpec, output_path
from .sources import Source, as_source

log = logging.getLogger(__name__)

BlockSink = Callable[[OutputGrid, int, int, npt.NDArray[Any]], None]


@dataclass
class Plan:
    """A source, an area and the output grids of the cells holding data in every year asked."""

    source: Source
    area: Area
    years: list[int]
    grids: list[OutputGrid]
    block: int

    def embeddings(self, grid: OutputGrid, year: int) -> Any:
        """Dask array (H, W, 128) float32 of ``grid`` for ``year``."""
        return embedding_array(self.source.windows(year, grid.cells, grid.epsg), grid, self.block)

    def paths(self, output: str | os.PathLike[str]) -> list[Path]:
        """The GeoTIFF path of each grid (``output`` itself for one grid)."""
        return [output_path(output, g, len(self.grids)) for g in self.grids]


def plan(source: Any, region: Any, years: Sequence[int], *, block: int = DEFAULT_BLOCK) -> Plan:
    """Output grids of ``region`` for ``years``; :class:`NotCoveredError` when no cell holds data."""
    if block < 16 or block % 16:
        raise InvalidInputError(f"block must be a multiple of 16 pixels (>= 16), got {block}")
    src = as_source(source)
    area = as_area(region)
    ys = [int(y) for y in years]
    cells: set[Any] | None = None
    for y in ys:
        got = set(src.covered_cells(area.region, y))
        cells = got if cells is None else cells & got
    chosen = sorted(cells or (), key=lambda c: (c.iy, c.ix))
    if not chosen:
        raise NotCoveredError(
            f"none of the {len(area.region)} tiles of {area.description} holds data for "
            f"{', '.join(map(str, ys))} in {src.describe()}"
        )
    grids = plan_grids(area, chosen, src.pixel_size_m)
    if not grids:
        raise NotCoveredError(f"{area.description} covers no pixel of the tiles holding data")
    log.info(
        "%s: %d tiles, %d output grid(s) %s",
        area.description,
        len(chosen),
        len(grids),
        ", ".join(f"{g.suffix} {g.shape[0]}x{g.shape[1]}" for g in grids),
    )
    return Plan(src, area, ys, grids, block)


def run(
    plan_: Plan,
    arrays: Sequence[Any],
    paths: Sequence[Path],
    spec: RasterSpec,
    runner: Runner,
    *,
    sinks: Iterable[BlockSink] = (),
    progress: ProgressSink | None = None,
    transform: Callable[[npt.NDArray[Any]], npt.NDArray[Any]] | None = None,
) -> list[Path]:
    """Compute ``arrays`` (one per grid) block by block and write them to ``paths``.

    ``transform`` turns a computed block into what is written (e.g. class ids from
    probabilities); ``sinks`` see every computed block (before ``transform``).
    """
    total = sum(len(g.blocks(plan_.block)) for g in plan_.grids)
    emit(progress, PlanReady(total, 0, "blocks"))
    sink_list = list(sinks)
    written = []
    for grid, arr, path in zip(plan_.grids, arrays, paths, strict=True):
        with BlockWriter(path, grid, spec) as writer:
            for r0, c0, data in runner.iter_blocks(arr):
                for sink in sink_list:
                    sink(grid, r0, c0, data)
                writer.write(r0, c0, transform(data) if transform is not None else data)
                emit(progress, ItemDone(f"{path.name} block {r0},{c0}"))
        written.append(path)
    return written


def finite_rows(block: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """(N, 128) pixels of a block and the mask of those with a full embedding."""
    flat = block.reshape(-1, block.shape[-1])
    ok = np.asarray(np.isfinite(flat).all(axis=1), dtype=bool)
    return flat, ok


def make_runner(client: Any, workers: int | None) -> Runner:
    """A :class:`Runner` on ``client`` (a ``distributed.Client``, an address, or None: local)."""
    if isinstance(client, str):
        from .execution import connect

        return Runner(connect(client), workers=workers, owns=True)
    return Runner(client, workers=workers)
