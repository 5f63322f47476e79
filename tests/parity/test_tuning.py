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
    same = tuning.get("same_graph_as", {})
    # every level is timed or shares its optimised graph with one before it
    distinct = [lvl for lvl in LEVELS if lvl not in same]
    assert distinct[0] == "all" and all(same[lvl] in distinct for lvl in same)
    medians = tuning["median_ms"]
    if len(distinct) > 1:
        assert set(medians) == set(distinct) and all(v > 0 for v in medians.values())
        assert tuning["rounds"] >= 5
    else:
        assert medians == {} and tuning["rounds"] == 0
    # the choice is onnxruntime's default unless another level was clearly faster
    chosen = runtime["graph_optimization_level"]
    assert chosen == "all" or medians[chosen] < medians["all"]


def _graph(model_bytes: bytes, level: str, path: Path) -> bytes:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return path.read_bytes()


@pytest.mark.parametrize("which", ["linear", "pipeline"])
def test_levels_are_timed_only_where_their_graphs_differ(
        which: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from baton.parity.tuning import tune_session

    X, y = data
    model = (LogisticRegression() if which == "linear"
             else make_pipeline(StandardScaler(), LogisticRegression())).fit(X, y)
    bundle = baton.convert(model, X, tune=False)
    graphs = {lvl: _graph(bundle.model_bytes, lvl, tmp_path / f"{lvl}.onnx")
              for lvl in LEVELS}
    feeds = {bundle.inputs[0].name: X.astype(bundle.inputs[0].dtype)}
    expected = {"label": model.predict(X), "probabilities": model.predict_proba(X)}
    tuning = tune_session(bundle.model_bytes, feeds, expected, bundle.outputs,
                          bundle.tolerances)
    details = tuning.details["tuning"]
    same = details.get("same_graph_as", {})
    for lvl, other in same.items():
        assert graphs[lvl] == graphs[other]
    timed = [lvl for lvl in LEVELS if lvl not in same]
    assert len({graphs[lvl] for lvl in timed}) == len(timed)
    assert (details["rounds"] == 0) == (len(timed) == 1)
    assert tuning.graph_optimization_level in timed


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
