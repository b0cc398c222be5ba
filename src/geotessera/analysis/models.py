"""Training scikit-learn models on an extraction table, with spatial cross-validation, and
saving them with what they were trained on.

``train(table, label)`` picks the task from the label column's type: a floating-point
column is a regression target (``rf`` or ``ridge``), anything else (strings, integers,
booleans, categories) holds classes (``rf``, ``knn`` or ``logreg``). Rows whose status
is not ``valid`` or whose embedding has NaN are left out. The report comes from spatial
block cross-validation (:mod:`.spatial_cv`); the returned model is then fitted on all rows.

A saved model is a directory: ``model.skops`` (the estimator, skops format: loading
runs no pickle code) and ``model.json`` (task, label, classes, bands, years, dataset,
report). :meth:`TrainedModel.check_dataset` refuses to predict from another dataset.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from .._version import __version__
from ..datasets import DatasetId
from ..errors import CorruptDataError, InvalidInputError, MixedDatasetError, OutputError
from ..files import atomic_path, write_atomic
from .spatial_cv import spatial_blocks, spatial_folds

log = logging.getLogger(__name__)

EXTRA = "ml"
BANDS = [f"emb_{i}" for i in range(128)]
CLASSIFIERS = ("rf", "knn", "logreg")
REGRESSORS = ("rf", "ridge")
MODEL_FILE, META_FILE = "model.skops", "model.json"
#: Types a saved model may contain (skops refuses anything else on load).
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


@dataclass
class TrainedModel:
    """A fitted estimator and what it was trained on.

    ``classes`` are the label values in class-id order (id k predicts ``classes[k]``);
    empty for regression. ``dataset`` is ``{"version", "variant"}`` or None when unknown.
    """

    estimator: Any
    task: str
    kind: str
    label: str
    classes: list[Any]
    bands: list[int]
    years: list[int]
    dataset: dict[str, str] | None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        """Class names as strings, in class-id order."""
        return [str(c) for c in self.classes]

    def check_dataset(self, dataset: DatasetId | None) -> None:
        """Raise :class:`MixedDatasetError` when ``dataset`` is not the one trained on."""
        if self.dataset is None or dataset is None:
            return
        if (self.dataset["version"], self.dataset["variant"]) != (dataset.version, dataset.variant):
            raise MixedDatasetError(
                f"the model was trained on dataset {self.dataset['version']}/{self.dataset['variant']}; "
                f"refusing to predict from {dataset.version}/{dataset.variant} (another model run)"
            )

    def features(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(N, 128) embeddings -> (N, len(bands)) model inputs."""
        return values if len(self.bands) == values.shape[1] else values[:, self.bands]

    def metadata(self) -> dict[str, Any]:
        """The JSON sidecar's content."""
        return {
            "format": "geotessera-model",
            "format_version": 1,
            "geotessera_version": __version__,
            "task": self.task,
            "model": self.kind,
            "label": self.label,
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes],
            "bands": self.bands,
            "years": self.years,
            "dataset": self.dataset,
            "report": self.report,
        }


def _estimator(task: str, kind: str, n: int, seed: int) -> Any:
    ensemble = require("sklearn.ensemble", EXTRA)
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task == "classification":
        if kind == "rf":
            return ensemble.RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)
        if kind == "knn":
            return KNeighborsClassifier(n_neighbors=max(1, min(5, n - 1)))
        if kind == "logreg":
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        raise InvalidInputError(
            f"unknown classification model {kind!r}; choose one of {', '.join(CLASSIFIERS)}"
        )
    if kind == "rf":
        return ensemble.RandomForestRegressor(n_estimators=100, n_jobs=-1, random_state=seed)
    if kind == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    raise InvalidInputError(f"unknown regression model {kind!r}; choose one of {', '.join(REGRESSORS)}")


def _table(table: Any) -> Any:
    """A (Geo)DataFrame from a frame or a GeoParquet / Parquet / CSV path."""
    pd = require("pandas", EXTRA)
    if isinstance(table, (str, os.PathLike)):
        from .tables import read_table

        return read_table(table)
    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(f"table must be a DataFrame or a path, not {type(table).__name__}")
    return table


def _task_of(column: Any) -> str:
    pd = require("pandas", EXTRA)

    return "regression" if pd.api.types.is_float_dtype(column.dtype) else "classification"


def train(
    table: Any,
    label: str,
    model: str = "rf",
    cv_block_m: float = 1000.0,
    folds: int = 5,
    *,
    seed: int = 0,
) -> tuple[TrainedModel, dict[str, Any]]:
    """Cross-validate and fit a model on an extraction table (see the module docstring).

    Args:
        table: a (Geo)DataFrame from :func:`~geotessera.analysis.extract`, or its file.
        label: the label column.
        model: ``rf``, ``knn``, ``logreg`` (classification) or ``rf``, ``ridge`` (regression).
        cv_block_m: spatial CV block size in metres.
        folds: number of CV folds (>= 2).
        seed: random seed of the model and the fold assignment.

    Returns:
        (the model fitted on all usable rows, the CV report dict).
    """
    require("sklearn", EXTRA)
    df = _table(table)
    if len(df) == 0:
        raise InvalidInputError("the table is empty")
    if label not in df.columns:
        shown = [c for c in df.columns if not str(c).startswith("emb_")]
        raise InvalidInputError(f"no label column {label!r}; the table has: {', '.join(map(str, shown))}")
    missing = [b for b in BANDS if b not in df.columns]
    if missing:
        raise InvalidInputError(
            f"the table has no embedding columns ({missing[0]} ...); make it with `extract`"
        )
    usable = df[label].notna().to_numpy().copy()
    if "status" in df.columns:
        usable &= (df["status"] == "valid").to_numpy()
    x_all = df[BANDS].to_numpy(dtype=np.float32)
    usable &= np.isfinite(x_all).all(axis=1)
    if not usable.any():
        raise InvalidInputError(f"no row of the table has both a {label!r} value and a valid embedding")
    rows = df[usable]
    x = x_all[usable]
    task = _task_of(df[label])
    if model not in (CLASSIFIERS if task == "classification" else REGRESSORS):
        allowed = CLASSIFIERS if task == "classification" else REGRESSORS
        raise InvalidInputError(
            f"model {model!r} does not fit a {task} label ({label!r} is {df[label].dtype}); "
            f"choose one of {', '.join(allowed)}"
        )
    lonlat = _lonlat(rows)
    pid = rows["polygon_id"].tolist() if "polygon_id" in rows.columns else None
    groups = spatial_blocks(lonlat, cv_block_m, pid)
    if task == "classification":
        classes, y = np.unique(rows[label].to_numpy(), return_inverse=True)
        if len(classes) < 2:
            raise InvalidInputError(
                f"the label {label!r} has a single class ({classes[0]!r}) among usable rows; "
                "a classifier needs two"
            )
    else:
        classes, y = np.array([]), rows[label].to_numpy(dtype=np.float64)
    splits = spatial_folds(groups, folds, y if task == "classification" else None, seed)
    oof = np.empty(len(y), dtype=y.dtype)
    for train_idx, test_idx in splits:
        est = _estimator(task, model, len(train_idx), seed)
        est.fit(x[train_idx], y[train_idx])
        oof[test_idx] = est.predict(x[test_idx])
    from .report import classification_report, regression_report

    if task == "classification":
        report = classification_report(y, oof, [str(c) for c in classes], splits)
    else:
        report = regression_report(y, oof, splits)
    report.update(
        {
            "task": task,
            "model": model,
            "label": label,
            "folds": folds,
            "cv_block_m": float(cv_block_m),
            "n_samples": len(y),
            "n_blocks": len(np.unique(groups)),
            "seed": seed,
        }
    )
    final = _estimator(task, model, len(y), seed)
    final.fit(x, y)
    years = sorted({int(v) for v in rows["year"].tolist()}) if "year" in rows.columns else []
    dataset = _dataset_of(rows)
    fitted = TrainedModel(final, task, model, label, list(classes), list(range(128)), years, dataset, report)
    return fitted, report


def _lonlat(df: Any) -> npt.NDArray[np.float64]:
    if "geometry" in df.columns and hasattr(df, "geometry"):
        g = df.geometry
        if g.crs is not None and g.crs.to_epsg() != 4326:
            g = g.to_crs(4326)
        return np.c_[g.x.to_numpy(), g.y.to_numpy()]
    for lon, lat in (("lon", "lat"), ("longitude", "latitude")):
        if lon in df.columns and lat in df.columns:
            return np.c_[df[lon].to_numpy(float), df[lat].to_numpy(float)]
    raise InvalidInputError("the table has no geometry and no lon/lat columns")


def _dataset_of(df: Any) -> dict[str, str] | None:
    if "dataset" not in df.columns:
        return None
    names = sorted({str(v) for v in df["dataset"].tolist()})
    if len(names) != 1:
        raise MixedDatasetError(f"the table mixes datasets {', '.join(names)}; train on one")
    version, _, variant = names[0].partition("/")
    return {"version": version, "variant": variant}


def save_model(model: TrainedModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``model.skops`` and ``model.json`` into ``directory`` (created); returns it."""
    sio = require("skops.io", EXTRA)
    d = Path(directory)
    meta = json.dumps(model.metadata(), indent=2, default=_json_default).encode()
    try:
        # the description names the classes of the estimator beside it: gone before the estimator
        # is replaced, written after (a kill in between leaves no model, never a mix of two)
        (d / META_FILE).unlink(missing_ok=True)
        with atomic_path(d / MODEL_FILE) as tmp:
            sio.dump(model.estimator, tmp)
        write_atomic(d / META_FILE, meta)
    except OSError as exc:
        raise OutputError(f"cannot write the model into {d}: {exc}") from exc
    return d


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_model(directory: str | os.PathLike[str]) -> TrainedModel:
    """Read a model saved by :func:`save_model` (only scikit-learn / numpy types are accepted)."""
    sio = require("skops.io", EXTRA)
    d = Path(directory)
    meta_path, model_path = d / META_FILE, d / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise InvalidInputError(f"{d} holds no saved model ({META_FILE} and {MODEL_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
        untrusted = sio.get_untrusted_types(file=model_path)
        bad = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if bad:
            raise CorruptDataError(f"{model_path} holds types that are not scikit-learn's: {', '.join(bad)}")
        estimator = sio.load(model_path, trusted=untrusted)
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptDataError(f"cannot read the model in {d}: {exc}") from exc
    if meta.get("format") != "geotessera-model":
        raise CorruptDataError(f"{meta_path} is not a geotessera model description")
    return TrainedModel(
        estimator,
        meta["task"],
        meta["model"],
        meta["label"],
        list(meta.get("classes") or []),
        list(meta.get("bands") or range(128)),
        list(meta.get("years") or []),
        meta.get("dataset"),
        meta.get("report") or {},
    )
