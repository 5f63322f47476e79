"""baton's own converters for scikit-learn decompositions, kernel approximations and
embeddings (baton/converters/_sklearn_own/decomposition.py): parity with scikit-learn 1.9
through baton.convert + baton.check (with the parity search) on the coverage setting
(make_classification(300, 6, random_state=0), default arguments), alone and after a
StandardScaler, float64 and float32; hypothesis batches; and the refusals."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import baton
from baton.errors import SchemaError, UnsupportedModelError

sk = pytest.importorskip("sklearn")

from sklearn import cluster, decomposition, kernel_approximation, manifold  # noqa: E402
from sklearn.neural_network import BernoulliRBM  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


@functools.cache
def coverage_X() -> np.ndarray:
    from sklearn.datasets import make_classification

    return make_classification(300, 6, random_state=0)[0]


def shifted_X() -> np.ndarray:
    """The coverage X moved above -1 (SkewedChi2Sampler rejects X <= -skewedness)."""
    X = coverage_X()
    return X - X.min(axis=0) - 0.9


#: name -> (estimator factory, data it is fitted and checked on)
EXACT: dict[str, tuple[Callable[[], Any], Callable[[], np.ndarray]]] = {
    "FactorAnalysis": (decomposition.FactorAnalysis, coverage_X),
    # the default n_components (6) on this rank-4 X is refused: see test_fast_ica_refused
    "FastICA(n_components=4)": (lambda: decomposition.FastICA(n_components=4, random_state=0),
                                coverage_X),
    "SparsePCA": (decomposition.SparsePCA, coverage_X),
    "MiniBatchSparsePCA": (decomposition.MiniBatchSparsePCA, coverage_X),
    "BernoulliRBM": (BernoulliRBM, coverage_X),
    "FeatureAgglomeration": (cluster.FeatureAgglomeration, coverage_X),
    "RBFSampler": (kernel_approximation.RBFSampler, coverage_X),
    "Nystroem": (kernel_approximation.Nystroem, coverage_X),
    "SkewedChi2Sampler": (kernel_approximation.SkewedChi2Sampler, shifted_X),
    "PolynomialCountSketch": (kernel_approximation.PolynomialCountSketch, coverage_X),
    "Isomap": (manifold.Isomap, coverage_X),
}
#: other settings, checked on the data (the search above covers the code paths they share)
VARIANTS: dict[str, tuple[Callable[[], Any], Callable[[], np.ndarray]]] = {
    "FastICA(whiten=False)": (lambda: decomposition.FastICA(n_components=4, whiten=False,
                                                            random_state=0), coverage_X),
    "FeatureAgglomeration(max)": (lambda: cluster.FeatureAgglomeration(pooling_func=np.max),
                                  coverage_X),
    "FeatureAgglomeration(min)": (lambda: cluster.FeatureAgglomeration(pooling_func=np.min),
                                  coverage_X),
    **{f"Nystroem({k})": ((lambda k=k: kernel_approximation.Nystroem(kernel=k)), coverage_X)
       for k in ("linear", "poly", "sigmoid", "laplacian", "cosine")},
    "PolynomialCountSketch(degree=3,coef0)": (
        lambda: kernel_approximation.PolynomialCountSketch(degree=3, coef0=1.5, gamma=0.5),
        coverage_X),
}
#: after a StandardScaler every column has values below -1: the sampler needs a larger
#: skewedness there
ALL = {**EXACT, **VARIANTS}
IN_PIPELINE = {**ALL, "SkewedChi2Sampler": (
    lambda: kernel_approximation.SkewedChi2Sampler(skewedness=10.0), coverage_X)}


@functools.cache
def fitted(name: str, pipe: bool) -> tuple[Any, np.ndarray]:
    make, data = (IN_PIPELINE if pipe else ALL)[name]
    X = data()
    model = make_pipeline(StandardScaler(), make()) if pipe else make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X), X


@functools.cache
def converted(name: str, pipe: bool) -> Any:
    model, X = fitted(name, pipe)
    return baton.convert(model, X)


def onnx_transform(bundle: Any, X: np.ndarray) -> np.ndarray:
    """The bundle's ``transformed`` output for X, run in onnxruntime directly."""
    import onnxruntime as ort

    sess = ort.InferenceSession(bundle.model_bytes, providers=["CPUExecutionProvider"])
    return sess.run(["transformed"], {sess.get_inputs()[0].name: X})[0]


@pytest.mark.parametrize("pipe", [False, True], ids=["bare", "pipeline"])
@pytest.mark.parametrize("name", list(EXACT))
def test_exact_with_the_search(name: str, pipe: bool) -> None:
    model, X = fitted(name, pipe)
    bundle = converted(name, pipe)
    assert bundle.report.passed, bundle.report
    assert bundle.report.outputs[0].kind == "transformed"
    report = baton.check(model, bundle, X)  # the default parity search included
    assert report.passed, report
    assert report.search is not None and report.search.stages


@pytest.mark.parametrize("pipe", [False, True], ids=["bare", "pipeline"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_on_the_data(name: str, pipe: bool) -> None:
    model, X = fitted(name, pipe)
    report = baton.check(model, converted(name, pipe), X, search=False)
    assert report.passed, report
    got = onnx_transform(converted(name, pipe), X)
    # (the poly kernel's normalization_ holds 1e6 entries: rounding is amplified to 1e-8)
    np.testing.assert_allclose(got, model.transform(X), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("pipe", [False, True], ids=["bare", "pipeline"])
@pytest.mark.parametrize("name", list(ALL))
def test_float32_input(name: str, pipe: bool) -> None:
    model, X = fitted(name, pipe)
    X32 = X.astype(np.float32)
    bundle = baton.convert(model, X32)
    report = baton.check(model, bundle, X32, search=False)
    assert report.passed, report
    got = onnx_transform(bundle, X32[:7])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, model.transform(X32[:7]), rtol=1e-4, atol=1e-5)


def test_float64_is_computed_in_float64() -> None:
    """float64 in, float64 arithmetic: agreement far below the default tolerance."""
    for name in ("FactorAnalysis", "Nystroem", "PolynomialCountSketch", "Isomap"):
        model, X = fitted(name, False)
        got = onnx_transform(converted(name, False), X)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, model.transform(X), rtol=1e-9, atol=1e-9)


# -- SparsePCA: scikit-learn returns a 1-D array for one row ---------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["SparsePCA", "MiniBatchSparsePCA"])
def test_sparse_pca_one_row(name: str, dtype: Any) -> None:
    """scikit-learn's ridge_regression gives shape (n_components,) for one row; the graph
    gives [1, n_components] with the same values."""
    model, X = fitted(name, False)
    Xd = X.astype(dtype)
    one = onnx_transform(baton.convert(model, Xd), Xd[:1])
    assert model.transform(Xd[:1]).ndim == 1 and one.shape == (1, model.n_components_)
    tight = dtype == np.float64
    np.testing.assert_allclose(one[0], model.transform(Xd[:1]), rtol=1e-9 if tight else 1e-4,
                               atol=1e-9 if tight else 1e-5)


# -- SkewedChi2Sampler: scikit-learn rejects X <= -skewedness --------------------------------


def test_skewed_chi2_rejects_the_coverage_data() -> None:
    """Fitted on the coverage X (fit does not look at the values), its transform raises on
    that X itself: baton says the original rejects the data."""
    X = coverage_X()
    model = kernel_approximation.SkewedChi2Sampler().fit(X)
    with pytest.raises(SchemaError, match="smaller than -skewedness"):
        baton.convert(model, X)
    bundle = baton.convert(model, shifted_X())  # the graph itself converts fine
    report = baton.check(model, bundle, shifted_X())
    assert report.passed, report
    assert report.search is not None and report.search.domain  # rows below -1: not compared


# -- property: hypothesis batches ------------------------------------------------------------


def batches(low: float, high: float) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.just(6)),
                      elements=st.floats(low, high, allow_nan=False, width=64))


@pytest.mark.parametrize(("name", "low", "high"), [
    ("FeatureAgglomeration", -1e6, 1e6),
    ("FactorAnalysis", -1e3, 1e3),
    ("Nystroem", -10.0, 10.0),
    ("PolynomialCountSketch", -100.0, 100.0),
    ("Isomap", -10.0, 10.0),
])
def test_any_batch_agrees(name: str, low: float, high: float) -> None:
    model, _ = fitted(name, False)
    bundle = converted(name, False)

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(batches(low, high))
    def check(X: np.ndarray) -> None:
        report = baton.check(model, bundle, X, search=False)
        assert report.passed, report

    check()


@settings(max_examples=10, deadline=None, derandomize=True)
@given(hnp.arrays(np.float64, (40, 4), elements=st.floats(-50, 50, allow_nan=False)))
def test_fitted_on_any_data(X: np.ndarray) -> None:
    """RBFSampler and FeatureAgglomeration fitted on generated data convert exactly."""
    for model in (kernel_approximation.RBFSampler(random_state=0).fit(X),
                  cluster.FeatureAgglomeration(n_clusters=2).fit(X)):
        report = baton.check(model, baton.convert(model, X), X, search=False)
        assert report.passed, report


# -- refusals --------------------------------------------------------------------------------


def refusal(model: Any, X: np.ndarray) -> str:
    with pytest.raises(UnsupportedModelError) as info:
        baton.convert(model, X)
    return str(info.value)


def test_fast_ica_refused_on_rank_deficient_data() -> None:
    """make_classification's X has rank 4 of 6: FastICA's 6 sources are amplified rounding
    noise in scikit-learn itself (one row alone and in a batch differ)."""
    X = coverage_X()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = decomposition.FastICA(random_state=0).fit(X)
    one = np.vstack([model.transform(X[i:i + 1]) for i in range(3)])
    assert not np.allclose(one, model.transform(X[:3]), atol=1e-3)  # the cause, shown
    text = refusal(model, X)
    assert "is singular" in text and "rank 4 < 6" in text
    assert "FastICA(n_components=4)" in text
    # the remedy converts exactly (test_exact_with_the_search["FastICA(n_components=4)"])


@pytest.mark.parametrize(("make", "cause"), [
    (lambda: manifold.LocallyLinearEmbedding(), "solves an optimisation per row"),
    (lambda: decomposition.DictionaryLearning(n_components=3, max_iter=5, random_state=0),
     "sparse coding"),
    (lambda: decomposition.MiniBatchDictionaryLearning(n_components=3, max_iter=5,
                                                       random_state=0), "sparse coding"),
    (lambda: cluster.FeatureAgglomeration(pooling_func=np.median), "pooling_func 'median'"),
], ids=["LocallyLinearEmbedding", "DictionaryLearning", "MiniBatchDictionaryLearning",
        "FeatureAgglomeration(median)"])
@pytest.mark.parametrize("pipe", [False, True], ids=["bare", "pipeline"])
def test_refused(make: Callable[[], Any], cause: str, pipe: bool) -> None:
    X = coverage_X()
    model = make_pipeline(StandardScaler(), make()) if pipe else make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    assert cause in refusal(model, X)


def test_nystroem_chi2_refused() -> None:
    X = np.abs(coverage_X())
    model = kernel_approximation.Nystroem(kernel="chi2", n_components=20).fit(X)
    assert "kernel 'chi2'" in refusal(model, X)


@pytest.mark.parametrize("name", ["FactorAnalysis", "RBFSampler", "FeatureAgglomeration",
                                  "PolynomialCountSketch"])
def test_integer_input_computes_in_float64(name: str) -> None:
    """An int64 input: float64 arithmetic and a float64 output, as scikit-learn gives."""
    Xi = (coverage_X() * 10).astype(np.int64)
    make, _ = EXACT[name]
    model = make().fit(Xi)
    bundle = baton.convert(model, Xi)
    assert bundle.outputs[0].dtype == "float64"
    report = baton.check(model, bundle, Xi, search=False)
    assert report.passed, report
