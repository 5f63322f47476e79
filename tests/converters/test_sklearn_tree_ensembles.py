"""scikit-learn ensembles whose members are trees (IsolationForest, Bagging of decision trees,
RandomTreesEmbedding) through baton's tree emitter: exact splits on float64 data with NaN,
where skl2onnx's float32 trees send NaN another way."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings

import baton
from baton.converters.sklearn_trees import (
    SklearnTreesConverter,
    _is_outlier,
    _outlier_below,
)
from baton.errors import UnsupportedModelError, UsageError
from tests.converters.tree_data import rows_strategy

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    IsolationForest,
    RandomTreesEmbedding,
)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

X, Y = make_classification(300, 6, random_state=0)
XR, YR = make_regression(300, 6, random_state=0)


def _with_nan(A: np.ndarray, share: float = 0.1, seed: int = 0) -> np.ndarray:
    A = A.copy()
    A[np.random.default_rng(seed).random(A.shape) < share] = np.nan
    return A


XN = _with_nan(X)
XRN = _with_nan(XR)


def _run(bundle: Any, data: np.ndarray) -> dict[str, np.ndarray]:
    """The bundle's graph in onnxruntime, on float64 rows."""
    sess = ort.InferenceSession(bundle.onnx_model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {bundle.inputs[0].name: data})))


def _converter(bundle: Any) -> str:
    return str(bundle.manifest["converter"]["name"])


def _check(model: Any, data: np.ndarray, converter: str = "baton.trees") -> Any:
    bundle = baton.convert(model, data)
    assert _converter(bundle) == converter
    assert bundle.report.passed, bundle.report
    report = baton.check(model, bundle, data)  # with the parity search
    assert report.passed, report
    return bundle


def _assert_isolation(model: Any, bundle: Any, data: np.ndarray) -> None:
    out = _run(bundle, data)
    np.testing.assert_array_equal(out["label"], model.predict(data))
    # the path lengths add exactly as sklearn adds them; what is left is Pow's last ulp
    np.testing.assert_allclose(out["scores"], model.decision_function(data), rtol=0,
                               atol=1e-15)


# -- IsolationForest ------------------------------------------------------------------


def test_isolation_forest_coverage_setting_with_nan() -> None:
    model = IsolationForest().fit(X)
    bundle = _check(model, XN)
    _assert_isolation(model, bundle, XN)
    assert (model.predict(XN) == -1).any() and (model.predict(XN) == 1).any()
    notes = " ".join(bundle.manifest["converter"]["notes"])
    assert "path lengths added in tree order" in notes


def test_isolation_forest_in_a_pipeline_with_nan() -> None:
    model = make_pipeline(StandardScaler(), IsolationForest(n_estimators=20,
                                                            random_state=0)).fit(X)
    bundle = _check(model, XN, converter="skl2onnx+baton.trees")
    _assert_isolation(model, bundle, XN)


def test_isolation_forest_feature_subsets_nan_fit_and_a_score_of_exactly_zero() -> None:
    # 301 rows, contamination 0.1: offset_ is the 31st smallest training score itself, so
    # one training row has decision_function exactly 0 (an inlier: the test is `< 0`)
    data = _with_nan(np.vstack([X, X[:1] * 1.5]), 0.05, seed=3)
    model = IsolationForest(n_estimators=15, max_features=3, contamination=0.1,
                            random_state=2).fit(data)
    assert (model.decision_function(data) == 0).any()
    bundle = _check(model, data)
    _assert_isolation(model, bundle, data)


def test_isolation_forest_small_max_samples() -> None:
    model = IsolationForest(n_estimators=10, max_samples=1, random_state=0).fit(X)
    bundle = _check(model, XN)
    _assert_isolation(model, bundle, XN)


@pytest.mark.parametrize("offset", [-0.5, -0.61803, -0.4, -1e-300, 0.0, 0.3, -1.0, -2.0])
def test_outlier_bound_is_where_sklearns_test_turns(offset: float) -> None:
    bound = _outlier_below(offset)
    ratios = np.asarray([0.0, 0.5, 1.0, 2.0, 3.0, 50.0, 1e300, np.inf])
    if np.isinf(bound):  # offset_ >= 0: every row is an outlier
        assert offset >= 0 and _is_outlier(ratios, offset).all()
        return
    assert not _is_outlier(np.asarray([bound]), offset)[0]
    if bound > 0:
        assert _is_outlier(np.asarray([np.nextafter(bound, -np.inf)]), offset)[0]
    np.testing.assert_array_equal(_is_outlier(ratios, offset), ratios < bound)
    if offset == -0.5:  # 2 ** -r > 0.5 below r = 1 (to the last ulp numpy rounds to 0.5)
        assert abs(bound - 1.0) < 1e-15


# -- Bagging --------------------------------------------------------------------------


def test_bagging_classifier_coverage_setting_with_nan() -> None:
    model = BaggingClassifier().fit(X, Y)
    bundle = _check(model, XN)
    out = _run(bundle, XN)
    np.testing.assert_array_equal(out["label"], model.predict(XN))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(XN), rtol=0,
                               atol=1e-15)


def test_bagging_classifier_string_labels_feature_subsets_missing_classes() -> None:
    y = np.asarray(["ant", "bee", "cat", "dog"])[(np.arange(300) * 7) % 4]
    model = BaggingClassifier(n_estimators=15, max_features=4, max_samples=0.2,
                              bootstrap_features=True, random_state=0).fit(XN, y)
    # scikit-learn 1.9 bootstraps by sample weights, so every member knows every class; a
    # member without some (a member fitted on the rows it drew) adds to the ones it has
    features = model.estimators_features_[3]
    codes = np.searchsorted(model.classes_, y)
    rows = codes != 2
    model.estimators_[3] = DecisionTreeClassifier(random_state=0).fit(
        XN[rows][:, features], codes[rows])
    assert len(model.estimators_[3].classes_) == 3
    bundle = _check(model, XN)
    out = _run(bundle, XN)
    np.testing.assert_array_equal(out["label"], model.predict(XN))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(XN), rtol=0,
                               atol=1e-15)


def test_bagging_regressor_coverage_setting_with_nan() -> None:
    model = BaggingRegressor().fit(XR, YR)
    bundle = _check(model, XRN)
    np.testing.assert_allclose(_run(bundle, XRN)["prediction"], model.predict(XRN),
                               rtol=1e-12, atol=1e-9)


def test_bagging_regressor_in_a_pipeline() -> None:
    model = make_pipeline(StandardScaler(), BaggingRegressor(n_estimators=10, max_features=0.5,
                                                             random_state=0)).fit(XR, YR)
    _check(model, XRN, converter="skl2onnx+baton.trees")


def test_bagging_of_other_members_stays_with_skl2onnx() -> None:
    model = BaggingClassifier(LogisticRegression(), n_estimators=5, random_state=0).fit(X, Y)
    assert not SklearnTreesConverter().accepts(model)
    assert _converter(baton.convert(model, X)) != "baton.trees"


def test_unfitted_bagging_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not fitted"):
        baton.convert(BaggingRegressor(), XR)


# -- RandomTreesEmbedding -------------------------------------------------------------


def test_random_trees_embedding_coverage_setting() -> None:
    model = RandomTreesEmbedding().fit(X)
    bundle = _check(model, X)
    np.testing.assert_array_equal(_run(bundle, X)["transformed"], model.transform(X).toarray())


def test_random_trees_embedding_with_nan_and_dense_output() -> None:
    model = RandomTreesEmbedding(n_estimators=10, sparse_output=False,
                                 random_state=0).fit(XN)
    bundle = _check(model, XN)
    np.testing.assert_array_equal(_run(bundle, XN)["transformed"], model.transform(XN))


def test_random_trees_embedding_in_a_pipeline() -> None:
    model = make_pipeline(StandardScaler(), RandomTreesEmbedding(n_estimators=10,
                                                                 random_state=0)).fit(X)
    bundle = _check(model, XN, converter="skl2onnx+baton.trees")
    np.testing.assert_array_equal(_run(bundle, XN)["transformed"],
                                  model.transform(XN).toarray())


def test_random_trees_embedding_with_leaves_the_encoder_never_saw_is_refused() -> None:
    model = RandomTreesEmbedding(n_estimators=3, random_state=0).fit(X)
    model.one_hot_encoder_ = OneHotEncoder().fit(model.apply(X[:5]))
    with pytest.raises(UnsupportedModelError, match="never saw") as info:
        baton.convert(model, X)
    assert "refit" in info.value.hint


# -- AdaBoostClassifier (SAMME) -------------------------------------------------------


def _assert_samme(model: Any, bundle: Any, data: np.ndarray) -> None:
    out = _run(bundle, data)
    np.testing.assert_array_equal(out["label"], model.predict(data))
    # the decision is exact; the softmax's exp may round the last bit another way
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(data), rtol=0,
                               atol=1e-15)


def test_adaboost_coverage_setting() -> None:
    model = AdaBoostClassifier().fit(X, Y)
    bundle = _check(model, X)
    _assert_samme(model, bundle, X)


def test_adaboost_multiclass_string_labels_in_a_pipeline() -> None:
    X3, y3 = make_classification(300, 6, n_informative=4, n_classes=3, random_state=0)
    y = np.asarray(["a", "b", "c"])[y3]
    model = make_pipeline(StandardScaler(), AdaBoostClassifier(
        DecisionTreeClassifier(max_depth=3), n_estimators=12, random_state=0)).fit(X3, y)
    bundle = _check(model, X3, converter="skl2onnx+baton.trees")
    _assert_samme(model, bundle, X3)


def test_adaboost_binary_label_at_a_decision_of_exactly_zero() -> None:
    # two stumps with equal weights voting for opposite classes cancel: decision 0, label
    # classes_[0] (sklearn's test is `decision > 0`)
    stump = AdaBoostClassifier(n_estimators=1, random_state=0).fit(X, Y)
    model = AdaBoostClassifier(n_estimators=2).fit(X, Y)
    first = stump.estimators_[0]
    flipped = DecisionTreeClassifier(max_depth=1).fit(X, Y)
    flipped.tree_.value[:] = flipped.tree_.value[:, :, ::-1]
    flipped.tree_.threshold[:] = first.tree_.threshold
    flipped.tree_.feature[:] = first.tree_.feature
    model.estimators_ = [first, flipped]
    model.estimator_weights_ = np.asarray([0.75, 0.75])
    assert (model.decision_function(X) == 0).all()
    bundle = baton.convert(model, X)
    _assert_samme(model, bundle, X)
    assert (_run(bundle, X)["label"] == model.classes_[0]).all()


def test_adaboost_of_other_members_stays_with_skl2onnx() -> None:
    model = AdaBoostClassifier(LogisticRegression(), n_estimators=3).fit(X, Y)
    assert not SklearnTreesConverter().accepts(model)


def test_adaboost_regressor_coverage_setting() -> None:
    model = AdaBoostRegressor().fit(XR, YR)
    bundle = _check(model, XR)
    np.testing.assert_array_equal(_run(bundle, XR)["prediction"], model.predict(XR))


def test_adaboost_regressor_in_a_pipeline_with_tied_members() -> None:
    model = make_pipeline(StandardScaler(), AdaBoostRegressor(n_estimators=8, loss="square",
                                                              random_state=0)).fit(XR, YR)
    booster = model[-1]
    # members that predict the same values: the median is the same whichever comes first
    booster.estimators_ = booster.estimators_ + booster.estimators_[:3]
    booster.estimator_weights_ = np.concatenate([booster.estimator_weights_[:8],
                                                 booster.estimator_weights_[:3]])
    bundle = _check(model, XR, converter="skl2onnx+baton.trees")
    wide = np.random.default_rng(0).normal(size=(500, 6)) * 3
    np.testing.assert_array_equal(_run(bundle, wide)["prediction"], model.predict(wide))


# -- any rows -------------------------------------------------------------------------


HYPOTHESIS_MODELS: dict[str, Any] = {
    "isolation": IsolationForest(n_estimators=12, max_features=4, random_state=0).fit(XN),
    "bagging": BaggingClassifier(n_estimators=12, max_features=4, random_state=0).fit(XN, Y),
    "embedding": RandomTreesEmbedding(n_estimators=10, random_state=0).fit(XN),
    "adaboost_regressor": AdaBoostRegressor(n_estimators=10, random_state=0).fit(XR, YR),
    "adaboost": AdaBoostClassifier(DecisionTreeClassifier(max_depth=2), n_estimators=10,
                                   random_state=0).fit(X, Y),
}


@pytest.mark.parametrize("kind", sorted(HYPOTHESIS_MODELS))
def test_any_rows_agree(kind: str) -> None:
    model = HYPOTHESIS_MODELS[kind]
    sample = {"adaboost": X, "adaboost_regressor": XR}.get(kind, XN)
    bundle = baton.convert(model, sample)
    thresholds = SklearnTreesConverter().split_points(model)

    @settings(max_examples=30, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    # sklearn's trees refuse values beyond float32 (Bagging checks them; IsolationForest
    # and the embedding would read them as inf): keep them finite in float32
    @given(rows_strategy(thresholds, sample).map(lambda r: np.clip(r, -3e38, 3e38)))
    def run(rows: np.ndarray) -> None:
        out = _run(bundle, rows)
        if kind == "isolation":
            _assert_isolation(model, bundle, rows)
        elif kind == "adaboost_regressor":  # AdaBoost refuses NaN
            clean = np.nan_to_num(rows)
            np.testing.assert_array_equal(_run(bundle, clean)["prediction"],
                                          model.predict(clean))
        elif kind == "adaboost":
            _assert_samme(model, bundle, np.nan_to_num(rows))  # AdaBoost refuses NaN
        elif kind == "bagging":
            np.testing.assert_array_equal(out["label"], model.predict(rows))
            np.testing.assert_allclose(out["probabilities"], model.predict_proba(rows),
                                       rtol=0, atol=1e-15)
        else:
            np.testing.assert_array_equal(out["transformed"],
                                          model.transform(rows).toarray())

    run()
