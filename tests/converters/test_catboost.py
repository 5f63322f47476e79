"""CatBoost through baton's tree emitter: exact on float64 data, NaN and split borders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import baton
from baton.errors import UnsupportedModelError

cb = pytest.importorskip("catboost")

import baton.converters.catboost as cbconv  # noqa: E402  (registers the converter)
from tests.converters.tree_data import (  # noqa: E402
    assert_exact,
    class_target,
    enterprise_matrix,
    regression_target,
    rows_strategy,
    threshold_rows,
)

X = enterprise_matrix(2000)
#: NaN also in the large-magnitude columns (date, amount), for the nan_mode models
XN = X.copy()
XN[np.random.default_rng(7).random(X.shape) < 0.08 * np.isin(np.arange(6), [0, 3])] = np.nan
FIT = {"iterations": 40, "depth": 6, "thread_count": 2, "verbose": False,
       "allow_writing_files": False, "random_seed": 0}


def _classifier(n_classes: int, data: np.ndarray = X, **params: Any) -> Any:
    return cb.CatBoostClassifier(**{**FIT, **params}).fit(data, class_target(X, n_classes))


MODELS = {
    "regression": lambda: cb.CatBoostRegressor(**FIT).fit(X, regression_target(X)),
    "binary": lambda: _classifier(2),
    "multiclass": lambda: _classifier(3),
    "nan-min": lambda: _classifier(2, XN, nan_mode="Min"),
    "nan-max": lambda: _classifier(3, XN, nan_mode="Max"),
    "poisson": lambda: cb.CatBoostRegressor(**FIT, loss_function="Poisson").fit(
        X, np.exp(regression_target(X) / 10)),
    "multi-rmse": lambda: cb.CatBoostRegressor(**FIT, loss_function="MultiRMSE").fit(
        X, np.column_stack([regression_target(X), X[:, 5]])),
    "one-vs-all": lambda: _classifier(3, loss_function="MultiClassOneVsAll"),
    "depthwise": lambda: _classifier(3, grow_policy="Depthwise", nan_mode="Max"),
    "string-labels": lambda: cb.CatBoostClassifier(**FIT).fit(
        X, np.array(["stay", "churn"])[class_target(X, 2)]),
}
OBLIVIOUS = ["regression", "binary", "multiclass", "nan-min", "nan-max"]
_CACHE: dict[str, tuple[Any, Any]] = {}


def converted(kind: str) -> tuple[Any, Any]:
    if kind not in _CACHE:
        model = MODELS[kind]()
        _CACHE[kind] = (model, baton.convert(model, data(kind)))
    return _CACHE[kind]


def data(kind: str) -> np.ndarray:
    return XN if kind.startswith("nan-") else X


def _dump(model: Any, tmp: Path) -> dict[str, Any]:
    model.save_model(str(tmp / "model.json"), format="json")
    return dict(json.loads((tmp / "model.json").read_text()))


def _borders(model: Any, tmp: Path) -> dict[int, np.ndarray]:
    """Split borders read from CatBoost's own JSON (not from baton)."""
    dump = _dump(model, tmp)
    out: dict[int, list[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split" in node:
            walk(node["left"])
            walk(node["right"])
            node = node["split"]
        if "float_feature_index" in node:
            out.setdefault(node["float_feature_index"], []).append(float(node["border"]))

    for tree in dump.get("oblivious_trees", []):
        for s in tree["splits"]:
            walk(s)
    for tree in dump.get("trees", []):
        walk(tree)
    return {k: np.unique(v) for k, v in out.items()}


#: NaN, infinities, values that float32 rounds to +-inf or to +-FLT_MAX (CatBoost's border
#: for nan_mode Min/Max), and signed zeros
HALF_PAST_MAX = 3.4028235677973366e38  # float32: FLT_MAX + half an ulp, rounds to inf
ODD_VALUES = [np.nan, np.inf, -np.inf, 1e300, -1e300, HALF_PAST_MAX, -HALF_PAST_MAX,
              float(np.nextafter(HALF_PAST_MAX, 0)), -float(np.nextafter(HALF_PAST_MAX, 0)),
              -0.0, 0.0]


def _probe(model: Any, tmp: Path, base: np.ndarray = X) -> np.ndarray:
    """Rows on every border and its neighbours, and each column set to each odd value."""
    on_borders = threshold_rows(_borders(model, tmp), base)
    n_cols, n_odd = base.shape[1], len(ODD_VALUES)
    odd = np.repeat(base[:20], n_cols * n_odd, axis=0)
    cells = np.tile(np.arange(n_cols * n_odd), 20)
    odd[np.arange(len(odd)), cells % n_cols] = np.asarray(ODD_VALUES)[cells // n_cols]
    return np.vstack([on_borders, odd])


@pytest.mark.parametrize("kind", list(MODELS))
def test_converts_exactly(kind: str, tmp_path: Path) -> None:
    model, bundle = converted(kind)
    assert_exact(bundle.report)
    assert_exact(baton.check(model, bundle, _probe(model, tmp_path, data(kind)), search=False))


def _leaf_index_graph(model: Any, tmp: Path) -> Any:
    """baton's reading of the trees with each leaf's weight set to its CatBoost leaf index
    and one output per tree: onnxruntime then says which leaf each row reaches."""
    from baton.converters._trees import Ensemble, Head, Leaf, Tree, emit
    from baton.runtime.session import make_ort_session

    dump = _dump(model, tmp)
    columns = {f["feature_index"]: f["flat_feature_index"]
               for f in dump["features_info"]["float_features"]}
    nan_true = {f["feature_index"] for f in dump["features_info"]["float_features"]
                if f["nan_value_treatment"] == "AsTrue"}
    trees = []
    for k, info in enumerate(dump["oblivious_trees"]):
        indexed = {**info, "leaf_values": list(range(2 ** len(info["splits"])))}
        tree = cbconv._oblivious(indexed, columns, nan_true, 1.0, 1)

        def to_target(c: int | Leaf, k: int = k) -> int | Leaf:
            return Leaf.scalar(c.weights[0][1], k) if isinstance(c, Leaf) else c

        for s in tree.nodes:
            s.true, s.false = to_target(s.true), to_target(s.false)
        trees.append(Tree(tree.nodes, to_target(tree.root)))
    ens = Ensemble(n_features=X.shape[1], n_targets=len(trees), trees=trees,
                   round_to_float32=True)
    return make_ort_session(emit(ens, Head("regression", flatten=False)).SerializeToString())


@pytest.mark.parametrize("kind", OBLIVIOUS)
def test_every_row_reaches_catboosts_leaf(kind: str, tmp_path: Path) -> None:
    """No branch flips: per tree, the leaf baton's graph reaches is CatBoost's own
    (calc_leaf_indexes), on the data, on every border's neighbours and with NaN."""
    model, _ = converted(kind)
    rows = np.vstack([data(kind), _probe(model, tmp_path, data(kind))])
    sess = _leaf_index_graph(model, tmp_path)
    (ours,) = sess.run(None, {"input": rows})
    np.testing.assert_array_equal(ours.astype(np.int64), model.calc_leaf_indexes(rows))


def _strategy(kind: str) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return rows_strategy(_borders(converted(kind)[0], Path(tmp)), data(kind))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_strategy("regression"))
def test_any_rows_agree_regression(rows: np.ndarray) -> None:
    model, bundle = converted("regression")
    assert_exact(baton.check(model, bundle, rows, search=False))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_strategy("nan-max"))
def test_any_rows_agree_multiclass_nan_max(rows: np.ndarray) -> None:
    model, bundle = converted("nan-max")
    assert_exact(baton.check(model, bundle, rows, search=False))


def test_catboost_onnx_export_is_float32_where_baton_is_exact(tmp_path: Path) -> None:
    """CatBoost's own ONNX export (float32 input, float32 borders, ``BRANCH_GT``) takes the
    same branches, so its labels agree; but it stores leaves and bias in float32 and sums in
    float32, which misses a 1e-6-of-range gate on a regressor with a large offset (here a
    timestamp-like target), where baton's float64 graph passes."""
    import onnxruntime as ort

    def export(model: Any) -> Any:
        model.save_model(str(tmp_path / "model.onnx"), format="onnx")
        return ort.InferenceSession(str(tmp_path / "model.onnx"),
                                    providers=["CPUExecutionProvider"])

    model, _ = converted("multiclass")
    rows = np.vstack([X, _probe(model, tmp_path)])
    with np.errstate(over="ignore"):
        rows32 = rows.astype(np.float32)
    label = export(model).run(["label"], {"features": rows32})[0]
    assert (label.ravel() == model.predict(rows).ravel()).all()

    target = 1.7e9 + (X[:, 1] - 1.7e9) / 1e3 + regression_target(X)
    model = cb.CatBoostRegressor(**FIT).fit(X, target)
    theirs = export(model).run(None, {"features": X.astype(np.float32)})[0].ravel()
    native = model.predict(X)
    gate = 1e-6 * (native.max() - native.min())
    assert np.abs(theirs - native).max() > 10 * gate
    ours = baton.check(model, baton.convert(model, X), X, search=False)
    assert_exact(ours)
    assert ours.output("prediction").max_abs < gate


def test_model_file_via_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    model, _ = converted("nan-max")
    model.save_model(str(tmp_path / "model.cbm"))
    np.save(tmp_path / "data.npy", XN)
    loaded = baton.converters.load_model_file(tmp_path / "model.cbm")
    assert isinstance(loaded, cb.CatBoostClassifier)
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(tmp_path / "model.cbm"), "--sample",
                              str(tmp_path / "data.npy"), "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["check", str(tmp_path / "model.cbm"), str(tmp_path / "m.baton"),
                              "--data", str(tmp_path / "data.npy")])
    assert out.exit_code == 0, out.output
    assert baton.verify(tmp_path / "m.baton")


def test_regressor_file_and_plain_catboost_object(tmp_path: Path) -> None:
    model, _ = converted("regression")
    model.save_model(str(tmp_path / "model.cbm"))
    assert isinstance(baton.converters.load_model_file(tmp_path / "model.cbm"),
                      cb.CatBoostRegressor)
    plain = cb.CatBoost({**FIT, "loss_function": "Logloss"}).fit(X, class_target(X, 2))
    bundle = baton.convert(plain, X)
    assert bundle.report is not None
    assert_exact(bundle.report)
    assert {o.name for o in bundle.report.outputs} == {"label", "probabilities", "raw_scores"}


def test_dataframe_columns_by_name() -> None:
    pd = pytest.importorskip("pandas")
    from tests.converters.tree_data import COLUMNS

    frame = pd.DataFrame(X, columns=COLUMNS)
    model = cb.CatBoostRegressor(**{**FIT, "iterations": 10}).fit(frame, regression_target(X))
    shuffled = frame[COLUMNS[::-1]].assign(extra=1.0)
    bundle = baton.convert(model, shuffled)
    assert_exact(bundle.report)


def _cat_model() -> tuple[Any, Any]:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"score": X[:, 4], "city": rng.choice(["Lyon", "Oslo", "Pune"],
                                                               len(X))})
    model = cb.CatBoostRegressor(**{**FIT, "iterations": 5, "depth": 3},
                                 cat_features=["city"]).fit(frame, regression_target(X))
    return model, frame


def test_ctr_categorical_features_are_refused(tmp_path: Path) -> None:
    """CatBoost's default for a column with more categories than one_hot_max_size is CTR
    statistics: refused, naming the column and the remedy (one-hot encoded categorical
    features convert: tests/converters/test_boosted_categoricals.py)."""
    from typer.testing import CliRunner

    from baton.cli import app

    model, frame = _cat_model()
    with pytest.raises(UnsupportedModelError) as err:
        baton.convert(model, frame)
    assert "CTR" in str(err.value) and "'city'" in str(err.value)
    assert "one_hot_max_size" in str(err.value.hint)
    model.save_model(str(tmp_path / "model.cbm"))
    frame.to_csv(tmp_path / "data.csv", index=False)
    out = CliRunner().invoke(app, ["convert", str(tmp_path / "model.cbm"), "--sample",
                                   str(tmp_path / "data.csv"), "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 2, out.output
    assert "CTR" in out.output


def test_unsupported_loss_and_threshold_are_refused() -> None:
    model = cb.CatBoostRegressor(**{**FIT, "iterations": 3},
                                 loss_function="RMSEWithUncertainty").fit(X, regression_target(X))
    with pytest.raises(UnsupportedModelError, match="RMSEWithUncertainty"):
        baton.convert(model, X)
    model = cb.CatBoostClassifier(**{**FIT, "iterations": 3}).fit(X, class_target(X, 2))
    model.set_probability_threshold(0.7)
    with pytest.raises(UnsupportedModelError, match="probability threshold"):
        baton.convert(model, X)
