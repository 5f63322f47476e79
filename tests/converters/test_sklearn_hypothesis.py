"""Property: a converted mixed-type pipeline agrees with the original on any rows the original
accepts: NaN, extreme magnitudes, unseen cities, single rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import baton

pd = pytest.importorskip("pandas")

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, width=64)
maybe_nan = st.one_of(finite, st.just(float("nan")))
rows = st.fixed_dictionaries({
    "age": maybe_nan,
    "tenure_months": st.integers(min_value=-(2**40), max_value=2**40),
    "monthly_charge": maybe_nan,
    "city": st.one_of(st.sampled_from(["Lyon", "Oslo", "Lima", "Pune"]),
                      st.text(max_size=8)),  # unseen cities, empty strings
    "plan": st.sampled_from(["basic", "plus", "pro"]),
})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(rows, min_size=1, max_size=12))
def test_any_rows_agree(mixed_bundle_dir: Path, fitted_pipeline: Any, data: list[dict[str, Any]]
                        ) -> None:
    frame = pd.DataFrame(data, columns=["age", "tenure_months", "monthly_charge", "city", "plan"])
    frame["plan"] = pd.Categorical(frame["plan"], categories=["basic", "plus", "pro"])
    report = baton.check(fitted_pipeline, mixed_bundle_dir, frame, search=False)
    assert report, report.failures


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_numpy_regressor_agrees(data: st.DataObject) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * [1, 1e3, 1e-3]
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, X @ [1.0, 2.0, 3.0])
    bundle = _cached_bundle(model, X)
    n = data.draw(st.integers(1, 20))
    Xq = data.draw(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=n, max_size=n))
    report = baton.check(model, bundle, np.asarray(Xq, dtype=np.float64), search=False)
    assert report, report.failures


_BUNDLES: dict[int, Any] = {}


def _cached_bundle(model: Any, X: np.ndarray) -> Any:
    key = hash(X.tobytes())
    if key not in _BUNDLES:
        _BUNDLES[key] = baton.convert(model, X)
    return _BUNDLES[key]
