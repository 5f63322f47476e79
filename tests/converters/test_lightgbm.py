"""LightGBM through baton's tree emitter: exact on float64 data, where onnxmltools is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import baton

lgb = pytest.importorskip("lightgbm")

from tests.converters.tree_data import (  # noqa: E402
    assert_exact,
    class_target,
    enterprise_matrix,
    regression_target,
    rows_strategy,
    threshold_rows,
)

X = enterprise_matrix(2000)


def _fit(task: str, **params: Any) -> Any:
    params = {"n_estimators": 60, "num_leaves": 31, "verbose": -1, **params}
    if task == "regression":
        return lgb.LGBMRegressor(**params).fit(X, regression_target(X))
    if task == "ranker":
        groups = [100] * (len(X) // 100)
        rel = np.clip(np.round(regression_target(X)), 0, 4).astype(int) % 5
        return lgb.LGBMRanker(**params).fit(X, rel, group=groups)
    n_classes = {"binary": 2, "multiclass": 3}[task]
    return lgb.LGBMClassifier(**params).fit(X, class_target(X, n_classes))


MODELS = {
    "regression": lambda: _fit("regression"),
    "binary": lambda: _fit("binary"),
    "multiclass": lambda: _fit("multiclass"),
    "multiclassova": lambda: _fit("multiclass", objective="multiclassova"),
    "poisson": lambda: lgb.LGBMRegressor(n_estimators=40, objective="poisson", verbose=-1).fit(
        X, np.exp(regression_target(X) / 10)),
    "ranker": lambda: _fit("ranker"),
    "zero-as-missing": lambda: _fit("regression", zero_as_missing=True),
    "rf-mode": lambda: _fit("regression", boosting_type="rf", bagging_freq=1,
                            bagging_fraction=0.7),
}
_CACHE: dict[str, tuple[Any, Any]] = {}


def converted(kind: str) -> tuple[Any, Any]:
    if kind not in _CACHE:
        model = MODELS[kind]()
        _CACHE[kind] = (model, baton.convert(model, X))
    return _CACHE[kind]


@pytest.mark.parametrize("kind", list(MODELS))
def test_converts_exactly(kind: str) -> None:
    model, bundle = converted(kind)
    assert_exact(bundle.report)
    ens_thresholds = _thresholds(model)
    probe = threshold_rows(ens_thresholds, X)
    assert_exact(baton.check(model, bundle, probe, search=False))


def _thresholds(model: Any) -> dict[int, np.ndarray]:
    """Split thresholds read from LightGBM's own dump (not from baton)."""
    out: dict[int, list[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            if node.get("decision_type") == "<=":
                out.setdefault(node["split_feature"], []).append(float(node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for info in model.booster_.dump_model()["tree_info"]:
        walk(info["tree_structure"])
    return {k: np.unique(v) for k, v in out.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(_thresholds(converted("regression")[0]), X))
def test_any_rows_agree_regression(rows: np.ndarray) -> None:
    model, bundle = converted("regression")
    assert_exact(baton.check(model, bundle, rows, search=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(_thresholds(converted("multiclass")[0]), X))
def test_any_rows_agree_multiclass(rows: np.ndarray) -> None:
    model, bundle = converted("multiclass")
    assert_exact(baton.check(model, bundle, rows, search=False))


def test_categorical_features_and_unseen_categories() -> None:
    rng = np.random.default_rng(5)
    Xc = X.copy()
    Xc[:, 5] = rng.integers(0, 30, len(X))
    y = regression_target(X) + (Xc[:, 5] % 7 == 0) * 3.0
    model = lgb.LGBMRegressor(n_estimators=40, verbose=-1, min_data_per_group=5,
                              cat_smooth=1.0).fit(Xc, y, categorical_feature=[5])
    dump = model.booster_.dump_model()
    assert "==" in str(dump), "the model should have categorical splits"
    bundle = baton.convert(model, Xc)
    assert_exact(bundle.report)
    probe = Xc[:12].copy()
    probe[:, 5] = [-1, 2.7, np.nan, 31, 1e6, 0, -0.0, 3, 7, 14, 29, 100]  # unseen, odd values
    assert_exact(baton.check(model, bundle, probe, search=False))


def test_booster_from_text_file_via_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    model, _ = converted("binary")
    model.booster_.save_model(tmp_path / "model.txt")
    np.save(tmp_path / "data.npy", X)
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(tmp_path / "model.txt"), "--sample",
                              str(tmp_path / "data.npy"), "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["check", str(tmp_path / "model.txt"), str(tmp_path / "m.baton"),
                              "--data", str(tmp_path / "data.npy")])
    assert out.exit_code == 0, out.output
    assert baton.verify(tmp_path / "m.baton")


def test_onnxmltools_flips_branches_where_baton_is_exact() -> None:
    """The raw path (onnxmltools, float32 thresholds) disagrees on large-magnitude data."""
    onnxmltools = pytest.importorskip("onnxmltools")
    import onnxruntime as ort
    from onnxmltools.convert.common.data_types import FloatTensorType

    model, bundle = converted("regression")
    raw = onnxmltools.convert_lightgbm(model, initial_types=[("input", FloatTensorType(
        [None, X.shape[1]]))], target_opset=15)
    sess = ort.InferenceSession(raw.SerializeToString(), providers=["CPUExecutionProvider"])
    raw_pred = sess.run(None, {"input": X.astype(np.float32)})[0].ravel()
    native = model.predict(X)
    span = native.max() - native.min()
    wrong = np.abs(raw_pred - native) > 1e-6 * span
    assert wrong.sum() > 50, "the float32 path was expected to flip branches on this data"
    ours = baton.check(model, bundle, X, search=False)
    assert_exact(ours)
    assert ours.output("prediction").max_abs < 1e-6 * span
