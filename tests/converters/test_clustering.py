"""Clusterers and outlier detectors: KMeans and friends give ``label`` and ``distances``
(to each centre, as ``transform``), a Gaussian mixture ``label`` and ``probabilities``, an
outlier detector ``label`` (1 inlier, -1 outlier) and ``scores`` (``decision_function``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.cluster import DBSCAN, KMeans, MiniBatchKMeans
from sklearn.datasets import make_classification
from sklearn.ensemble import IsolationForest
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import baton
from baton.runtime import Session


def data(dtype: str) -> np.ndarray:
    X, _ = make_classification(300, 6, random_state=0)
    return X.astype(dtype)


CLUSTERERS = {
    "KMeans": lambda: KMeans(3, n_init=3, random_state=0),
    "MiniBatchKMeans": lambda: MiniBatchKMeans(3, n_init=3, random_state=0),
    "Pipeline(StandardScaler, KMeans)": lambda: make_pipeline(
        StandardScaler(), KMeans(4, n_init=3, random_state=0)),
    "GaussianMixture": lambda: GaussianMixture(3, reg_covar=1e-3, random_state=0),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CLUSTERERS))
def test_clusterers_convert_with_parity_and_pass_the_search(name: str, dtype: str,
                                                            tmp_path: Any) -> None:
    X = data(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CLUSTERERS[name]().fit(X)
    bundle = baton.convert(model, X)
    second = "probabilities" if name == "GaussianMixture" else "distances"
    assert [o.name for o in bundle.outputs] == ["label", second]
    assert [o.kind for o in bundle.outputs] == ["label", second]
    assert bundle.report, bundle.report.failures if bundle.report else None
    report = baton.check(model, bundle, X, search_budget="400")
    assert report, report.failures
    # the bundle serves what scikit-learn computes
    path = bundle.save(tmp_path / "m.baton")
    out = Session(path).predict(X[:50])
    np.testing.assert_array_equal(out["label"].ravel(), model.predict(X[:50]))
    ref = (model.predict_proba(X[:50]) if name == "GaussianMixture"
           else model.transform(X[:50]))
    np.testing.assert_allclose(out[second], ref, rtol=1e-4, atol=1e-5)


def test_a_gaussian_mixture_converts_in_float64() -> None:
    """skl2onnx's GaussianMixture converter compares the target opset as a number; baton
    gives it one, so the float64 graph is kept (it had fallen back to float32)."""
    X = data("float64")
    model = GaussianMixture(3, random_state=0).fit(X)
    bundle = baton.convert(model, X)
    assert bundle.manifest["precision"] == "float64"
    assert bundle.manifest["converter"]["attempts"] == ["float64: ok"]


def test_an_outlier_detector_gives_label_and_scores() -> None:
    X = data("float64")
    model = IsolationForest(random_state=0).fit(X)
    bundle = baton.convert(model, X)
    assert [o.name for o in bundle.outputs] == ["label", "scores"]
    assert bundle.report  # on the sample: labels agree, scores within tolerance
    assert baton.check(model, bundle, X, search=False)
    # baton's tree emitter sends NaN the way scikit-learn's trees do: the search passes
    assert bundle.manifest["converter"]["name"] == "baton.trees"
    assert baton.check(model, bundle, X, search_budget="300")


def test_a_clusterer_that_cannot_predict_is_refused_with_what_to_do() -> None:
    X = data("float64")
    with pytest.raises(baton.UnsupportedModelError, match="fit_predict only") as info:
        baton.convert(DBSCAN().fit(X), X)
    assert "KMeans" in str(info.value.hint)
