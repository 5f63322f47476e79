"""Session tuning: the graph optimisation level chosen at conversion (among those passing
parity) is recorded in the bundle and used by every Session opened on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import baton
from baton.parity.tuning import LEVELS
from baton.runtime import Session


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 6))
    return X, (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)


def test_tuning_is_recorded_with_its_measurements(data: tuple[np.ndarray, np.ndarray]
                                                  ) -> None:
    from sklearn.neural_network import MLPClassifier

    X, y = data
    bundle = baton.convert(MLPClassifier((16,), max_iter=2000, random_state=0).fit(X, y), X)
    runtime = bundle.manifest["runtime"]
    assert runtime["graph_optimization_level"] in LEVELS
    tuning = runtime["tuning"]
    assert sorted(tuning["passed_parity"]) == sorted(LEVELS)
    assert set(tuning["median_ms"]) == set(LEVELS)
    assert all(v > 0 for v in tuning["median_ms"].values())
    assert tuning["rounds"] >= 5
    # the choice is onnxruntime's default unless another level was clearly faster
    medians = tuning["median_ms"]
    chosen = runtime["graph_optimization_level"]
    assert chosen == "all" or medians[chosen] < medians["all"]


def test_no_tuning_keeps_the_default(data: tuple[np.ndarray, np.ndarray]) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = data
    bundle = baton.convert(LogisticRegression().fit(X, y), X, tune=False)
    assert bundle.manifest["runtime"] == {"graph_optimization_level": "all"}


@pytest.mark.parametrize("level", ["basic", "extended", "all"])
def test_session_uses_the_recorded_level(level: str, data: tuple[np.ndarray, np.ndarray],
                                         tmp_path: Path) -> None:
    import onnxruntime as ort
    from sklearn.linear_model import LogisticRegression

    X, y = data
    model = LogisticRegression().fit(X, y)
    bundle = baton.convert(model, X, tune=False)
    bundle.manifest["runtime"] = {"graph_optimization_level": level}
    path = bundle.save(tmp_path / "m.baton")
    sess = Session(path)
    assert sess.settings.optimization == level
    got = sess._session.get_session_options().graph_optimization_level
    assert got == {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                   "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    np.testing.assert_array_equal(sess.predict(X)["label"], model.predict(X))
    assert baton.verify(path)
