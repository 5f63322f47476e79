"""statsmodels results (OLS, WLS, GLS, GLM of every family, Logit, Probit; arrays and
formulas) through baton's own graph, against the real ``results.predict``."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import baton
from baton.errors import SchemaError, UnsupportedModelError, UsageError

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")
pd = pytest.importorskip("pandas")

from scipy.special import ndtr  # noqa: E402 - a dependency of statsmodels

N = 200
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, 3))
XC = sm.add_constant(X)
ETA = 0.3 + X @ np.array([0.5, -0.4, 0.2])
Y_BIN = RNG.binomial(1, 1 / (1 + np.exp(-ETA)))
Y_COUNT = RNG.poisson(np.exp(ETA))
Y_POS = RNG.gamma(2.0, np.exp(ETA) / 2) + 0.05
Y_REAL = ETA + RNG.normal(size=N)
#: counts around mu = eta^2 (a sqrt link)
Y_SQ = RNG.poisson((2 + 0.3 * X @ np.array([1.0, -1.0, 0.5])) ** 2)
#: inverse Gaussian around mu = 1 / sqrt(eta), eta > 0 (its canonical link)
Y_IG = RNG.wald(1 / np.sqrt(np.clip(1 + 0.1 * X @ np.array([1.0, -1.0, 0.5]), 0.2, None)), 20)
L = sm.families.links
F = sm.families


def _glm(y: np.ndarray, family: Any) -> Callable[[], Any]:
    return lambda: sm.GLM(y, XC, family=family).fit()


#: name -> (fit, exog the model takes)
MODELS: dict[str, tuple[Callable[[], Any], np.ndarray]] = {
    "ols": (lambda: sm.OLS(Y_REAL, XC).fit(), XC),
    "ols-no-constant": (lambda: sm.OLS(Y_REAL, X).fit(), X),
    "wls": (lambda: sm.WLS(Y_REAL, XC, weights=RNG.uniform(0.5, 2, N)).fit(), XC),
    "gls": (lambda: sm.GLS(Y_REAL, XC, sigma=RNG.uniform(0.5, 2, N)).fit(), XC),
    "glsar": (lambda: sm.GLSAR(Y_REAL, XC, rho=1).iterative_fit(2), XC),
    "ols-elastic-net": (lambda: sm.OLS(Y_REAL, XC).fit_regularized(alpha=0.05, L1_wt=0.5), XC),
    "gaussian-identity": (_glm(Y_REAL, F.Gaussian()), XC),
    "gaussian-log": (_glm(Y_POS, F.Gaussian(L.Log())), XC),
    "poisson-log": (_glm(Y_COUNT, F.Poisson()), XC),
    "poisson-sqrt": (_glm(Y_SQ, F.Poisson(L.Sqrt())), XC),
    "binomial-logit": (_glm(Y_BIN, F.Binomial()), XC),
    "binomial-probit": (_glm(Y_BIN, F.Binomial(L.Probit())), XC),
    "binomial-cloglog": (_glm(Y_BIN, F.Binomial(L.CLogLog())), XC),
    "binomial-loglog": (_glm(Y_BIN, F.Binomial(L.LogLog())), XC),
    "gamma-inverse": (_glm(Y_POS, F.Gamma()), XC),
    "gamma-log": (_glm(Y_POS, F.Gamma(L.Log())), XC),
    "inverse-gaussian": (_glm(Y_IG, F.InverseGaussian()), XC),
    "negative-binomial-log": (_glm(Y_COUNT, F.NegativeBinomial(alpha=0.5)), XC),
    "negative-binomial-link": (_glm(Y_COUNT, F.NegativeBinomial(
        alpha=0.5, link=L.NegativeBinomial(alpha=0.5))), XC),
    "tweedie-log": (_glm(Y_POS, F.Tweedie(var_power=1.5)), XC),
    "tweedie-power": (_glm(Y_POS, F.Tweedie(var_power=1.5, link=L.Power(0.3))), XC),
    "logit": (lambda: sm.Logit(Y_BIN, XC).fit(disp=0), XC),
    "probit": (lambda: sm.Probit(Y_BIN, XC).fit(disp=0), XC),
}
#: with the default parity search (the rest: parity on the data, and the probes below)
SEARCHED = ("ols", "poisson-log", "binomial-logit", "gamma-inverse", "logit", "probit")


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DomainWarning: links outside a family's canon
        return {name: fit() for name, (fit, _) in MODELS.items()}


def _onnx(bundle: Any, data: Any) -> np.ndarray:
    import onnxruntime as ort

    from baton.schema import to_feeds

    sess = ort.InferenceSession(bundle.model_bytes, providers=["CPUExecutionProvider"])
    return sess.run(["prediction"], to_feeds(data, bundle.inputs))[0]


def _rows_at(results: Any, eta: np.ndarray) -> np.ndarray:
    """Rows of the exog whose linear predictor is ``eta`` (the first column moved)."""
    params = np.asarray(results.params)
    base = XC[:1] if params.size == XC.shape[1] else X[:1]
    rows = np.repeat(base, len(eta), axis=0)
    rows[:, -1] += (eta - rows @ params) / params[-1]
    return rows


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NaN outside a domain
@pytest.mark.parametrize("name", list(MODELS))
def test_converts_with_parity(name: str, fitted: dict[str, Any]) -> None:
    results, exog = fitted[name], MODELS[name][1]
    bundle = baton.convert(results, exog)
    assert bundle.report.passed, bundle.report
    report = baton.check(results, bundle, exog, search=name in SEARCHED)
    assert report.passed, report
    # the graph against statsmodels itself, also over a wide range of linear predictors
    rows = np.vstack([exog, _rows_at(results, np.linspace(-30, 30, 600))])
    expected = np.asarray(results.predict(rows))
    actual = _onnx(bundle, rows)
    assert actual.dtype == np.float64 and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12)


def test_probit_tails_follow_scipy(fitted: dict[str, Any]) -> None:
    """The normal CDF as scipy's ndtr: relative precision kept in the far lower tail (down
    to the subnormals), 1 in the upper one, NaN for NaN."""
    eta = np.concatenate([np.linspace(-38.5, 9, 4001), -np.logspace(-8, 1.58, 400),
                          np.logspace(-8, 1.58, 400)])
    for name in ("probit", "binomial-probit"):
        results = fitted[name]
        bundle = baton.convert(results, XC)
        actual = _onnx(bundle, np.vstack([_rows_at(results, eta), np.full((1, 4), np.nan)]))
        expected = np.asarray(results.predict(_rows_at(results, eta)))
        assert np.isnan(actual[-1])
        actual = actual[:-1]
        lin = _rows_at(results, eta) @ np.asarray(results.params)
        np.testing.assert_allclose(expected, ndtr(lin), rtol=0, atol=0)
        tiny = expected < 1e-300
        assert tiny.any() and (expected[~tiny] > 0).all()
        np.testing.assert_allclose(actual[~tiny], expected[~tiny], rtol=1e-12, atol=0)
        np.testing.assert_allclose(actual[tiny], expected[tiny], rtol=0, atol=1e-310)


def test_probit_graph_is_scipys_ndtr() -> None:
    """The graph's normal CDF alone, value for value against scipy.special.ndtr."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from baton.converters.statsmodels import _Graph, _ndtr

    g = _Graph()
    _ndtr(g, "x", "y")
    vi = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [None]) for n in "xy"]
    model = helper.make_model(helper.make_graph(g.nodes, "ndtr", vi[:1], vi[1:], g.inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.concatenate([np.linspace(-40, 40, 80001), [0.0, -0.0, np.inf, -np.inf, np.nan,
                        1e308, -1e308, 5e-324, np.sqrt(2), -np.sqrt(2), 8 * np.sqrt(2)]])
    y, expected = sess.run(None, {"x": x})[0], ndtr(x)
    same = (y == expected) | (np.isnan(y) & np.isnan(expected))
    assert same[-11:-3].all(), y[-11:-3]  # zeros, infinities, NaN, the extremes
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(y - expected) / np.abs(expected)
    assert np.nanmax(np.where(same, 0.0, rel)) < 1e-13
    # bit for bit in each branch of ndtr (erf; erfc's two approximations; each side), but
    # where exp() rounds its last bit otherwise
    r2 = np.sqrt(2)
    for low, high in [(-40, -9 * r2), (-9 * r2, -8 * r2), (-8 * r2, -r2), (-r2, r2),
                      (r2, 8 * r2), (8 * r2, 40)]:
        inside = (x > low) & (x < high)
        share = same[inside].mean()
        assert share == 1.0 if low == -r2 else share > 0.5, (low, high, share)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(rows=arrays(np.float64, st.tuples(st.integers(1, 20), st.just(3)),
                   elements=st.floats(-6, 6, allow_nan=False, width=64)),
       name=st.sampled_from(["ols", "poisson-log", "binomial-probit", "gamma-log", "logit"]))
def test_any_rows_agree(rows: np.ndarray, name: str, fitted: dict[str, Any],
                        bundles: dict[str, Any]) -> None:
    exog = sm.add_constant(rows, has_constant="add")
    expected = np.asarray(fitted[name].predict(exog))
    np.testing.assert_allclose(_onnx(bundles[name], exog), expected, rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def bundles(fitted: dict[str, Any]) -> dict[str, Any]:
    return {n: baton.convert(fitted[n], XC)
            for n in ("ols", "poisson-log", "binomial-probit", "gamma-log", "logit")}


# -- DataFrames and formulas --------------------------------------------------------------


@pytest.fixture(scope="module")
def frame() -> Any:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(N, 3)), columns=["x1", "x2", "x3"])
    df["city"] = rng.choice(["paris", "rome", "oslo"], N)
    df["member"] = rng.choice([True, False], N)
    df["level"] = rng.integers(0, 3, N)
    df["y"] = df.x1 - 2 * df.x2 + (df.city == "rome") + df.level + rng.normal(size=N)
    df["count"] = rng.poisson(np.exp(0.2 * df.x1 + 0.1 * df.level))
    df["hit"] = (df.y > df.y.median()).astype(int)
    return df


FORMULAS = {
    "numeric": lambda df: smf.ols("y ~ x1 + x2", data=df).fit(),
    "no-intercept": lambda df: smf.ols("y ~ x1 + x2 - 1", data=df).fit(),
    "interaction": lambda df: smf.ols("y ~ x1 * x2 + x1:x2:x3", data=df).fit(),
    "categorical": lambda df: smf.ols("y ~ x1 + C(city) + member + C(level)", data=df).fit(),
    "reference-level": lambda df: smf.ols(
        "y ~ x1 + C(city, Treatment(reference='rome'))", data=df).fit(),
    "sum-contrast": lambda df: smf.ols("y ~ C(city, Sum) * x2", data=df).fit(),
    "glm-poisson": lambda df: smf.glm("count ~ x1 + C(level) + x1:C(city)", data=df,
                                      family=F.Poisson()).fit(),
    "logit": lambda df: smf.logit("hit ~ x1 + x2 + C(city)", data=df).fit(disp=0),
    "probit": lambda df: smf.probit("hit ~ x1 + Q('x2')", data=df).fit(disp=0),
}


@pytest.mark.parametrize("name", list(FORMULAS))
def test_formula_models(name: str, frame: Any) -> None:
    results = FORMULAS[name](frame)
    bundle = baton.convert(results, frame)
    assert bundle.report.passed, bundle.report
    # one input per column the formula reads (not y), none for the intercept
    read = {s.name for s in bundle.inputs}
    assert "y" not in read and read <= set(frame.columns)
    report = baton.check(results, bundle, frame, search=name == "logit")
    assert report.passed, report
    expected = np.asarray(results.predict(frame))
    np.testing.assert_allclose(_onnx(bundle, frame), expected, rtol=1e-12, atol=1e-12)


def test_formula_rows_with_nan_and_unknown_levels(frame: Any) -> None:
    """A NaN gives NaN, as statsmodels' predict does; a level the model never saw, which
    patsy refuses, gives NaN too (never a made-up number)."""
    results = FORMULAS["categorical"](frame)
    bundle = baton.convert(results, frame)
    rows = frame.iloc[:4].copy()
    rows.loc[rows.index[0], "x1"] = np.nan
    expected = np.asarray(results.predict(rows))
    actual = _onnx(bundle, rows)
    assert np.isnan(expected[0]) and np.isnan(actual[0])
    np.testing.assert_allclose(actual[1:], expected[1:], rtol=1e-12)
    rows = frame.iloc[:2].copy()
    rows["city"] = ["lima", "rome"]
    with pytest.raises(Exception, match="lima"):
        results.predict(rows)
    actual = _onnx(bundle, rows)
    assert np.isnan(actual[0]) and actual[1] == pytest.approx(
        float(np.asarray(results.predict(rows.iloc[1:]))[0]), rel=1e-12)


def test_dataframe_exog_is_read_by_column_name(frame: Any) -> None:
    exog = sm.add_constant(frame[["x1", "x2"]])
    results = sm.GLM(frame["count"], exog, family=F.Poisson()).fit()
    bundle = baton.convert(results, exog)
    (spec,) = bundle.inputs
    assert spec.columns == ("const", "x1", "x2")
    shuffled = exog[["x2", "const", "x1"]].assign(other=1.0)
    assert baton.check(results, bundle, shuffled, search=False).passed
    np.testing.assert_allclose(_onnx(bundle, shuffled), results.predict(exog), rtol=1e-12)


def test_formula_needs_a_dataframe(frame: Any) -> None:
    results = FORMULAS["numeric"](frame)
    with pytest.raises(SchemaError, match="DataFrame"):
        baton.convert(results, frame[["x1", "x2"]].to_numpy())


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("formula, term", [
    ("y ~ np.log(x1 + 10)", "np.log"),
    ("y ~ I(x1 ** 2)", "I(x1"),
    ("y ~ center(x1)", "center"),
    ("y ~ C(np.round(x1))", "np.round"),
])
def test_formula_transforms_are_refused(formula: str, term: str, frame: Any) -> None:
    results = smf.ols(formula, data=frame).fit()
    with pytest.raises(UnsupportedModelError, match="formula term") as err:
        baton.convert(results, frame)
    assert term in str(err.value) and "column of the DataFrame" in err.value.hint


def test_formulaic_formulas_are_refused(frame: Any) -> None:
    import statsmodels.formula

    options = statsmodels.formula.options
    engine = options.formula_engine
    options.formula_engine = "formulaic"
    try:
        results = smf.ols("y ~ x1", data=frame).fit()
    finally:
        options.formula_engine = engine
    with pytest.raises(UnsupportedModelError, match="formulaic") as err:
        baton.convert(results, frame)
    assert "formula_engine = 'patsy'" in err.value.hint


def test_intercept_only_formula_is_refused(frame: Any) -> None:
    with pytest.raises(UnsupportedModelError, match="intercept only"):
        baton.convert(smf.ols("y ~ 1", data=frame).fit(), frame)


@pytest.mark.parametrize("kind", ["glm-offset", "glm-exposure", "logit-offset"])
def test_offsets_are_refused(kind: str) -> None:
    off = RNG.uniform(0, 1, N)
    if kind == "glm-offset":
        results = sm.GLM(Y_COUNT, XC, family=F.Poisson(), offset=off).fit()
    elif kind == "glm-exposure":
        results = sm.GLM(Y_COUNT, XC, family=F.Poisson(), exposure=off + 0.5).fit()
    else:
        results = sm.Logit(Y_BIN, XC, offset=off).fit(disp=0)
    with pytest.raises(UnsupportedModelError, match="offset|exposure") as err:
        baton.convert(results, XC)
    assert "column of exog" in err.value.hint


def test_other_models_and_links_are_refused() -> None:
    counts = sm.Poisson(Y_COUNT, XC).fit(disp=0)  # the discrete Poisson model
    with pytest.raises(UnsupportedModelError, match="Poisson"):
        baton.convert(counts, XC)
    cauchy = sm.GLM(Y_BIN, XC, family=F.Binomial(L.Cauchy())).fit()
    with pytest.raises(UnsupportedModelError, match="Cauchy"):
        baton.convert(cauchy, XC)
    with pytest.raises(UsageError, match="not a fitted"):
        baton.convert(sm.OLS(Y_REAL, XC), XC)  # the model, not its results
    with pytest.raises(SchemaError, match="exog"):
        baton.convert(sm.OLS(Y_REAL, XC).fit(), X)  # the constant column left out


# -- model files: results.save() is a pickle ---------------------------------------------


def test_saved_results_convert_only_with_trust_pickle(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app
    from baton.converters import find_converter, load_model_file
    from baton.converters.statsmodels import StatsmodelsConverter

    results = sm.GLM(Y_COUNT, XC, family=F.Poisson()).fit()
    path, sample, out = tmp_path / "m.pickle", tmp_path / "x.npy", tmp_path / "m.baton"
    results.save(str(path))
    np.save(sample, XC)
    loaded = load_model_file(path, trust_pickle=True)
    assert isinstance(find_converter(loaded), StatsmodelsConverter)
    np.testing.assert_array_equal(loaded.params, results.params)
    runner = CliRunner()
    refused = runner.invoke(app, ["convert", str(path), "--sample", str(sample), "-o", str(out)])
    assert refused.exit_code == 2, refused.output
    assert "--trust-pickle" in refused.output and not out.exists()
    done = runner.invoke(app, ["convert", str(path), "--sample", str(sample), "-o", str(out),
                               "--trust-pickle"])
    assert done.exit_code == 0, done.output
    bundle = baton.load(out)
    np.testing.assert_allclose(_onnx(bundle, XC), results.predict(XC), rtol=1e-12)
    checked = runner.invoke(app, ["check", str(path), str(out), "--data", str(sample),
                                  "--trust-pickle"])
    assert checked.exit_code == 0, checked.output
    # what remove_data=True keeps (no exog) is enough
    slim = tmp_path / "slim.pickle"
    results.save(str(slim), remove_data=True)
    with open(slim, "rb") as f:
        again = pickle.load(f)  # noqa: S301 - written by this test
    assert baton.check(again, baton.convert(again, XC), XC, search=False).passed
