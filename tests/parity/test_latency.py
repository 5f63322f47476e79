"""Latency statistics, budgets and their decisions, the timing loop, budget configuration.

Nothing here asserts on how fast anything ran: only on counts, orders, intervals built from
given samples, and decisions made from given intervals."""

from __future__ import annotations

import json
import math
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton.errors import UsageError
from baton.parity.latency import (
    Budget,
    BudgetResult,
    Interval,
    LatencyReport,
    LatencyStats,
    TimingPlan,
    bootstrap_quantile,
    find_budget_config,
    order_index,
    resolve_budgets,
    summarize,
    time_contenders,
)
from baton.parity.report import Report

# -- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "provider", "batch", "metric", "op", "limit"), [
    ("cpu:batch=1:p99<=2ms", "cpu", 1, "p99", "<=", 2.0),
    ("cpu:batch=32:p50<500us", "cpu", 32, "p50", "<", 0.5),
    ("CUDA : batch = 8 : p95 <= 1.5 s", "cuda", 8, "p95", "<=", 1500.0),
    ("cpu:batch=1:p99<=250ns", "cpu", 1, "p99", "<=", 250e-6),
    ("cpu:batch=1:p99<=3µs", "cpu", 1, "p99", "<=", 3e-3),
    ("cpu:batch=1024:throughput>=5000/s", "cpu", 1024, "throughput", ">=", 5000.0),
    ("cpu:batch=2:throughput>1e4 rows/s", "cpu", 2, "throughput", ">", 10000.0),
])
def test_budget_parses(text: str, provider: str, batch: int, metric: str, op: str,
                       limit: float) -> None:
    b = Budget.parse(text)
    assert (b.provider, b.batch, b.metric, b.op) == (provider, batch, metric, op)
    assert b.limit == pytest.approx(limit)


@pytest.mark.parametrize(("text", "says"), [
    ("p99<=2ms", "1 part"),
    ("tpu:batch=1:p99<=2ms", "provider 'tpu'"),
    ("cpu:batch=0:p99<=2ms", "batch=0"),
    ("cpu:b=1:p99<=2ms", "b=1"),
    ("cpu:batch=1:p90<=2ms", "p90"),
    ("cpu:batch=1:p99<=2", "p99<=2"),  # no unit
    ("cpu:batch=1:p99>=2ms", "ceiling"),
    ("cpu:batch=1:throughput<=5/s", "floor"),
    ("cpu:batch=1:throughput>=5ms", "floor"),
    ("cpu:batch=1:p99<=0ms", "above 0"),
])
def test_bad_budget_is_a_usage_error(text: str, says: str) -> None:
    with pytest.raises(UsageError) as info:
        Budget.parse(text)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert text in message and "cpu:batch=1:p99<=2ms" in message  # what and an example
    assert says in message


# -- decisions ---------------------------------------------------------------------------


def stats(metric: str, low: float, value: float, high: float) -> LatencyStats:
    iv = Interval(value, low, high)
    s = LatencyStats("onnx", "cpu", 1, runs=1000)
    if metric == "throughput":
        s.throughput = iv
    else:
        setattr(s, f"{metric}_ms", iv)
    return s


@pytest.mark.parametrize(("spec", "interval", "verdict"), [
    ("cpu:batch=1:p99<=2ms", (1.0, 1.5, 1.9), "pass"),
    ("cpu:batch=1:p99<=2ms", (1.0, 1.5, 2.0), "pass"),  # <= includes the limit
    ("cpu:batch=1:p99<2ms", (1.0, 1.5, 2.0), "undecided"),
    ("cpu:batch=1:p99<=2ms", (1.5, 2.5, 3.0), "undecided"),
    ("cpu:batch=1:p99<=2ms", (2.1, 2.5, 3.0), "fail"),
    ("cpu:batch=1:p99<=2ms", (1.0, 1.5, math.inf), "undecided"),  # unbounded above
    ("cpu:batch=1:p99<=500us", (2.1, 2.5, math.inf), "fail"),
    ("cpu:batch=1:throughput>=100/s", (120.0, 150.0, 180.0), "pass"),
    ("cpu:batch=1:throughput>=100/s", (80.0, 110.0, 130.0), "undecided"),
    ("cpu:batch=1:throughput>=100/s", (50.0, 70.0, 99.0), "fail"),
])
def test_budget_decision_follows_the_interval(spec: str, interval: tuple[float, float, float],
                                              verdict: str) -> None:
    b = Budget.parse(spec)
    result = b.decide(stats(b.metric, *interval))
    assert result.verdict == verdict
    assert result.interval == Interval(interval[1], interval[0], interval[2])


@settings(max_examples=100, deadline=None)
@given(low=st.floats(0.001, 100), width=st.floats(0, 100),
       limits=st.lists(st.floats(0.0001, 300), min_size=2, max_size=8))
def test_a_higher_ceiling_never_turns_a_verdict_worse(low: float, width: float,
                                                      limits: list[float]) -> None:
    """fail -> undecided -> pass as the ceiling rises; never back."""
    order = {"fail": 0, "undecided": 1, "pass": 2}
    s = stats("p99", low, low + width / 2, low + width)
    verdicts = [order[Budget("cpu", 1, "p99", "<=", lim, "t").decide(s).verdict]
                for lim in sorted(limits)]
    assert verdicts == sorted(verdicts)


def test_skipped_measurement_skips_the_budget() -> None:
    s = LatencyStats("onnx", "cuda", 1, skipped="no CUDA execution provider")
    result = Budget.parse("cuda:batch=1:p99<=2ms").decide(s)
    assert result.verdict == "skipped" and "no CUDA" in result.detail


# -- statistics --------------------------------------------------------------------------


def test_order_index_is_the_ceil_q_n_th_smallest() -> None:
    x = np.arange(1, 1001, dtype=float)  # 1..1000
    assert x[order_index(1000, 0.99)] == 990
    assert x[order_index(1000, 0.5)] == 500
    assert x[order_index(1, 0.99)] == 1


def test_bootstrap_of_a_quantile_matches_brute_force_resampling() -> None:
    """The Beta shortcut draws the same distribution as resampling n values and taking the
    quantile of each resample."""
    rng = np.random.default_rng(1)
    x = np.sort(rng.lognormal(size=40))
    reps = 20000
    fast = bootstrap_quantile(x, 0.9, reps, np.random.default_rng(2))
    resamples = np.sort(x[rng.integers(0, 40, size=(reps, 40))], axis=1)
    slow = resamples[:, math.ceil(0.9 * 40) - 1]
    p_fast = np.array([(fast == v).mean() for v in x])
    p_slow = np.array([(slow == v).mean() for v in x])
    assert np.abs(p_fast - p_slow).max() < 0.02


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1e3, 1e9), min_size=1, max_size=600), st.integers(1, 64))
def test_intervals_lie_within_the_sample(samples: list[float], batch: int) -> None:
    x = np.asarray(samples)
    out = summarize(x, batch, TimingPlan(resamples=300))
    # (the mean's float rounding may step past the extremes by an ulp)
    lo, hi = x.min() / 1e6 * (1 - 1e-12), x.max() / 1e6 * (1 + 1e-12)
    for name in ("p50", "p95", "p99", "mean"):
        iv = out[name]
        assert lo <= iv.low <= iv.high
        assert lo <= iv.value <= hi
        assert iv.high <= hi or math.isinf(iv.high)
    tp = out["throughput"]
    assert tp.low <= tp.value <= tp.high
    assert tp.value == pytest.approx(batch / (x.mean() / 1e9))


@pytest.mark.parametrize(("n", "bounded"), [(100, {"p50", "p95"}), (499, {"p50", "p95"}),
                                            (500, {"p50", "p95", "p99"})])
def test_a_tail_quantile_needs_runs_beyond_it(n: int, bounded: set[str]) -> None:
    x = np.random.default_rng(0).lognormal(size=n) * 1e5
    out = summarize(x, 1, TimingPlan())
    assert {k for k in ("p50", "p95", "p99") if not math.isinf(out[k].high)} == bounded


def test_summaries_are_seeded() -> None:
    x = np.random.default_rng(3).lognormal(size=800) * 1e5
    assert summarize(x, 4, TimingPlan(seed=7)) == summarize(x, 4, TimingPlan(seed=7))


# -- the timing loop ---------------------------------------------------------------------


def test_interleaved_loop_times_every_contender_at_least_min_runs() -> None:
    calls = {"a": 0, "b": 0}

    def a() -> None:
        calls["a"] += 1

    def b() -> None:
        calls["b"] += 1

    plan = TimingPlan(min_runs=200, min_seconds=0, max_seconds=60, warmup_runs=3,
                      warmup_seconds=0)
    seen: list[float] = []
    samples, stopped_by, _ = time_contenders({"a": a, "b": b}, plan,
                                             lambda label, f: seen.append(f), "x")
    assert stopped_by == "runs"
    assert len(samples["a"]) >= 200 and len(samples["b"]) >= 200
    assert calls["a"] > len(samples["a"])  # warm-up calls are not timed
    assert (samples["a"] >= 0).all()
    assert seen and seen[-1] == 1.0


def test_time_budget_ends_the_loop_before_min_runs() -> None:
    plan = TimingPlan(min_runs=100_000, min_seconds=0, max_seconds=0.05, warmup_runs=1,
                      warmup_seconds=0)
    samples, stopped_by, _ = time_contenders({"slow": lambda: time.sleep(0.002)}, plan)
    assert stopped_by == "time"
    assert 1 <= len(samples["slow"]) < 100_000


def test_invalid_plan_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        TimingPlan(min_runs=0)


# -- results as data ---------------------------------------------------------------------


def latency_report(verdicts: list[str], strict: bool = False) -> LatencyReport:
    results = []
    for i, v in enumerate(verdicts):
        b = Budget.parse(f"cpu:batch={i + 1}:p99<=2ms")
        iv = None if v == "skipped" else Interval(1.5, 1.0, 3.0)
        results.append(BudgetResult(b, v, iv, f"{v} detail [1 ms, 3 ms]"))
    s = stats("p99", 1.0, 1.5, math.inf)
    s.p50_ms = s.p95_ms = s.mean_ms = Interval(1.0, 0.9, 1.1)
    s.throughput = Interval(900.0, 800.0, 1000.0)
    return LatencyReport([s], results, strict=strict, config="baton.toml")


@pytest.mark.parametrize(("verdicts", "strict", "passed"), [
    (["pass", "pass"], False, True),
    (["pass", "undecided", "skipped"], False, True),
    (["pass", "undecided"], True, False),
    (["skipped"], True, False),
    (["pass", "fail"], False, False),
])
def test_report_verdict_with_budgets(verdicts: list[str], strict: bool, passed: bool) -> None:
    from baton.parity.compare import compare
    from baton.tolerance import Tolerance

    diff = compare("y", "scores", np.ones(3), np.ones(3), Tolerance(), lambda r: {})
    report = Report(kind="check", model="m", target="t", rows=3, outputs=[diff])
    assert report.passed
    report.latency = latency_report(verdicts, strict)
    assert bool(report) is passed
    assert bool(report.failures) is not passed
    # JSON round trip (strict JSON: the unbounded interval is null)
    data = json.loads(report.to_json())
    assert data["latency"]["passed"] is passed
    assert data["latency"]["measurements"][0]["p99_ms"]["high"] is None
    back = Report.from_dict(data)
    assert back.latency is not None and back.latency.to_dict() == report.latency.to_dict()
    # JUnit: one case per budget; failures and skips counted
    root = ET.fromstring(report.to_junit())
    cases = [c for c in root.iter("testcase") if c.get("classname", "").endswith("budgets")]
    assert len(cases) == len(verdicts)
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == sum(v == "fail" or (strict and v != "pass") for v in verdicts)
    for c in failed:
        assert "[1 ms, 3 ms]" in c.find("failure").get("message")  # the interval is shown
    suite = root.find("testsuite")
    assert suite.get("skipped") == str(sum(c.find("skipped") is not None for c in cases))


# -- configuration -----------------------------------------------------------------------


def test_budgets_from_baton_toml_win_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.baton]\nbudgets = ["cpu:batch=1:p50<=1s"]\n')
    (tmp_path / "baton.toml").write_text('budgets = ["cpu:batch=1:p99<=2ms"]\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    specs, path = find_budget_config(sub)
    assert specs == ["cpu:batch=1:p99<=2ms"] and path == tmp_path / "baton.toml"
    (tmp_path / "baton.toml").unlink()
    specs, path = find_budget_config(sub)
    assert specs == ["cpu:batch=1:p50<=1s"] and path == tmp_path / "pyproject.toml"


def test_pyproject_without_budgets_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.baton]\nbudgets = ["cpu:batch=1:p50<=1s"]\n')
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_budget_config(tmp_path / "inner")[1] == tmp_path / "pyproject.toml"


def test_command_line_budget_replaces_the_same_key(tmp_path: Path) -> None:
    (tmp_path / "baton.toml").write_text(
        'budgets = ["cpu:batch=1:p99<=2ms", "cpu:batch=32:p50<=1ms"]\n')
    budgets, path = resolve_budgets(["cpu:batch=1:p99<=5ms", "cuda:batch=1:p99<=1ms"], tmp_path)
    assert path == tmp_path / "baton.toml"
    got = {(b.provider, b.batch, b.metric): (b.limit, b.source) for b in budgets}
    assert got == {("cpu", 1, "p99"): (5.0, "--budget"),
                   ("cpu", 32, "p50"): (1.0, str(tmp_path / "baton.toml")),
                   ("cuda", 1, "p99"): (1.0, "--budget")}


@pytest.mark.parametrize("content", ['budgets = "cpu:batch=1:p99<=2ms"\n', "budgets = [1]\n",
                                     "budgets = [\n", 'budgets = ["cpu:p99<=2ms"]\n'])
def test_bad_config_names_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "baton.toml").write_text(content)
    with pytest.raises(UsageError) as info:
        resolve_budgets([], tmp_path)
    assert "baton.toml" in str(info.value)


@pytest.mark.parametrize("function", ["bench", "check_budgets"])
def test_parity_is_handed_the_converter_it_runs_the_original_with(tmp_path: Path,
                                                                  function: str) -> None:
    """parity never looks converters up: a model without its converter is a usage error."""
    from sklearn.linear_model import LinearRegression

    import baton
    from baton.parity import latency

    X = np.random.default_rng(0).normal(size=(40, 3))
    model = LinearRegression().fit(X, X.sum(axis=1))
    path = baton.convert(model, X, tune=False).save(tmp_path / "lr.baton")
    call = (lambda: latency.bench(path, model=model)) if function == "bench" else (
        lambda: latency.check_budgets(path, X, [latency.Budget.parse("cpu:batch=1:p99<=1s", "t")],
                                      model=model))
    with pytest.raises(UsageError, match="converter"):
        call()
