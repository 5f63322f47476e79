"""baton's own converters for scikit-learn classifiers and regressors skl2onnx lacks or gets
wrong (baton/converters/_sklearn_own/classifiers.py): DummyClassifier, NearestCentroid,
LinearDiscriminantAnalysis, KernelRidge, LabelPropagation/LabelSpreading,
GaussianProcessClassifier, RadiusNeighborsClassifier/Regressor. Each is checked against
the real scikit-learn through baton.check and, for exactness, against numpy directly."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import baton
from baton.errors import SchemaError, UnsupportedModelError

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.gaussian_process import GaussianProcessClassifier  # noqa: E402
from sklearn.gaussian_process import kernels as K  # noqa: E402
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.neighbors import (  # noqa: E402
    NearestCentroid,
    RadiusNeighborsClassifier,
    RadiusNeighborsRegressor,
)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.semi_supervised import LabelPropagation, LabelSpreading  # noqa: E402

#: the search on a smaller example budget than the default, so the file stays fast
SEARCH = "200,15s"

Xb, yb = make_classification(120, 6, random_state=0)
Xm, ym = make_classification(120, 6, n_informative=4, n_redundant=0, n_classes=3,
                             random_state=1)
Xr, yr = make_regression(120, 6, random_state=0)
DATA = {"binary": (Xb, yb), "multi": (Xm, ym), "reg": (Xr, yr),
        "binary-full-rank": (Xm, (ym == 0).astype(int))}

#: one default-constructed estimator per converter, on the data the sweep would give it
ESTIMATORS: dict[str, tuple[Callable[[], Any], str]] = {
    "DummyClassifier": (DummyClassifier, "multi"),
    "NearestCentroid": (NearestCentroid, "multi"),
    "LinearDiscriminantAnalysis": (LinearDiscriminantAnalysis, "binary"),
    "KernelRidge": (KernelRidge, "reg"),
    "LabelPropagation": (LabelPropagation, "binary"),
    "LabelSpreading": (LabelSpreading, "multi"),
    "GaussianProcessClassifier": (GaussianProcessClassifier, "binary"),
    "RadiusNeighborsClassifier": (RadiusNeighborsClassifier, "binary"),
    "RadiusNeighborsRegressor": (RadiusNeighborsRegressor, "reg"),
}


def _fit(model: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of LabelPropagation and GPC
        return model.fit(X, y)


def _run(bundle: Any, X: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(bundle.onnx_model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {bundle.inputs[0].name: X})))


def _assert_exact(model: Any, X: np.ndarray, query: np.ndarray, atol: float = 1e-9) -> None:
    """Converted on X, the graph gives scikit-learn's label (exactly) and probabilities or
    prediction (to ``atol``, NaN where scikit-learn gives NaN) on ``query``."""
    bundle = baton.convert(model, X)
    assert bundle.report, bundle.report
    got = _run(bundle, query)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "label" in got:
            assert got["label"].tolist() == model.predict(query).tolist()
            ref = model.predict_proba(query) if "probabilities" in got else None
            out = got.get("probabilities")
        else:
            ref, out = model.predict(query), got["prediction"]
    if ref is not None:
        ref = np.asarray(ref, dtype=np.float64).reshape(out.shape)
        np.testing.assert_allclose(out, ref, rtol=0, atol=atol, equal_nan=True)


def _query(X: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([X, X + rng.normal(0, 0.3, X.shape)])


# -- every estimator, as the sweep fits it ---------------------------------------------

@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_default_estimator_passes_check_with_search(name: str) -> None:
    make, data = ESTIMATORS[name]
    X, y = DATA[data]
    model = _fit(make(), X, y)
    bundle = baton.convert(model, X)
    assert bundle.report, bundle.report
    assert bundle.manifest["source"]["class"].endswith(name)
    report = baton.check(model, bundle, X, search_budget=SEARCH)
    assert report, report


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_in_a_pipeline_in_both_precisions(name: str, dtype: type) -> None:
    make, data = ESTIMATORS[name]
    X, y = DATA[data]
    X = X.astype(dtype)
    model = _fit(make_pipeline(StandardScaler(), make()), X, y)
    bundle = baton.convert(model, X)
    assert bundle.report, bundle.report
    assert bundle.inputs[0].dtype == np.dtype(dtype).name
    report = baton.check(model, bundle, X, search=False)
    assert report, report


# -- the variants, exactly --------------------------------------------------------------

VARIANTS: dict[str, tuple[Callable[[], Any], str]] = {
    "dummy-prior-binary": (lambda: DummyClassifier(strategy="prior"), "binary"),
    "dummy-most-frequent": (lambda: DummyClassifier(strategy="most_frequent"), "multi"),
    "dummy-constant": (lambda: DummyClassifier(strategy="constant", constant=2), "multi"),
    "centroid-binary": (NearestCentroid, "binary"),
    "centroid-manhattan": (lambda: NearestCentroid(metric="manhattan"), "multi"),
    "centroid-priors": (lambda: NearestCentroid(priors=[0.2, 0.5, 0.3]), "multi"),
    "centroid-shrink": (lambda: NearestCentroid(shrink_threshold=0.2), "multi"),
    "lda-multi-svd": (LinearDiscriminantAnalysis, "multi"),
    "lda-lsqr-shrinkage": (lambda: LinearDiscriminantAnalysis(solver="lsqr",
                                                               shrinkage="auto"), "multi"),
    "lda-eigen-binary": (lambda: LinearDiscriminantAnalysis(solver="eigen"),
                         "binary-full-rank"),
    "lda-priors": (lambda: LinearDiscriminantAnalysis(priors=[0.1, 0.6, 0.3]), "multi"),
    **{f"kernel-ridge-{k}": ((lambda k=k: KernelRidge(kernel=k)), "reg")
       for k in ("linear", "rbf", "poly", "sigmoid", "laplacian", "cosine")},
    "kernel-ridge-poly-params": (lambda: KernelRidge(kernel="poly", degree=2, gamma=0.3,
                                                     coef0=0.5, alpha=0.1), "reg"),
    "propagation-rbf-gamma": (lambda: LabelPropagation(gamma=1.0), "multi"),
    "propagation-knn": (lambda: LabelPropagation(kernel="knn"), "multi"),
    "spreading-knn": (lambda: LabelSpreading(kernel="knn", n_neighbors=5), "binary"),
    "radius-classifier-distance": (lambda: RadiusNeighborsClassifier(
        radius=2.0, weights="distance", outlier_label="most_frequent"), "multi"),
    "radius-classifier-manhattan": (lambda: RadiusNeighborsClassifier(
        radius=3.0, metric="manhattan", outlier_label=7), "multi"),
    "radius-classifier-minkowski": (lambda: RadiusNeighborsClassifier(
        radius=1.5, p=3, algorithm="brute", outlier_label=1), "binary"),
    "radius-regressor-distance": (lambda: RadiusNeighborsRegressor(
        radius=3.0, weights="distance"), "reg"),
    "radius-regressor-chebyshev": (lambda: RadiusNeighborsRegressor(
        radius=1.0, metric="chebyshev"), "reg"),
    "gpc-multiclass": (GaussianProcessClassifier, "multi"),
}

GP_KERNELS = {
    "matern-0.5": K.Matern(nu=0.5),
    "matern-1.5": K.Matern(length_scale=2.0, nu=1.5),
    "matern-2.5-anisotropic": K.Matern(length_scale=[1.0, 2.0, 0.5, 1.0, 3.0, 1.0], nu=2.5),
    "matern-inf": K.Matern(nu=np.inf),
    "constant-rbf-plus-white": K.ConstantKernel(2.0) * K.RBF(1.5) + K.WhiteKernel(0.1),
    "dot-product": K.DotProduct(sigma_0=0.5),
    "rational-quadratic": K.RationalQuadratic(length_scale=2.0, alpha=0.5),
    "exp-sine-squared": K.ExpSineSquared(length_scale=3.0, periodicity=10.0),
    "rbf-squared": K.RBF(2.0) ** 2,
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_matches_sklearn_exactly(variant: str) -> None:
    make, data = VARIANTS[variant]
    X, y = DATA[data]
    model = _fit(make(), X, y)
    _assert_exact(model, X, _query(X))


@pytest.mark.parametrize("kernel", list(GP_KERNELS))
def test_gaussian_process_kernels_match_exactly(kernel: str) -> None:
    model = _fit(GaussianProcessClassifier(kernel=GP_KERNELS[kernel], optimizer=None), Xb, yb)
    _assert_exact(model, Xb, _query(Xb))


def test_float32_input_computes_as_sklearn_does() -> None:
    """A float32 input against float64 fitted arrays: scikit-learn upcasts, so does the
    graph (only the outputs are float32)."""
    X32 = Xb.astype(np.float32)
    model = _fit(GaussianProcessClassifier(), Xb, yb)
    bundle = baton.convert(model, X32)
    got = _run(bundle, X32)
    assert got["probabilities"].dtype == np.float32
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(X32), atol=1e-7)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_nearest_centroid_labels_at_extreme_values(metric: str) -> None:
    """Where the distances overflow (inf - inf), the label still follows scikit-learn's
    ArgKmin (its NaN-to-0 clip and heap order), not an undefined ArgMin."""
    model = _fit(NearestCentroid(metric=metric), Xm, ym)
    big = np.finfo(np.float64).max
    rows = [Xm[:10]]
    for j in range(Xm.shape[1]):
        for v in (big, -big, 1e200, -1e300):
            q = Xm[:5].copy()
            q[:, j] = v
            rows.append(q)
    query = np.vstack(rows)
    got = _run(baton.convert(model, Xm), query)
    assert got["label"].tolist() == model.predict(query).tolist()


# -- rows without neighbours, underflowing kernels ---------------------------------------

def test_label_propagation_underflow_gives_nan_like_sklearn() -> None:
    model = _fit(LabelPropagation(), Xb, yb)  # gamma=20: far rows' weights are all 0
    far = np.vstack([Xb[:20], Xb[:20] + 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model.predict_proba(far)
    assert np.isnan(ref).any() and not np.isnan(ref[:20]).any()
    _assert_exact(model, Xb, far)  # NaN probabilities and label classes_[0] there too


def test_radius_regressor_without_neighbours_gives_nan() -> None:
    model = _fit(RadiusNeighborsRegressor(), Xr, yr)
    far = np.vstack([Xr[:10], Xr[:10] + 5.0])
    _assert_exact(model, Xr, far)
    assert np.isnan(_run(baton.convert(model, Xr), far)["prediction"][10:]).all()


def test_radius_classifier_without_neighbours() -> None:
    """scikit-learn raises on a row without a neighbour (outlier_label=None): the graph
    gives NaN probabilities and the first class there, and baton.check on such rows reports
    the original's refusal; with an outlier label, the label and its probabilities."""
    model = _fit(RadiusNeighborsClassifier(), Xb, yb)
    bundle = baton.convert(model, Xb)
    far = Xb[:5] + 5.0
    got = _run(bundle, far)
    assert np.isnan(got["probabilities"]).all()
    assert got["label"].tolist() == [model.classes_[0]] * 5
    with pytest.raises(SchemaError, match="rejected the data"):
        baton.check(model, bundle, far, search=False)
    for outlier in (-1, "most_frequent"):  # not a class: zeros; a class: one-hot
        labelled = _fit(RadiusNeighborsClassifier(outlier_label=outlier), Xb, yb)
        _assert_exact(labelled, Xb, np.vstack([Xb[:5], far]))


# -- labels and data from hypothesis ------------------------------------------------------

def test_string_class_labels() -> None:
    names = np.array(["cat", "dog", "eel"])[ym]
    for model in (DummyClassifier(), LinearDiscriminantAnalysis(), NearestCentroid(),
                  RadiusNeighborsClassifier(radius=2.0, outlier_label="dog"),
                  LabelSpreading(kernel="knn")):
        _fit(model, Xm, names)
        bundle = baton.convert(model, Xm)
        report = baton.check(model, bundle, _query(Xm), search=False)
        assert report, report
        assert set(_run(bundle, Xm)["label"].tolist()) <= set(names.tolist())


_BUNDLES: dict[str, tuple[Any, Any]] = {}


def _cached(name: str, make: Callable[[], Any], X: np.ndarray, y: np.ndarray) -> Any:
    if name not in _BUNDLES:
        model = _fit(make(), X, y)
        _BUNDLES[name] = (model, baton.convert(model, X))
    return _BUNDLES[name]


def _rows(width: int, low: float = -6.0, high: float = 6.0) -> Any:
    value = st.floats(min_value=low, max_value=high, allow_nan=False, width=64)
    return st.lists(st.lists(value, min_size=width, max_size=width), min_size=1, max_size=10)


@settings(max_examples=25, deadline=None)
@given(_rows(6))
def test_label_propagation_on_any_rows(rows: list[list[float]]) -> None:
    model, bundle = _cached("lp", LabelPropagation, Xb, yb)
    report = baton.check(model, bundle, np.asarray(rows), search=False)
    assert report, report


@settings(max_examples=25, deadline=None)
@given(_rows(6))
def test_kernel_ridge_rbf_on_any_rows(rows: list[list[float]]) -> None:
    model, bundle = _cached("kr", lambda: KernelRidge(kernel="rbf", gamma=0.5), Xr, yr)
    report = baton.check(model, bundle, np.asarray(rows), search=False)
    assert report, report


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_lda_on_drawn_training_data(data: st.DataObject) -> None:
    """Training data drawn too: LDA fitted on it, converted, compared on it."""
    seed = data.draw(st.integers(0, 2**16))
    k = data.draw(st.integers(2, 4))
    X, y = make_classification(60, 4, n_informative=3, n_redundant=0, n_classes=k,
                               random_state=seed)
    X = X * data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    model = _fit(LinearDiscriminantAnalysis(), X, y)
    _assert_exact(model, X, _query(X, seed), atol=1e-9)


# -- refusals -------------------------------------------------------------------------

REFUSED: dict[str, tuple[Callable[[], Any], str, str]] = {
    "dummy-uniform": (lambda: DummyClassifier(strategy="uniform"), "binary",
                      "random label"),
    "dummy-stratified": (lambda: DummyClassifier(strategy="stratified"), "binary",
                         "random label"),
    "kernel-ridge-callable": (lambda: KernelRidge(kernel=lambda a, b: float(a @ b)), "reg",
                              "kernel"),
    "kernel-ridge-chi2": (lambda: KernelRidge(kernel="additive_chi2"), "positive",
                          "kernel"),
    "propagation-callable": (lambda: LabelPropagation(
        kernel=lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1))), "binary",
        "callable"),
    "gpc-matern-nu-1": (lambda: GaussianProcessClassifier(kernel=K.Matern(nu=1.0),
                                                          optimizer=None), "binary", "kernel"),
    "gpc-one-vs-one": (lambda: GaussianProcessClassifier(multi_class="one_vs_one",
                                                         optimizer=None), "multi",
                       "one_vs_one"),
    "radius-cosine": (lambda: RadiusNeighborsClassifier(metric="cosine", radius=0.5,
                                                        outlier_label=0), "binary", "metric"),
    "radius-callable-weights": (lambda: RadiusNeighborsRegressor(
        weights=lambda d: 1 / (1 + d)), "reg", "weights"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_a_reason(case: str) -> None:
    make, data, words = REFUSED[case]
    if data == "positive":
        X, y = np.abs(Xr), yr
    else:
        X, y = DATA[data]
    model = _fit(make(), X, y)
    with pytest.raises(UnsupportedModelError, match=words):
        baton.convert(model, X)
