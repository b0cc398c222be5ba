"""Similarity to exemplars: ``similar(source, exemplars, region, year, output)``.

Each exemplar feature gives one vector: a point its pixel, a polygon the mean of its
pixels. ``mode="mean"``: cosine similarity to the mean of the exemplar vectors;
``mode="max"``: the highest cosine similarity to any exemplar. Output float32 in [-1, 1],
NaN = nodata. With ``threshold``: a mask GeoTIFF ``STEM_mask.tif`` (uint8 1 similar,
0 not, 255 nodata) and the mask's polygons (lon/lat; GeoJSON, or GeoParquet by
extension; default ``STEM_polygons.geojson``). With ``top_k``: the K most similar pixels
that are mutually non-adjacent (no two share an edge or a corner), as a table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import InvalidInputError
from ..files import atomic_path
from ..progress import ProgressSink
from .extraction import EMB_COLUMNS, extract
from .grids import DEFAULT_BLOCK, OutputGrid
from .rasters import BlockWriter, RasterSpec, check_map_path
from .regionops import finite_rows, make_runner, plan, run

MODES = ("mean", "max")


@dataclass
class SimilarityResult:
    """Files written by :func:`similar` and the top-K table (None unless asked)."""

    rasters: list[Path]
    masks: list[Path] = field(default_factory=list)
    polygons: Path | None = None
    top: Any = None
    top_path: Path | None = None


def exemplar_vectors(table: Any, mode: str) -> npt.NDArray[np.float32]:
    """Unit vectors (M, 128) of the exemplars in an extraction table (one per feature)."""
    ok = (table["status"] == "valid").to_numpy()
    if not ok.any():
        raise InvalidInputError("no exemplar has a valid embedding (water, no data or outside the coverage)")
    rows = table[ok]
    key = rows["polygon_id"].to_numpy() if "polygon_id" in rows.columns else np.full(len(rows), -1)
    point = np.flatnonzero(key < 0)
    vecs = [rows[EMB_COLUMNS].to_numpy(np.float64)[point]]
    emb = rows[EMB_COLUMNS].to_numpy(np.float64)
    for pid in np.unique(key[key >= 0]):
        vecs.append(emb[key == pid].mean(axis=0, keepdims=True))
    v = np.concatenate(vecs)
    if mode == "mean":
        v = v.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InvalidInputError("an exemplar embedding is all zeros; cosine similarity is undefined")
    return (v / norms).astype(np.float32)


def _similarity_block(
    block: npt.NDArray[np.float32], exemplars: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """(h, w, 128) -> (h, w, 1) float32 cosine similarity (max over exemplars); NaN = nodata."""
    h, w = block.shape[:2]
    flat, ok = finite_rows(block)
    out = np.full(h * w, np.nan, dtype=np.float32)
    if ok.any():
        # float64 without BLAS threads: the same bytes whichever process or thread computes a block
        x = flat[ok].astype(np.float64)
        norm = np.sqrt(np.einsum("ij,ij->i", x, x))
        dots = np.einsum("ij,kj->ik", x, exemplars.astype(np.float64))
        sims = dots.max(axis=1) / np.where(norm > 0, norm, np.nan)
        out[ok] = np.clip(sims, -1.0, 1.0)
    return out.reshape(h, w, 1)


class TopK:
    """The K best mutually non-adjacent pixels, from per-block candidates (bounded memory).

    Greedy selection in descending similarity accepts a pixel unless an accepted one
    touches it; each accepted pixel rules out at most 8 others, so the result lies within
    the 9K best pixels overall, and only those are kept as candidates.
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise InvalidInputError(f"top_k must be >= 1, got {k}")
        self.k = k
        self.keep = 9 * k
        self.cand = np.zeros((0, 4))  # value, grid index, row, col
        self.grids: list[OutputGrid] = []

    def add(self, grid: OutputGrid, r0: int, c0: int, data: npt.NDArray[np.float32]) -> None:
        if not self.grids or self.grids[-1] is not grid:
            self.grids.append(grid)
        v = data[:, :, 0]
        r, c = np.nonzero(np.isfinite(v))
        if not len(r):
            return
        vals = v[r, c]
        if len(vals) > self.keep:
            part = np.argpartition(-vals, self.keep - 1)[: self.keep]
            r, c, vals = r[part], c[part], vals[part]
        g = np.full(len(r), len(self.grids) - 1)
        new = np.c_[vals, g, r + r0, c + c0]
        self.cand = self._best(np.concatenate([self.cand, new]))

    def _best(self, cand: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        order = np.lexsort((cand[:, 3], cand[:, 2], cand[:, 1], -cand[:, 0]))
        return cand[order[: self.keep]]

    def select(self) -> npt.NDArray[np.float64]:
        """(n <= K, 4) accepted candidates, best first: value, grid index, row, col."""
        taken: list[npt.NDArray[np.float64]] = []
        seen: set[tuple[int, int, int]] = set()
        for row in self.cand:
            g, r, c = int(row[1]), int(row[2]), int(row[3])
            if any((g, r + dr, c + dc) in seen for dr in (-1, 0, 1) for dc in (-1, 0, 1)):
                continue
            taken.append(row)
            seen.add((g, r, c))
            if len(taken) == self.k:
                break
        return np.array(taken).reshape(-1, 4)

    def table(self) -> Any:
        """The selection as a GeoDataFrame: rank, similarity, lon/lat point, x, y, epsg, tile, row, col."""
        gpd = require("geopandas", "ml")
        from pyproj import Transformer

        from ..grid import Cell

        sel = self.select()
        rows = []
        for rank, (val, g, r, c) in enumerate(sel.tolist(), start=1):
            grid = self.grids[int(g)]
            x, y = grid.transform @ (c + 0.5, r + 0.5)
            lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(x, y)
            rows.append(
                {
                    "rank": rank,
                    "similarity": float(val),
                    "lon": lon,
                    "lat": lat,
                    "x": x,
                    "y": y,
                    "epsg": grid.epsg,
                    "tile": Cell.from_point(lon, lat).name,
                    "row": int(r),
                    "col": int(c),
                }
            )
        lons = [d["lon"] for d in rows]
        lats = [d["lat"] for d in rows]
        return gpd.GeoDataFrame(rows, geometry=gpd.points_from_xy(lons, lats), crs="EPSG:4326")


class MaskPolygons:
    """Polygons of ``value > threshold`` collected block by block, merged across block edges."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.parts: dict[int, list[Any]] = {}

    def add(self, grid: OutputGrid, r0: int, c0: int, data: npt.NDArray[np.float32]) -> None:
        import shapely
        from rasterio.features import shapes

        mask = np.nan_to_num(data[:, :, 0], nan=-np.inf) > self.threshold
        if not mask.any():
            return
        t = grid.transform @ grid.transform.translation(c0, r0)
        geoms = [shapely.geometry.shape(s) for s, _ in shapes(mask.astype(np.uint8), mask=mask, transform=t)]
        self.parts.setdefault(grid.epsg, []).extend(geoms)

    def frame(self) -> Any:
        """The merged polygons (one row per connected part) in lon/lat."""
        gpd = require("geopandas", "ml")
        import shapely

        frames = []
        for epsg, geoms in sorted(self.parts.items()):
            merged = shapely.get_parts(shapely.union_all(geoms))
            part = gpd.GeoDataFrame(
                {"area_m2": shapely.area(merged)}, geometry=list(merged), crs=f"EPSG:{epsg}"
            )
            frames.append(part.to_crs("EPSG:4326"))
        if not frames:
            return gpd.GeoDataFrame({"area_m2": []}, geometry=[], crs="EPSG:4326")
        pd = require("pandas", "ml")
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")


def similar(
    source: Any,
    exemplars: Any,
    region: Any,
    year: int,
    output: str | os.PathLike[str],
    *,
    mode: str = "mean",
    threshold: float | None = None,
    polygons: str | os.PathLike[str] | None = None,
    top_k: int | None = None,
    top_k_output: str | os.PathLike[str] | None = None,
    client: Any = None,
    block: int = DEFAULT_BLOCK,
    workers: int | None = None,
    progress: ProgressSink | None = None,
) -> SimilarityResult:
    """Cosine similarity to exemplars over ``region`` for ``year`` (see the module docstring).

    ``exemplars`` is a label file or frame of points and/or polygons. Returns the files
    written and, with ``top_k``, the table of the most similar locations (also written to
    ``top_k_output``, default ``STEM_top.parquet``).
    """
    check_map_path(output)
    if mode not in MODES:
        raise InvalidInputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if threshold is not None and not -1.0 <= float(threshold) <= 1.0:
        raise InvalidInputError(f"a cosine-similarity threshold lies in [-1, 1], got {threshold}")
    if polygons is not None and threshold is None:
        raise InvalidInputError("polygons outline pixels above a threshold: give --threshold (threshold=)")
    if top_k_output is not None and top_k is None:
        raise InvalidInputError("a top-K table needs K: give --top-k (top_k=)")
    if top_k_output is not None:
        from .tables import check_table_path

        check_table_path(top_k_output)
    top = TopK(int(top_k)) if top_k is not None else None
    runner = make_runner(client, workers)  # connect first: an unreachable scheduler fails fast
    try:
        p = plan(source, region, [year], block=block)
        vectors = exemplar_vectors(extract(p.source, exemplars, [int(year)]), mode)
        out = Path(output)
        ex = runner.constant(vectors)
        arrays = []
        for g in p.grids:
            emb = p.embeddings(g, int(year))
            arrays.append(
                emb.map_blocks(_similarity_block, ex, dtype=np.float32, chunks=(*emb.chunks[:2], (1,)))
            )
        paths = p.paths(out)
        tags = {"TESSERA_YEAR": str(year), "SIMILARITY": f"cosine, {mode} over {len(vectors)} exemplar(s)"}
        spec = RasterSpec("float32", 1, float("nan"), descriptions=("cosine similarity",), tags=tags)
        result = SimilarityResult(paths)
        sinks = []
        if top is not None:
            sinks.append(top.add)
        poly = MaskPolygons(float(threshold)) if threshold is not None else None
        if poly is not None:
            sinks.append(poly.add)
            result.masks = _run_with_mask(p, arrays, paths, spec, poly.threshold, runner, sinks, progress)
        else:
            run(p, arrays, paths, spec, runner, sinks=sinks, progress=progress)
    finally:
        runner.close()
    from .tables import write_table

    if poly is not None:
        result.polygons = (
            Path(polygons) if polygons is not None else out.with_name(f"{out.stem}_polygons.geojson")
        )
        _write_vectors(poly.frame(), result.polygons)
    if top is not None:
        result.top = top.table()
        result.top_path = write_table(
            result.top,
            Path(top_k_output) if top_k_output is not None else out.with_name(f"{out.stem}_top.parquet"),
        )
    return result


def _run_with_mask(
    p: Any,
    arrays: Any,
    paths: list[Path],
    spec: RasterSpec,
    threshold: float,
    runner: Any,
    sinks: list[Any],
    progress: Any,
) -> list[Path]:
    from ..progress import ItemDone, PlanReady, emit

    mspec = RasterSpec(
        "uint8",
        1,
        255,
        {0: (0, 0, 0, 255), 1: (255, 255, 0, 255), 255: (0, 0, 0, 0)},
        ("similar",),
        {**spec.tags, "THRESHOLD": repr(threshold)},
    )
    masks = [q.with_name(f"{q.stem}_mask{q.suffix or '.tif'}") for q in paths]
    emit(progress, PlanReady(sum(len(g.blocks(p.block)) for g in p.grids), 0, "blocks"))
    for grid, arr, path, mpath in zip(p.grids, arrays, paths, masks, strict=True):
        with BlockWriter(path, grid, spec) as sim, BlockWriter(mpath, grid, mspec) as msk:
            for r0, c0, data in runner.iter_blocks(arr):
                for sink in sinks:
                    sink(grid, r0, c0, data)
                sim.write(r0, c0, data)
                v = data[:, :, 0]
                m = np.where(np.isfinite(v), (np.nan_to_num(v) > threshold).astype(np.uint8), 255).astype(
                    np.uint8
                )
                msk.write(r0, c0, m)
                emit(progress, ItemDone(f"{path.name} block {r0},{c0}"))
    return masks


def _write_vectors(frame: Any, path: Path) -> Path:
    from .tables import write_table

    if path.suffix.lower() in (".parquet", ".geoparquet", ".csv"):
        return write_table(frame, path)
    from ..errors import OutputError

    try:
        with atomic_path(path) as tmp:
            tmp.write_text(frame.to_json(drop_id=True))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    return path
