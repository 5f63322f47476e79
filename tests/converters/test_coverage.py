"""Coverage over scikit-learn: every estimator of ``sklearn.utils.all_estimators()``, built with
default arguments, fitted, converted and checked by the method of
``benchmarks/sklearn_estimators.py`` (on the data, and with the parity search: 300 examples
in the suite, the default 1000 with ``BATON_COVERAGE_FULL=1``).

Writes ``docs/coverage.md`` (for every estimator: parity, or the exact refusal), and fails
when the counts drop below the floors reached. The estimators run two at a time, each in a
worker process with a time limit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import sklearn_estimators as se  # noqa: E402

#: the floors: inductive, default-constructible estimators converting with parity
ON_DATA = 145
WITH_SEARCH = 144
PAGE = ROOT / "docs" / "coverage.md"
#: the search's example budget: 300 in the suite (a quarter of the time of the default 1000,
#: which found no more divergences on these estimators when measured); the default with
#: BATON_COVERAGE_FULL=1
FULL = bool(os.environ.get("BATON_COVERAGE_FULL"))
BUDGET = "1000" if FULL else "300"
LONGER = (", where the default is 1000 examples, which `BATON_COVERAGE_FULL=1 pytest "
          "tests/converters/test_coverage.py` runs")


def page(results: list[dict], versions: str, budget: str = BUDGET) -> str:
    tried = [r for r in results if r["status"] != "skipped"]
    on_data = [r for r in tried if se.passed(r, "data")]
    search = [r for r in tried if se.passed(r, "search")]
    lines = [
        "# scikit-learn coverage",
        "",
        "What baton converts with parity, estimator by estimator, and why the rest is "
        "refused. Written by `tests/converters/test_coverage.py` (part of the test suite: "
        "it fails when fewer than "
        f"{ON_DATA} estimators keep parity on the data or fewer than {WITH_SEARCH} with the "
        "parity search).",
        "",
        "## The method",
        "",
        "Every class of `sklearn.utils.all_estimators()` built with no arguments. Classifiers "
        "are fitted on `make_classification(300, 6, random_state=0)`, regressors on "
        "`make_regression(300, 6, random_state=0)`, everything else on the classification X "
        "(with its y where `fit` needs one). An estimator that predicts or transforms once "
        "fitted is converted with `baton.convert(model, X)` and checked on the same X, "
        "first on the data only (`baton.check(model, bundle, X, search=False)`), then with "
        f"the parity search (`baton.check(model, bundle, X, search_budget=\"{budget}\")`: "
        f"{budget} examples{'' if budget == '1000' else LONGER}), where a divergence "
        "inside the proof's envelope fails. The same machinery makes the table of "
        "`benchmarks/sweep_sklearn.py` ([benchmarks](benchmarks.md)), with timings.",
        "",
        f"Versions: {versions}.",
        "",
        "| | estimators |",
        "|---|---:|",
        f"| tried (default-constructible, fitted, inductive) | {len(tried)} |",
        f"| converted | {sum(bool(r.get('converted')) for r in tried)} |",
        f"| parity on the data | {len(on_data)} |",
        f"| parity with the search | {len(search)} |",
        "",
        "Estimators fitted on adapted data, because the default data does not fit them:",
        "",
    ]
    lines += [f"- {r['name']}: {r['adapted']}." for r in tried if r.get("adapted")]
    lines += ["", "## Estimator by estimator", "",
              "| estimator | kind | converter | outcome |", "|---|---|---|---|"]
    for r in tried:
        lines.append(f"| {r['name']} | {r.get('kind', '')} | {se.how(r)} "
                     f"| {_md(se.verdict(r, ('data', 'search')))} |")
    skipped = [r for r in results if r["status"] == "skipped"]
    lines += ["", "## Not tried", "",
              "Not default-constructible (a meta-estimator or composite that needs its "
              "estimators: Pipeline, ColumnTransformer, Voting, Stacking... baton converts "
              "those with the estimators inside them), not inductive (no predict or "
              "transform for new rows: use a model that predicts), or not a model of a "
              "table:", "", "| estimator | why |", "|---|---|"]
    for r in skipped:
        detail = f" ({r['detail']})" if r.get("detail") and "fit" in r["reason"] else ""
        lines.append(f"| {r['name']} | {_md(r.get('reason', '') + detail)} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def test_scikit_learn_coverage(monkeypatch: pytest.MonkeyPatch):
    import onnxruntime
    import sklearn

    import baton

    monkeypatch.setenv(se.SEARCH_BUDGET_ENV, BUDGET)  # read by the spawned workers
    results = se.run(se.names(), ("data", "search"), timeout=240,
                     workers=min(2, os.cpu_count() or 1))
    versions = (f"scikit-learn {sklearn.__version__}, onnxruntime {onnxruntime.__version__}, "
                f"baton {baton.__version__}")
    PAGE.write_text(page(results, versions))
    tried = [r for r in results if r["status"] != "skipped"]
    on_data = sorted(r["name"] for r in tried if se.passed(r, "data"))
    search = sorted(r["name"] for r in tried if se.passed(r, "search"))
    failing = {r["name"]: se.verdict(r, ("data", "search")) for r in tried
               if not se.passed(r, "search")}
    assert len(on_data) >= ON_DATA, (len(on_data), failing)
    assert len(search) >= WITH_SEARCH, (len(search), failing)
    # no estimator crashes baton or runs out of time: each outcome is a verdict or a refusal
    broken = {r["name"]: r.get("reason") for r in tried
              if r["status"] in ("crashed", "timeout")}
    assert not broken, broken
