"""baton's own converters for small scikit-learn estimators (baton/converters/_sklearn_own/
predictors.py), against scikit-learn itself: DummyRegressor, IsotonicRegression, CCA,
PLSCanonical, PLSSVD, Binarizer, Normalizer; and a [1, N] label from skl2onnx
(QuadraticDiscriminantAnalysis) flattened."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import baton

sk = pytest.importorskip("sklearn")
from sklearn.cross_decomposition import CCA, PLSSVD, PLSCanonical  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis  # noqa: E402
from sklearn.dummy import DummyRegressor  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import Binarizer, Normalizer, StandardScaler  # noqa: E402

from baton.runtime import Session  # noqa: E402

Xr, yr = make_regression(300, 6, random_state=0)
Xc, yc = make_classification(300, 6, random_state=0)


def run_bundle(bundle, X, tmp_path):
    path = tmp_path / "b"
    bundle.save(path)
    s = Session(path)
    return s.run({s.inputs[0].name: X})


def assert_passes(model, X, *, search=True):
    bundle = baton.convert(model, X)
    assert bundle.report.passed, bundle.report
    report = baton.check(model, bundle, X) if search else baton.check(model, bundle, X,
                                                                        search=False)
    assert report.passed, report
    return bundle


@pytest.mark.parametrize("strategy", ["mean", "median", "quantile", "constant"])
def test_dummy_regressor_gives_its_constant_even_on_nan_rows(strategy, tmp_path):
    kwargs = {"quantile": 0.3} if strategy == "quantile" else (
        {"constant": 7.25} if strategy == "constant" else {})
    model = DummyRegressor(strategy=strategy, **kwargs).fit(Xr, yr)
    bundle = assert_passes(model, Xr)
    rows = np.array([[np.nan, np.inf, -np.inf, 0, 1, 2]] * 3)
    out = run_bundle(bundle, rows, tmp_path)["prediction"]
    np.testing.assert_array_equal(out.ravel(), model.predict(rows))


def test_dummy_regressor_with_two_targets_and_in_a_pipeline():
    y2 = np.c_[yr, 2 * yr]
    assert_passes(DummyRegressor().fit(Xr, y2), Xr)
    assert_passes(make_pipeline(StandardScaler(), DummyRegressor()).fit(Xr, yr), Xr)


@pytest.mark.parametrize("increasing", [True, False, "auto"])
@pytest.mark.parametrize("bounds", ["nan", "clip"])
def test_isotonic_regression_interpolates_like_scipy(increasing, bounds, tmp_path):
    x = Xr[:, :1]
    model = IsotonicRegression(increasing=increasing, out_of_bounds=bounds).fit(x, yr)
    bundle = assert_passes(model, x)
    # the thresholds themselves, points between them, beyond both ends, NaN
    t = model.X_thresholds_
    probe = np.r_[t, (t[1:] + t[:-1]) / 2, t[0] - 1, t[-1] + 1][:, None]
    got = run_bundle(bundle, probe, tmp_path)["prediction"]
    np.testing.assert_array_equal(got, model.predict(probe))


def test_isotonic_regression_with_one_threshold_repeats_its_value(tmp_path):
    model = IsotonicRegression().fit(np.ones((5, 1)), np.arange(5.0))
    assert len(model.X_thresholds_) == 1
    probe = np.array([[1.0], [-3.0], [1e300]])
    bundle = baton.convert(model, np.ones((5, 1)))
    np.testing.assert_array_equal(run_bundle(bundle, probe, tmp_path)["prediction"],
                                  model.predict(probe))


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(5, 40), st.just(1)),
              elements=st.floats(-1e6, 1e6, allow_nan=False)),
       st.integers(0, 2**31 - 1))
def test_isotonic_regression_on_generated_data(x, seed):
    y = np.random.default_rng(seed).normal(size=len(x))
    model = IsotonicRegression().fit(x, y)
    bundle = baton.convert(model, x)
    report = baton.check(model, bundle, x, search=False)
    assert report.passed, report


@pytest.mark.parametrize("cls", [CCA, PLSCanonical])
def test_cca_and_pls_canonical_predict(cls):
    X, Y = make_regression(300, 6, n_targets=2, random_state=0)
    assert_passes(cls().fit(X, Y), X)
    assert_passes(make_pipeline(StandardScaler(), cls(n_components=1)).fit(X, Y[:, 0]), X)


def test_pls_svd_transform():
    X, Y = make_regression(300, 6, n_targets=2, random_state=0)
    assert_passes(PLSSVD().fit(X, Y), X)


@pytest.mark.parametrize("threshold", [0.0, 0.5, -1.0])
def test_binarizer_at_its_threshold(threshold, tmp_path):
    model = Binarizer(threshold=threshold).fit(Xc)
    bundle = assert_passes(model, Xc)
    probe = np.array([[threshold, np.nextafter(threshold, 1), np.nextafter(threshold, -1),
                       np.nan, np.inf, -np.inf]])
    np.testing.assert_array_equal(run_bundle(bundle, probe, tmp_path)["transformed"],
                                  model.transform(np.nan_to_num(probe, nan=threshold))
                                  * np.array([1, 1, 1, 0, 1, 1]))


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_normalizer_keeps_zero_and_tiny_rows(norm, tmp_path):
    model = Normalizer(norm=norm).fit(Xc)
    bundle = assert_passes(model, Xc)
    probe = np.array([[0.0] * 6, [1e-310, 0, 0, 0, 0, 0], [1e-16, -1e-16, 0, 0, 0, 0],
                      [-0.0, 1, 2, 3, 4, 5], [1e300, 1e300, 0, 0, 0, 0]])
    got = run_bundle(bundle, probe, tmp_path)["transformed"]
    np.testing.assert_allclose(got, model.transform(probe), rtol=1e-15, atol=0)


def test_quadratic_discriminant_label_is_one_dimensional():
    X, y = make_classification(300, 6, n_informative=6, n_redundant=0, random_state=0)
    model = QuadraticDiscriminantAnalysis().fit(X, y)
    bundle = assert_passes(model, X)
    label = next(o for o in bundle.typed_manifest.outputs if o.name == "label")
    assert len(label.shape) == 1


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_additive_chi2_sampler_keeps_zeros_zero(steps, tmp_path):
    from sklearn.kernel_approximation import AdditiveChi2Sampler

    X = np.abs(Xc)
    model = AdditiveChi2Sampler(sample_steps=steps).fit(X)
    bundle = assert_passes(model, X)
    probe = np.array([[0.0, 1e-300, 1.0, 1e300, 0.5, 0.0]])
    np.testing.assert_allclose(run_bundle(bundle, probe, tmp_path)["transformed"],
                               model.transform(probe), rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", ["NMF", "MiniBatchNMF", "LatentDirichletAllocation"])
def test_iterative_decompositions_are_refused_with_a_remedy(name):
    import sklearn.decomposition as d

    X = np.abs(Xc)
    model = getattr(d, name)(n_components=2, random_state=0).fit(X)
    with pytest.raises(baton.UnsupportedModelError, match="optimisation for each row") as info:
        baton.convert(model, X)
    assert "TruncatedSVD" in info.value.hint


class Doubler(sk.base.TransformerMixin, sk.base.BaseEstimator):
    """A user's own estimator: no converter anywhere."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2


def test_an_estimator_with_no_converter_anywhere_says_so_and_how_to_add_one():
    X = Xc[:20]
    with pytest.raises(baton.UnsupportedModelError,
                       match="neither baton nor skl2onnx has a converter for") as info:
        baton.convert(make_pipeline(StandardScaler(), Doubler()).fit(X), X)
    assert "Doubler" in str(info.value)
    assert "update_registered_converter" in info.value.hint


def test_local_outlier_factor_label_is_one_dimensional():
    from sklearn.neighbors import LocalOutlierFactor

    model = LocalOutlierFactor(novelty=True).fit(Xc)
    bundle = assert_passes(model, Xc, search=False)
    label = next(o for o in bundle.typed_manifest.outputs if o.name == "label")
    assert len(label.shape) == 1
