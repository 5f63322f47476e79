"""Native categorical features of LightGBM, XGBoost and CatBoost models fitted on pandas
DataFrames, converted exactly: the graph takes each category column as text (or, for
integer categories, as the category's value) and maps it to the training code; unseen
categories and missing values behave as the library does. Also XGBClassifier model files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton
from baton.errors import SchemaError, UnsupportedModelError
from baton.schema import to_feeds

pd = pytest.importorskip("pandas")
ort = pytest.importorskip("onnxruntime")

TEXT = ["d", "a", "e", "c", "b"]  # a training dtype in no sorted order
INTS = [3, 7, 10]


def _frame(n: int = 240, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x0": rng.normal(size=n),
        "c1": pd.Categorical(rng.choice(TEXT, n), categories=TEXT),
        "c2": pd.Categorical(rng.choice(INTS, n), categories=INTS),
        "x1": rng.normal(size=n),
    })
    frame.loc[::7, "c1"] = np.nan
    frame.loc[::11, "x0"] = np.nan
    return frame


def _targets(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    raw = (frame.x0.fillna(0.0) + 2.0 * frame.c1.isin(["b", "e"]) + 1.0 * (frame.c2 == 7)
           - 0.5 * (frame.c1 == "a") + 0.3 * frame.x1).to_numpy()
    return (raw > 0.5).astype(int), raw


FRAME = _frame()
Y_CLASS, Y_REG = _targets(FRAME)


def _check_frame(unseen: bool) -> Any:
    """Rows of another draw: the data's own dtypes in another category order, and (for a
    library that takes them) a category the model was not trained on."""
    frame = _frame(60, seed=1)
    frame["c1"] = frame["c1"].cat.reorder_categories(TEXT[::-1])
    frame["c2"] = frame["c2"].cat.reorder_categories(INTS[::-1])
    if unseen:
        frame["c1"] = frame["c1"].cat.add_categories(["zz"])
        frame.loc[:4, "c1"] = "zz"
    return frame


def _onnx(bundle: Any, data: Any) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(bundle.model_bytes)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, to_feeds(data, bundle.typed_manifest.inputs))))


def _assert_inputs(bundle: Any) -> None:
    inputs = {s.column: s.dtype for s in bundle.typed_manifest.inputs}
    assert inputs == {"x0": "float64", "c1": "string", "c2": "float64", "x1": "float64"}


def _close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64),
                               np.asarray(b, dtype=np.float64), rtol=0, atol=1e-12)


# -- LightGBM ------------------------------------------------------------------------------

lgb = pytest.importorskip("lightgbm")
LGB = dict(n_estimators=30, min_child_samples=5, min_data_per_group=5, cat_smooth=1.0,
           verbose=-1, n_jobs=1)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_lightgbm_category_columns(task: str) -> None:
    model = (lgb.LGBMClassifier(**LGB).fit(FRAME, Y_CLASS) if task == "classifier"
             else lgb.LGBMRegressor(**LGB).fit(FRAME, Y_REG))
    dump = model.booster_.dump_model()
    assert '"decision_type": "=="' in json.dumps(dump), "the trees should split on categories"
    bundle = baton.convert(model, FRAME)
    assert bundle.report.passed, bundle.report
    _assert_inputs(bundle)
    check = _check_frame(unseen=True)
    report = baton.check(model, bundle, check)  # the default search included
    assert report.passed, report
    # LightGBM re-maps the data's categories to its pandas_categorical: an unseen one is
    # NaN, like a missing value
    as_missing = check.copy()
    as_missing.loc[:4, "c1"] = np.nan
    out = _onnx(bundle, check)
    if task == "classifier":
        expected = model.predict_proba(check)
        np.testing.assert_array_equal(expected, model.predict_proba(as_missing))
        _close(out["probabilities"], expected)
        np.testing.assert_array_equal(out["label"], model.predict(check))
    else:
        np.testing.assert_array_equal(model.predict(check), model.predict(as_missing))
        _close(out["prediction"], model.predict(check))


def test_lightgbm_booster_trained_on_a_frame() -> None:
    data = lgb.Dataset(FRAME, Y_REG, params={"min_data_per_group": 5, "verbose": -1})
    booster = lgb.train({"objective": "regression", "min_data_in_leaf": 5, "verbose": -1,
                         "num_threads": 1, "cat_smooth": 1.0}, data, num_boost_round=20)
    bundle = baton.convert(booster, FRAME)
    assert bundle.report.passed, bundle.report
    _assert_inputs(bundle)
    report = baton.check(booster, bundle, _check_frame(unseen=True), search=False)
    assert report.passed, report


def test_lightgbm_category_that_reads_like_missing_is_refused() -> None:
    frame = FRAME.copy()
    frame["c1"] = frame["c1"].cat.rename_categories({"a": "nan"})
    model = lgb.LGBMRegressor(**{**LGB, "n_estimators": 3}).fit(frame, Y_REG)
    with pytest.raises(UnsupportedModelError, match="missing value") as err:
        baton.convert(model, frame)
    assert "'nan'" in str(err.value) and "rename" in err.value.hint


def test_lightgbm_sample_without_the_category_columns_is_refused() -> None:
    model = lgb.LGBMRegressor(**{**LGB, "n_estimators": 3}).fit(FRAME, Y_REG)
    frame = FRAME.copy()
    frame["c2"] = frame["c2"].astype(float)
    with pytest.raises(SchemaError, match="category columns"):
        baton.convert(model, frame)


# -- XGBoost -------------------------------------------------------------------------------

xgb = pytest.importorskip("xgboost")
XGB = dict(n_estimators=30, max_depth=3, enable_categorical=True, tree_method="hist", n_jobs=1)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_xgboost_category_columns(task: str) -> None:
    model = (xgb.XGBClassifier(**XGB, max_cat_to_onehot=1).fit(FRAME, Y_CLASS)
             if task == "classifier" else xgb.XGBRegressor(**XGB).fit(FRAME, Y_REG))
    doc = json.loads(bytes(model.get_booster().save_raw("json")))
    trees = doc["learner"]["gradient_booster"]["model"]["trees"]
    assert any(1 in t["split_type"] for t in trees), "the trees should split on categories"
    bundle = baton.convert(model, FRAME)
    assert bundle.report.passed, bundle.report
    _assert_inputs(bundle)
    check = _check_frame(unseen=False)
    # categories the model was not trained on, below the last one: XGBoost's re-coding
    # (a binary search in the sorted training categories) takes the next one up
    check["c1"] = check["c1"].cat.add_categories(["bb", "A", ""])
    check.loc[:2, "c1"] = "bb"
    check.loc[3, "c1"], check.loc[4, "c1"] = "A", ""
    check["c2"] = check["c2"].cat.add_categories([5, 0])
    check.loc[5:7, "c2"] = 5
    check.loc[8, "c2"] = 0
    report = baton.check(model, bundle, check)  # the default search included
    assert report.passed, report
    out = _onnx(bundle, check)
    expected = check.assign(c1=check["c1"].replace({"bb": "c", "A": "a", "": "a"}).astype(
        pd.CategoricalDtype(TEXT)), c2=check["c2"].replace({5: 7, 0: 3}).astype(
        pd.CategoricalDtype(INTS)))
    if task == "classifier":
        np.testing.assert_array_equal(model.predict_proba(check), model.predict_proba(expected))
        _close(out["raw_scores"].ravel(), model.predict(check, output_margin=True))
    else:
        np.testing.assert_array_equal(model.predict(check), model.predict(expected))
        _close(out["prediction"], model.predict(check))
    # a dtype built from the training categories turns an unseen value into NaN
    check = _check_frame(unseen=False)
    values = check["c1"].astype(object).to_numpy(copy=True)
    values[:5] = "zz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns of values outside the categories
        unseen = check.assign(c1=pd.Categorical(values, categories=TEXT))
    assert unseen["c1"][:5].isna().all()
    out = _onnx(bundle, unseen)
    if task == "classifier":  # the margins exactly; XGBoost's probabilities are float32
        _close(out["raw_scores"].ravel(), model.predict(unseen, output_margin=True))
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(unseen),
                                   rtol=0, atol=1e-7)
        np.testing.assert_array_equal(out["label"], model.predict(unseen))
    else:
        _close(out["prediction"], model.predict(unseen))


def test_xgboost_refuses_a_category_above_the_last() -> None:
    """XGBoost itself refuses a frame whose dtype holds a category above every training
    one: the check reports such rows as outside the model's domain, and passes."""
    model = xgb.XGBRegressor(**{**XGB, "n_estimators": 5}).fit(FRAME, Y_REG)
    frame = _check_frame(unseen=True)  # "zz" sorts after "e"
    with pytest.raises(Exception, match="not in the training set"):
        model.predict(frame)
    bundle = baton.convert(model, FRAME)
    with pytest.raises(SchemaError, match="rejected the data"):
        baton.check(model, bundle, frame, search=False)
    report = baton.check(model, bundle, _check_frame(unseen=False), search_budget="200")
    assert report.passed, report


def test_xgboost_booster_trained_on_a_frame() -> None:
    data = xgb.DMatrix(FRAME, Y_REG, enable_categorical=True)
    booster = xgb.train({"max_depth": 3, "nthread": 1}, data, num_boost_round=20)
    bundle = baton.convert(booster, FRAME)
    assert bundle.report.passed, bundle.report
    _assert_inputs(bundle)
    report = baton.check(booster, bundle, _check_frame(unseen=False), search=False)
    assert report.passed, report


def test_xgboost_codes_matrix_still_converts() -> None:
    model = xgb.XGBRegressor(**{**XGB, "n_estimators": 10}).fit(FRAME, Y_REG)
    codes = np.column_stack([FRAME.x0, FRAME.c1.cat.codes.replace(-1, np.nan),
                             FRAME.c2.cat.codes, FRAME.x1]).astype(np.float64)
    bundle = baton.convert(model, codes)
    assert bundle.report.passed, bundle.report
    _close(_onnx(bundle, codes)["prediction"], model.predict(FRAME))


def test_xgboost_non_ascii_categories_are_refused() -> None:
    frame = FRAME.copy()
    frame["c1"] = frame["c1"].cat.rename_categories({"a": "é"})
    model = xgb.XGBRegressor(**{**XGB, "n_estimators": 3}).fit(frame, Y_REG)
    with pytest.raises(UnsupportedModelError, match="ASCII"):
        baton.convert(model, frame)


@pytest.mark.parametrize("classes", [2, 3])
def test_xgbclassifier_json_file_gives_label_and_probabilities(classes: int,
                                                              tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app
    from baton.converters import load_model_file

    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5][: classes - 1])
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y)
    model.save_model(tmp_path / "model.json")
    loaded = load_model_file(tmp_path / "model.json")
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    frame.to_parquet(tmp_path / "data.parquet")
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(tmp_path / "model.json"), "--sample",
                              str(tmp_path / "data.parquet"), "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    bundle = baton.load(tmp_path / "m.baton")
    kinds = {o.name: o.kind for o in bundle.typed_manifest.outputs}
    assert kinds["label"] == "label" and kinds["probabilities"] == "probabilities"
    got = _onnx(bundle, X)
    np.testing.assert_array_equal(got["label"], model.predict(X))
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(X), rtol=0, atol=1e-7)
    out = runner.invoke(app, ["check", str(tmp_path / "model.json"), str(tmp_path / "m.baton"),
                              "--data", str(tmp_path / "data.parquet"),
                              "--search-budget", "200"])
    assert out.exit_code == 0, out.output


def test_xgbregressor_json_file_stays_a_booster(tmp_path: Path) -> None:
    from baton.converters import load_model_file

    rng = np.random.default_rng(6)
    X = rng.normal(size=(100, 3))
    xgb.XGBRegressor(n_estimators=3, n_jobs=1).fit(X, X[:, 0]).save_model(
        tmp_path / "model.json")
    assert isinstance(load_model_file(tmp_path / "model.json"), xgb.Booster)


# -- CatBoost ------------------------------------------------------------------------------

cb = pytest.importorskip("catboost")
CB = dict(iterations=30, depth=3, verbose=False, thread_count=1, allow_writing_files=False)


def _cb_frame(n: int = 240, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x0": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "c1": rng.choice(["a", "b", "c", "d"], n),  # text (object)
        "c2": pd.Categorical(rng.choice(["u", "v", "w"], n)),  # pandas category
        "x1": rng.normal(size=n),
        "c3": rng.choice([4, 9, 12], n),  # integer categories
    })


def _cb_target(frame: Any) -> np.ndarray:
    return (frame.x0.fillna(0.0) + 2.0 * (frame.c1 == "b") + (frame.c2 == "w")
            + (frame.c3 == 9) - 0.5).to_numpy()


CB_FRAME = _cb_frame()
CB_CATS = ["c1", "c2", "c3"]


@pytest.mark.parametrize("kind", ["classifier", "depthwise-regressor"])
def test_catboost_one_hot_categorical_features(kind: str) -> None:
    y = _cb_target(CB_FRAME)
    if kind == "classifier":
        model = cb.CatBoostClassifier(**CB, one_hot_max_size=10, cat_features=CB_CATS).fit(
            CB_FRAME, (y > 0).astype(int))
    else:
        model = cb.CatBoostRegressor(**CB, one_hot_max_size=10, cat_features=CB_CATS,
                                     grow_policy="Depthwise").fit(CB_FRAME, y)
    from baton.converters.catboost import _dump

    dump = _dump(model)
    assert "OneHotFeature" in json.dumps(dump["oblivious_trees" if kind == "classifier"
                                              else "trees"])
    assert not dump.get("ctr_data") and not dump["features_info"].get("ctrs")
    bundle = baton.convert(model, CB_FRAME)
    assert bundle.report.passed, bundle.report
    inputs = {s.column: s.dtype for s in bundle.typed_manifest.inputs}
    assert inputs == {"x0": "float64", "c1": "string", "c2": "string", "x1": "float64",
                      "c3": "float64"}
    check = _cb_frame(60, seed=1)
    check.loc[:4, "c1"] = "zz"  # unseen: its hash is no split's value
    check.loc[5:9, "c3"] = 5
    report = baton.check(model, bundle, check, search_budget="400")
    assert report.passed, report
    out = _onnx(bundle, check)
    if kind == "classifier":
        _close(out["probabilities"], model.predict_proba(check))
        np.testing.assert_array_equal(out["label"], model.predict(check))
    else:
        _close(out["prediction"], model.predict(check))


def test_catboost_sample_must_hold_the_split_categories() -> None:
    model = cb.CatBoostRegressor(**{**CB, "iterations": 10}, one_hot_max_size=10,
                                 cat_features=CB_CATS).fit(CB_FRAME, _cb_target(CB_FRAME))
    with pytest.raises(UnsupportedModelError, match="lacks categories"):
        baton.convert(model, CB_FRAME[CB_FRAME.c1 != "b"])


def test_catboost_ctr_features_are_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    rng = np.random.default_rng(2)
    city = rng.integers(0, 12, len(CB_FRAME))
    frame = CB_FRAME.assign(city=[f"city{i}" for i in city])
    model = cb.CatBoostRegressor(**{**CB, "iterations": 10}, one_hot_max_size=4,
                                 cat_features=[*CB_CATS, "city"]).fit(frame, 5.0 * city)
    with pytest.raises(UnsupportedModelError, match="CTR") as err:
        baton.convert(model, frame)
    assert "'city'" in str(err.value) and "one_hot_max_size=4" in str(err.value)
    assert "one_hot_max_size" in err.value.hint
    model.save_model(str(tmp_path / "model.cbm"))
    frame.to_csv(tmp_path / "data.csv", index=False)
    out = CliRunner().invoke(app, ["convert", str(tmp_path / "model.cbm"), "--sample",
                                   str(tmp_path / "data.csv"), "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 2, out.output
    assert "CTR" in out.output


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_model_file_with_a_category_column_via_cli(library: str, tmp_path: Path) -> None:
    """The user path: a native model file and a Parquet file (which keeps text categories
    and their order); `baton convert` then `baton check` pass."""
    from typer.testing import CliRunner

    from baton.cli import app

    frame = FRAME.drop(columns="c2")
    frame.to_parquet(tmp_path / "data.parquet")
    if library == "lightgbm":
        path = tmp_path / "model.txt"
        lgb.LGBMClassifier(**LGB).fit(frame, Y_CLASS).booster_.save_model(path)
    else:
        path = tmp_path / "model.json"
        xgb.XGBClassifier(**XGB).fit(frame, Y_CLASS).save_model(path)
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(path), "--sample", str(tmp_path / "data.parquet"),
                              "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    bundle = baton.load(tmp_path / "m.baton")
    assert {s.column: s.dtype for s in bundle.typed_manifest.inputs}["c1"] == "string"
    out = runner.invoke(app, ["check", str(path), str(tmp_path / "m.baton"), "--data",
                              str(tmp_path / "data.parquet"), "--search-budget", "300"])
    assert out.exit_code == 0, out.output
