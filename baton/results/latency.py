"""Latency results as data: intervals, one model's timings, budgets and their decisions,
what ``check`` carries about latency (:class:`LatencyReport`) and ``baton bench``'s
results (:class:`BenchResult`), with the formatting their messages use.

A leaf (the standard library and baton's other leaves only): ``baton.parity.latency``
measures and decides; these types are what it hands back, and what reports read again.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from baton.errors import UsageError
from baton.results._io import write_text

BENCH_VERSION = 1
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
METRICS = ("p50", "p95", "p99", "throughput")
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
#: A quantile's interval is bounded above only with at least this many runs beyond it
#: (p99: 500 runs); with fewer the data cannot say how bad the tail is.
TAIL_RUNS = 5
BUDGET_FORMAT = "PROVIDER:batch=N:METRIC<=LIMIT"
BUDGET_EXAMPLES = "cpu:batch=1:p99<=2ms, cuda:batch=32:p50<=500us, cpu:batch=256:throughput>=5000/s"
_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_METRIC_RE = re.compile(
    r"^(?P<metric>[a-z0-9]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>[0-9]*\.?[0-9]+(?:e[+-]?\d+)?)"
    r"\s*(?P<unit>ns|us|µs|ms|s|/s|rows/s)?$", flags=re.I)


# -- measurements -----------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval; ``high`` is ``inf`` when unbounded."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low,
                "high": None if math.isinf(self.high) else self.high}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Interval:
        high = d.get("high")
        return cls(float(d["value"]), float(d["low"]), math.inf if high is None else float(high))


@dataclass(frozen=True)
class TimingPlan:
    """How long to measure. Warm-up runs until ``warmup_runs`` runs *and* ``warmup_seconds``
    are done (at most a quarter of ``max_seconds``). Timed runs go on until there are
    ``min_runs`` of them *and* ``min_seconds`` have passed, or until ``max_seconds`` have
    passed, whichever comes first (at least one timed run)."""

    min_runs: int = 1000
    max_seconds: float = 10.0
    min_seconds: float = 1.0
    warmup_runs: int = 10
    warmup_seconds: float = 0.2
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.min_runs < 1 or self.max_seconds <= 0 or self.min_seconds < 0
                or not 0 < self.confidence < 1):
            raise UsageError(
                "invalid timing plan",
                expected="min_runs >= 1, max_seconds > 0, min_seconds >= 0, 0 < confidence < 1",
                found=f"min_runs {self.min_runs}, max_seconds {self.max_seconds}, "
                      f"min_seconds {self.min_seconds}, confidence {self.confidence}",
                hint="pass e.g. --min-runs 1000 --min-seconds 1 --max-seconds 10",
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class LatencyStats:
    """One model timed on one provider at one batch size (or why it was not)."""

    model: str  # "onnx" or "original"
    provider: str
    batch: int
    runs: int = 0
    seconds: float = 0.0
    stopped_by: str = ""  # "runs" (min_runs reached) or "time" (max_seconds reached)
    p50_ms: Interval | None = None
    p95_ms: Interval | None = None
    p99_ms: Interval | None = None
    mean_ms: Interval | None = None
    throughput: Interval | None = None  # rows per second
    confidence: float = 0.95
    environment: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    def __bool__(self) -> bool:
        return self.skipped is None

    def metric(self, name: str) -> Interval | None:
        return self.throughput if name == "throughput" else getattr(self, f"{name}_ms")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model": self.model, "provider": self.provider,
                             "batch": self.batch}
        if self.skipped is not None:
            return {**d, "skipped": self.skipped, "environment": self.environment}
        d.update(runs=self.runs, seconds=round(self.seconds, 6), stopped_by=self.stopped_by,
                 confidence=self.confidence)
        for name in ("p50_ms", "p95_ms", "p99_ms", "mean_ms"):
            iv = getattr(self, name)
            d[name] = None if iv is None else iv.to_dict()
        d["throughput_rows_per_s"] = None if self.throughput is None else self.throughput.to_dict()
        d["environment"] = self.environment
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencyStats:
        def iv(key: str) -> Interval | None:
            return None if d.get(key) is None else Interval.from_dict(d[key])

        return cls(
            model=d["model"], provider=d["provider"], batch=int(d["batch"]),
            runs=int(d.get("runs", 0)), seconds=float(d.get("seconds", 0.0)),
            stopped_by=d.get("stopped_by", ""), p50_ms=iv("p50_ms"), p95_ms=iv("p95_ms"),
            p99_ms=iv("p99_ms"), mean_ms=iv("mean_ms"), throughput=iv("throughput_rows_per_s"),
            confidence=float(d.get("confidence", 0.95)),
            environment=dict(d.get("environment", {})), skipped=d.get("skipped"),
        )

    def summary(self) -> str:
        if self.skipped is not None:
            return f"skipped: {self.skipped}"
        assert self.p50_ms and self.p95_ms and self.p99_ms and self.throughput
        return (f"p50 {fmt_interval(self.p50_ms, 'ms')}, p95 {fmt_interval(self.p95_ms, 'ms')}, "
                f"p99 {fmt_interval(self.p99_ms, 'ms')}, throughput "
                f"{fmt_interval(self.throughput, '/s')} ({self.runs} runs)")


# -- budgets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """``provider:batch=N:metric OP limit``; latency limits in ms, throughput in rows/s."""

    provider: str
    batch: int
    metric: str
    op: str
    limit: float
    text: str
    source: str = "--budget"

    @property
    def key(self) -> tuple[str, int, str]:
        return self.provider, self.batch, self.metric

    @property
    def unit(self) -> str:
        return "/s" if self.metric == "throughput" else "ms"

    @classmethod
    def parse(cls, text: str, source: str = "--budget") -> Budget:
        spec = text.strip()
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) != 3:
            raise _bad_budget(text, source, f"{len(parts)} part(s) separated by ':'",
                              "write three parts: provider, batch=N and the metric's limit")
        provider, batch_part, metric_part = parts
        if provider.lower() not in PROVIDERS:
            raise _bad_budget(text, source, f"provider {provider!r}",
                              "the provider is one of: " + ", ".join(PROVIDERS))
        m = re.fullmatch(r"batch\s*=\s*(\d+)", batch_part, flags=re.I)
        if not m or int(m.group(1)) < 1:
            raise _bad_budget(text, source, repr(batch_part),
                              "the second part is batch=N with N >= 1, e.g. batch=32")
        mm = _METRIC_RE.match(metric_part)
        if not mm or mm.group("metric").lower() not in METRICS:
            raise _bad_budget(text, source, repr(metric_part),
                              "the third part is a metric (" + ", ".join(METRICS) + "), <= or "
                              ">=, and a limit with its unit, e.g. p99<=2ms or "
                              "throughput>=5000/s")
        metric, op = mm.group("metric").lower(), mm.group("op")
        unit, value = (mm.group("unit") or "").lower(), float(mm.group("value"))
        if metric == "throughput":
            if op not in (">=", ">") or unit not in ("/s", "rows/s"):
                raise _bad_budget(text, source, repr(metric_part),
                                  "a throughput budget is a floor in rows per second, e.g. "
                                  "throughput>=5000/s")
            limit = value
        else:
            if op not in ("<=", "<") or unit not in _UNITS_MS:
                raise _bad_budget(text, source, repr(metric_part),
                                  "a latency budget is a ceiling with a time unit (ns, us, ms, "
                                  f"s), e.g. {metric}<=2ms")
            limit = value * _UNITS_MS[unit]
        if not limit > 0:
            raise _bad_budget(text, source, repr(metric_part), "the limit must be above 0")
        return cls(provider.lower(), int(m.group(1)), metric, op, limit, spec, source)

    def decide(self, stats: LatencyStats) -> BudgetResult:
        if stats.skipped is not None:
            return BudgetResult(self, "skipped", None, stats.skipped)
        iv = stats.metric(self.metric)
        assert iv is not None
        low, high = iv.low, iv.high
        if self.op in ("<=", "<"):
            within = high <= self.limit if self.op == "<=" else high < self.limit
            beyond = low > self.limit if self.op == "<=" else low >= self.limit
        else:
            within = low >= self.limit if self.op == ">=" else low > self.limit
            beyond = high < self.limit if self.op == ">=" else high <= self.limit
        verdict = "pass" if within else "fail" if beyond else "undecided"
        pct = f"{stats.confidence:.0%}"
        shown = f"{self.metric} {fmt_interval(iv, self.unit)} ({pct} interval, {stats.runs} runs)"
        limit = f"{self.op} {fmt_value(self.limit, self.unit)}"
        if verdict == "pass":
            detail = f"{shown}: the whole interval is {limit}"
        elif verdict == "fail":
            detail = f"{shown}: the whole interval is beyond {limit}"
        elif math.isinf(high):
            detail = (f"{shown}: too few runs to bound {self.metric} from above (needs "
                      f"{math.ceil(TAIL_RUNS / (1 - QUANTILES[self.metric]))}); cannot tell "
                      f"whether it is {limit}")
        else:
            detail = f"{shown}: the interval straddles {limit}; cannot tell"
        return BudgetResult(self, verdict, iv, detail)


def _bad_budget(text: str, source: str, found: str, hint: str) -> UsageError:
    return UsageError(f"cannot read the latency budget {text!r} (from {source})",
                      expected=f"{BUDGET_FORMAT}, e.g. {BUDGET_EXAMPLES}", found=found,
                      hint=hint)


@dataclass
class BudgetResult:
    budget: Budget
    verdict: str
    interval: Interval | None
    detail: str

    def gates(self, strict: bool) -> bool:
        """Whether this result fails the gate."""
        return self.verdict == "fail" or (strict and self.verdict in ("undecided", "skipped"))

    def to_dict(self) -> dict[str, Any]:
        b = self.budget
        return {"budget": b.text, "source": b.source, "provider": b.provider, "batch": b.batch,
                "metric": b.metric, "op": b.op, "limit": b.limit,
                "unit": "rows/s" if b.metric == "throughput" else "ms",
                "verdict": self.verdict,
                "interval": None if self.interval is None else self.interval.to_dict(),
                "detail": self.detail}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetResult:
        b = Budget(d["provider"], int(d["batch"]), d["metric"], d["op"], float(d["limit"]),
                   d["budget"], d.get("source", "--budget"))
        iv = None if d.get("interval") is None else Interval.from_dict(d["interval"])
        return cls(b, d["verdict"], iv, d.get("detail", ""))


@dataclass
class LatencyReport:
    """What a ``Report`` carries about latency: the measurements and budget decisions."""

    measurements: list[LatencyStats]
    budgets: list[BudgetResult]
    strict: bool = False
    config: str | None = None  # the file budgets were read from, if any
    plan: TimingPlan = field(default_factory=TimingPlan)

    @property
    def passed(self) -> bool:
        return not any(b.gates(self.strict) for b in self.budgets)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[str]:
        return [f"budget {b.budget.text}: {b.verdict}: {b.detail}"
                for b in self.budgets if b.gates(self.strict)]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "strict": self.strict, "config": self.config,
                "plan": self.plan.to_dict(),
                "budgets": [b.to_dict() for b in self.budgets],
                "measurements": [m.to_dict() for m in self.measurements]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencyReport:
        return cls([LatencyStats.from_dict(m) for m in d.get("measurements", [])],
                   [BudgetResult.from_dict(b) for b in d.get("budgets", [])],
                   strict=bool(d.get("strict", False)), config=d.get("config"),
                   plan=TimingPlan(**d["plan"]) if d.get("plan") else TimingPlan())

    def junit_cases(self, suite_name: str) -> list[Any]:
        """One test case per budget: a failure (or, without ``strict``, a skip for an
        undecided or unmeasurable budget) whose message shows the interval."""
        import xml.etree.ElementTree as ET

        cases = []
        for b in self.budgets:
            case = ET.Element("testcase", classname=f"{suite_name}.budgets",
                              name=f"budget {b.budget.text}", time="0")
            message = f"{b.verdict}: {b.detail}"
            if b.gates(self.strict):
                ET.SubElement(case, "failure", type="BudgetFailure", message=message)
            elif b.verdict in ("undecided", "skipped"):
                ET.SubElement(case, "skipped", message=message)
            else:
                ET.SubElement(case, "system-out").text = message
            cases.append(case)
        return cases


# -- baton bench ------------------------------------------------------------------------


@dataclass
class BenchEntry:
    provider: str
    batch: int
    onnx: LatencyStats
    original: LatencyStats | None = None
    speedup: Interval | None = None  # original p50 / ONNX p50

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "batch": self.batch, "onnx": self.onnx.to_dict(),
                "original": None if self.original is None else self.original.to_dict(),
                "speedup_p50": None if self.speedup is None else self.speedup.to_dict()}


@dataclass
class BenchResult:
    """``baton bench``: ONNX (and the original) per provider and batch size."""

    target: str
    model: str | None
    data: str | None
    entries: list[BenchEntry]
    plan: TimingPlan
    environment: dict[str, Any]
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return {"bench_version": BENCH_VERSION, "target": self.target, "model": self.model,
                "data": self.data, "plan": self.plan.to_dict(), "environment": self.environment,
                "created": self.created, "results": [e.to_dict() for e in self.entries]}

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        return write_text(Path(path), self.to_json() + "\n")


# -- formatting -------------------------------------------------------------------------


def fmt_value(v: float, unit: str) -> str:
    if math.isinf(v):
        return "unbounded"
    if unit == "/s":
        return f"{v:,.0f}/s" if v >= 100 else f"{v:.3g}/s"
    if v >= 1000:
        return f"{v / 1000:.3g} s"
    if v >= 1:
        return f"{v:.3g} ms"
    if v >= 1e-3:
        return f"{v * 1e3:.3g} µs"
    return f"{v * 1e6:.3g} ns"


def fmt_interval(iv: Interval, unit: str) -> str:
    return f"{fmt_value(iv.value, unit)} [{fmt_value(iv.low, unit)}, {fmt_value(iv.high, unit)}]"
