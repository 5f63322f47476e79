"""The tree graphs' speed paths against the native libraries: the float32 TreeEnsemble of
XGBoost's exact sum (bit for bit), ``tree_sum="fast"`` (within the tolerance it states,
labels identical) for every library and task, and each model parsed once per conversion."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import baton
from baton.converters._trees import Ensemble, Head, Leaf, Split, Tree, emit
from baton.errors import UsageError
from tests.converters.tree_data import class_target, enterprise_matrix, regression_target

X = enterprise_matrix(600, seed=0)
QUERY = enterprise_matrix(300, seed=5)


def _xgb(task: str) -> Any:
    xgb = pytest.importorskip("xgboost")
    params = {"n_estimators": 25, "max_depth": 4, "n_jobs": 1}
    if task == "regression":
        return xgb.XGBRegressor(**params, base_score=3.7).fit(X, regression_target(X))
    return xgb.XGBClassifier(**params).fit(X, class_target(X, 2 if task == "binary" else 3))


def _lgb(task: str) -> Any:
    lgb = pytest.importorskip("lightgbm")
    params = {"n_estimators": 20, "num_leaves": 8, "verbose": -1, "n_jobs": 1}
    if task == "regression":
        return lgb.LGBMRegressor(**params).fit(X, regression_target(X))
    return lgb.LGBMClassifier(**params).fit(X, class_target(X, 2 if task == "binary" else 3))


def _cb(task: str) -> Any:
    cb = pytest.importorskip("catboost")
    params = {"iterations": 15, "depth": 4, "verbose": False, "thread_count": 1,
              "allow_writing_files": False}
    if task == "regression":
        return cb.CatBoostRegressor(**params).fit(X, regression_target(X))
    return cb.CatBoostClassifier(**params).fit(X, class_target(X, 2 if task == "binary" else 3))


def _rf(task: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if task == "regression":
        return RandomForestRegressor(10, max_depth=5, random_state=0).fit(
            np.nan_to_num(X), regression_target(X))
    return RandomForestClassifier(10, max_depth=5, random_state=0).fit(
        np.nan_to_num(X), class_target(X, 2 if task == "binary" else 3))


LIBRARIES = {"xgboost": _xgb, "lightgbm": _lgb, "catboost": _cb, "random_forest": _rf}


def _native(model: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
    if hasattr(model, "predict_proba"):
        return {"label": np.asarray(model.predict(rows)).reshape(-1),
                "probabilities": np.asarray(model.predict_proba(rows), dtype=np.float64)}
    return {"prediction": np.asarray(model.predict(rows), dtype=np.float64).reshape(-1)}


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_fast_sum_within_its_stated_tolerance(library: str, task: str, tmp_path: Any) -> None:
    model = LIBRARIES[library](task)
    data = np.nan_to_num(X) if library == "random_forest" else X
    query = np.nan_to_num(QUERY) if library == "random_forest" else QUERY
    bundle = baton.convert(model, data[:300], tune=False, tree_sum="fast")
    assert bundle.report, bundle.report
    sess = baton.runtime.Session(bundle.save(tmp_path / "b"))
    got = sess.run({"input": query})
    for name, expected in _native(model, query).items():
        if name == "label":
            np.testing.assert_array_equal(got[name], expected)
            continue
        tol = bundle.tolerances[name]
        err = np.abs(np.asarray(got[name]).reshape(expected.shape) - expected)
        assert np.all(err <= tol.atol + tol.rtol * np.abs(expected)), (name, err.max(), tol)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_xgboost_exact_sum_is_bit_for_bit(task: str, tmp_path: Any) -> None:
    """The default: XGBoost's float32 running sum from the base margin, on a float32
    TreeEnsemble, equal to the library's margins bit for bit."""
    model = _xgb(task)
    bundle = baton.convert(model, X[:300], tune=False)
    sess = baton.runtime.Session(bundle.save(tmp_path / "b"))
    out = sess.run({"input": QUERY})
    margin = np.asarray(model.predict(QUERY, output_margin=True), dtype=np.float32)
    key = "prediction" if task == "regression" else "raw_scores"
    got = np.asarray(out[key]).reshape(margin.shape)
    assert np.array_equal(got.astype(np.float32), margin)
    assert np.array_equal(got, got.astype(np.float32).astype(np.float64))


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_xgboost_fast_margins_within_the_bound(task: str) -> None:
    """tree_sum='fast' states the library's float32 rounding bound, and the margins of
    fresh rows stay inside it."""
    from baton.converters._trees.converter import float32_sum_bound
    from baton.converters.xgboost import XGBoostConverter

    model = _xgb(task)
    ens, _ = XGBoostConverter().read(model)
    bound = float32_sum_bound(ens)
    assert 0 < bound < 1e-3
    exact = emit(ens, Head("regression", flatten=False))
    import dataclasses

    fast = emit(dataclasses.replace(ens, accumulate="float64"), Head("regression",
                                                                     flatten=False))
    runs = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            for m in (exact, fast)]
    a, b = (r.run(None, {"input": QUERY})[0] for r in runs)
    margin = np.asarray(model.predict(QUERY, output_margin=True), dtype=np.float64)
    assert np.array_equal(a.reshape(margin.shape), margin)
    assert np.max(np.abs(b.reshape(margin.shape) - margin)) <= bound


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaves=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=4,
                       max_size=24),
       base=st.floats(-1e3, 1e3, allow_nan=False, width=32),
       rows=st.lists(st.one_of(st.floats(-2.0, 2.0), st.just(float("nan"))), min_size=1,
                     max_size=8),
       rounded=st.booleans())
def test_float32_sum_any_leaves(leaves: list[float], base: float, rows: list[float],
                                rounded: bool) -> None:
    """Stumps on one feature: the graph's float32 sum is numpy's float32 running sum from
    the base, whether the TreeEnsemble is float32 (rounded inputs) or float64."""
    pairs = list(zip(leaves[::2], leaves[1::2]))
    trees = []
    for i, (left, right) in enumerate(pairs):
        tree = Tree()
        tree.root = tree.add(Split(0, "LT", float(np.float32(0.25 * (i % 5) - 0.5)),
                                   Leaf.scalar(left), Leaf.scalar(right), i % 2 == 0))
        trees.append(tree)
    ens = Ensemble(n_features=1, n_targets=1, trees=trees, base=[base],
                   round_to_float32=rounded, accumulate="float32")
    sess = ort.InferenceSession(emit(ens, Head("regression")).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    x = np.asarray(rows, dtype=np.float64).reshape(-1, 1)
    got = sess.run(None, {"input": x})[0]
    for value, out in zip(x[:, 0], got, strict=True):
        v = np.float32(value) if rounded else value
        total = np.float32(base)
        for i, (left, right) in enumerate(pairs):
            t = np.float32(0.25 * (i % 5) - 0.5)
            go_left = bool(i % 2 == 0) if np.isnan(v) else bool(v < t)
            total = np.float32(total + np.float32(left if go_left else right))
        assert out == float(total) or (np.isnan(out) and np.isnan(total))


def test_tree_sum_elsewhere_is_refused() -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.nan_to_num(X), regression_target(X))
    with pytest.raises(UsageError, match="tree_sum"):
        baton.convert(model, np.nan_to_num(X[:50]), tune=False, tree_sum="fast")
    with pytest.raises(UsageError, match="tree_sum"):
        baton.convert(_lgb("regression"), X[:50], tune=False, tree_sum="fastest")


def test_lightgbm_model_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    lgb = pytest.importorskip("lightgbm")
    model = _lgb("binary")
    original = lgb.Booster.dump_model
    calls = []

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(lgb.Booster, "dump_model", counted)
    assert baton.convert(model, X[:200], tune=False).report
    assert len(calls) == 1
    # a model changed in place between conversions is read again
    model.fit(X, class_target(X, 2, seed=4))
    bundle = baton.convert(model, X[:200], tune=False)
    assert bundle.report and len(calls) == 2
