"""Cross-validation reports: metrics as a dict, as text, and the confusion matrix as a PNG."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import OutputError
from .spatial_cv import Fold


def classification_report(
    y: npt.NDArray[Any], pred: npt.NDArray[Any], names: list[str], folds: list[Fold]
) -> dict[str, Any]:
    """Overall accuracy, per-class precision/recall/F1/support, confusion matrix, per-fold accuracy.

    ``y`` and ``pred`` are class ids (0..K-1) of the out-of-fold predictions; the matrix's
    rows are true classes, columns predicted ones.
    """
    require("sklearn", "ml")
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    ids = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    cm = confusion_matrix(y, pred, labels=ids)
    return {
        "accuracy": float(np.mean(y == pred)),
        "per_class": {
            n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, n in enumerate(names)
        },
        "confusion_matrix": {"labels": names, "matrix": cm.tolist()},
        "fold_accuracy": [float(np.mean(y[te] == pred[te])) for _, te in folds],
    }


def regression_report(y: npt.NDArray[Any], pred: npt.NDArray[Any], folds: list[Fold]) -> dict[str, Any]:
    """R² and RMSE of the out-of-fold predictions, overall and per fold."""
    require("sklearn", "ml")
    from sklearn.metrics import r2_score

    def rmse(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
        return float(np.sqrt(np.mean((a - b) ** 2)))

    return {
        "r2": float(r2_score(y, pred)),
        "rmse": rmse(y, pred),
        "fold_r2": [float(r2_score(y[te], pred[te])) if len(te) > 1 else float("nan") for _, te in folds],
        "fold_rmse": [rmse(y[te], pred[te]) for _, te in folds],
    }


def report_text(report: dict[str, Any]) -> str:
    """A plain-text summary: metrics, per-class table and the confusion matrix."""
    head = (
        f"{report['task']} with {report['model']}: {report['n_samples']} samples in "
        f"{report['n_blocks']} spatial blocks of {report['cv_block_m']:g} m, {report['folds']}-fold CV"
    )
    lines = [head]
    if report["task"] == "regression":
        lines.append(f"R2 {report['r2']:.4f}  RMSE {report['rmse']:.4g}")
        return "\n".join(lines)
    lines.append(f"overall accuracy {report['accuracy']:.4f}")
    names = list(report["per_class"])
    width = max(8, *(len(n) for n in names))
    lines.append(f"{'class':<{width}}  precision  recall     f1  support")
    for n, m in report["per_class"].items():
        lines.append(
            f"{n:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  {m['support']:7d}"
        )
    cm = report["confusion_matrix"]["matrix"]
    cw = max(6, *(len(n) for n in names), *(len(str(v)) for row in cm for v in row))
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "  " + " ".join(f"{n:>{cw}}" for n in names))
    for n, row in zip(names, cm, strict=True):
        lines.append(f"{n:<{width}}  " + " ".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)


def write_report(report: dict[str, Any], directory: str | os.PathLike[str]) -> list[Path]:
    """Write ``report.json``, ``report.txt`` and (classification) ``confusion_matrix.png``."""
    d = Path(directory)
    written = []
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / "report.json").write_text(json.dumps(report, indent=2))
        (d / "report.txt").write_text(report_text(report) + "\n")
        written += [d / "report.json", d / "report.txt"]
        if report["task"] == "classification":
            written.append(_confusion_png(report, d / "confusion_matrix.png"))
    except OSError as exc:
        raise OutputError(f"cannot write the report into {d}: {exc}") from exc
    return written


def _confusion_png(report: dict[str, Any], path: Path) -> Path:
    matplotlib = require("matplotlib", "ml")
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    names = report["confusion_matrix"]["labels"]
    cm = np.asarray(report["confusion_matrix"]["matrix"])
    size = 1.2 + 0.6 * len(names)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {report['accuracy']:.3f} (spatial CV)")
    top = cm.max() if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if cm[i, j] > top / 2 else "black",
            )
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
