"""Shared test data: frames and arrays built here, models trained on them in the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


def make_mixed_frame(n: int = 400, seed: int = 0) -> Any:
    """A DataFrame like a churn table: float, integer, NaN-holding, string, category columns."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(45, 12, n).round(1),
        "tenure_months": rng.integers(0, 120, n),
        "monthly_charge": np.where(rng.random(n) < 0.15, np.nan, rng.gamma(3.0, 20.0, n)),
        "city": rng.choice(["Lyon", "Oslo", "Lima", "Pune"], n).astype(object),
        "plan": pd.Categorical(rng.choice(["basic", "plus", "pro"], n)),
    })


def mixed_target(frame: Any) -> np.ndarray:
    score = (frame["age"] - 45) / 12 + frame["tenure_months"] / 60 - (frame["city"] == "Oslo")
    return (score.to_numpy() > 0.5).astype(np.int64)


def mixed_pipeline(C: float = 1.0) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    return Pipeline([
        ("prepare", ColumnTransformer([
            ("numbers", numbers, ["age", "tenure_months", "monthly_charge"]),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("plan", OrdinalEncoder(), ["plan"]),
        ])),
        ("classify", LogisticRegression(C=C, max_iter=1000)),
    ])


@pytest.fixture(scope="session")
def mixed_frame() -> Any:
    return make_mixed_frame()


@pytest.fixture(scope="session")
def fitted_pipeline(mixed_frame: Any) -> Any:
    return mixed_pipeline().fit(mixed_frame, mixed_target(mixed_frame))


@pytest.fixture(scope="session")
def other_pipeline(mixed_frame: Any) -> Any:
    """Same pipeline, fitted with much stronger regularisation: a *different* model."""
    return mixed_pipeline(C=0.01).fit(mixed_frame, mixed_target(mixed_frame))


@pytest.fixture(scope="session")
def mixed_bundle_dir(tmp_path_factory: pytest.TempPathFactory, fitted_pipeline: Any,
                     mixed_frame: Any) -> Any:
    import baton

    path = tmp_path_factory.mktemp("bundles") / "churn.baton"
    baton.convert(fitted_pipeline, mixed_frame, name="churn").save(path)
    return path


@pytest.fixture()
def regression_data() -> Callable[[int, int], tuple[np.ndarray, np.ndarray]]:
    def make(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, 5))
        y = X @ np.array([1.5, -2.0, 0.5, 0.0, 3.0]) + rng.normal(0, 0.1, n)
        return X, y

    return make


@pytest.fixture(scope="session")
def churn(mixed_bundle_dir: Any) -> Any:
    """The churn bundle behind a ready ModelServer, in-process (no HTTP)."""
    from baton.runtime import Session
    from baton.serving.server import ModelServer

    server = ModelServer(Session(mixed_bundle_dir))
    server.warm_up()
    assert server.ready, server.not_ready_reason
    return server


def identity_bundle(path: Any, inputs: list[Any]) -> Any:
    """A bundle whose graph returns every input unchanged, as output ``<name>_out``."""
    from onnx import TensorProto, helper

    from baton.bundle import Bundle
    from baton.runtime._files import SCHEMA_VERSION
    from baton.schema import TensorSpec

    onnx_type = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
                 "int64": TensorProto.INT64, "int32": TensorProto.INT32,
                 "bool": TensorProto.BOOL, "string": TensorProto.STRING}
    dims = [[d if isinstance(d, int) else "N" for d in s.shape] for s in inputs]
    graph = helper.make_graph(
        [helper.make_node("Identity", [s.name], [f"{s.name}_out"]) for s in inputs], "identity",
        [helper.make_tensor_value_info(s.name, onnx_type[s.dtype], d)
         for s, d in zip(inputs, dims)],
        [helper.make_tensor_value_info(f"{s.name}_out", onnx_type[s.dtype], d)
         for s, d in zip(inputs, dims)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    outputs = [TensorSpec(f"{s.name}_out", s.dtype, s.shape, kind="tensor") for s in inputs]
    manifest = {"schema_version": SCHEMA_VERSION, "name": "identity",
                "inputs": [s.to_dict() for s in inputs],
                "outputs": [s.to_dict() for s in outputs], "files": {}}
    return Bundle(model.SerializeToString(), manifest).save(path)



@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """``baton check`` and ``recheck`` append their summary to ``$GITHUB_STEP_SUMMARY``: the
    suite's own runs must not write into the summary of the CI job running the suite (a
    test that wants it sets it)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
