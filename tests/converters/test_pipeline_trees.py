"""Pipelines that end in a tree model: float64 preprocessing (skl2onnx) + exact trees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import baton
from tests.conftest import make_mixed_frame, mixed_target
from tests.converters.tree_data import (
    COLUMNS,
    assert_exact,
    class_target,
    enterprise_matrix,
    regression_target,
)

pd = pytest.importorskip("pandas")
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402


def _lgbm() -> Any:
    lgb = pytest.importorskip("lightgbm")
    return lgb.LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1)


def _xgb() -> Any:
    xgb = pytest.importorskip("xgboost")
    return xgb.XGBRegressor(n_estimators=40, max_depth=5, n_jobs=1)


def _catboost() -> Any:
    cb = pytest.importorskip("catboost")
    return cb.CatBoostClassifier(iterations=40, depth=4, verbose=False, thread_count=1,
                                 allow_writing_files=False)


FINALS: dict[str, tuple[Callable[[], Any], str]] = {
    "RandomForestClassifier": (lambda: RandomForestClassifier(30, max_depth=8, random_state=0),
                               "class"),
    "HistGradientBoostingRegressor": (lambda: HistGradientBoostingRegressor(max_iter=40),
                                      "regression"),
    "HistGradientBoostingClassifier": (lambda: HistGradientBoostingClassifier(max_iter=30),
                                       "class"),
    "LGBMClassifier": (_lgbm, "class"),
    "XGBRegressor": (_xgb, "regression"),
    "CatBoostClassifier": (_catboost, "class"),
}


@pytest.mark.parametrize("final", list(FINALS))
def test_scaled_and_imputed_pipeline_is_exact(final: str) -> None:
    factory, task = FINALS[final]
    X = enterprise_matrix(2500, seed=4)
    frame = pd.DataFrame(X, columns=COLUMNS)
    y = class_target(X) if task == "class" else regression_target(X)
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), factory())
    model.fit(frame, y)
    bundle = baton.convert(model, frame)
    assert bundle.manifest["precision"] == "float64"
    assert "baton tree emitter" in bundle.manifest["converter"]["strategy"]
    assert_exact(bundle.report)
    other = pd.DataFrame(enterprise_matrix(1500, seed=9), columns=COLUMNS)
    assert_exact(baton.check(model, bundle, other, search=False))


def test_column_transformer_with_text_and_boosted_trees() -> None:
    """The everyday notebook model: mixed columns, one-hot text, gradient boosting."""
    frame = make_mixed_frame(600, seed=2)
    model = make_pipeline(
        ColumnTransformer([
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()),
             ["age", "tenure_months", "monthly_charge"]),
            ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             ["city", "plan"]),
        ]),
        HistGradientBoostingClassifier(max_iter=40),
    ).fit(frame, mixed_target(frame))
    bundle = baton.convert(model, frame)
    assert [s.name for s in bundle.inputs] == list(frame.columns)
    assert_exact(bundle.report)
    assert_exact(baton.check(model, bundle, make_mixed_frame(300, seed=8), search=False))


def test_imputed_values_are_scikit_learns_exactly() -> None:
    """skl2onnx stores a SimpleImputer's fills in float32; the float64 graph uses the exact
    statistics, or imputed rows would cross split thresholds a float64 model compares."""
    X = enterprise_matrix(2000, seed=5, nan_share=0.2)
    frame = pd.DataFrame(X, columns=COLUMNS)
    model = make_pipeline(SimpleImputer(), HistGradientBoostingRegressor(max_iter=40)).fit(
        frame, regression_target(X))
    imputer = model[0]
    assert np.any(imputer.statistics_.astype(np.float32) != imputer.statistics_)
    bundle = baton.convert(model, frame)
    assert_exact(bundle.report)
    probe = frame.copy()
    probe["score"] = np.nan  # every row takes the imputed value
    assert_exact(baton.check(model, bundle, probe, search=False))
