"""baton's own converters for scikit-learn clusterers and outlier detectors
(baton/converters/_sklearn_own/clusters.py): OneClassSVM, EllipticEnvelope, MeanShift,
AffinityPropagation, Birch and BisectingKMeans, compared with scikit-learn itself."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.cluster import AffinityPropagation, Birch, BisectingKMeans, MeanShift
from sklearn.covariance import EllipticEnvelope
from sklearn.datasets import make_classification
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

import baton
from baton.converters._sklearn_own import clusters
from baton.runtime import Session

KINDS = {
    "OneClassSVM": ["label", "scores"],
    "EllipticEnvelope": ["label", "scores"],
    "MeanShift": ["label"],
    "AffinityPropagation": ["label"],
    "Birch": ["label", "distances"],
    "BisectingKMeans": ["label", "distances"],
}
#: the coverage setting: default constructor arguments
DEFAULTS: dict[str, Callable[[], Any]] = {
    "OneClassSVM": OneClassSVM, "EllipticEnvelope": EllipticEnvelope, "MeanShift": MeanShift,
    "AffinityPropagation": AffinityPropagation, "Birch": Birch,
    "BisectingKMeans": BisectingKMeans,
}
#: quicker to fit where the default is slow (MeanShift estimates its bandwidth from all rows)
QUICK = {**DEFAULTS, "MeanShift": lambda: MeanShift(bandwidth=2.5, bin_seeding=True)}


def data(dtype: str = "float64") -> np.ndarray:
    X, _ = make_classification(300, 6, random_state=0)
    return X.astype(dtype)


def fit(model: Any, X: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


def original(model: Any, X: np.ndarray, kinds: list[str]) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {"label": model.predict(X)}
        if "scores" in kinds:
            out["scores"] = model.decision_function(X)
        if "distances" in kinds:
            out["distances"] = model.transform(X)
    return out


def served(bundle: Any, X: np.ndarray, tmp_path: Any) -> dict[str, np.ndarray]:
    path = bundle.save(tmp_path / f"m{len(list(tmp_path.iterdir()))}.baton")
    return Session(path).predict(X)


def assert_same(model: Any, bundle: Any, X: np.ndarray, tmp_path: Any,
                rtol: float = 1e-12, atol: float = 1e-12) -> None:
    """The bundle's outputs, run by baton's runtime, are scikit-learn's: labels equal,
    numbers within ``rtol``/``atol``."""
    kinds = [o.name for o in bundle.outputs]
    got = served(bundle, X, tmp_path)
    for kind, ref in original(model, X, kinds).items():
        out = np.asarray(got[kind]).reshape(ref.shape)
        if kind == "label":
            np.testing.assert_array_equal(out, ref)
        else:
            np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_the_coverage_setting_converts_exactly_and_passes_the_default_search(
        name: str, tmp_path: Any) -> None:
    X = data()
    model = fit(DEFAULTS[name](), X)
    bundle = baton.convert(model, X)
    assert [o.name for o in bundle.outputs] == KINDS[name]
    assert bundle.manifest["precision"] == "float64"
    assert bundle.manifest["converter"]["attempts"] == ["float64: ok"]
    assert bundle.report, bundle.report
    report = baton.check(model, bundle, X)  # the default search
    assert report, report
    assert report.search is not None and not report.search.failing
    assert_same(model, bundle, X, tmp_path)


@pytest.mark.parametrize(("dtype", "pipe"), [("float32", False), ("float64", True),
                                             ("float32", True)])
@pytest.mark.parametrize("name", list(DEFAULTS))
def test_float32_data_and_a_scaling_pipeline_convert_with_parity(
        name: str, dtype: str, pipe: bool, tmp_path: Any) -> None:
    X = data(dtype)
    est = QUICK[name]()
    model = fit(make_pipeline(StandardScaler(), est) if pipe else est, X)
    bundle = baton.convert(model, X, tune=False)
    assert [o.name for o in bundle.outputs] == KINDS[name]
    assert bundle.manifest["converter"]["attempts"] == [f"{dtype}: ok"]
    assert bundle.report, bundle.report
    report = baton.check(model, bundle, X, search_budget="150")
    assert report, report
    # float32 scores and distances are rounded once, to float32; a float32 pipeline's
    # scaler (skl2onnx's) rounds differently from scikit-learn's in the last bit
    tight = dtype == "float64"
    assert_same(model, bundle, X, tmp_path, rtol=1e-12 if tight else 1e-5,
                atol=1e-12 if tight else 1e-5)


@pytest.mark.parametrize("kernel", ["linear", "poly", "sigmoid", "rbf"])
def test_every_one_class_svm_kernel_is_exact_in_float64(kernel: str, tmp_path: Any) -> None:
    X = data()
    for model in (fit(OneClassSVM(kernel=kernel), X),
                  fit(OneClassSVM(kernel=kernel, gamma=0.3, coef0=0.5, degree=4, nu=0.2), X)):
        bundle = baton.convert(model, X)
        assert bundle.report, bundle.report
        assert_same(model, bundle, X * 1.5, tmp_path)


def test_a_poly_kernel_of_degree_zero_is_one_everywhere(tmp_path: Any) -> None:
    X = data()
    model = fit(OneClassSVM(kernel="poly", degree=0), X)
    bundle = baton.convert(model, X)
    assert_same(model, bundle, X, tmp_path)


def test_an_rbf_svm_with_many_support_values_uses_the_expanded_form(tmp_path: Any) -> None:
    X, _ = make_classification(300, 150, random_state=0)
    model = fit(OneClassSVM(), X)
    assert model.support_vectors_.size > clusters.RBF_DIRECT_LIMIT
    bundle = baton.convert(model, X)
    assert bundle.report, bundle.report
    assert_same(model, bundle, X, tmp_path, rtol=1e-9, atol=1e-12)


def test_a_precomputed_kernel_svm_takes_the_kernel_matrix(tmp_path: Any) -> None:
    X = data()
    K = rbf_kernel(X, X, gamma=0.1)
    model = fit(OneClassSVM(kernel="precomputed"), K)
    bundle = baton.convert(model, K[:120])
    assert bundle.report, bundle.report
    assert_same(model, bundle, K[120:], tmp_path)


def test_a_callable_kernel_is_refused() -> None:
    X = data()
    model = fit(OneClassSVM(kernel=lambda a, b: a @ b.T), X)
    with pytest.raises(baton.UnsupportedModelError, match="kernel is a Python callable"):
        baton.convert(model, X)


def test_affinity_propagation_without_centres_labels_every_row_minus_one(
        tmp_path: Any) -> None:
    X = data()
    model = fit(AffinityPropagation(max_iter=1, random_state=0), X)
    assert model.cluster_centers_.shape[0] == 0  # it did not converge
    bundle = baton.convert(model, X)
    assert bundle.report and baton.check(model, bundle, X, search_budget="100")
    np.testing.assert_array_equal(served(bundle, X[:7], tmp_path)["label"], [-1] * 7)


def test_affinity_propagation_on_a_precomputed_affinity_is_refused() -> None:
    X = data()
    S = -((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1)
    model = fit(AffinityPropagation(affinity="precomputed", random_state=0), S)
    with pytest.raises(baton.UnsupportedModelError, match="precomputed affinity"):
        baton.convert(model, S)


# -- ties --------------------------------------------------------------------------------

def mirrored() -> np.ndarray:
    """Integer rows around (6, 0, 0) and their exact mirror images: centres come out as
    c and -c, so the origin is exactly as far from both."""
    A = np.random.default_rng(0).integers(-2, 3, size=(40, 3)).astype(float) + [6, 0, 0]
    return np.vstack([A, -A])


TIES = np.array([[0.0, 0, 0], [0, 0, 0], [6, 1, 0], [-6, -1, 0]])


def test_a_point_as_far_from_two_mean_shift_centres_takes_the_first(tmp_path: Any) -> None:
    X = mirrored()
    model = fit(MeanShift(bandwidth=3), X)
    c = model.cluster_centers_
    assert len(c) == 2 and np.array_equal(c[0], -c[1])
    bundle = baton.convert(model, X)
    Q = np.vstack([TIES, X])
    assert list(served(bundle, TIES, tmp_path)["label"][:2]) == [0, 0]
    assert_same(model, bundle, Q, tmp_path)
    assert baton.check(model, bundle, Q, search=False)


def test_a_tie_at_a_bisecting_split_goes_left(tmp_path: Any) -> None:
    X = mirrored()
    model = fit(BisectingKMeans(2, random_state=0), X)
    c = model.cluster_centers_
    assert np.array_equal(c[0], -c[1])
    bundle = baton.convert(model, X)
    assert_same(model, bundle, np.vstack([TIES, X]), tmp_path)


@pytest.mark.parametrize("name", ["MeanShift", "AffinityPropagation", "Birch"])
def test_duplicate_centres_give_the_first_one(name: str, tmp_path: Any) -> None:
    """A centre listed twice (the second copy under another label, for Birch): scikit-learn
    never picks the copy, nor does the graph."""
    X = data()
    model = fit(QUICK[name](), X)
    if name == "Birch":
        c = model.subcluster_centers_
        model.subcluster_centers_ = np.vstack([c, c])
        model._subcluster_norms = np.concatenate([model._subcluster_norms] * 2)
        model.subcluster_labels_ = np.concatenate(
            [model.subcluster_labels_, model.subcluster_labels_ + 100])
    else:
        model.cluster_centers_ = np.vstack([model.cluster_centers_] * 2)
    bundle = baton.convert(model, X)
    assert bundle.report, bundle.report
    labels = served(bundle, X, tmp_path)["label"]
    if name == "Birch":
        assert labels.max() < 100
    else:
        assert labels.max() < len(model.cluster_centers_) // 2
    assert_same(model, bundle, np.vstack([X, model.cluster_centers_ if name != "Birch"
                                          else model.subcluster_centers_]), tmp_path)


# -- generated data ----------------------------------------------------------------------

# small integer values: duplicate rows and exact ties between centres are common
grid = st.integers(2, 4).flatmap(lambda f: st.lists(
    st.lists(st.integers(-4, 4).map(float), min_size=f, max_size=f),
    min_size=12, max_size=40))
wide = st.integers(1, 4).flatmap(lambda f: st.lists(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=f, max_size=f),
    min_size=12, max_size=40))
FAST = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _fitted_or_none(model: Any, X: np.ndarray) -> Any:
    try:
        return fit(model, X)
    except ValueError:  # fewer distinct rows than clusters and the like
        return None


@FAST
@given(rows=st.one_of(grid, wide), k=st.integers(2, 5), seed=st.integers(0, 3))
def test_bisecting_kmeans_on_generated_data(rows: list[list[float]], k: int,
                                            seed: int) -> None:
    X = np.asarray(rows)
    model = _fitted_or_none(BisectingKMeans(k, random_state=seed), X)
    if model is None:
        return
    bundle = baton.convert(model, X, tune=False)
    assert bundle.report, bundle.report
    grid_rows = np.array(np.meshgrid(*[[-5.0, 0.0, 1.0, 4.0]] * X.shape[1])).reshape(
        X.shape[1], -1).T
    assert baton.check(model, bundle, np.vstack([X, grid_rows]), search=False)


@FAST
@given(rows=st.one_of(grid, wide), threshold=st.sampled_from([0.3, 1.0, 3.0]))
def test_birch_on_generated_data(rows: list[list[float]], threshold: float) -> None:
    X = np.asarray(rows)
    model = _fitted_or_none(Birch(threshold=threshold, n_clusters=None), X)
    if model is None:
        return
    bundle = baton.convert(model, X, tune=False)
    assert bundle.report, bundle.report
    assert baton.check(model, bundle, np.vstack([X, X[::-1] * 0.5]), search=False)


@FAST
@given(rows=st.one_of(grid, wide),
       kernel=st.sampled_from(["rbf", "linear", "poly", "sigmoid"]),
       nu=st.sampled_from([0.1, 0.5, 0.9]))
def test_one_class_svm_on_generated_data(rows: list[list[float]], kernel: str,
                                         nu: float) -> None:
    X = np.asarray(rows)
    # libsvm can take long to converge on wide-ranging data: a capped fit is a fitted model
    model = _fitted_or_none(OneClassSVM(kernel=kernel, nu=nu, max_iter=3000), X)
    if model is None:
        return
    bundle = baton.convert(model, X, tune=False)
    assert bundle.report, bundle.report
    assert baton.check(model, bundle, X, search=False)
