"""Data for the tree-model tests: enterprise-like columns whose magnitudes float32 cannot
tell apart (integer dates, epoch seconds, IDs, amounts in cents), NaN, and rows placed
exactly on split thresholds and on their float32/float64 neighbours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

COLUMNS = ["date_yyyymmdd", "epoch_seconds", "customer_id", "amount_cents", "score", "ratio"]


def enterprise_matrix(n: int = 2000, seed: int = 0, nan_share: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 3650, n)
    date = 20150101 + (days // 365) * 10000 + ((days % 365) // 31 + 1) * 100 + days % 28
    X = np.column_stack([
        date.astype(np.float64),                       # ~2e7: above 2**24
        rng.uniform(1.6e9, 1.8e9, n).round(),          # epoch seconds
        rng.integers(10**11, 10**12, n).astype(float),  # IDs ~1e12
        rng.integers(0, 10**7, n).astype(float),       # amounts in cents
        rng.normal(0, 1, n),
        rng.uniform(0, 1, n),
    ])
    X[rng.random(n) < nan_share, 4] = np.nan
    return X


def regression_target(X: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    date_part = (X[:, 0] - 2.015e7) / 1e4
    epoch_part = (X[:, 1] - 1.7e9) / 1e8
    return date_part + epoch_part + np.nan_to_num(X[:, 4]) + rng.normal(0, 0.1, len(X))


def class_target(X: np.ndarray, n_classes: int = 2, seed: int = 1) -> np.ndarray:
    y = regression_target(X, seed)
    return np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))


def neighbours(value: float) -> list[float]:
    """A threshold, its float64 neighbours, and the float32 values around it."""
    with np.errstate(over="ignore"):  # borders at +-FLT_MAX (CatBoost's NaN borders)
        f32 = np.float32(value)
        out = {value, np.nextafter(value, -np.inf), np.nextafter(value, np.inf), float(f32),
               float(np.nextafter(f32, np.float32(-np.inf))),
               float(np.nextafter(f32, np.float32(np.inf)))}
    return sorted(v for v in out if np.isfinite(v))


def threshold_rows(thresholds: Mapping[int, np.ndarray], base: np.ndarray,
                   per_feature: int = 40, seed: int = 0) -> np.ndarray:
    """Rows of ``base`` with one feature moved onto a threshold or one of its neighbours."""
    rng = np.random.default_rng(seed)
    rows = []
    for feature, values in thresholds.items():
        for t in rng.choice(values, size=min(per_feature, len(values)), replace=False):
            for v in neighbours(float(t)):
                row = base[rng.integers(len(base))].copy()
                row[feature] = v
                rows.append(row)
    return np.asarray(rows)


def rows_strategy(thresholds: Mapping[int, np.ndarray], base: np.ndarray,
                  max_rows: int = 16) -> st.SearchStrategy[np.ndarray]:
    """Hypothesis: batches of rows whose cells come from typical rows, thresholds and their
    neighbours, NaN, zeros and extreme magnitudes."""
    n_features = base.shape[1]

    def cell(feature: int) -> st.SearchStrategy[float]:
        options = [st.sampled_from([float(v) for v in base[:200, feature]]),
                   st.just(float("nan")), st.just(0.0), st.just(-0.0),
                   st.sampled_from([1e-300, -1e-300, 1e-36, -1e-36, 5e-324,
                                    float(np.float32(1e-35)), -float(np.float32(1e-35))]),
                   st.floats(-1e15, 1e15, allow_nan=False)]
        if feature in thresholds and len(thresholds[feature]):
            options.append(st.sampled_from(list(thresholds[feature])).flatmap(
                lambda t: st.sampled_from(neighbours(float(t)))))
        return st.one_of(*options)

    row = st.tuples(*[cell(f) for f in range(n_features)])
    return st.lists(row, min_size=1, max_size=max_rows).map(
        lambda r: np.asarray(r, dtype=np.float64))


def assert_exact(report: Any) -> None:
    """Zero label disagreements; every number within the bundle's tolerance (1e-6 of the
    output's range), which the report must also say."""
    assert report, report.failures
    for o in report.outputs:
        if o.kind == "label":
            assert o.mismatched_rows == 0
        else:
            assert o.max_abs is not None and o.max_abs <= o.tolerance.atol
