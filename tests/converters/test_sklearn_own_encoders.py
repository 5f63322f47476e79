"""baton's own converters for scikit-learn encoders, discretisers, functions and target
transforms (baton/converters/_sklearn_own/encoders.py and _splines.py), against
scikit-learn itself: FunctionTransformer (numpy ufuncs), TransformedTargetRegressor,
MissingIndicator, SimpleImputer (integer columns), KBinsDiscretizer, OneHotEncoder,
SplineTransformer; and the refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import baton
from baton.errors import UnsupportedModelError

sk = pytest.importorskip("sklearn")
import onnxruntime as ort  # noqa: E402
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.impute import MissingIndicator, SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, Ridge  # noqa: E402
from sklearn.neighbors import RadiusNeighborsTransformer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
)

from baton.tolerance import Tolerance, rows_agree  # noqa: E402

Xc, yc = make_classification(300, 6, random_state=0)
Xr, yr = make_regression(300, 6, random_state=0)


def run(bundle: Any, X: np.ndarray) -> np.ndarray:
    """The bundle's graph on X in onnxruntime (X cast to the graph's input precision)."""
    sess = ort.InferenceSession(bundle.model_bytes, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    X = np.asarray(X, dtype=np.float32 if inp.type == "tensor(float)" else np.float64)
    return sess.run(None, {inp.name: X})[0]


def dense(a: Any) -> np.ndarray:
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a)


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    ok = rows_agree("transformed", np.asarray(want).reshape(got.shape), got, Tolerance())
    assert ok.all(), (got[~ok][:3], np.asarray(want).reshape(got.shape)[~ok][:3])


def assert_passes(model: Any, X: Any, *, search: bool = True) -> Any:
    bundle = baton.convert(model, X)
    assert bundle.report.passed, bundle.report
    report = baton.check(model, bundle, X, search=search)
    assert report.passed, report
    return bundle


def edges(X: np.ndarray) -> np.ndarray:
    """Rows of X plus its extremes, beyond them, zeros and tiny values."""
    lo, hi = X.min(0), X.max(0)
    extra = [lo, hi, lo - 1, hi + 1, np.zeros(X.shape[1]), np.full(X.shape[1], 1e-300),
             (lo + hi) / 2, lo * 1e3, hi * 1e3]
    return np.vstack([X[:40], *extra])


# -- the coverage setting: default arguments, with the parity search ---------------------

COVERAGE = [
    ("FunctionTransformer", lambda: FunctionTransformer(), Xc, None),
    ("TransformedTargetRegressor", lambda: TransformedTargetRegressor(), Xr, yr),
    ("MissingIndicator", lambda: MissingIndicator(), Xc, None),
    ("KBinsDiscretizer", lambda: KBinsDiscretizer(), Xc, None),
    ("OneHotEncoder", lambda: OneHotEncoder(), Xc, None),
    ("SplineTransformer", lambda: SplineTransformer(), Xc, None),
    ("RadiusNeighborsTransformer", lambda: RadiusNeighborsTransformer(), Xc, None),
]


@pytest.mark.parametrize(("make", "X", "y"), [c[1:] for c in COVERAGE],
                         ids=[c[0] for c in COVERAGE])
def test_coverage_setting_passes_with_the_search(make: Any, X: np.ndarray, y: Any) -> None:
    assert_passes(make().fit(X, y), X)


@pytest.mark.parametrize(("make", "X", "y"), [c[1:] for c in COVERAGE],
                         ids=[c[0] for c in COVERAGE])
def test_coverage_setting_inside_a_pipeline(make: Any, X: np.ndarray, y: Any) -> None:
    model = make_pipeline(StandardScaler(), make()).fit(X, y)
    assert_passes(model, X)


@pytest.mark.parametrize(("make", "X", "y"), [c[1:] for c in COVERAGE],
                         ids=[c[0] for c in COVERAGE])
def test_coverage_setting_at_opset_12(make: Any, X: np.ndarray, y: Any) -> None:
    model = make().fit(X, y)
    bundle = baton.convert(model, X, opset=12)
    assert bundle.report.passed, bundle.report
    assert bundle.manifest["onnx"]["opsets"]["ai.onnx"] <= 12


# -- FunctionTransformer ------------------------------------------------------------------

UFUNCS = [np.log, np.log1p, np.log2, np.log10, np.exp, np.expm1, np.sqrt, np.abs, np.fabs,
          np.negative, np.positive, np.square, np.reciprocal, np.tanh, np.floor, np.ceil,
          np.rint]
WIDE = np.concatenate([-np.logspace(-300, 300, 61), np.logspace(-300, 300, 61),
                       [0.0, -0.0, -1.0, 0.5, 1.5, 2.5, -2.5, 709.0, -745.0,
                        np.inf, -np.inf, np.nan]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("func", UFUNCS, ids=lambda f: f.__name__)
def test_function_transformer_ufunc_matches_numpy_everywhere(func: Any, dtype: Any) -> None:
    X = np.abs(Xc[:50]).astype(dtype) + 0.5
    model = FunctionTransformer(func).fit(X)
    bundle = baton.convert(model, X)
    assert bundle.report.passed, bundle.report
    with np.errstate(all="ignore"):
        wide = WIDE.astype(dtype).reshape(-1, 1).repeat(X.shape[1], axis=1)
        want = model.transform(wide)
    assert_close(run(bundle, wide), want)


@pytest.mark.parametrize("func", [np.log1p, np.expm1], ids=lambda f: f.__name__)
def test_log1p_expm1_are_exact_for_tiny_and_huge_values(func: Any) -> None:
    x = np.concatenate([-np.logspace(-320, 2, 400), np.logspace(-320, 308, 600)])[:, None]
    with np.errstate(all="ignore"):
        x = x[np.isfinite(func(x))][:, None]
    bundle = baton.convert(FunctionTransformer(func).fit(x), x)
    got, want = run(bundle, x), func(x)
    rel = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(float).tiny)
    assert rel.max() <= 4 * np.finfo(float).eps


finite = st.one_of(st.floats(min_value=-1e300, max_value=1e300), st.just(float("nan")),
                   st.floats(min_value=-1e-300, max_value=1e-300))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=20))
def test_function_transformer_hypothesis(rows: list[list[float]]) -> None:
    X = np.asarray(rows, dtype=np.float64)
    for func, bundle in _ft_bundles().items():
        with np.errstate(all="ignore"):
            assert_close(run(bundle, X), func(X))


_FT: dict[Any, Any] = {}


def _ft_bundles() -> dict[Any, Any]:
    if not _FT:
        X = np.abs(Xc[:40, :3]) + 0.1
        for func in (np.log1p, np.expm1, np.sqrt):
            _FT[func] = baton.convert(FunctionTransformer(func).fit(X), X)
    return _FT


def test_function_transformer_in_a_column_transformer() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"n": np.arange(300) % 17, "x": np.abs(Xc[:, 0]),
                          "z": Xc[:, 1]})
    model = make_pipeline(ColumnTransformer([("log", FunctionTransformer(np.log1p), ["n", "x"]),
                                             ("id", FunctionTransformer(), ["z"])]),
                          Ridge()).fit(frame, yc)
    assert_passes(model, frame, search=False)


@pytest.mark.parametrize("func", [lambda x: np.log(1 + x), np.sinc, np.cbrt],
                         ids=["lambda", "sinc", "cbrt"])
def test_function_transformer_refuses_other_callables(func: Any) -> None:
    model = FunctionTransformer(func).fit(Xc)
    with pytest.raises(UnsupportedModelError, match="func=.*numpy ufunc"):
        baton.convert(model, Xc)


def test_function_transformer_refuses_kw_args() -> None:
    model = FunctionTransformer(np.round, kw_args={"decimals": 2}).fit(Xc)
    with pytest.raises(UnsupportedModelError, match="kw_args"):
        baton.convert(model, Xc)


# -- TransformedTargetRegressor ---------------------------------------------------------

TTRS = {
    "log1p/expm1": lambda: TransformedTargetRegressor(Ridge(), func=np.log1p,
                                                      inverse_func=np.expm1),
    "StandardScaler": lambda: TransformedTargetRegressor(Ridge(), transformer=StandardScaler()),
    "MinMaxScaler": lambda: TransformedTargetRegressor(LinearRegression(),
                                                       transformer=MinMaxScaler()),
    "RobustScaler pipeline": lambda: TransformedTargetRegressor(
        make_pipeline(StandardScaler(), Ridge()), transformer=RobustScaler()),
    "forest": lambda: TransformedTargetRegressor(RandomForestRegressor(5, random_state=0),
                                                 transformer=StandardScaler()),
}


@pytest.mark.parametrize("make", list(TTRS.values()), ids=list(TTRS))
def test_transformed_target_regressor(make: Any) -> None:
    y = np.abs(yr) if "log" in str(make().func) else yr
    model = make().fit(Xr, y)
    bundle = assert_passes(model, Xr, search=False)
    assert_close(run(bundle, edges(Xr)), model.predict(edges(Xr)))


def test_transformed_target_regressor_two_targets_and_float32() -> None:
    model = TransformedTargetRegressor(transformer=StandardScaler()).fit(
        Xr.astype(np.float32), np.c_[yr, 3 * yr - 1])
    bundle = assert_passes(model, Xr.astype(np.float32), search=False)
    assert bundle.inputs[0].dtype == "float32"


def test_transformed_target_regressor_refuses_other_transformers() -> None:
    model = TransformedTargetRegressor(transformer=QuantileTransformer(n_quantiles=50)).fit(
        Xr, yr)
    with pytest.raises(UnsupportedModelError, match="QuantileTransformer"):
        baton.convert(model, Xr)
    model = TransformedTargetRegressor(func=lambda y: y / 2, inverse_func=lambda y: 2 * y,
                                       check_inverse=False).fit(Xr, yr)
    with pytest.raises(UnsupportedModelError, match="inverse_func"):
        baton.convert(model, Xr)


# -- MissingIndicator and SimpleImputer -------------------------------------------------

Xn = Xc.copy()
Xn[::5, 1] = np.nan
Xn[::7, 4] = np.nan


@pytest.mark.parametrize("kwargs", [{}, {"features": "all"},
                                    {"missing_values": 0.0, "features": "all"}],
                         ids=["missing-only", "all", "zero"])
def test_missing_indicator(kwargs: dict[str, Any]) -> None:
    X = np.round(Xc) if "missing_values" in kwargs else Xn
    model = MissingIndicator(**kwargs).fit(X)
    bundle = assert_passes(model, X)
    assert bundle.outputs[0].dtype == "bool"
    got = run(bundle, X)
    assert got.dtype == np.bool_ and np.array_equal(got, model.transform(X))


def test_missing_indicator_float32_and_no_missing_column() -> None:
    model = MissingIndicator().fit(Xc.astype(np.float32))  # no column had NaN: [N, 0]
    bundle = assert_passes(model, Xc.astype(np.float32), search=False)
    assert run(bundle, Xc).shape == (300, 0)


@pytest.mark.parametrize("kwargs", [{"add_indicator": True}, {"strategy": "median"},
                                    {"keep_empty_features": True}],
                         ids=["add_indicator", "median", "keep_empty"])
def test_simple_imputer_with_an_empty_column(kwargs: dict[str, Any]) -> None:
    X = Xn.copy()
    X[:, 2] = np.nan  # dropped by scikit-learn (filled 0 with keep_empty_features)
    model = SimpleImputer(**kwargs).fit(X)
    assert_passes(model, X, search=False)


@pytest.mark.parametrize("columns", [["seats", "mrr"], ["mrr", "seats"]],
                         ids=["int-first", "float-first"])
def test_imputer_takes_integer_and_float_columns_in_any_order(
        columns: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    monkeypatch.setenv("LANG", "C")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"seats": rng.integers(1, 50, 200).astype(np.int64),
                          "mrr": rng.normal(100, 30, 200)})
    frame.loc[::7, "mrr"] = np.nan
    model = make_pipeline(ColumnTransformer([("imp", SimpleImputer(), columns)]),
                          Ridge()).fit(frame, rng.normal(size=200))
    bundle = assert_passes(model, frame)
    assert bundle.manifest["precision"] == "float64"


# -- KBinsDiscretizer -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("strategy", ["quantile", "uniform", "kmeans"])
@pytest.mark.parametrize("encode", ["onehot", "onehot-dense", "ordinal"])
def test_kbins_discretizer(encode: str, strategy: str, dtype: Any) -> None:
    X = Xc.astype(dtype)
    model = KBinsDiscretizer(encode=encode, strategy=strategy).fit(X)
    bundle = baton.convert(model, X)
    assert bundle.report.passed, bundle.report
    probe = np.vstack([edges(X), np.stack([b[1:-1] for b in model.bin_edges_], 1)]).astype(dtype)
    assert_close(run(bundle, probe), dense(model.transform(probe)))


_KB: dict[str, Any] = {}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(-4, 4), st.booleans()),
                min_size=1, max_size=30))
def test_kbins_hypothesis_on_and_between_edges(cells: list[tuple[int, float, bool]]) -> None:
    if not _KB:
        _KB["model"] = model = KBinsDiscretizer(n_bins=6, encode="ordinal",
                                                strategy="uniform").fit(Xc)
        _KB["bundle"] = baton.convert(model, Xc)
    model = _KB["model"]
    X = np.zeros((len(cells), 6))
    for r, (j, v, on_edge) in enumerate(cells):
        X[r] = Xc[r]
        X[r, j] = model.bin_edges_[j][int(abs(v) * 2) % 7] if on_edge else v
    assert np.array_equal(run(_KB["bundle"], X), model.transform(X))


# -- OneHotEncoder ----------------------------------------------------------------------

Xi = np.round(Xc * 2)

OHES = [{}, {"drop": "first"}, {"drop": "if_binary"}, {"handle_unknown": "ignore"},
        {"handle_unknown": "ignore", "drop": "first"},
        {"handle_unknown": "infrequent_if_exist", "min_frequency": 10},
        {"handle_unknown": "infrequent_if_exist", "max_categories": 3, "drop": "first"},
        {"handle_unknown": "warn", "min_frequency": 20}]


@pytest.mark.parametrize("kwargs", OHES, ids=lambda k: ",".join(f"{a}={b}" for a, b in
                                                                k.items()) or "default")
def test_one_hot_encoder_options(kwargs: dict[str, Any]) -> None:
    model = OneHotEncoder(**kwargs).fit(Xi)
    bundle = assert_passes(model, Xi, search=False)
    probe = np.vstack([Xi[:50], Xi.max(0) + 1, Xi.min(0) - 0.5])  # unseen values
    got = run(bundle, probe)
    if model.handle_unknown == "error":  # scikit-learn raises; the graph gives zeros
        assert_close(got[:50], dense(model.transform(probe[:50])))
        n = model._n_features_outs[0]
        assert not got[50:, :n].any()
    else:
        assert_close(got, dense(model.transform(probe)))


def test_one_hot_encoder_nan_category_and_float32() -> None:
    X = Xi.copy()
    X[::9, 0] = np.nan
    assert_passes(OneHotEncoder(handle_unknown="ignore").fit(X), X)
    assert_passes(OneHotEncoder(handle_unknown="ignore").fit(Xi.astype(np.float32)),
                  Xi.astype(np.float32), search=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.one_of(st.integers(-5, 5).map(float), st.just(np.nan),
                                   st.floats(-6, 6)), min_size=3, max_size=3),
                min_size=1, max_size=25))
def test_one_hot_encoder_hypothesis_with_unknowns(rows: list[list[float]]) -> None:
    if "ohe" not in _KB:
        X = np.round(Xc[:, :3] * 2)
        X[::11, 2] = np.nan
        _KB["ohe"] = model = OneHotEncoder(handle_unknown="ignore", drop="if_binary").fit(X)
        _KB["ohe_bundle"] = baton.convert(model, X)
    X = np.asarray(rows, dtype=np.float64)
    assert np.array_equal(run(_KB["ohe_bundle"], X), dense(_KB["ohe"].transform(X)))


def test_one_hot_encoder_text_and_integers_in_a_column_transformer() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"city": rng.choice(["Lyon", "Oslo", "Lima"], 300),
                          "n": rng.integers(0, 4, 300).astype(np.int64), "x": Xc[:, 0]})
    model = make_pipeline(
        ColumnTransformer([("ohe", OneHotEncoder(handle_unknown="ignore", drop="first"),
                            ["city", "n"]), ("num", StandardScaler(), ["x"])]),
        Ridge()).fit(frame, yc)
    assert_passes(model, frame)


# -- SplineTransformer --------------------------------------------------------------------


@pytest.mark.parametrize("knots", ["uniform", "quantile"])
@pytest.mark.parametrize("extrapolation", ["constant", "linear", "continue", "periodic",
                                           "error"])
def test_spline_transformer(extrapolation: str, knots: str) -> None:
    model = SplineTransformer(extrapolation=extrapolation, knots=knots).fit(Xc)
    bundle = baton.convert(model, Xc)
    assert bundle.report.passed, bundle.report
    if extrapolation != "error":  # scikit-learn raises beyond the knots
        assert_close(run(bundle, edges(Xc)), model.transform(edges(Xc)))


@pytest.mark.parametrize("kwargs", [{"degree": 1, "extrapolation": "linear"},
                                    {"degree": 2, "n_knots": 7, "include_bias": False},
                                    {"degree": 4, "extrapolation": "periodic"},
                                    {"degree": 0, "extrapolation": "continue"},
                                    {"sparse_output": True}], ids=str)
def test_spline_transformer_options(kwargs: dict[str, Any]) -> None:
    model = SplineTransformer(**kwargs).fit(Xc)
    bundle = assert_passes(model, Xc, search=False)
    assert_close(run(bundle, edges(Xc)), dense(model.transform(edges(Xc))))


def test_spline_transformer_missing_zeros_and_float32() -> None:
    model = SplineTransformer(handle_missing="zeros").fit(Xn)
    assert_passes(model, Xn)
    X32 = Xc.astype(np.float32)
    bundle = assert_passes(SplineTransformer().fit(X32), X32, search=False)
    assert bundle.inputs[0].dtype == "float32"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(-10, 10), min_size=6, max_size=6), min_size=1,
                max_size=20))
def test_spline_hypothesis_beyond_the_knots(rows: list[list[float]]) -> None:
    if "spline" not in _KB:
        _KB["spline"] = model = SplineTransformer(extrapolation="linear", n_knots=4).fit(Xc)
        _KB["spline_bundle"] = baton.convert(model, Xc)
    X = np.asarray(rows)
    assert_close(run(_KB["spline_bundle"], X), _KB["spline"].transform(X))


# -- RadiusNeighborsTransformer ------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"mode": "connectivity", "radius": 2.0}, {"radius": 2.0, "algorithm": "brute"},
    {"radius": 3.0, "metric": "manhattan", "algorithm": "ball_tree"},
    {"radius": 1.5, "metric": "chebyshev"}, {"radius": 2.0, "p": 3}], ids=str)
def test_radius_neighbors_transformer(kwargs: dict[str, Any]) -> None:
    model = RadiusNeighborsTransformer(**kwargs).fit(Xc)
    bundle = assert_passes(model, Xc, search=False)
    got = run(bundle, edges(Xc))
    assert got.shape == (len(edges(Xc)), 300) and (got == 0).mean() > 0.5
    assert_close(got, dense(model.transform(edges(Xc))))


def test_radius_neighbors_transformer_refuses_a_callable_metric() -> None:
    model = RadiusNeighborsTransformer(metric=lambda a, b: float(np.abs(a - b).sum())).fit(
        Xc[:50])
    with pytest.raises(UnsupportedModelError, match="metric"):
        baton.convert(model, Xc[:50])


def test_missing_indicator_refuses_a_text_marker() -> None:
    X = np.array([["a", ""], ["", "b"], ["c", "d"]], dtype=object)
    model = MissingIndicator(missing_values="", features="all").fit(X)
    with pytest.raises(UnsupportedModelError, match="missing_values"):
        baton.convert(model, X)


def test_identity_function_transformer_passes_text_through() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"city": rng.choice(["Lyon", "Oslo", "Lima"], 200), "x": Xc[:200, 0]})
    model = make_pipeline(
        ColumnTransformer([("txt", make_pipeline(FunctionTransformer(), OneHotEncoder()),
                            ["city"]), ("num", FunctionTransformer(np.tanh), ["x"])]),
        Ridge()).fit(frame, yc[:200])
    assert_passes(model, frame, search=False)
