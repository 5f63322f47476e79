"""The parity search (baton/parity/search/): it finds a divergence that lives only on a
narrow band the data never reaches, raises no false alarm on baton's own conversions, and
reports its cost, its domain rejections and reproducible counterexamples."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import numpy_helper
from typer.testing import CliRunner

import baton
from baton.cli import app
from baton.errors import UsageError
from baton.parity.compare import compare, rows_agree
from baton.parity.report import Report
from baton.parity.search import SearchBudget, neighbours
from baton.tolerance import Tolerance
from tests.conftest import make_mixed_frame, mixed_pipeline, mixed_target

#: small, exact budgets: reproducible, and fast enough for the suite
BUDGET = "300"
runner = CliRunner()


# -- a wrong model the data cannot see -----------------------------------------------------


def gapped_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Feature 0 never falls in (1, 2): a split the trees place in that gap is never
    exercised by the data."""
    rng = np.random.default_rng(seed)
    x0 = np.where(rng.random(n) < 0.5, rng.uniform(0, 1, n), rng.uniform(2, 3, n))
    X = np.column_stack([x0, rng.normal(size=n), rng.normal(size=n)])
    y = 5.0 * (x0 > 1.5) + 0.1 * X[:, 1]
    return X, y


def nudge_root_threshold(model: onnx.ModelProto, delta: float) -> tuple[float, float]:
    """Move the first tree's root split of the TreeEnsemble by ``delta``; the band between
    the old and the new threshold, which the converted model now gets wrong."""
    node = next(n for n in model.graph.node if n.op_type == "TreeEnsemble")
    attr = next(a for a in node.attribute if a.name == "nodes_splits")
    splits = numpy_helper.to_array(attr.t).copy()
    roots = next(a for a in node.attribute if a.name == "tree_roots").ints
    old = float(splits[roots[0]])
    splits[roots[0]] = old + delta
    attr.t.CopyFrom(numpy_helper.from_array(splits, attr.t.name))
    return old, old + delta


def nudged_tree() -> tuple[Any, np.ndarray, Any, onnx.ModelProto, tuple[float, float]]:
    """A tree fitted on the gapped data, its bundle, and the bundle's graph with the root
    split moved into the gap (and the band it now gets wrong)."""
    from sklearn.tree import DecisionTreeRegressor

    X, y = gapped_data()
    model = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    bundle = baton.convert(model, X)
    onx = onnx.load_from_string(bundle.model_bytes)
    low, high = nudge_root_threshold(onx, 0.05)
    assert 1.0 < low < high < 2.0  # the band lies in the gap of the data
    return model, X, bundle, onx, (low, high)


@pytest.fixture(scope="module")
def wrong_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import skops.io as sio

    model, X, _, onx, (low, high) = nudged_tree()
    d = tmp_path_factory.mktemp("wrong")
    files = {"model": d / "tree.skops", "onnx": d / "nudged.onnx", "data": d / "x.npy"}
    sio.dump(model, files["model"])
    onnx.save(onx, files["onnx"])
    np.save(files["data"], X)
    return {**files, "band": (low, high), "estimator": model, "X": X}


def test_nudged_threshold_passes_on_the_data_alone(wrong_model: dict[str, Any]) -> None:
    result = runner.invoke(app, ["check", str(wrong_model["model"]), str(wrong_model["onnx"]),
                                 "--data", str(wrong_model["data"]), "--no-search"])
    assert result.exit_code == 0, result.output
    assert "search:" not in result.output


def test_nudged_threshold_is_found_by_the_search(wrong_model: dict[str, Any],
                                                 tmp_path: Path) -> None:
    report_json, junit = tmp_path / "r.json", tmp_path / "r.xml"
    result = runner.invoke(app, ["check", str(wrong_model["model"]), str(wrong_model["onnx"]),
                                 "--data", str(wrong_model["data"]), "--seed", "3",
                                 "--search-budget", BUDGET, "--json", str(report_json),
                                 "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    assert "divergence: split threshold of x0" in result.output
    low, high = wrong_model["band"]
    data = json.loads(report_json.read_text())
    assert data["passed"] is False and all(o["passed"] for o in data["outputs"])
    search = data["search"]
    found = {c["class"]: c for c in search["counterexamples"]}
    assert found, search
    for c in found.values():  # every counterexample lies in the band, on feature 0, as
        # scikit-learn's trees read it (rounded to float32)
        assert low < float(np.float32(c["inputs"]["x0"])) <= high, c
        (broken,) = c["outputs"]
        assert broken["name"] == "prediction" and broken["abs_error"] > 1.0
    assert search["seed"] == 3 and search["budget"] == {"examples": 300, "seconds": None}
    assert "--seed 3 --search-budget 300" in search["reproduce"]
    # the report on disk reads back as the same verdict
    assert not Report.from_dict(data) and Report.from_dict(data).search is not None
    # JUnit: the outputs pass, the search is a case of its own, each class fails
    cases = ET.parse(junit).getroot().findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert "parity search" in names
    failing = [c for c in cases if c.find("failure") is not None]
    assert failing and all(c.get("name").startswith("divergence: ") for c in failing)
    assert all(c.find("failure").get("type") == "ParityCounterexample" for c in failing)
    # the search's cost is part of the report: time and examples, per stage
    assert search["seconds"] > 0 and search["examples"] <= 300
    assert {s["name"] for s in search["stages"]} == {"edge", "thresholds", "samples",
                                                     "property"}
    assert sum(s["examples"] for s in search["stages"]) == search["examples"]
    assert float(next(c for c in cases if c.get("name") == "parity search").get("time")) > 0


def test_the_property_search_shrinks_to_the_band(wrong_model: dict[str, Any]) -> None:
    """Without the thresholds the property search alone finds the band (it draws values
    at the split points) and shrinks the row to one changed value."""
    from baton.converters import find_converter
    from baton.parity.check import open_target
    from baton.parity.search import search

    model, X = wrong_model["estimator"], wrong_model["X"]
    conv = find_converter(model)
    target = open_target(wrong_model["onnx"])
    result = search(lambda rows: conv.predict(model, rows), target, X,
                    [("prediction", "prediction")], {"prediction": Tolerance()},
                    split_points=conv.split_points(model), seed=0,
                    budget=SearchBudget(examples=2000))
    shrunk = [c for c in result.counterexamples if c.stage == "property"]
    low, high = wrong_model["band"]
    assert shrunk and list(shrunk[0].changed) == ["x0"]
    assert low < float(np.float32(shrunk[0].changed["x0"])) <= high


def test_seeded_search_is_reproducible(wrong_model: dict[str, Any]) -> None:
    args = (wrong_model["estimator"], str(wrong_model["onnx"]), wrong_model["X"])
    a = baton.check(*args, seed=5, search_budget=BUDGET).search
    b = baton.check(*args, seed=5, search_budget=BUDGET).search
    assert a is not None and b is not None
    strip = [({k: v for k, v in s.to_dict().items() if k != "seconds"}) for s in a.stages]
    assert strip == [({k: v for k, v in s.to_dict().items() if k != "seconds"})
                     for s in b.stages]
    assert [c.to_dict() for c in a.counterexamples] == [c.to_dict() for c in b.counterexamples]


# -- no false alarm on baton's own conversions ---------------------------------------------


def _sklearn_mixed() -> tuple[Any, Any]:
    frame = make_mixed_frame(300)
    return mixed_pipeline().fit(frame, mixed_target(frame)), frame


def _regression(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    return X, X @ np.array([1.5, -2.0, 0.5, 0.0, 3.0]) + rng.normal(0, 0.1, n)


def _sklearn_regressor() -> tuple[Any, Any]:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _regression()
    return make_pipeline(StandardScaler(), Ridge()).fit(X, y), X


def _sklearn_classifier() -> tuple[Any, Any]:
    from sklearn.svm import SVC

    X, y = _regression()
    return SVC(probability=True, random_state=0).fit(X, y > 0), X


def _sklearn_forest() -> tuple[Any, Any]:
    from sklearn.ensemble import RandomForestClassifier

    X, y = _regression()
    return RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0,
                                  n_jobs=1).fit(X, y > 0), X


def _pipeline_trees() -> tuple[Any, Any]:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _regression()
    return make_pipeline(StandardScaler(), GradientBoostingRegressor(
        n_estimators=10, max_depth=3, random_state=0)).fit(X, y), X


def _lightgbm() -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = _regression()
    X[::7, 2] = np.nan
    return lgb.LGBMRegressor(n_estimators=10, num_leaves=8, n_jobs=1, verbose=-1).fit(X, y), X


def _xgboost() -> tuple[Any, Any]:
    import xgboost as xgb

    X, y = _regression()
    return xgb.XGBClassifier(n_estimators=10, max_depth=3, nthread=1).fit(X, y > 0), X


def _catboost() -> tuple[Any, Any]:
    import catboost as cb

    X, y = _regression()
    return cb.CatBoostRegressor(iterations=10, depth=3, thread_count=1, verbose=False,
                                random_seed=0, allow_writing_files=False).fit(X, y), X


def _torch_mlp() -> tuple[Any, Any]:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 2))
    return model, torch.randn(64, 6)


def _torch_embedding() -> tuple[Any, Any]:
    import torch

    class Pool(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(50, 8)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            m = attention_mask.unsqueeze(-1).float()
            pooled = (self.embed(input_ids) * m).sum(1) / m.sum(1).clamp(min=1)
            return self.head(pooled)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (32, 5), generator=g)
    mask = torch.ones(32, 5, dtype=torch.int64)
    mask[::3, 3:] = 0
    return Pool(), {"input_ids": ids, "attention_mask": mask}


MODELS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "sklearn-mixed-frame": _sklearn_mixed, "sklearn-regressor": _sklearn_regressor,
    "sklearn-classifier": _sklearn_classifier, "sklearn-forest": _sklearn_forest,
    "sklearn-pipeline-trees": _pipeline_trees, "lightgbm": _lightgbm, "xgboost": _xgboost,
    "catboost": _catboost, "torch-mlp": _torch_mlp, "torch-embedding": _torch_embedding,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_no_false_alarm_on_correct_conversions(name: str) -> None:
    model, data = MODELS[name]()
    bundle = baton.convert(model, data)
    report = baton.check(model, bundle, data, seed=0, search_budget=BUDGET)
    assert report.search is not None
    assert report, "\n".join(report.failures)
    assert report.search.examples > 0 and report.search.seconds > 0


def test_domain_is_not_divergence() -> None:
    """An unseen category the original's OrdinalEncoder refuses, an embedding index out of
    range: the original rejects them; they are the model's domain, not divergences."""
    model, frame = _sklearn_mixed()
    report = baton.check(model, baton.convert(model, frame), frame, search_budget=BUDGET)
    assert report and report.search is not None
    reasons = " ".join(d.reason for d in report.search.domain)
    assert "unknown categories" in reasons
    model, data = _torch_embedding()
    report = baton.check(model, baton.convert(model, data), data, search_budget=BUDGET)
    assert report and report.search is not None
    assert any(d.stage == "edge" and "rejected by the original" in d.reason
               for d in report.search.domain)


# -- pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "examples", "seconds"), [
    ("2000", 2000, None), ("5s", None, 5.0), ("2000,5s", 2000, 5.0), ("250ms", None, 0.25),
    (" 10 , 1s ", 10, 1.0),
])
def test_budget_parses(text: str, examples: int | None, seconds: float | None) -> None:
    budget = SearchBudget.parse(text)
    assert (budget.examples, budget.seconds) == (examples, seconds)
    assert SearchBudget.parse(str(budget)) == budget


@pytest.mark.parametrize("text", ["", "fast", "5s,6s", "1,2", "0", "-3s", "1,2,3s"])
def test_bad_budget_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        SearchBudget.parse(text)


def test_bad_budget_exits_2(wrong_model: dict[str, Any]) -> None:
    result = runner.invoke(app, ["check", str(wrong_model["model"]), str(wrong_model["onnx"]),
                                 "--data", str(wrong_model["data"]), "--search-budget", "soon"])
    assert result.exit_code == 2


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_neighbours_surround_the_threshold(t: float) -> None:
    near = neighbours(t)
    assert t in near and near == sorted(near)
    if abs(t) < 1e300:
        assert np.nextafter(t, np.inf) in near and np.nextafter(t, -np.inf) in near
        with np.errstate(over="ignore"):
            f32 = np.float32(t)
        if np.isfinite(f32):
            assert float(f32) in near


@given(st.lists(st.tuples(st.floats(width=32), st.floats(width=32)), min_size=1, max_size=20),
       st.sampled_from([0.0, 1e-5, 1.0]), st.sampled_from([0.0, 1e-4]))
def test_rows_agree_counts_what_compare_counts(pairs: list[tuple[float, float]], atol: float,
                                               rtol: float) -> None:
    exp = np.asarray([p[0] for p in pairs]).reshape(-1, 1)
    act = np.asarray([p[1] for p in pairs]).reshape(-1, 1)
    tol = Tolerance(atol=atol, rtol=rtol)
    ok = rows_agree("scores", exp, act, tol)
    assert int((~ok).sum()) == compare("s", "scores", exp, act, tol).mismatched_rows


def test_nan_from_the_original_is_its_domain(tmp_path: Path) -> None:
    """An original that returns NaN for some rows (here: x0 above 2.5, where this one is
    undefined) while the converted model returns numbers: those rows are the original's
    domain, not divergences."""
    from sklearn.tree import DecisionTreeRegressor

    from baton.parity.check import open_target
    from baton.parity.search import search

    X, y = gapped_data()
    model = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    path = tmp_path / "tree.onnx"
    path.write_bytes(baton.convert(model, X).model_bytes)

    def undefined_above(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"prediction": np.where(np.asarray(rows)[:, 0] > 2.5, np.nan,
                                       model.predict(rows))}

    result = search(undefined_above, open_target(path), X[X[:, 0] <= 2.5],
                    [("prediction", "prediction")], {"prediction": Tolerance()},
                    seed=0, budget=SearchBudget(examples=300))
    assert result.passed, [c.summary() for c in result.counterexamples]
    assert any("returns NaN" in d.reason for d in result.domain)


def test_finds_how_skl2onnx_routes_nan_in_a_tree(tmp_path: Path) -> None:
    """A team's own skl2onnx export of a DecisionTreeRegressor sends NaN down another branch
    than scikit-learn (which learns where missing values go): data without NaN passes, the
    search's edge cases catch it. (baton's own conversion of the same tree passes: the
    no-false-alarm test above.)"""
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(1.6e9, 1.8e9, 400).round(), rng.normal(size=400)])
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(
        X, (X[:, 0] - 1.7e9) / 1e8 + X[:, 1])
    path = tmp_path / "skl2onnx_tree.onnx"
    path.write_bytes(to_onnx(model, X[:5].astype(np.float32)).SerializeToString())
    assert baton.check(model, path, X, search=False)
    report = baton.check(model, path, X, search_budget=BUDGET)
    assert report.search is not None and not report
    classes = [c.divergence_class for c in report.search.counterexamples]
    assert any(c.startswith("edge: NaN in x") for c in classes), classes
    # NaN in a float column lies inside the proof's envelope, though the data held none:
    # the NaN divergence fails the gate (docs/search.md)
    assert not np.isnan(X).any()
    nan = [c for c in report.search.failing if c.divergence_class.startswith("edge: NaN in x")]
    assert nan and all(c.in_envelope for c in nan)
    assert all(o.abs_error and o.abs_error > 0.1 for c in report.search.counterexamples
               for o in c.outputs)
    assert baton.check(model, baton.convert(model, X), X, search_budget=BUDGET)


# -- trees at the end of a Pipeline: thresholds mapped back through the preprocessing ------


@pytest.fixture(scope="module")
def scaled_tree_pipeline() -> dict[str, Any]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    X, y = gapped_data()
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": np.where(X[:, 2] > 0, "x", "y")})
    pre = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()),
                              ["a", "b"]), ("cat", OneHotEncoder(), ["c"])])
    model = Pipeline([("pre", pre), ("tree", DecisionTreeRegressor(max_depth=3,
                                                                   random_state=0))])
    model.fit(frame, y)
    scaler = model[0].named_transformers_["num"][-1]
    return {"model": model, "frame": frame, "mean": scaler.mean_, "scale": scaler.scale_}


def test_pipeline_thresholds_are_mapped_to_input_columns(scaled_tree_pipeline: dict[str, Any]
                                                         ) -> None:
    from baton.converters import find_converter

    p = scaled_tree_pipeline
    model = p["model"]
    points = find_converter(model).split_points(model)
    tree = model[-1].tree_
    for feature, column in ((0, 0), (1, 1)):  # "a" and "b", scaled; one-hot features: none
        raw = tree.threshold[tree.feature == feature]
        expected = np.sort(raw * p["scale"][feature] + p["mean"][feature])
        np.testing.assert_allclose(np.sort(points[column]), expected, rtol=1e-12)
    assert set(points) <= {0, 1}


def test_nudged_threshold_after_preprocessing_is_found(scaled_tree_pipeline: dict[str, Any],
                                                       tmp_path: Path) -> None:
    p = scaled_tree_pipeline
    model, frame = p["model"], p["frame"]
    bundle = baton.convert(model, frame)
    assert baton.check(model, bundle, frame, search_budget=BUDGET)  # no false alarm
    onx = onnx.load_from_string(bundle.model_bytes)
    scale, mean = p["scale"][0], p["mean"][0]
    low, high = (t * scale + mean for t in nudge_root_threshold(onx, 0.05 / scale))
    assert 1.0 < low < high < 2.0  # in the gap of the data, in the column's own units
    onnx.save(onx, tmp_path / "nudged.onnx")
    assert baton.check(model, tmp_path / "nudged.onnx", frame, search=False)
    report = baton.check(model, tmp_path / "nudged.onnx", frame, search_budget=BUDGET)
    assert not report and report.search is not None
    stage = next(s for s in report.search.stages if s.name == "thresholds")
    assert stage.examples > 0 and stage.divergent > 0
    found = [c.to_dict() for c in report.search.counterexamples]
    assert any(c["class"].startswith("split threshold of a") for c in found), found
    for c in found:
        assert low <= c["inputs"]["a"] <= high + 1e-6, c
