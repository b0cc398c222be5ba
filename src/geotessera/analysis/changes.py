"""Change between two years: ``change(source, region, years=(A, B), output)``.

Per pixel, the cosine distance ``1 - cos(e_A, e_B)`` in [0, 2] (float32, NaN where either
year has no embedding). The summary (also written as ``STEM.json``): the histogram of
distances (``bins`` equal bins over [0, 2]), the count and share of valid pixels whose
distance is above ``threshold``, and the changed area in km² (from the pixel size).
Only tiles holding data in both years are compared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError
from ..progress import ProgressSink
from .grids import DEFAULT_BLOCK, OutputGrid
from .rasters import RasterSpec, check_map_path, drop_description, write_description
from .regionops import make_runner, plan, run

DEFAULT_THRESHOLD = 0.3


@dataclass
class ChangeResult:
    """Files written by :func:`change` and the summary dict."""

    rasters: list[Path]
    summary_path: Path
    summary: dict[str, Any]


def _distance_block(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(h, w, 128) x 2 -> (h, w, 1) float32 cosine distance; NaN where either is missing."""
    h, w = a.shape[:2]
    fa, fb = a.reshape(-1, a.shape[2]), b.reshape(-1, b.shape[2])
    ok = np.isfinite(fa).all(axis=1) & np.isfinite(fb).all(axis=1)
    out = np.full(h * w, np.nan, dtype=np.float32)
    if ok.any():
        xa, xb = fa[ok].astype(np.float64), fb[ok].astype(np.float64)
        den = np.linalg.norm(xa, axis=1) * np.linalg.norm(xb, axis=1)
        cos = np.einsum("ij,ij->i", xa, xb) / np.where(den > 0, den, np.nan)
        out[ok] = np.clip(1.0 - cos, 0.0, 2.0)
    return out.reshape(h, w, 1)


class ChangeStats:
    """Histogram and changed-pixel count accumulated block by block."""

    def __init__(self, threshold: float, bins: int, pixel_area_m2: float) -> None:
        self.threshold = threshold
        self.edges = np.linspace(0.0, 2.0, bins + 1)
        self.counts = np.zeros(bins, dtype=np.int64)
        self.valid = 0
        self.changed = 0
        self.pixel_area_m2 = pixel_area_m2

    def add(self, grid: OutputGrid, r0: int, c0: int, data: npt.NDArray[np.float32]) -> None:
        v = data[np.isfinite(data)]
        self.counts += np.histogram(v, bins=self.edges)[0]
        self.valid += int(v.size)
        self.changed += int((v > self.threshold).sum())

    def summary(self, years: tuple[int, int]) -> dict[str, Any]:
        share = self.changed / self.valid if self.valid else float("nan")
        return {
            "years": list(years),
            "measure": "cosine distance 1 - cos(e_A, e_B), in [0, 2]",
            "threshold": self.threshold,
            "valid_pixels": self.valid,
            "changed_pixels": self.changed,
            "changed_share": share,
            "changed_area_km2": self.changed * self.pixel_area_m2 / 1e6,
            "histogram": {"edges": [round(float(e), 6) for e in self.edges], "counts": self.counts.tolist()},
        }


def change(
    source: Any,
    region: Any,
    years: tuple[int, int] | list[int],
    output: str | os.PathLike[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    bins: int = 20,
    client: Any = None,
    block: int = DEFAULT_BLOCK,
    workers: int | None = None,
    progress: ProgressSink | None = None,
) -> ChangeResult:
    """Cosine distance between two years over ``region`` (see the module docstring)."""
    check_map_path(output)
    ys = [int(y) for y in years]
    if len(ys) != 2 or ys[0] == ys[1]:
        raise InvalidInputError(f"change needs two different years, got {', '.join(map(str, ys)) or 'none'}")
    if not 0.0 <= float(threshold) <= 2.0:
        raise InvalidInputError(f"a cosine-distance threshold lies in [0, 2], got {threshold}")
    if bins < 1:
        raise InvalidInputError(f"bins must be >= 1, got {bins}")
    runner = make_runner(client, workers)  # connect first: an unreachable scheduler fails fast
    try:
        p = plan(source, region, ys, block=block)
        stats = ChangeStats(float(threshold), int(bins), p.source.pixel_size_m**2)
        arrays = []
        for g in p.grids:
            a, b = p.embeddings(g, ys[0]), p.embeddings(g, ys[1])
            arrays.append(a.map_blocks(_distance_block, b, dtype=np.float32, chunks=(*a.chunks[:2], (1,))))
        paths = p.paths(output)
        tags = {"TESSERA_YEARS": f"{ys[0]},{ys[1]}", "MEASURE": "cosine distance"}
        spec = RasterSpec("float32", 1, float("nan"), descriptions=("cosine distance",), tags=tags)
        summary_path = Path(output).with_suffix(".json")
        drop_description(summary_path)
        written = run(p, arrays, paths, spec, runner, sinks=[stats.add], progress=progress)
    finally:
        runner.close()
    summary = stats.summary((ys[0], ys[1]))
    write_description(summary_path, summary)
    return ChangeResult(written, summary_path, summary)
