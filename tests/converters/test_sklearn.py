"""scikit-learn through baton.convert: real estimators, real skl2onnx, real onnxruntime."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import baton
from baton.errors import SchemaError, UnsupportedModelError, UsageError

sklearn = pytest.importorskip("sklearn")

from sklearn.decomposition import PCA  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC, LinearSVC  # noqa: E402
from sklearn.tree import DecisionTreeRegressor  # noqa: E402


def _data(task: str, dtype: str, n: int = 240, seed: int = 1) -> tuple[np.ndarray, Any]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * np.array([1.0, 10.0, 0.1, 100.0])
    if task == "binary":
        y = (X[:, 0] + X[:, 1] / 10 > 0).astype(np.int64)
    elif task == "multiclass":
        y = np.digitize(X[:, 0] + X[:, 2] * 10, [-0.7, 0.7])
    elif task == "string-labels":
        y = np.array(["no", "yes"], dtype=object)[(X[:, 0] > 0).astype(int)]
    else:
        y = X @ np.array([2.0, -0.3, 5.0, 0.01]) + rng.normal(0, 0.05, n)
    return X.astype(dtype), y


# (estimator factory, task, outputs baton must produce)
CASES = [
    (lambda: LogisticRegression(max_iter=500), "binary", ["label", "probabilities"]),
    (lambda: LogisticRegression(max_iter=500), "multiclass", ["label", "probabilities"]),
    (lambda: LogisticRegression(max_iter=500), "string-labels", ["label", "probabilities"]),
    (lambda: RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0), "multiclass",
     ["label", "probabilities"]),
    (lambda: KNeighborsClassifier(5), "binary", ["label", "probabilities"]),
    (lambda: SVC(probability=True, random_state=0), "binary", ["label", "probabilities"]),
    (lambda: LinearSVC(), "binary", ["label", "scores"]),
    (lambda: LinearSVC(), "multiclass", ["label", "scores"]),
    (lambda: SVC(), "binary", ["label", "scores"]),
    (lambda: make_pipeline(StandardScaler(), LinearSVC()), "binary", ["label", "scores"]),
    (lambda: make_pipeline(StandardScaler(), LinearSVC()), "multiclass", ["label", "scores"]),
    (lambda: make_pipeline(StandardScaler(), Ridge()), "regression", ["prediction"]),
    (lambda: GradientBoostingRegressor(n_estimators=20, random_state=0), "regression",
     ["prediction"]),
    (lambda: DecisionTreeRegressor(max_depth=5, random_state=0), "regression", ["prediction"]),
    (lambda: make_pipeline(StandardScaler(), PCA(2)), "transform", ["transformed"]),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("factory", "task", "outputs"), CASES,
                         ids=[f"{c[0]().__class__.__name__}-{c[1]}" for c in CASES])
def test_estimator_converts_with_parity(factory: Any, task: str, outputs: list[str],
                                        dtype: str) -> None:
    X, y = _data(task, dtype)
    model = factory().fit(X, None if task == "transform" else y)
    bundle = baton.convert(model, X)
    assert [o.name for o in bundle.outputs] == outputs
    assert bundle.report is not None and bundle.report, bundle.report.failures
    # parity on rows the sample never contained
    X_new, _ = _data(task, dtype, n=120, seed=7)
    report = baton.check(model, bundle, X_new, search=False)
    assert report, report.failures
    assert report.rows == 120
    if "label" in outputs:
        assert report.output("label").agreement == 1.0
    # outputs have scikit-learn's shapes: scores of a binary classifier are one column
    expected = {"scores": model.decision_function(X_new)} if "scores" in outputs else {}
    for name, ref in expected.items():
        assert bundle.outputs[outputs.index(name)].shape[1:] == ref.shape[1:]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_input_dtype_follows_sample(dtype: str) -> None:
    X, y = _data("regression", dtype)
    bundle = baton.convert(make_pipeline(StandardScaler(), Ridge()).fit(X, y), X)
    assert [(s.name, s.dtype, s.shape) for s in bundle.inputs] == [("input", dtype, ("N", 4))]
    assert bundle.manifest["precision"] == dtype


def test_float64_pipeline_keeps_float64_precision() -> None:
    """Ridge on float64 runs in float64: errors far below float32's resolution."""
    X, y = _data("regression", "float64")
    X = X * 1e4
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    report = baton.convert(model, X).report
    assert report is not None
    assert report.output("prediction").max_rel < 1e-9


def test_mixed_frame_one_input_per_column(mixed_frame: Any, fitted_pipeline: Any) -> None:
    bundle = baton.convert(fitted_pipeline, mixed_frame)
    got = [(s.name, s.dtype, s.shape, s.column) for s in bundle.inputs]
    assert got == [
        ("age", "float64", ("N", 1), "age"),
        ("tenure_months", "int64", ("N", 1), "tenure_months"),
        ("monthly_charge", "float64", ("N", 1), "monthly_charge"),
        ("city", "string", ("N", 1), "city"),
        ("plan", "string", ("N", 1), "plan"),
    ]
    assert [(o.name, o.dtype) for o in bundle.outputs] == [
        ("label", "int64"), ("probabilities", "float64")]
    assert bundle.report


def test_float64_imputer_workaround_is_needed_and_works(mixed_frame: Any,
                                                        fitted_pipeline: Any) -> None:
    """The raw skl2onnx model is refused by onnxruntime; baton's loads and matches."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType

    types = {"float64": DoubleTensorType, "int64": Int64TensorType, "string": StringTensorType}
    bundle = baton.convert(fitted_pipeline, mixed_frame)
    raw = convert_sklearn(
        fitted_pipeline,
        initial_types=[(s.name, types[s.dtype]([None, 1])) for s in bundle.inputs],
        options={id(fitted_pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 18, "ai.onnx.ml": 3},
    )
    with pytest.raises(Exception, match="Imputer"):
        ort.InferenceSession(raw.SerializeToString(), providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in bundle.onnx_model.graph.node}
    assert "Imputer" not in ops and {"IsNaN", "Where"} <= ops
    assert bundle.manifest["precision"] == "float64"


def test_extra_columns_in_data_are_ignored(mixed_frame: Any, fitted_pipeline: Any) -> None:
    frame = mixed_frame.assign(churned=1)
    bundle = baton.convert(fitted_pipeline, frame)
    assert "churned" not in [s.name for s in bundle.inputs]
    assert baton.check(fitted_pipeline, bundle, frame, search=False)


def test_missing_column_names_it(mixed_frame: Any, fitted_pipeline: Any) -> None:
    with pytest.raises(SchemaError, match="'city'") as info:
        baton.convert(fitted_pipeline, mixed_frame.drop(columns="city"))
    assert info.value.hint


@pytest.mark.parametrize("estimator", [HistGradientBoostingClassifier(max_iter=5),
                                       HistGradientBoostingRegressor(max_iter=5)],
                         ids=lambda e: type(e).__name__)
def test_hist_gradient_boosting_is_refused_with_reason(estimator: Any) -> None:
    """Inside an ensemble that skl2onnx must convert as a whole (bare, or last in a Pipeline,
    baton's own tree converter takes it: tests/converters/test_sklearn_trees.py)."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    X, y = _data("binary", "float64")
    if isinstance(estimator, HistGradientBoostingClassifier):
        model = VotingClassifier([("hgb", estimator), ("lr", LogisticRegression())])
    else:
        model = VotingRegressor([("hgb", estimator), ("ridge", Ridge())])
    model.fit(X, y)
    with pytest.raises(UnsupportedModelError) as info:
        baton.convert(model, X)
    text = str(info.value)
    assert type(estimator).__name__ in text and "skl2onnx" in text
    assert info.value.exit_code == 2


def test_unfitted_model_is_a_usage_error() -> None:
    X, _ = _data("binary", "float64")
    with pytest.raises(UsageError, match="not fitted"):
        baton.convert(LogisticRegression(), X)


def test_model_that_is_not_a_predictor_is_refused() -> None:
    """DBSCAN labels the rows it was fitted on and cannot score new ones (KMeans, which
    predicts, converts: tests/converters/test_clustering.py)."""
    from sklearn.cluster import DBSCAN

    X, _ = _data("binary", "float64")
    with pytest.raises(UnsupportedModelError, match="fit_predict only"):
        baton.convert(DBSCAN().fit(X), X)


def test_non_sklearn_object_is_refused() -> None:
    with pytest.raises(UnsupportedModelError, match="no converter"):
        baton.convert(object(), np.zeros((3, 2)))


def test_sample_shape_errors() -> None:
    X, y = _data("binary", "float64")
    model = LogisticRegression().fit(X, y)
    with pytest.raises(SchemaError, match="4 columns"):
        baton.convert(model, X[:, :3])
    with pytest.raises(SchemaError, match="2-D"):
        baton.convert(model, X[:, 0])
    with pytest.raises(SchemaError, match="empty"):
        baton.convert(model, X[:0])


def test_same_model_same_bytes(mixed_frame: Any, fitted_pipeline: Any) -> None:
    """Conversion is deterministic, so a bundle's hash identifies the model."""
    a = baton.convert(fitted_pipeline, mixed_frame).model_bytes
    b = baton.convert(fitted_pipeline, mixed_frame).model_bytes
    assert a == b


@pytest.mark.parametrize("opset", [12, 15, 18])
def test_explicit_opset_keeps_float64(mixed_frame: Any, fitted_pipeline: Any,
                                      opset: int) -> None:
    bundle = baton.convert(fitted_pipeline, mixed_frame, opset=opset)
    assert bundle.manifest["precision"] == "float64"
    assert bundle.manifest["onnx"]["opsets"]["ai.onnx"] <= opset
    assert bundle.report


def test_frame_without_column_transformer_is_one_matrix_read_by_name() -> None:
    """A Pipeline fitted on a DataFrame that takes one matrix: one input [N, 30] that
    records its columns, so a service's frame is read by column name, not position."""
    from sklearn.datasets import load_breast_cancer

    from baton.runtime import Session

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(X, y)
    bundle = baton.convert(model, X)
    (spec,) = bundle.inputs
    assert (spec.name, spec.dtype, spec.shape) == ("input", "float64", ("N", 30))
    assert spec.columns == tuple(X.columns)
    assert bundle.report
    reordered = X[list(X.columns[::-1])]
    assert baton.check(model, bundle, reordered, search=False)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Session(bundle.save(f"{tmp}/m.baton")).predict(reordered)
    np.testing.assert_array_equal(out["label"], model.predict(X))


def test_text_column_without_encoder_is_a_schema_error() -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "city": ["a", "b", "a", "b"]})
    model = LogisticRegression().fit(frame[["x"]], [0, 1, 0, 1])
    model.feature_names_in_ = np.array(["x", "city"], dtype=object)  # as if fitted on both
    with pytest.raises(SchemaError, match="'city'.*text") as info:
        baton.convert(model, frame)
    assert "ColumnTransformer" in info.value.hint


@pytest.mark.parametrize("missing", [None, float("nan")], ids=["None", "NaN"])
def test_missing_text_category_matches(missing: Any) -> None:
    """An encoder that learned a category from missing text: same predictions in ONNX."""
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=200),
                          "s": rng.choice(np.array(["a", "b", missing], dtype=object), 200)})
    y = ((frame["x"] > 0) | frame["s"].isna()).astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["s"]),
                                (StandardScaler(), ["x"])),
        LogisticRegression()).fit(frame, y)
    bundle = baton.convert(model, frame)
    assert bundle.report, bundle.report.failures
    assert baton.check(model, bundle, frame.iloc[::-1], search=False)
