"""The models of the "models people actually bring" issue, converted and checked in one
process that runs under ``LANG=C LC_ALL=C`` (no en_US.UTF-8 locale, as on slim images and
in CI). Run by tests/test_lang_c.py; prints one JSON object: case -> "ok" or the error.

Each case converts with ``baton.convert`` and checks with ``baton.check`` (the default
parity search unless the case says otherwise), on data the case builds itself.
"""

from __future__ import annotations

import json
import locale
import sys
import traceback
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

import baton

CASES: dict[str, Callable[[], None]] = {}


def case(fn: Callable[[], None]) -> Callable[[], None]:
    CASES[fn.__name__] = fn
    return fn


def passes(model, sample, check_data=None, **check) -> baton.Bundle:
    bundle = baton.convert(model, sample)
    assert bundle.report.passed, bundle.report
    report = baton.check(model, bundle, sample if check_data is None else check_data, **check)
    assert report.passed, report
    return bundle


def xy(n: int = 300, seed: int = 0):
    from sklearn.datasets import make_classification

    return make_classification(n, 6, random_state=seed)


@case
def tfidf_pipeline_mixed_case_and_accents() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    words = ("Café CAFÉ café Straße STRASSE naïve NAÏVE Ünïcödé İstanbul ΣΟΦΟΣ σοφος déjà "
             "Vu RÉSUMÉ résumé Zürich ZÜRICH the model Parity").split()
    rng = np.random.default_rng(0)
    docs = [" ".join(rng.choice(words, size=rng.integers(2, 9))) for _ in range(200)]
    y = np.array(["café" in d.lower() for d in docs]).astype(int)
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression())
    model.fit(docs, y)
    frame = pd.DataFrame({"review": docs})
    passes(model, docs)
    from sklearn.compose import ColumnTransformer

    ct = make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), "review")]),
                       LogisticRegression()).fit(frame, y)
    passes(ct, frame)


@case
def kmeans_bare_and_in_a_pipeline() -> None:
    from sklearn.cluster import KMeans
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = xy()
    passes(KMeans(3, n_init=3, random_state=0).fit(X), X)
    passes(make_pipeline(StandardScaler(), KMeans(3, n_init=3, random_state=0)).fit(X), X)


@case
def isolation_forest_bare_and_in_a_pipeline() -> None:
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = xy()
    X = X.copy()
    X[::7, 2] = np.nan
    passes(IsolationForest(n_estimators=30, random_state=0).fit(X), X)
    passes(make_pipeline(StandardScaler(), IsolationForest(n_estimators=30, random_state=0))
           .fit(X), X)


@case
def gaussian_mixture() -> None:
    from sklearn.mixture import GaussianMixture

    X, _ = xy()
    passes(GaussianMixture(3, random_state=0).fit(X), X)


@case
def one_class_svm() -> None:
    from sklearn.svm import OneClassSVM

    X, _ = xy()
    passes(OneClassSVM().fit(X), X)


@case
def bagging_with_nan_in_the_check_data() -> None:
    from sklearn.ensemble import BaggingClassifier

    X, y = xy()
    model = BaggingClassifier(n_estimators=10, random_state=0).fit(X, y)
    check = X.copy()
    check[::5, 1] = np.nan
    passes(model, X, check)


@case
def statsmodels_glm() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    X = sm.add_constant(rng.normal(size=(200, 3)))
    y = rng.poisson(np.exp(X @ np.array([0.2, 0.5, -0.3, 0.1])))
    results = sm.GLM(y, X, family=sm.families.Poisson()).fit()
    passes(results, X)


@case
def function_transformer_log1p() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, _ = xy()
    X = np.abs(X) * 10.0 ** np.arange(-6, 0)  # tiny to moderate values, where log1p matters
    y = X.sum(axis=1)
    passes(FunctionTransformer(np.log1p).fit(X), X)
    passes(make_pipeline(FunctionTransformer(np.log1p), Ridge()).fit(X, y), X)


@case
def transformed_target_regressor() -> None:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge

    X, y = make_regression(300, 6, random_state=0)
    y = np.exp(y / y.std())
    model = TransformedTargetRegressor(Ridge(), func=np.log1p, inverse_func=np.expm1)
    passes(model.fit(X, y), X)


@case
def imputer_over_an_int_column_first() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"seats": rng.integers(1, 50, 300),
                         "mrr": np.where(rng.random(300) < 0.2, np.nan,
                                         rng.gamma(2.0, 100.0, 300))})
    y = data.seats * 3.0 + data.mrr.fillna(0) / 10
    for columns in (["seats", "mrr"], ["mrr", "seats"]):
        model = make_pipeline(ColumnTransformer([("imp", SimpleImputer(), columns)]),
                              Ridge()).fit(data, y)
        passes(model, data)


def frame(n: int, seed: int, unseen: str = "") -> pd.DataFrame:
    """Numbers and two pandas category columns (text and integers), some missing; with
    ``unseen``, that text category, which the training data did not have."""
    rng = np.random.default_rng(seed)
    text, ints = ["d", "a", "e", "c", "b"], [3, 7, 10]
    out = pd.DataFrame({
        "x0": rng.normal(size=n),
        "c1": pd.Categorical(rng.choice(text, n), categories=text),
        "c2": pd.Categorical(rng.choice(ints, n), categories=ints),
        "x1": rng.normal(size=n),
    })
    out.loc[::7, "c1"] = np.nan
    out.loc[::11, "x0"] = np.nan
    if unseen:
        out["c1"] = out["c1"].cat.add_categories([unseen])
        out.loc[:4, "c1"] = unseen
    return out


def target(data: pd.DataFrame) -> np.ndarray:
    raw = (data.x0.fillna(0.0) + 2.0 * data.c1.isin(["b", "e"]) + 1.0 * (data.c2 == 7)
           + 0.3 * data.x1).to_numpy()
    return (raw > 0.5).astype(int)


@case
def lightgbm_category_columns_with_an_unseen_category() -> None:
    import lightgbm

    train = frame(240, 0)
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, min_child_samples=5,
                                    verbose=-1).fit(train, target(train))
    passes(model, train, frame(60, 1, unseen="zz"))  # LightGBM: as missing


@case
def xgboost_category_columns_with_an_unseen_category() -> None:
    import xgboost

    train = frame(240, 0)
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, enable_categorical=True,
                                  tree_method="hist").fit(train, target(train))
    # XGBoost reads an unseen category as the next training one up ("bb" as "c") and
    # refuses a frame holding one above them all
    passes(model, train, frame(60, 1, unseen="bb"))


@case
def catboost_one_hot_categorical_features() -> None:
    import catboost

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=240),
                         "city": rng.choice(["Lyon", "Oslo", "Lima", "Pune"], 240)})
    y = ((data.city == "Oslo") | (data.x > 1)).astype(int)
    model = catboost.CatBoostClassifier(iterations=20, depth=3, one_hot_max_size=10,
                                        cat_features=["city"], verbose=False,
                                        allow_writing_files=False).fit(data, y)
    passes(model, data)


@case
def xgboost_classifier_json_file_gives_label_and_probabilities() -> None:
    import tempfile
    from pathlib import Path

    import xgboost

    X, y = xy()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y).save_model(path)
        from baton.converters import load_model_file

        model = load_model_file(path)
        bundle = passes(model, X)
        names = [o.name for o in bundle.typed_manifest.outputs]
        assert names[:2] == ["label", "probabilities"], names  # (and the raw margins)


def main() -> None:
    warnings.simplefilter("ignore")
    import onnxruntime

    onnxruntime.set_default_logger_severity(4)
    out: dict[str, str] = {"(locale)": locale.setlocale(locale.LC_ALL, "")}
    names = sys.argv[1:] or list(CASES)
    for name in names:
        try:
            CASES[name]()
            out[name] = "ok"
        except Exception:  # noqa: BLE001 - reported to the test, which fails on it
            out[name] = traceback.format_exc(limit=6)[-3000:]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
