"""baton.runtime.Session: hashes on load, named feeds, DataFrame/dict/array input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from baton.errors import InputValidationError, SchemaError
from baton.runtime import Session


def test_predict_matches_the_original(mixed_bundle_dir: Path, fitted_pipeline: Any,
                                      mixed_frame: Any) -> None:
    sess = Session(mixed_bundle_dir)
    assert sess.name == "churn"
    out = sess.predict(mixed_frame)
    assert list(out) == ["label", "probabilities"]
    np.testing.assert_array_equal(out["label"], fitted_pipeline.predict(mixed_frame))
    np.testing.assert_allclose(out["probabilities"], fitted_pipeline.predict_proba(mixed_frame),
                               rtol=1e-6, atol=1e-9)


def test_predict_from_dict_of_columns(mixed_bundle_dir: Path, fitted_pipeline: Any,
                                      mixed_frame: Any) -> None:
    frame = mixed_frame.iloc[:7]
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    out = Session(mixed_bundle_dir).predict(columns)
    np.testing.assert_array_equal(out["label"], fitted_pipeline.predict(frame))


def test_run_with_named_feeds(mixed_bundle_dir: Path) -> None:
    sess = Session(mixed_bundle_dir)
    feeds = {"age": [[30.0]], "tenure_months": [[12]], "monthly_charge": [[float("nan")]],
             "city": [["Oslo"]], "plan": [["pro"]]}
    out = sess.run(feeds, outputs=["probabilities"])
    assert list(out) == ["probabilities"] and out["probabilities"].shape == (1, 2)
    assert abs(float(out["probabilities"].sum()) - 1.0) < 1e-9


def test_wrong_feeds_are_named(mixed_bundle_dir: Path) -> None:
    sess = Session(mixed_bundle_dir)
    with pytest.raises(InputValidationError, match="missing .*plan"):
        sess.run({"age": [[1.0]], "tenure_months": [[1]], "monthly_charge": [[1.0]],
                  "city": [["Oslo"]]})
    with pytest.raises(InputValidationError, match=r"input 'age': expected float64 \[N, 1\], "
                                                   r"got string"):
        sess.run({"age": [["old"]], "tenure_months": [[1]], "monthly_charge": [[1.0]],
                  "city": [["Oslo"]], "plan": [["pro"]]})
    with pytest.raises(InputValidationError, match="tenure_months"):
        sess.run({"age": [[1.0]], "tenure_months": [[1.5]], "monthly_charge": [[1.0]],
                  "city": [["Oslo"]], "plan": [["pro"]]})


def test_missing_column_in_frame(mixed_bundle_dir: Path, mixed_frame: Any) -> None:
    with pytest.raises(SchemaError, match="'city'"):
        Session(mixed_bundle_dir).predict(mixed_frame.drop(columns="city"))
