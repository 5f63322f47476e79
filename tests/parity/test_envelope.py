"""The proof's envelope: recorded at conversion, shown by inspect, widened or narrowed by the
user, and the line between a divergence that fails the gate (inside) and one that is
reported (outside); and a search whose examples and verdict do not depend on the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import baton
from baton.cli import app
from baton.envelope import MARGIN, Envelope, Region
from tests.parity.test_search import nudged_tree

runner = CliRunner()


def _check(*args: str) -> Any:
    return runner.invoke(app, ["check", *map(str, args)])


# -- the envelope itself ------------------------------------------------------------------


def test_observed_columns_are_named_as_the_search_names_them() -> None:
    import pandas as pd

    X = np.array([[0.0, 10], [2.0, 20]])
    assert list(Envelope.observe(X).columns) == ["x0", "x1"]
    frame = pd.DataFrame({"age": [30, 40], "city": ["paris", None], "f": [1.0, np.nan]})
    env = Envelope.observe(frame)
    assert list(env.columns) == ["age", "city", "f"]
    age, city, f = env.columns["age"], env.columns["city"], env.columns["f"]
    assert (age.kind, age.observed, age.low, age.high) == ("int", (30.0, 40.0), 29.0, 41.0)
    assert city.categories == ("paris",) and city.missing
    assert f.kind == "float" and f.missing
    # a tensor input (PyTorch): one range per tensor, an integer one for token ids
    tensors = Envelope.observe({"ids": np.arange(6).reshape(2, 3),
                                "x": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)})
    assert list(tensors.columns) == ["ids", "x"]
    ids = tensors.columns["ids"]
    assert ids.kind == "int" and ids.observed == (0.0, 5.0)
    assert ids.contains(np.array([0, 5])) and not ids.contains(np.array([0, 7]))
    assert tensors.columns["x"].observed == (-1.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(-1e6, 1e6), width=st.floats(0, 1e6), t=st.floats(-1, 2))
def test_inside_is_the_observed_range_widened_by_the_margin(lo: float, width: float,
                                                            t: float) -> None:
    hi = lo + width
    region = Envelope.observe(np.array([[lo], [hi]])).columns["x0"]
    pad = MARGIN * (width if width > 0 else max(abs(lo), 1.0))
    value = lo - pad + t * (width + 2 * pad)
    inside = lo - pad <= value <= hi + pad
    if abs(value - (lo - pad)) > 1e-9 * (1 + abs(value)) and abs(
            value - (hi + pad)) > 1e-9 * (1 + abs(value)):  # not on a bound's rounding
        assert region.contains(value) is inside
    assert region.contains(np.nan)  # a missing value in a float column is inside
    assert not region.contains(np.inf) and not region.contains(-np.inf)
    assert not region.contains(hi + pad + 1e15)


def test_overrides_widen_narrow_and_name_what_is_wrong() -> None:
    import pandas as pd

    env = Envelope.observe(pd.DataFrame({"x": [0.0, 1.0], "city": ["paris", "lyon"],
                                         "n": [1, 2]}))
    changed = env.with_overrides(["x=..4.5", "city=paris,rome", "n=nan"], "--envelope")
    assert changed.columns["x"].contains(-1e9) and not changed.columns["x"].contains(4.6)
    assert changed.contains({"city": "rome"}) and not changed.contains({"city": "lyon"})
    assert changed.contains({"n": np.nan}) and not env.contains({"n": np.nan})
    assert changed.columns["x"].source == "--envelope"
    with pytest.raises(baton.UsageError, match="no column 'y'") as info:
        env.with_overrides(["y=0..1"], "--envelope")
    assert "x, city, n" in str(info.value.expected)
    for bad in ["x", "x=a..b", "x=3..1", "x=0..1,2..3"]:
        with pytest.raises(baton.UsageError):
            env.with_overrides([bad], "--envelope")
    # the mapping form of [tool.baton.envelope]
    assert env.with_overrides({"city": ["rome"]}, "pyproject.toml").contains({"city": "rome"})


# -- recorded in the bundle, shown by inspect -------------------------------------------------


@pytest.fixture(scope="module")
def knn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_classification(300, 5, random_state=0)
    model = KNeighborsClassifier().fit(X, y)
    d = tmp_path_factory.mktemp("knn")
    np.save(d / "x.npy", X)
    sio.dump(model, d / "knn.skops")
    result = runner.invoke(app, ["convert", str(d / "knn.skops"), "--sample", str(d / "x.npy"),
                                 "-o", str(d / "knn.baton"), "--envelope", "x4=-10..10"])
    assert result.exit_code == 0, result.output
    return {"dir": d, "X": X, "model": model}


def test_the_bundle_records_its_envelope_and_inspect_prints_it(knn: dict[str, Any]) -> None:
    d, X = knn["dir"], knn["X"]
    manifest = json.loads((d / "knn.baton" / "baton.json").read_text())
    columns = manifest["envelope"]["columns"]
    assert list(columns) == ["x0", "x1", "x2", "x3", "x4"]
    assert columns["x0"]["observed"] == [float(X[:, 0].min()), float(X[:, 0].max())]
    assert columns["x0"]["min"] < X[:, 0].min() and columns["x0"]["source"] == "sample"
    assert (columns["x4"]["min"], columns["x4"]["max"]) == (-10.0, 10.0)
    assert columns["x4"]["source"] == "envelope"
    out = runner.invoke(app, ["inspect", str(d / "knn.baton")])
    assert out.exit_code == 0, out.output
    assert "envelope (the inputs the proof covers" in out.output
    assert "-10 .. 10, or missing" in out.output and "observed" in out.output
    assert baton.load(d / "knn.baton").typed_manifest.envelope == Envelope.from_dict(
        manifest["envelope"])


# -- divergences judged inside or outside it ------------------------------------------------


def _stacking() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_classification(300, 5, random_state=0)
    return StackingClassifier([("knn", KNeighborsClassifier()), ("lr", LogisticRegression())]
                              ).fit(X, y), X


def _poly_ridge() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    X, y = make_regression(300, 4, random_state=0)
    return make_pipeline(PolynomialFeatures(3), Ridge()).fit(X, y), X


def _knn() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_classification(300, 5, random_state=0)
    return KNeighborsClassifier().fit(X, y), X


@pytest.mark.parametrize("build", [_knn, _stacking, _poly_ridge],
                         ids=["KNeighborsClassifier", "Stacking with KNN", "PolynomialFeatures"])
def test_divergences_only_at_extreme_magnitudes_are_outside(build: Any, tmp_path: Path) -> None:
    """Healthy models whose only divergences are at inputs no one sends (±1.8e308, 1e15)
    pass by default, with those divergences reported as outside; --search-scope all fails."""
    import skops.io as sio

    model, X = build()
    sio.dump(model, tmp_path / "m.skops")
    np.save(tmp_path / "x.npy", X)
    baton.convert(model, X).save(tmp_path / "m.baton")
    report_json, junit = tmp_path / "r.json", tmp_path / "r.xml"
    args = [tmp_path / "m.skops", tmp_path / "m.baton", "--data", tmp_path / "x.npy",
            "--json", report_json, "--junit", junit]
    result = _check(*args)
    assert result.exit_code == 0, result.output
    assert "outside the proven envelope" in result.output
    assert "warning: outside the proven envelope" in result.output
    search = json.loads(report_json.read_text())["search"]
    assert search["passed"] and search["scope"] == "envelope" and search["counterexamples"]
    assert all(not c["in_envelope"] and c["outside"] for c in search["counterexamples"])
    worst = [abs(float(v)) for c in search["counterexamples"] for v in c["changed"].values()]
    assert min(worst) >= 1e15  # only inputs far beyond the data
    assert search["envelope"]["columns"]["x0"]["source"] == "sample"
    cases = ET.parse(junit).getroot().findall(".//testcase")
    outside = [c for c in cases if c.get("name").startswith("outside the envelope: ")]
    assert outside and all(c.find("failure") is None for c in outside)
    assert all(c.find("properties/property").get("value") == "false" for c in outside)

    strict = _check(*args, "--search-scope", "all")
    assert strict.exit_code == 1, strict.output
    data = json.loads(report_json.read_text())
    assert not data["passed"] and data["search"]["scope"] == "all"
    assert "--search-scope all" in data["search"]["reproduce"]
    bad = _check(*args, "--search-scope", "some")
    assert bad.exit_code == 2 and "unknown search scope" in bad.output


@pytest.fixture(scope="module")
def nudged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A bundle whose tree has its root split moved into a gap of the data."""
    import skops.io as sio

    model, X, bundle, onx, (low, high) = nudged_tree()
    bundle.model_bytes = onx.SerializeToString()
    d = tmp_path_factory.mktemp("nudged")
    bundle.save(d / "nudged.baton")
    sio.dump(model, d / "tree.skops")
    np.save(d / "x.npy", X)
    return {"dir": d, "band": (low, high), "model": model, "X": X}


def test_a_wrong_split_inside_the_envelope_fails_and_outside_it_is_reported(
        nudged: dict[str, Any]) -> None:
    d = nudged["dir"]
    low, high = nudged["band"]
    args = [d / "tree.skops", d / "nudged.baton", "--data", d / "x.npy", "--json",
            d / "r.json"]
    result = _check(*args)
    assert result.exit_code == 1, result.output
    search = json.loads((d / "r.json").read_text())["search"]
    inside = [c for c in search["counterexamples"] if c["in_envelope"]]
    assert inside and all(low < float(np.float32(c["inputs"]["x0"])) <= high for c in inside)
    # the user says x0 never lies in (1, 2): the band is outside the envelope now
    result = _check(*args, "--envelope", "x0=0..1")
    assert result.exit_code == 0, result.output
    search = json.loads((d / "r.json").read_text())["search"]
    assert search["counterexamples"] and not any(c["in_envelope"]
                                                 for c in search["counterexamples"])
    assert search["envelope"]["columns"]["x0"]["max"] == 1.0


def test_the_envelope_comes_from_the_project_config(nudged: dict[str, Any], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    d = nudged["dir"]
    (tmp_path / "pyproject.toml").write_text('[tool.baton.envelope]\nx0 = "0..1"\n')
    monkeypatch.chdir(tmp_path)
    result = _check(d / "tree.skops", d / "nudged.baton", "--data", d / "x.npy")
    assert result.exit_code == 0, result.output
    # the command line wins over the file
    result = _check(d / "tree.skops", d / "nudged.baton", "--data", d / "x.npy",
                    "--envelope", "x0=0..3")
    assert result.exit_code == 1, result.output


# -- the same verdict on a busy machine ----------------------------------------------------------


def _findings(path: Path) -> tuple[int, list[tuple[str, bool, str]], list[int]]:
    search = json.loads(path.read_text())["search"]
    return (search["examples"],
            sorted((c["class"], c["in_envelope"], json.dumps(c["changed"], sort_keys=True))
                   for c in search["counterexamples"]),
            [s["examples"] for s in search["stages"]])


def test_the_same_seed_gives_the_same_search_beside_busy_processes(nudged: dict[str, Any]
                                                                    ) -> None:
    d = nudged["dir"]
    cmd = [str(Path(sys.executable).with_name("baton")), "check", str(d / "tree.skops"),
           str(d / "nudged.baton"), "--data", str(d / "x.npy"), "--seed", "7"]
    quiet = subprocess.run([*cmd, "--json", str(d / "quiet.json")], capture_output=True,
                           text=True, timeout=300)
    assert quiet.returncode == 1, quiet.stdout + quiet.stderr
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = subprocess.run([*cmd, "--json", str(d / "busy.json")], capture_output=True,
                                text=True, timeout=300)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert loaded.returncode == 1, loaded.stdout + loaded.stderr
    assert _findings(d / "quiet.json") == _findings(d / "busy.json")
    examples, _, stages = _findings(d / "busy.json")
    # the default budget of 1000 examples, by the seed alone (the property search stops at
    # its first divergence, which it shrinks)
    assert 500 < examples <= 1000 and len(stages) == 4


def test_a_search_cut_short_by_its_time_cap_says_so(nudged: dict[str, Any]) -> None:
    d = nudged["dir"]
    args = [d / "tree.skops", d / "nudged.baton", "--data", d / "x.npy", "--json",
            d / "cut.json", "--search-budget", "1000000,1ms", "--envelope", "x0=0..1"]
    result = _check(*args)
    assert result.exit_code == 0, result.output  # by default an incomplete search is shown
    assert "incomplete:" in result.output and "of 1000000 examples" in result.output
    search = json.loads((d / "cut.json").read_text())["search"]
    assert search["complete"] is False and search["passed"] is True
    strict = _check(*args, "--strict-search")
    assert strict.exit_code == 1, strict.output
    assert "--strict-search" in strict.output


def test_help_names_the_flags() -> None:
    out = runner.invoke(app, ["check", "--help"], env={**os.environ, "COLUMNS": "200"})
    for flag in ("--envelope", "--search-scope", "--strict-search"):
        assert flag in out.output
    out = runner.invoke(app, ["convert", "--help"], env={**os.environ, "COLUMNS": "200"})
    assert "--envelope" in out.output


# -- outside_rows: every row at once, the same verdict as outside() row by row ------------------

_REGIONS = [
    Region("float", -1.0, 2.5, observed=(-1.0, 2.5)),
    Region("float", None, 10.0),
    Region("int", 0.0, 5.0),
    Region("int", 0.0, 5.0, missing=True),
    Region("bool"),
    Region("text", categories=("a", "b")),
    Region("text", missing=True, categories=("a",)),
    Region("text", categories=None),
    Region("mask", 0.0, 1.0),
    Region("mask", 0.0, 1.0, padding=True),
]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), which=st.integers(0, len(_REGIONS) - 1), rows=st.integers(0, 6),
       width=st.integers(1, 3))
def test_outside_rows_equals_outside_row_by_row(data, which, rows, width):
    region = _REGIONS[which]
    if region.kind == "text":
        values = np.array(data.draw(st.lists(
            st.sampled_from(["a", "b", "c", None]), min_size=rows, max_size=rows)),
            dtype=object)
    elif region.kind == "mask":
        values = np.array(data.draw(st.lists(st.lists(
            st.sampled_from([0, 1, 2]), min_size=width, max_size=width),
            min_size=rows, max_size=rows)), dtype=np.int64).reshape(rows, width)
    else:
        values = np.array(data.draw(st.lists(st.lists(
            st.one_of(st.floats(-20, 20), st.just(float("nan"))), min_size=width,
            max_size=width), min_size=rows, max_size=rows)), dtype=np.float64
                          ).reshape(rows, width)
    got = region.outside_rows(values)
    assert got.dtype == bool and got.shape == (rows,)
    assert got.tolist() == [region.outside(v) is not None for v in values]
