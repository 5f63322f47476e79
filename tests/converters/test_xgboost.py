"""XGBoost through baton's tree emitter: exact on float64 data (XGBoost's own float32
rounding reproduced), where onnxmltools refuses or silently mis-converts."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import baton

xgb = pytest.importorskip("xgboost")

import baton.converters.xgboost  # noqa: E402,F401 - registers the converter and loaders
from tests.converters.tree_data import (  # noqa: E402
    assert_exact,
    class_target,
    enterprise_matrix,
    regression_target,
    rows_strategy,
    threshold_rows,
)

X = enterprise_matrix(2000)
Y = regression_target(X)
_rng = np.random.default_rng(3)
#: column 3 with -999 for "unknown", column 4 with zeros as missing
X_SENTINEL = X.copy()
X_SENTINEL[_rng.random(len(X)) < 0.1, 3] = -999.0
X_ZERO = X.copy()
X_ZERO[_rng.random(len(X)) < 0.1, 4] = 0.0
#: column 5 holds category codes 0..29
X_CAT = X.copy()
X_CAT[:, 5] = _rng.integers(0, 30, len(X))
CAT_TYPES = ["q"] * 5 + ["c"]


#: one thread: XGBoost's OpenMP pool and onnxruntime's spinning threads share 2 cores badly
ONE_THREAD = {"n_jobs": 1}


def _reg(**params: Any) -> Any:
    return xgb.XGBRegressor(**{"n_estimators": 30, "max_depth": 5, **ONE_THREAD, **params})


def _clf(**params: Any) -> Any:
    return xgb.XGBClassifier(**{"n_estimators": 30, "max_depth": 5, **ONE_THREAD, **params})


def _train(params: dict[str, Any], y: np.ndarray, rounds: int) -> Any:
    return xgb.train({"nthread": 1, **params}, xgb.DMatrix(X, y, nthread=1), rounds)


def _early_stopped() -> Any:
    model = _reg(n_estimators=300, learning_rate=0.5, early_stopping_rounds=3)
    return model.fit(X[:1500], Y[:1500], eval_set=[(X[1500:], Y[1500:])], verbose=False)


#: kind -> (model factory, the data it was trained on)
MODELS: dict[str, tuple[Callable[[], Any], np.ndarray]] = {
    "regression": (lambda: _reg().fit(X, Y), X),
    "binary": (lambda: _clf().fit(X, class_target(X, 2)), X),
    "multiclass": (lambda: _clf(n_estimators=15).fit(X, class_target(X, 3)), X),
    "multi-softmax": (lambda: _clf(n_estimators=10, objective="multi:softmax").fit(
        X, class_target(X, 3)), X),
    "logitraw": (lambda: _clf(n_estimators=10, objective="binary:logitraw").fit(
        X, class_target(X, 2)), X),
    "poisson": (lambda: _reg(objective="count:poisson").fit(X, np.exp(Y / 10)), X),
    "early-stopped": (_early_stopped, X),
    "multi-target": (lambda: _reg(n_estimators=10).fit(X, np.column_stack([Y, -Y])), X),
    "dart": (lambda: _reg(n_estimators=10, booster="dart", rate_drop=0.3).fit(X, Y), X),
    "booster-logistic": (lambda: _train({"objective": "binary:logistic", "max_depth": 5},
                                        class_target(X, 2), 20), X),
    "booster-softmax": (lambda: _train({"objective": "multi:softmax", "num_class": 3,
                                        "max_depth": 4}, class_target(X, 3), 8), X),
    "missing=-999": (lambda: _reg(missing=-999.0).fit(X_SENTINEL, Y), X_SENTINEL),
    "missing=0": (lambda: _reg(missing=0.0).fit(X_ZERO, Y), X_ZERO),
    "categorical": (lambda: _reg(enable_categorical=True, feature_types=CAT_TYPES,
                                 max_cat_to_onehot=1).fit(X_CAT, Y + (X_CAT[:, 5] % 7 == 0) * 3),
                    X_CAT),
}
_CACHE: dict[str, tuple[Any, Any]] = {}


def converted(kind: str) -> tuple[Any, Any]:
    if kind not in _CACHE:
        make, data = MODELS[kind]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
        _CACHE[kind] = (model, baton.convert(model, data))
    return _CACHE[kind]


def _booster(model: Any) -> Any:
    return model if isinstance(model, xgb.Booster) else model.get_booster()


def _thresholds(model: Any) -> dict[int, np.ndarray]:
    """Numeric split conditions read from XGBoost's own dump (not from baton)."""
    out: dict[int, list[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split" in node:
            if not isinstance(node["split_condition"], list):  # a categorical set
                out.setdefault(int(node["split"][1:]), []).append(float(node["split_condition"]))
            for c in node["children"]:
                walk(c)

    for tree in _booster(model).get_dump(dump_format="json"):
        walk(json.loads(tree))
    return {k: np.unique(v) for k, v in out.items()}


@pytest.mark.parametrize("kind", list(MODELS))
def test_converts_exactly(kind: str) -> None:
    model, bundle = converted(kind)
    assert_exact(bundle.report)
    data = MODELS[kind][1]
    assert_exact(baton.check(model, bundle, threshold_rows(_thresholds(model), data), search=False))


def _margin(bundle: Any, rows: np.ndarray) -> np.ndarray:
    """The converted graph's summed trees plus base (its ``raw_scores`` tensor)."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load_from_string(bundle.model_bytes)
    if "raw_scores" not in [o.name for o in graph.graph.output]:
        graph.graph.output.append(onnx.helper.make_tensor_value_info(
            "raw_scores", onnx.TensorProto.DOUBLE, None))
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: rows})[
        names.index("raw_scores")])


def _leaf_sums(model: Any, rows: np.ndarray, dtype: type[np.floating[Any]]) -> np.ndarray:
    """``[rows, targets]``: XGBoost's base margin plus the leaves XGBoost itself picks
    (``pred_leaf``), added in ``dtype`` tree after tree, each tree to its target
    (``tree_info``); read from XGBoost's JSON, not from baton (identity-link objectives)."""
    doc = json.loads(bytes(_booster(model).save_raw("json")))["learner"]
    gbtree = doc["gradient_booster"]["model"]
    trees, info = gbtree["trees"], [int(t) for t in gbtree["tree_info"]]
    n_targets = max(info) + 1
    base = np.broadcast_to(np.asarray(
        doc["learner_model_param"]["base_score"].strip("[]").split(","), dtype=np.float32),
        (n_targets,))
    leaves = np.asarray(model.apply(rows), dtype=np.int64).reshape(len(rows), -1)
    out = np.tile(base.astype(dtype), (len(rows), 1))
    for t in range(leaves.shape[1]):
        values = np.asarray(trees[t]["split_conditions"], dtype=np.float32)
        out[:, info[t]] = (out[:, info[t]] + values[leaves[:, t]].astype(dtype)).astype(dtype)
    return out


@pytest.mark.parametrize("kind", ["regression", "multiclass", "missing=0", "categorical"])
def test_no_branch_flips(kind: str) -> None:
    """The graph's margin is, bit for bit, the float32 running sum of the leaves XGBoost
    itself picked (``pred_leaf``) from its base margin, which is XGBoost's own margin:
    not one branch differs, and the trees are added as XGBoost adds them."""
    model, bundle = converted(kind)
    data = MODELS[kind][1]
    rows = np.vstack([data[:300], threshold_rows(_thresholds(model), data)])
    expected = _leaf_sums(model, rows, np.float32)
    margin = _margin(bundle, rows).reshape(expected.shape)
    assert np.array_equal(margin, expected.astype(np.float64))
    native = np.asarray(model.predict(rows, output_margin=True)).reshape(expected.shape)
    assert np.array_equal(margin, native.astype(np.float64))


_OFFSET: list[tuple[Any, Any]] = []


def offset_model() -> tuple[Any, Any]:
    """A regressor whose target sits far from zero (1e4 + a range of ~15)."""
    if not _OFFSET:
        model = _reg().fit(X, Y + 1e4)
        _OFFSET.append((model, baton.convert(model, X)))
    return _OFFSET[0]


def test_offset_target_summed_in_float32_like_xgboost() -> None:
    """XGBoost adds its trees in float32: on a target near 1e4 its margin is off the exact
    (float64) leaf sum by ~1e-3, far more than 1e-6 of the range. The graph adds the same
    leaves the same way: its margin is XGBoost's, bit for bit."""
    model, bundle = offset_model()
    margin = model.predict(X, output_margin=True)
    assert np.array_equal(_leaf_sums(model, X, np.float32).ravel(), margin)
    exact = _leaf_sums(model, X, np.float64).ravel()
    assert np.abs(margin - exact).max() > 1e-6 * np.ptp(margin)
    assert np.array_equal(_margin(bundle, X).ravel(), margin.astype(np.float64))
    assert any("float32" in note and "base margin" in note
               for note in bundle.manifest["converter"]["notes"])


def test_offset_target_within_range_tolerance() -> None:
    model, bundle = offset_model()
    assert_exact(bundle.report)
    report = baton.check(model, bundle, threshold_rows(_thresholds(model), X), search=False)
    assert_exact(report)
    assert all(o.max_abs == 0.0 for o in report.outputs)


def test_many_trees_bit_for_bit() -> None:
    """400 trees and a target near -5e3: the float32 running sum drifts from the float64
    sum by many ulps, and the graph still gives XGBoost's margin exactly."""
    model = _reg(n_estimators=400, max_depth=3, learning_rate=0.3).fit(X, Y - 5e3)
    bundle = baton.convert(model, X)
    rows = np.vstack([X, threshold_rows(_thresholds(model), X, per_feature=10)])
    margin = model.predict(rows, output_margin=True)
    assert np.abs(margin - _leaf_sums(model, rows, np.float64).ravel()).max() > 1e-6 * np.ptp(
        margin)
    assert np.array_equal(_margin(bundle, rows).ravel(), margin.astype(np.float64))
    assert_exact(bundle.report)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(_thresholds(converted("regression")[0]), X))
def test_any_rows_agree_regression(rows: np.ndarray) -> None:
    model, bundle = converted("regression")
    assert_exact(baton.check(model, bundle, rows, search=False))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(_thresholds(converted("multiclass")[0]), X))
def test_any_rows_agree_multiclass(rows: np.ndarray) -> None:
    model, bundle = converted("multiclass")
    assert_exact(baton.check(model, bundle, rows, search=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(_thresholds(converted("missing=0")[0]), X_ZERO))
def test_any_rows_agree_zero_as_missing(rows: np.ndarray) -> None:
    model, bundle = converted("missing=0")
    assert_exact(baton.check(model, bundle, rows, search=False))


def test_odd_values_on_categorical_and_missing_features() -> None:
    """Codes XGBoost reads after rounding to float32: negative and huge codes go left,
    2.9999999999 is category 3; values that round to the ``missing`` value are missing."""
    model, bundle = converted("categorical")
    codes = [-0.5, -1e-300, -0.0, 0.0, 0.5, 2.9999999999, 3.0, 29.99, 30.0, 1e8,
             16777215.0, 16777216.0, np.nan, -3.0, np.float32(7.0) - 1e-9]
    probe = X_CAT[:len(codes)].copy()
    probe[:, 5] = codes
    assert_exact(baton.check(model, bundle, probe, search=False))

    model, bundle = converted("missing=0")
    odd = [0.0, -0.0, 1e-46, -1e-46, 1e-300, 5e-324, 1e-44, np.nan, -1e-38, 1.0]
    probe = X_ZERO[:len(odd)].copy()
    probe[:, 4] = odd
    assert_exact(baton.check(model, bundle, probe, search=False))

    model, bundle = converted("missing=-999")
    odd = [-999.0, float(np.nextafter(-999.0, 0)), -999.00001, -999.0001, np.nan]
    probe = X_SENTINEL[:len(odd)].copy()
    probe[:, 3] = odd
    assert_exact(baton.check(model, bundle, probe, search=False))


def test_early_stopping_uses_the_best_iteration() -> None:
    model, bundle = converted("early-stopped")
    n_best = model.best_iteration + 1
    assert n_best < 300
    assert f"{n_best} trees" in bundle.manifest["converter"]["notes"][0]
    every_tree = model.predict(X, iteration_range=(0, model.get_booster().num_boosted_rounds()))
    assert np.abs(every_tree - model.predict(X)).max() > 1e-3  # the difference matters
    assert_exact(bundle.report)


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_saved_model_via_cli(tmp_path: Path, suffix: str) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    model, _ = converted("binary")
    path = tmp_path / f"model{suffix}"
    model.save_model(path)
    np.save(tmp_path / "data.npy", X)
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(path), "--sample", str(tmp_path / "data.npy"),
                              "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["check", str(path), str(tmp_path / "m.baton"),
                              "--data", str(tmp_path / "data.npy")])
    assert out.exit_code == 0, out.output
    assert baton.verify(tmp_path / "m.baton")


def test_frame_columns_by_name() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    model = _reg(n_estimators=10).fit(frame, Y)
    bundle = baton.convert(model, frame[frame.columns[::-1]].assign(extra=1.0))
    assert_exact(bundle.report)


def _raw_path(model: Any, rows: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    raw = convert_xgboost(model, initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
                          target_opset=15)
    sess = ort.InferenceSession(raw.SerializeToString(), providers=["CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sess.run(None, {"input": rows.astype(np.float32)})


@pytest.mark.parametrize("kind", ["multi-softmax", "multi-target"])
def test_onnxmltools_silently_wrong_where_baton_is_exact(kind: str) -> None:
    """XGBoost compares in float32, so onnxmltools' float32 graph flips no branch on
    float32-cast rows; what it gets wrong is the head: softmax probabilities of a
    multi:softmax classifier, and all but the first target of a multi-target regressor."""
    pytest.importorskip("onnxmltools")
    model, bundle = converted(kind)
    raw = _raw_path(model, X)
    if kind == "multi-softmax":
        expected, got = model.predict_proba(X), raw[1]
    else:
        expected, got = model.predict(X), raw[0].reshape(len(X), -1)
    span = float(np.ptp(expected))
    assert got.shape != expected.shape or np.abs(got - expected).max() > 0.1 * span
    assert_exact(baton.check(model, bundle, X, search=False))


def test_onnxmltools_takes_float32_only() -> None:
    pytest.importorskip("onnxmltools")
    import onnxruntime as ort
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    model, bundle = converted("regression")
    raw = convert_xgboost(model, initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
                          target_opset=15)
    sess = ort.InferenceSession(raw.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="(?i)type|double|float"):
        sess.run(None, {"input": X})  # the rows as the data scientist has them
    assert_exact(baton.check(model, bundle, X, search=False))


# -- refusals -------------------------------------------------------------------------------


def test_unfitted_model_is_a_usage_error() -> None:
    with pytest.raises(baton.UsageError, match="not fitted"):
        baton.convert(xgb.XGBRegressor(), X)


@pytest.mark.parametrize("params, match", [
    ({"objective": "binary:hinge"}, "binary:hinge"),
    ({"booster": "gblinear"}, "gblinear"),
])
def test_unsupported_models_say_why(params: dict[str, Any], match: str) -> None:
    model = xgb.train({**params, "nthread": 1}, xgb.DMatrix(X[:300], class_target(X[:300])), 2)
    with pytest.raises(baton.UnsupportedModelError, match=match) as info:
        baton.convert(model, X[:300])
    assert info.value.expected and info.value.hint


def test_multi_label_classifier_is_refused() -> None:
    y = np.column_stack([class_target(X[:300]), 1 - class_target(X[:300])])
    model = _clf(n_estimators=2).fit(X[:300], y)
    with pytest.raises(baton.UnsupportedModelError, match="multi-label"):
        baton.convert(model, X[:300])


def test_pandas_categories_convert() -> None:
    """A model fitted on a DataFrame with a category column takes that column as text
    (tests/converters/test_boosted_categoricals.py checks it in depth)."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": X[:300, 4], "b": pd.Categorical(
        np.asarray(["x", "y", "z"])[X_CAT[:300, 5].astype(int) % 3])})
    model = _reg(n_estimators=2, enable_categorical=True).fit(frame, Y[:300])
    bundle = baton.convert(model, frame)
    assert bundle.report.passed, bundle.report
    assert [s.dtype for s in bundle.typed_manifest.inputs] == ["float64", "string"]


def test_unreadable_model_file(tmp_path: Path) -> None:
    from baton.converters import load_model_file

    path = tmp_path / "model.json"
    path.write_text('{"not": "xgboost"}')
    with pytest.raises(baton.UsageError, match="XGBoost"):
        load_model_file(path)
