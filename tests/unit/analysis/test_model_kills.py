"""A model saved over another one and killed at each moment is one model or the other, never a mix.

A saved model is two files, ``model.skops`` (the estimator) and ``model.json`` (its label, its
classes in class-id order, its bands...); predictions name their classes from the second. A kill
between the two writes must not leave one model's estimator with the other's description: the
directory must load as the old model, as the new one, or not at all (an error that says so).
Each moment (``support.killpoints``: before and after each rename into place, before each
unlink) is the moment of a SIGKILL, in turn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geotessera.errors import GeoTesseraError
from support.killpoints import Call, count_moments, run_killed_at

pytest.importorskip("skops")

X = np.random.default_rng(0).normal(size=(60, 128)).astype(np.float32)


def _model(kind: str) -> object:
    """A classifier of three land covers (``old``) or of two crops on two bands (``new``)."""
    from sklearn.neighbors import KNeighborsClassifier

    from geotessera.analysis import TrainedModel

    if kind == "old":
        y, classes, bands = np.arange(60) % 3, ["urban", "forest", "water"], list(range(128))
    else:
        y, classes, bands = (X[:, 0] > 0).astype(int), ["wheat", "barley"], [0, 5]
    est = KNeighborsClassifier(n_neighbors=3).fit(X[:, bands], y)
    return TrainedModel(est, "classification", "knn", kind, classes, bands, [2024], None)


def save(kind: str, directory: str) -> None:
    """Save the ``kind`` model into ``directory`` (the run the tests kill)."""
    from geotessera.analysis import save_model

    save_model(_model(kind), directory)  # type: ignore[arg-type]


def _identity(directory: Path) -> str | None:
    """Which model ``directory`` loads as: ``old``, ``new``, or None (it says it holds none)."""
    from geotessera.analysis import load_model

    try:
        m = load_model(directory)
    except GeoTesseraError:
        return None
    assert m.label in ("old", "new"), m.label
    want = _model(m.label)
    assert (m.classes, m.bands) == (want.classes, want.bands)  # type: ignore[attr-defined]
    try:
        got = m.estimator.predict(m.features(X))
    except ValueError as exc:  # e.g. the other model's bands
        raise AssertionError(f"the {m.label} model's description with another estimator: {exc}") from exc
    assert np.array_equal(got, want.estimator.predict(want.features(X))), f"{m.label}: another estimator"  # type: ignore[attr-defined]
    return m.label


def test_a_model_saved_over_another_and_killed_at_each_moment_is_one_or_the_other(tmp_path: Path) -> None:
    directory, scratch = tmp_path / "model", tmp_path / "scratch"
    save("old", str(directory))
    moments = count_moments(Call(f"{__name__}:save", ("new", str(directory))), scratch).moments
    assert moments >= 2  # the estimator's rename, before and after (and the description)
    for at in range(1, moments + 1):
        save("old", str(directory))
        run = run_killed_at(Call(f"{__name__}:save", ("new", str(directory))), at, scratch)
        assert run.killed, f"moment {at} never came: {run.log}"
        try:
            _identity(directory)
        except AssertionError as exc:
            raise AssertionError(f"killed at moment {at} of {moments}, {run.moment}: {exc}") from exc
        save("new", str(directory))
        assert _identity(directory) == "new"
