"""scikit-learn's tree models through baton's tree emitter: exact on float64 data with
large magnitudes and NaN, where skl2onnx fails or drifts."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import baton
from baton.converters import find_converter
from baton.converters._trees import Ensemble, Head, Leaf, Tree, emit

# registers itself before the general scikit-learn converter, whether that one is registered
# yet or not (importing baton.converters.sklearn first would put it ahead of LightGBM's)
from baton.converters.sklearn_trees import SklearnTreesConverter
from baton.errors import UnsupportedModelError, UsageError
from tests.converters.tree_data import (
    class_target,
    enterprise_matrix,
    regression_target,
    rows_strategy,
    threshold_rows,
)

pytest.importorskip("sklearn")

from sklearn import ensemble, tree  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP start-up dominates on small batches with few cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


X = enterprise_matrix(1200)
X_FINITE = np.nan_to_num(X)  # GradientBoosting* refuse NaN


def _y(task: str) -> np.ndarray:
    if task == "regression":
        return regression_target(X)
    if task == "poisson":
        return np.exp(regression_target(X) / 10)
    return class_target(X, {"binary": 2, "multiclass": 3}[task])


# estimator x task: (factory, task, data it is fitted and checked on)
MODELS: dict[str, tuple[Callable[[], Any], str, np.ndarray]] = {
    "DecisionTreeRegressor-regression": (
        lambda: tree.DecisionTreeRegressor(max_depth=8, random_state=0), "regression", X),
    "DecisionTreeClassifier-multiclass": (
        lambda: tree.DecisionTreeClassifier(max_depth=8, random_state=0), "multiclass", X),
    "RandomForestRegressor-regression": (
        lambda: ensemble.RandomForestRegressor(8, max_depth=6, random_state=0), "regression", X),
    "RandomForestClassifier-binary": (
        lambda: ensemble.RandomForestClassifier(8, max_depth=6, random_state=0), "binary", X),
    "ExtraTreesClassifier-multiclass": (
        lambda: ensemble.ExtraTreesClassifier(8, max_depth=6, random_state=0), "multiclass", X),
    "ExtraTreesRegressor-regression": (
        lambda: ensemble.ExtraTreesRegressor(8, max_depth=6, random_state=0), "regression", X),
    "GradientBoostingRegressor-regression": (
        lambda: ensemble.GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0),
        "regression", X_FINITE),
    "GradientBoostingClassifier-binary": (
        lambda: ensemble.GradientBoostingClassifier(n_estimators=15, max_depth=3,
                                                    random_state=0), "binary", X_FINITE),
    "GradientBoostingClassifier-multiclass": (
        lambda: ensemble.GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0),
        "multiclass", X_FINITE),
    "GradientBoostingClassifier-exponential": (
        lambda: ensemble.GradientBoostingClassifier(loss="exponential", n_estimators=10,
                                                    max_depth=3, random_state=0),
        "binary", X_FINITE),
    "HistGradientBoostingRegressor-regression": (
        lambda: ensemble.HistGradientBoostingRegressor(max_iter=15, random_state=0),
        "regression", X),
    "HistGradientBoostingRegressor-poisson": (
        lambda: ensemble.HistGradientBoostingRegressor(loss="poisson", max_iter=15,
                                                       random_state=0), "poisson", X),
    "HistGradientBoostingClassifier-binary": (
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=15, random_state=0),
        "binary", X),
    "HistGradientBoostingClassifier-multiclass": (
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=8, random_state=0),
        "multiclass", X),
}
_CACHE: dict[str, tuple[Any, Any]] = {}


def converted(kind: str) -> tuple[Any, Any]:
    if kind not in _CACHE:
        factory, task, data = MODELS[kind]
        model = factory().fit(data, _y(task))
        _CACHE[kind] = (model, baton.convert(model, data))
    return _CACHE[kind]


def _assert_exact(report: Any) -> None:
    assert report, report.failures
    for o in report.outputs:
        if o.kind == "label":
            assert o.mismatched_rows == 0
        else:
            assert o.max_abs is not None and o.max_abs <= o.tolerance.atol


def _sk_trees(model: Any) -> list[Any]:
    """The fitted ``DecisionTree*`` estimators inside a model."""
    if hasattr(model, "tree_"):
        return [model]
    return list(np.ravel(np.asarray(model.estimators_, dtype=object)))


def _thresholds(model: Any) -> dict[int, np.ndarray]:
    """Split thresholds read from scikit-learn's own tree arrays (not from baton)."""
    out: dict[int, list[float]] = {}
    if hasattr(model, "_predictors"):
        for predictor in itertools.chain.from_iterable(model._predictors):
            nodes = predictor.nodes[(predictor.nodes["is_leaf"] == 0)
                                    & (predictor.nodes["is_categorical"] == 0)]
            for f, t in zip(nodes["feature_idx"], nodes["num_threshold"]):
                out.setdefault(int(f), []).append(float(t))
    else:
        for est in _sk_trees(model):
            t = est.tree_
            inner = t.children_left != -1
            for f, v in zip(t.feature[inner], t.threshold[inner]):
                out.setdefault(int(f), []).append(float(v))
    # a split that only separates NaN has threshold +inf: no neighbour of it is a valid row
    return {k: np.unique(np.asarray(v)[np.isfinite(v)]) for k, v in out.items()}


def _probe(kind: str) -> np.ndarray:
    """The data, rows on every threshold and its float32/float64 neighbours, magnitudes
    float32 cannot tell apart."""
    model, _ = converted(kind)
    data = MODELS[kind][2]
    rows = np.vstack([data, threshold_rows(_thresholds(model), data)])
    return rows if np.isnan(data).any() else np.nan_to_num(rows)


def _expected_outputs(kind: str) -> list[str]:
    if MODELS[kind][1] in ("regression", "poisson"):
        return ["prediction"]
    if "GradientBoosting" in kind:  # decision_function: the margin
        return ["label", "probabilities", "raw_scores"]
    return ["label", "probabilities"]  # forests and trees have no margin


@pytest.mark.parametrize("kind", list(MODELS))
def test_converts_exactly(kind: str) -> None:
    model, bundle = converted(kind)
    assert bundle.manifest["converter"]["name"] == "baton.trees"
    assert [o.name for o in bundle.outputs] == _expected_outputs(kind)
    _assert_exact(bundle.report)
    _assert_exact(baton.check(model, bundle, _probe(kind), search=False))


def _numbered(ens: Ensemble) -> Ensemble:
    """The same trees with every leaf replaced by its own number (one target)."""
    count = itertools.count()

    def number(c: int | Leaf) -> int | Leaf:
        return Leaf.scalar(float(next(count))) if isinstance(c, Leaf) else c

    trees = [Tree([dataclasses.replace(s, true=number(s.true), false=number(s.false))
                   for s in t.nodes], number(t.root)) for t in ens.trees]
    return dataclasses.replace(ens, trees=trees, n_targets=1, divisor=1.0, base=())


def _run(model: Any, rows: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"input": rows})[0])


@pytest.mark.parametrize("kind", [k for k in MODELS if not k.startswith("Hist")])
def test_no_branch_flips(kind: str) -> None:
    """Each tree on its own: the graph's leaf and sklearn's ``apply()`` leaf pair one to
    one on every probe row (a branch flip would pair one leaf with two)."""
    model, _ = converted(kind)
    rows = _probe(kind)
    conv = SklearnTreesConverter()
    for est in _sk_trees(model)[:8]:
        ens, _ = conv.read(est)
        got = _run(emit(_numbered(ens), Head("regression")), rows)
        ref = est.apply(rows.astype(np.float32))
        pairs = set(zip(ref.tolist(), got.tolist()))
        assert len(pairs) == len(set(ref.tolist())) == len(set(got.tolist()))


@pytest.mark.parametrize("kind", [k for k in MODELS if k.startswith("Hist")])
def test_no_branch_flips_hist(kind: str) -> None:
    """Each HistGradientBoosting tree on its own gives the very leaf value of sklearn's
    ``TreePredictor``."""
    model, _ = converted(kind)
    rows = _probe(kind)
    ens, _ = SklearnTreesConverter().read(model)
    predictors = list(itertools.chain.from_iterable(model._predictors))
    first = len(ens.trees) - len(predictors)  # the baseline's constant trees come first
    known, f_idx = model._bin_mapper.make_known_categories_bitsets()
    for i, predictor in enumerate(predictors[:8]):
        one = dataclasses.replace(ens, trees=[ens.trees[first + i]], n_targets=1, base=())
        one.trees[0] = _retarget(one.trees[0])
        got = _run(emit(one, Head("regression")), rows)
        np.testing.assert_array_equal(got, predictor.predict(rows, known, f_idx, 1))


def _retarget(t: Tree) -> Tree:
    def zero(c: int | Leaf) -> int | Leaf:
        return Leaf.scalar(c.weights[0][1]) if isinstance(c, Leaf) else c

    return Tree([dataclasses.replace(s, true=zero(s.true), false=zero(s.false))
                 for s in t.nodes], zero(t.root))


def _hypothesis_test(kind: str, max_examples: int = 40) -> Any:
    model, _ = converted(kind)
    finite = not np.isnan(MODELS[kind][2]).any()

    @settings(max_examples=max_examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(rows=rows_strategy(_thresholds(model), MODELS[kind][2]))
    def run(rows: np.ndarray) -> None:
        rows = np.nan_to_num(rows) if finite else rows
        _assert_exact(baton.check(*converted(kind), rows, search=False))

    return run


@pytest.mark.parametrize("kind", ["RandomForestRegressor-regression",
                                  "GradientBoostingClassifier-binary",
                                  "HistGradientBoostingClassifier-multiclass"])
def test_any_rows_agree(kind: str) -> None:
    _hypothesis_test(kind)()


def _categorical_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    Xc = X.copy()
    Xc[:, 5] = rng.integers(0, 30, len(X))   # codes 0..29
    Xc[:, 3] = rng.integers(-3, 40, len(X))  # codes with known negatives
    Xc[rng.random(len(X)) < 0.05, 5] = np.nan
    y = regression_target(X) + (Xc[:, 5] % 7 == 0) * 3.0 + (Xc[:, 3] % 5 == 0) * 2.0
    return Xc, y


ODD_CODES = [-1, -3, -4, 0, -0.0, 2, 29, 30, 31, 39, 40, 100, 1e6, 2.0**32 + 2, 1e20, -1e20,
             np.nan, 7, 14]


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_hist_categorical_unseen_negative_and_nan_codes(task: str) -> None:
    Xc, y = _categorical_data()
    if task == "regression":
        model = ensemble.HistGradientBoostingRegressor(max_iter=15, categorical_features=[3, 5],
                                                       random_state=0).fit(Xc, y)
    else:
        model = ensemble.HistGradientBoostingClassifier(
            max_iter=8, categorical_features=[3, 5], random_state=0).fit(
            Xc, np.digitize(y, np.quantile(y, [0.4, 0.8])))
    ens, _ = SklearnTreesConverter().read(model)
    assert any(s.mode == "MEMBER" for t in ens.trees for s in t.nodes)
    bundle = baton.convert(model, Xc)
    _assert_exact(bundle.report)
    probe = np.repeat(Xc[:len(ODD_CODES)], 2, axis=0)
    probe[::2, 5] = ODD_CODES
    probe[1::2, 3] = ODD_CODES
    _assert_exact(baton.check(model, bundle, probe, search=False))


def test_hist_categorical_non_integer_codes() -> None:
    """sklearn's OrdinalEncoder matches values exactly: 7.5, and -0.5 (which ``int()`` would
    make the known code 0), are unknown and go the missing way, as in the graph."""
    Xc, y = _categorical_data()
    model = ensemble.HistGradientBoostingRegressor(max_iter=15, categorical_features=[3, 5],
                                                   random_state=0).fit(Xc, y)
    bundle = baton.convert(model, Xc)
    probe = Xc[:40].copy()
    probe[:, 5] = 7.5
    probe[:, 3] = -0.5
    _assert_exact(baton.check(model, bundle, probe, search=False))
    # more values int() would make known codes; sklearn reads each as missing (NaN)
    odd = [7.5, -0.5, 0.5, 29.5, -3.5, 7 + 2.0**-50, 1e-300, -1e-300, 2.0**31 + 0.5]
    probe = np.repeat(Xc[:len(odd)], 2, axis=0)
    probe[::2, 5] = odd
    probe[1::2, 3] = odd
    as_nan = probe.copy()
    as_nan[::2, 5] = as_nan[1::2, 3] = np.nan
    np.testing.assert_array_equal(model.predict(probe), model.predict(as_nan))
    _assert_exact(baton.check(model, bundle, probe, search=False))


def test_gradient_boosting_label_at_raw_score_zero() -> None:
    """sklearn's GradientBoostingClassifier predicts class 1 for a raw score of exactly 0
    (``raw >= 0``), where the probabilities are [0.5, 0.5]."""
    Xz = np.array([[0.0], [0.0], [1.0], [1.0], [1.0]])
    model = ensemble.GradientBoostingClassifier(init="zero", n_estimators=1, max_depth=1,
                                                learning_rate=1.0).fit(Xz, [0, 1, 1, 1, 0])
    assert model.decision_function(Xz)[0] == 0.0
    _assert_exact(baton.convert(model, Xz).report)


def _hist_with_raw_scores(raw: list[float]) -> Any:
    """A fitted HistGradientBoostingClassifier whose raw scores are ``raw`` on every row:
    its trees' values set to 0 and ``raw`` as the baseline."""
    Xr = np.array([[0.0], [1.0]] * 6)
    model = ensemble.HistGradientBoostingClassifier(max_iter=1, early_stopping=False).fit(
        Xr, np.arange(len(Xr)) % max(2, len(raw)))
    for predictor in itertools.chain.from_iterable(model._predictors):
        predictor.nodes["value"] = 0.0
    model._baseline_prediction = np.asarray([raw], dtype=np.float64)
    return model, Xr


@pytest.mark.parametrize(("raw", "label"), [(1e-17, 1), (5e-324, 1), (0.0, 0), (-1e-17, 0)])
def test_hist_gradient_boosting_binary_label_is_raw_above_zero(raw: float, label: int) -> None:
    """HistGradientBoostingClassifier predicts ``raw > 0``: a raw score of 1e-17 is class 1
    although its probabilities round to [0.5, 0.5]; 0 is class 0."""
    model, Xr = _hist_with_raw_scores([raw])
    assert model.predict(Xr).tolist() == [label] * len(Xr)
    assert model.predict_proba(Xr)[0].tolist() == [0.5, 0.5]
    _assert_exact(baton.convert(model, Xr).report)


@pytest.mark.parametrize(("raw", "label"), [([0.0, 1e-17, -1.0], 1), ([1e-17, 1e-17, 0.0], 0)])
def test_hist_gradient_boosting_multiclass_label_is_argmax_of_raw(raw: list[float],
                                                                  label: int) -> None:
    """The label is the first largest raw score, not the first largest probability: raw
    scores 0 and 1e-17 have equal softmax probabilities."""
    model, Xr = _hist_with_raw_scores(raw)
    assert model.predict(Xr).tolist() == [label] * len(Xr)
    proba = model.predict_proba(Xr)[0]
    assert proba[0] == proba[1]
    _assert_exact(baton.convert(model, Xr).report)


def test_pandas_category_columns_are_refused() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": X[:300, 4], "city": pd.Categorical(
        np.random.default_rng(0).choice(["Lyon", "Oslo", "Lima"], 300))})
    model = ensemble.HistGradientBoostingRegressor(max_iter=5, categorical_features="from_dtype"
                                                   ).fit(frame, regression_target(X[:300]))
    with pytest.raises(UnsupportedModelError, match="non-numeric categorical") as info:
        baton.convert(model, frame)
    assert "integer" in info.value.hint


def test_skl2onnx_fails_on_hist_gradient_boosting_where_baton_is_exact() -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    model, bundle = converted("HistGradientBoostingClassifier-binary")
    for kind in (FloatTensorType, DoubleTensorType):
        with pytest.raises(Exception):  # noqa: B017, PT011 - skl2onnx raises anything
            convert_sklearn(model, initial_types=[("input", kind([None, X.shape[1]]))])
    _assert_exact(bundle.report)


def _skl2onnx_float32(model: Any, rows: np.ndarray) -> np.ndarray:
    import skl2onnx

    onx = skl2onnx.to_onnx(model, rows[:1].astype(np.float32))
    return _run_named(onx, rows.astype(np.float32)).ravel()


def _run_named(model: Any, rows: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: rows})[0])


def test_skl2onnx_float32_flips_nan_branches_of_a_random_forest() -> None:
    """skl2onnx moves each threshold to its float32 switch point (finite rows take
    sklearn's branches) but ignores ``missing_go_to_left``: rows with NaN go the other way."""
    model, bundle = converted("RandomForestRegressor-regression")
    rows = _probe("RandomForestRegressor-regression")
    native = model.predict(rows)
    tol = 1e-6 * np.ptp(native)
    wrong = np.abs(_skl2onnx_float32(model, rows) - native) > tol
    has_nan = np.isnan(rows).any(axis=1)
    assert wrong.sum() > 20 and not (wrong & ~has_nan).any()
    ours = baton.check(model, bundle, rows, search=False)
    _assert_exact(ours)
    assert ours.output("prediction").max_abs < tol


def test_skl2onnx_float32_misses_a_large_magnitude_target() -> None:
    """A gradient-boosting model predicting epoch seconds: skl2onnx's float32 leaves and sums
    are off by minutes; baton's float64 graph is within 1e-6 of the range."""
    y = 1.7e9 + 3600 * regression_target(X)
    model = ensemble.GradientBoostingRegressor(n_estimators=15, max_depth=3,
                                               random_state=0).fit(X_FINITE, y)
    native = model.predict(X_FINITE)
    tol = 1e-6 * np.ptp(native)
    assert (np.abs(_skl2onnx_float32(model, X_FINITE) - native) > tol).mean() > 0.5
    bundle = baton.convert(model, X_FINITE)
    _assert_exact(bundle.report)
    assert bundle.report.output("prediction").max_abs < tol


def test_skops_model_via_cli(tmp_path: Path) -> None:
    sio = pytest.importorskip("skops.io")
    from typer.testing import CliRunner

    from baton.cli import app

    model, _ = converted("HistGradientBoostingClassifier-multiclass")
    sio.dump(model, tmp_path / "model.skops")
    np.save(tmp_path / "data.npy", X)
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(tmp_path / "model.skops"), "--sample",
                              str(tmp_path / "data.npy"), "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["check", str(tmp_path / "model.skops"), str(tmp_path / "m.baton"),
                              "--data", str(tmp_path / "data.npy")])
    assert out.exit_code == 0, out.output
    assert baton.verify(tmp_path / "m.baton")


def test_bare_estimators_come_here_pipelines_ending_in_trees_are_joined() -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    from baton.converters.pipeline_trees import PipelineTreesConverter

    model, _ = converted("RandomForestClassifier-binary")
    assert isinstance(find_converter(model), SklearnTreesConverter)
    pipe = make_pipeline(SimpleImputer(), tree.DecisionTreeRegressor(max_depth=2))
    pipe.fit(X, _y("regression"))
    assert isinstance(find_converter(pipe), PipelineTreesConverter)


def test_unfitted_estimator_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not fitted"):
        baton.convert(ensemble.RandomForestRegressor(), X)


def test_other_init_estimators_are_refused() -> None:
    from sklearn.linear_model import LinearRegression

    model = ensemble.GradientBoostingRegressor(init=LinearRegression(), n_estimators=3).fit(
        X_FINITE, _y("regression"))
    with pytest.raises(UnsupportedModelError, match="init=LinearRegression") as info:
        baton.convert(model, X_FINITE)
    assert info.value.hint


@pytest.mark.parametrize("init", ["zero", "prior"])
def test_zero_and_prior_init(init: str) -> None:
    from sklearn.dummy import DummyClassifier

    model = ensemble.GradientBoostingClassifier(
        init="zero" if init == "zero" else DummyClassifier(strategy="prior"),
        n_estimators=5, max_depth=2).fit(X_FINITE, _y("multiclass"))
    _assert_exact(baton.convert(model, X_FINITE).report)


def test_multi_output_classifier_is_refused() -> None:
    y = np.column_stack([_y("binary"), _y("multiclass")])
    model = tree.DecisionTreeClassifier(max_depth=3).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="multi-output"):
        baton.convert(model, X)


def test_multi_output_regressor() -> None:
    y = np.column_stack([_y("regression"), -2 * _y("regression")])
    model = ensemble.RandomForestRegressor(4, max_depth=4, random_state=0).fit(X, y)
    bundle = baton.convert(model, X)
    assert bundle.outputs[0].shape == ("N", 2)
    _assert_exact(bundle.report)


def test_categorical_split_with_nothing_on_the_member_side() -> None:
    """A categorical node whose non-missing side holds no known category (every value goes
    the missing way): onnxruntime refuses an empty membership set, so it becomes a split
    that never holds."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    from baton.converters.sklearn_trees import _read_hist_tree

    nodes = np.zeros(3, dtype=PREDICTOR_RECORD_DTYPE)
    nodes["is_leaf"] = [0, 1, 1]  # root: categorical, feature 0, all 3 known codes go left
    nodes["is_categorical"][0], nodes["missing_go_to_left"][0] = 1, 1
    nodes["left"][0], nodes["right"][0] = 1, 2
    nodes["value"] = [0.0, 1.5, -2.0]
    bitsets = np.zeros((1, 8), dtype=np.uint32)
    bitsets[0, 0] = 0b111
    t = _read_hist_tree(TreePredictor(nodes, bitsets, bitsets), 0, np.arange(2),
                        [np.array([3.0, 5.0, 9.0])])
    ens = Ensemble(n_features=2, n_targets=1, trees=[t], categorical=[0])
    rows = np.array([[3.0, 0.0], [5.0, 0.0], [4.0, 0.0], [np.nan, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(_run(emit(ens, Head("regression")), rows), 1.5)
