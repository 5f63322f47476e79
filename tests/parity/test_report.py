"""``Report``: the verdict (``bool``), the strict-JSON round trip and the JUnit XML."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from baton.parity.compare import OutputDiff, WorstRow, compare
from baton.parity.report import Report
from baton.runtime._files import FileCheck
from baton.tolerance import Tolerance

SETTINGS = settings(max_examples=50, deadline=None)
ENV = {"baton": "0.0.test", "python": "3.x", "platform": "test"}
STATS = ("max_abs", "max_rel", "p99_abs", "p99_rel", "min_cosine", "min_atol", "min_rtol")

# Names as a model or graph may have them: any printable text, markup characters included.
# (XML 1.0 cannot carry control characters or lone surrogates at all.)
names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=12)
sha = st.text("0123456789abcdef", min_size=64, max_size=64)


def _no_constants(name: str) -> Any:
    raise AssertionError(f"non-standard JSON constant {name}")


def strict_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constants)


def same(x: Any, y: Any) -> bool:
    """Equality that holds NaN equal to NaN."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(x == y)


@st.composite
def compared(draw: st.DrawFn) -> OutputDiff:
    """An OutputDiff as compare() makes it, from outputs that may hold NaN and ±inf."""
    kind = draw(st.sampled_from(["scores", "probabilities", "transformed", "label",
                                 "prediction"]))
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, 3))
    if kind == "label":
        b = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))
        a = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))
    else:
        anything = st.floats(width=32) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0])
        b = draw(hnp.arrays(np.float64, (n, k), elements=anything))
        a = np.where(draw(hnp.arrays(np.bool_, (n, k))), b,
                     draw(hnp.arrays(np.float64, (n, k), elements=anything)))
    inputs = draw(st.lists(st.floats(allow_nan=True) | st.text(max_size=5) | st.integers(),
                           min_size=n, max_size=n))
    return compare(draw(names), kind, b, a,
                   Tolerance(atol=draw(st.floats(0, 1)), rtol=draw(st.floats(0, 1)),
                             agreement=draw(st.floats(0, 1))),
                   lambda r: {"x": _jsonable(inputs[r]), "row": r})


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def non_finite_diff(name: str = "scores", passed: bool = False) -> OutputDiff:
    return OutputDiff(
        name=name, kind="scores", rows=3, passed=passed, tolerance=Tolerance(),
        mismatched_rows=0 if passed else 1, max_abs=math.inf, max_rel=math.nan,
        p99_abs=-math.inf, p99_rel=math.nan, min_cosine=math.nan, min_atol=math.inf,
        min_rtol=math.inf,
        worst=[WorstRow(2, {"age": "NaN"}, "Infinity", 1.5, math.inf)],
    )


files = st.builds(
    lambda name, expected, found, kind: FileCheck(
        name, expected, {"ok": expected, "differs": found, "missing": None}[kind]),
    names, sha, sha, st.sampled_from(["ok", "differs", "missing"]),
)


@st.composite
def reports(draw: st.DrawFn) -> Report:
    outputs = draw(st.lists(compared() | st.builds(non_finite_diff, names, st.booleans()),
                            max_size=4))
    return Report(
        kind=draw(st.sampled_from(["convert", "check", "verify"])),
        model=draw(names), target=draw(names), rows=draw(st.integers(0, 10 ** 6)),
        outputs=outputs, files=draw(st.lists(files, max_size=3)),
        data=draw(st.none() | names), notes=draw(st.lists(names, max_size=2)),
        environment=ENV, created="2024-05-01T12:00:00+00:00",
    )


def assert_same_diff(x: OutputDiff, y: OutputDiff) -> None:
    for f in ("name", "kind", "rows", "passed", "tolerance", "mismatched_rows", "agreement",
              "message"):
        assert getattr(x, f) == getattr(y, f), f
    for f in STATS:
        assert same(getattr(x, f), getattr(y, f)), f
    assert len(x.worst) == len(y.worst)
    for w, v in zip(x.worst, y.worst):
        assert (w.row, w.inputs, w.expected, w.actual) == (v.row, v.inputs, v.expected, v.actual)
        assert same(w.abs_error, v.abs_error)


def assert_same_report(x: Report, y: Report) -> None:
    for f in ("kind", "model", "target", "rows", "data", "notes", "environment", "created"):
        assert getattr(x, f) == getattr(y, f), f
    assert len(x.outputs) == len(y.outputs)
    for o, p in zip(x.outputs, y.outputs):
        assert_same_diff(o, p)
    assert [(f.name, f.expected, f.found) for f in x.files] == \
        [(f.name, f.expected, f.found) for f in y.files]
    assert bool(x) == bool(y)


# -- round trips ------------------------------------------------------------------------


@SETTINGS
@given(report=reports())
def test_report_round_trips_through_dict(report: Report) -> None:
    back = Report.from_dict(report.to_dict())
    assert_same_report(report, back)
    assert back.to_dict() == report.to_dict()


@SETTINGS
@given(report=reports(), indent=st.sampled_from([None, 2]))
def test_report_round_trips_through_strict_json(report: Report, indent: int | None) -> None:
    text = report.to_json(indent=indent)
    back = Report.from_dict(strict_loads(text))
    assert_same_report(report, back)
    assert back.to_json(indent=indent) == text


def test_non_finite_statistics_survive_strict_json() -> None:
    report = Report("check", "m", "cpu", 3, [non_finite_diff()], environment=ENV)
    text = report.to_json()
    data = strict_loads(text)  # no NaN / Infinity literals in the text
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text.replace(
        '"Infinity"', "").replace('"-Infinity"', "")
    back = Report.from_dict(data).outputs[0]
    assert back.max_abs == math.inf and back.p99_abs == -math.inf
    assert math.isnan(back.max_rel) and math.isnan(back.p99_rel)  # type: ignore[arg-type]
    assert math.isnan(back.min_cosine)  # type: ignore[arg-type]
    assert back.min_atol == math.inf and back.min_rtol == math.inf
    assert back.worst[0].abs_error == math.inf


def test_report_of_an_infinite_tolerance_is_strict_json() -> None:
    """A tolerance may be infinite (``--atol inf``): the report must still serialise."""
    tol = Tolerance(atol=math.inf, rtol=0.0)
    d = compare("y", "scores", np.array([1.0, 2.0]), np.array([1.0, 1e300]), tol)
    assert d.passed
    report = Report("check", "m", "cpu", 2, [d], environment=ENV)
    back = Report.from_dict(strict_loads(report.to_json()))
    assert back.outputs[0].tolerance == tol
    ET.fromstring(report.to_junit())


def test_report_json_written_to_disk(tmp_path: Path) -> None:
    report = Report("check", "m", "cpu", 3, [non_finite_diff(passed=True)], environment=ENV)
    path = report.write_json(tmp_path / "sub" / "report.json")
    back = Report.from_dict(strict_loads(path.read_text(encoding="utf-8")))
    assert_same_report(report, back)
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temporary left


def test_default_environment_and_timestamp() -> None:
    report = Report("convert", "m", "cpu", 1, [non_finite_diff(passed=True)])
    assert {"baton", "python", "numpy", "onnxruntime"} <= set(report.environment)
    back = Report.from_dict(strict_loads(report.to_json()))
    assert back.environment == report.environment and back.created == report.created


# -- the verdict ------------------------------------------------------------------------


def diff(name: str, passed: bool) -> OutputDiff:
    return OutputDiff(name=name, kind="scores", rows=1, passed=passed, tolerance=Tolerance())


@settings(max_examples=100, deadline=None)
@given(outputs=st.lists(st.booleans(), max_size=5),
       file_states=st.lists(st.sampled_from(["ok", "differs", "missing"]), max_size=4))
def test_bool_report_is_every_output_and_file_passing(outputs: list[bool],
                                                      file_states: list[str]) -> None:
    fs = [FileCheck(f"f{i}", "a" * 64, {"ok": "a" * 64, "differs": "b" * 64, "missing": None}[s])
          for i, s in enumerate(file_states)]
    report = Report("verify", "m", "cpu", 1, [diff(f"o{i}", p) for i, p in enumerate(outputs)],
                    files=fs, environment=ENV)
    expected = len(outputs) > 0 and all(outputs) and all(s == "ok" for s in file_states)
    assert bool(report) is expected
    assert report.passed is expected
    assert report.to_dict()["passed"] is expected
    assert (report.failures == []) is expected


def test_no_outputs_is_a_failure_even_with_intact_files() -> None:
    report = Report("verify", "m", "cpu", 0, [], files=[FileCheck("model.onnx", "a", "a")],
                    environment=ENV)
    assert not report
    assert any("no outputs" in f for f in report.failures)


# -- JUnit XML --------------------------------------------------------------------------


@SETTINGS
@given(report=reports())
def test_junit_has_one_case_per_output_and_failures_exactly_for_failing(report: Report) -> None:
    root = ET.fromstring(report.to_junit())
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    n_out, n_files = len(report.outputs), len(report.files)
    assert len(cases) == n_out + n_files
    out_cases, file_cases = cases[:n_out], cases[n_out:]
    for o, case in zip(report.outputs, out_cases):
        assert o.name in case.get("name", "")
        fails = case.findall("failure")
        assert len(fails) == (0 if o.passed else 1)
        if fails:
            body = strict_loads(fails[0].text or "")
            assert body["name"] == o.name and body["passed"] is False
    for f, case in zip(report.files, file_cases):
        assert f.name in case.get("name", "")
        assert len(case.findall("failure")) == (0 if f.found == f.expected else 1)
    want_failures = (sum(not o.passed for o in report.outputs)
                     + sum(f.found != f.expected for f in report.files))
    assert int(suite.get("tests", "-1")) == n_out + n_files
    assert int(suite.get("failures", "-1")) == want_failures
    assert int(suite.get("errors", "0")) == 0
    assert int(suite.get("skipped", "0")) == 0
    if root.tag == "testsuites":
        assert int(root.get("tests", "-1")) == n_out + n_files
        assert int(root.get("failures", "-1")) == want_failures


def test_junit_written_to_disk_parses(tmp_path: Path) -> None:
    report = Report("check", 'model <"&">', "cpu", 3,
                    [diff("ok", True), non_finite_diff("bad <&>", False)], environment=ENV)
    tree = ET.parse(report.write_junit(tmp_path / "junit.xml"))
    cases = tree.getroot().iter("testcase")
    verdicts = {c.get("name"): c.find("failure") is None for c in cases}
    assert len(verdicts) == 2
    assert [v for k, v in verdicts.items() if "bad <&>" in (k or "")] == [False]
    assert [v for k, v in verdicts.items() if "ok" in (k or "")] == [True]
