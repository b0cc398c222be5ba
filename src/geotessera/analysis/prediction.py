"""Wall-to-wall prediction with a trained model, block by block.

``predict(model, source, region, year, output)``.

Classification writes class ids (uint8, 255 = nodata; uint16 / 65535 past 254 classes)
with a colour table, the class names in the ``CLASS_NAMES`` tag (JSON list, id order)
and a ``.classes.json`` sidecar; with ``proba=True`` a second GeoTIFF ``STEM_proba.tif``
holds one float32 band per class (NaN = nodata), band descriptions the class names.
Regression writes float32 values (NaN = nodata). Pixels without a full embedding
(water, no data, outside the area) are nodata.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError
from ..progress import ProgressSink
from .grids import DEFAULT_BLOCK
from .models import TrainedModel, load_model
from .rasters import (
    BlockWriter,
    RasterSpec,
    check_map_path,
    colour_table,
    drop_description,
    write_description,
)
from .regionops import finite_rows, make_runner, plan


def _single_threaded(estimator: Any) -> Any:
    """A copy of ``estimator`` whose parts run on one thread (blocks already run in parallel)."""
    est = copy.deepcopy(estimator)
    parts = [est, *[s for _, s in getattr(est, "steps", [])]]
    for p in parts:
        if hasattr(p, "n_jobs"):
            p.n_jobs = 1
    return est


def _predict_block(
    block: npt.NDArray[np.float32], estimator: Any, bands: list[int], task: str, n_out: int, proba: bool
) -> npt.NDArray[Any]:
    """(h, w, 128) -> (h, w, n_out): class ids (uint16, 65535 nodata), probabilities or values."""
    h, w = block.shape[:2]
    flat, ok = finite_rows(block)
    x = flat[ok] if len(bands) == flat.shape[1] else flat[ok][:, bands]
    if task == "regression":
        out = np.full((h * w, 1), np.nan, dtype=np.float32)
        if ok.any():
            out[ok, 0] = estimator.predict(x)
    elif proba:
        out = np.full((h * w, n_out), np.nan, dtype=np.float32)
        if ok.any():
            out[ok] = estimator.predict_proba(x)
    else:
        out = np.full((h * w, 1), 65535, dtype=np.uint16)
        if ok.any():
            out[ok, 0] = estimator.predict(x)
    return out.reshape(h, w, -1)


def _class_ids(proba: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    """Class id (argmax) of a (h, w, K) probability block; 65535 where NaN."""
    ids = np.full(proba.shape[:2], 65535, dtype=np.uint16)
    ok = np.isfinite(proba).all(axis=2)
    ids[ok] = np.argmax(proba[ok], axis=1)
    return ids[:, :, None]


def predict(
    model: TrainedModel | str | os.PathLike[str],
    source: Any,
    region: Any,
    year: int,
    output: str | os.PathLike[str],
    client: Any = None,
    *,
    proba: bool = False,
    block: int = DEFAULT_BLOCK,
    workers: int | None = None,
    progress: ProgressSink | None = None,
) -> list[Path]:
    """Predict ``model`` over ``region`` for ``year`` into the GeoTIFF ``output``.

    Args:
        model: a :class:`~geotessera.analysis.models.TrainedModel` or a saved model directory.
        source: a ``GeoTessera`` client or a ``GeoTesseraZarr`` store of the model's dataset.
        region: a bbox, Region, region file or country (see :func:`~geotessera.analysis.area.as_area`).
        year: the year of embeddings.
        output: the GeoTIFF path; a region across UTM zones writes ``STEM_utmNNx.tif`` per zone.
        client: a ``distributed.Client`` or a scheduler address (None: local threads).
        proba: also write per-class probabilities to ``STEM_proba.tif`` (classification).
        block: block size in pixels (a multiple of 16); memory per task is about
            ``block**2 * 128 * 4`` bytes plus the model's own.
        workers: local threads (default: usable cores).
        progress: sink of ``PlanReady`` / ``ItemDone`` (one per block) events.

    Returns:
        The GeoTIFFs written (class/value maps first, then probability maps).
    """
    check_map_path(output)
    m = model if isinstance(model, TrainedModel) else load_model(model)
    if proba and m.task != "classification":
        raise InvalidInputError("probabilities exist for classification models only")
    runner = make_runner(client, workers)  # connect first: an unreachable scheduler fails fast
    try:
        p = plan(source, region, [year], block=block)
        m.check_dataset(p.source.dataset)
        k = len(m.classes)
        est = runner.constant(_single_threaded(m.estimator))
        n_out = k if proba else 1
        dtype = np.float32 if (proba or m.task == "regression") else np.uint16
        arrays = []
        for g in p.grids:
            emb = p.embeddings(g, int(year))
            arrays.append(
                emb.map_blocks(
                    _predict_block,
                    est,
                    m.bands,
                    m.task,
                    n_out,
                    proba,
                    dtype=dtype,
                    chunks=(*emb.chunks[:2], (n_out,)),
                )
            )
        paths = p.paths(output)
        for path in paths:
            drop_description(_classes_path(path))
        tags = {"TESSERA_YEAR": str(year), "LABEL": m.label, "MODEL": m.kind}
        if m.dataset:
            tags["TESSERA_DATASET"] = f"{m.dataset['version']}/{m.dataset['variant']}"
        if m.task == "regression":
            spec = RasterSpec("float32", 1, float("nan"), descriptions=(m.label,), tags=tags)
            return _run(p, arrays, paths, spec, runner, progress)
        names = m.class_names
        small = k <= 254
        tags["CLASS_NAMES"] = json.dumps(names)
        spec = RasterSpec(
            "uint8" if small else "uint16",
            1,
            255 if small else 65535,
            colour_table(k) if small else None,
            (m.label,),
            tags,
        )
        if not proba:
            out = _run(p, arrays, paths, spec, runner, progress, to_ids=small)
        else:
            out = _run_with_proba(p, arrays, paths, spec, names, runner, progress, small)
        for path in paths:
            _write_classes(path, names, m.label)
        return out
    finally:
        runner.close()


def _narrow(data: npt.NDArray[Any]) -> npt.NDArray[Any]:
    d = data.astype(np.uint16, copy=False)
    return np.where(d == 65535, 255, d).astype(np.uint8)


def _run(
    p: Any, arrays: Any, paths: Any, spec: RasterSpec, runner: Any, progress: Any, to_ids: bool = False
) -> list[Path]:
    from .regionops import run

    return run(p, arrays, paths, spec, runner, progress=progress, transform=_narrow if to_ids else None)


def _run_with_proba(
    p: Any,
    arrays: Any,
    paths: list[Path],
    spec: RasterSpec,
    names: list[str],
    runner: Any,
    progress: Any,
    small: bool,
) -> list[Path]:
    """Class ids and probabilities from one pass: the probabilities go to ``STEM_proba.tif``."""
    from ..progress import ItemDone, PlanReady, emit

    pspec = RasterSpec("float32", len(names), float("nan"), descriptions=tuple(names), tags=spec.tags)
    proba_paths = [q.with_name(f"{q.stem}_proba{q.suffix or '.tif'}") for q in paths]
    total = sum(len(g.blocks(p.block)) for g in p.grids)
    emit(progress, PlanReady(total, 0, "blocks"))
    for grid, arr, path, ppath in zip(p.grids, arrays, paths, proba_paths, strict=True):
        with BlockWriter(path, grid, spec) as ids, BlockWriter(ppath, grid, pspec) as probs:
            for r0, c0, data in runner.iter_blocks(arr):
                cls = _class_ids(data)
                ids.write(r0, c0, _narrow(cls) if small else cls)
                probs.write(r0, c0, data)
                emit(progress, ItemDone(f"{path.name} block {r0},{c0}"))
    return [*paths, *proba_paths]


def _classes_path(path: Path) -> Path:
    return path.with_name(path.name + ".classes.json")


def _write_classes(path: Path, names: list[str], label: str) -> None:
    doc = {
        "label": label,
        "nodata": 255 if len(names) <= 254 else 65535,
        "classes": [{"id": i, "name": n} for i, n in enumerate(names)],
    }
    write_description(_classes_path(path), doc)
