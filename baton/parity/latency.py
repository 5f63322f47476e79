"""Latency, measured honestly: a timing loop, percentiles with bootstrap confidence
intervals, the environment they were measured in, and budgets decided on the intervals.

    timing loop   warm-up, then timed runs until ``min_runs`` (default 1000) runs are done or
                  ``max_seconds`` (default 10 s) have passed, whichever comes first; the
                  original model, when given, is timed in the same loop (each round runs
                  every contender once, in a fresh random order), so the ratio is fair
    statistics    p50/p95/p99 (the ``ceil(q*n)``-th smallest time), mean, throughput
                  (rows/s = batch / mean), each with a seeded 95 % bootstrap interval
    budgets       ``cpu:batch=1:p99<=2ms``: *fail* only when the whole interval lies beyond
                  the limit, *pass* when it lies within, *undecided* otherwise

Only numpy, onnxruntime and the standard library at import (``baton.parity.report`` and
therefore ``import baton`` import this module).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import SchemaError, UsageError

BENCH_VERSION = 1
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
METRICS = ("p50", "p95", "p99", "throughput")
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
#: A quantile's interval is bounded above only with at least this many runs beyond it
#: (p99: 500 runs); with fewer the data cannot say how bad the tail is.
TAIL_RUNS = 5
#: Interleaved timing runs each contender for about this long before switching ...
BLOCK_SECONDS = 0.4
#: ... after this long of untimed calls: thread pools of the contender that ran before
#: (onnxruntime's, OpenMP's) go on spinning for tens of milliseconds and would be timed too.
SETTLE_SECONDS = 0.1
#: Verdicts of a budget; only "fail" (and, with ``strict``, "undecided"/"skipped") gate.
VERDICTS = ("pass", "fail", "undecided", "skipped")

Progress = Callable[[str, float], None]
"""``progress(label, fraction)``: called as a measurement advances (fraction 0..1)."""


# -- results ----------------------------------------------------------------------------


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


# -- the timing loop --------------------------------------------------------------------


def time_contenders(fns: Mapping[str, Callable[[], Any]], plan: TimingPlan,
                    progress: Progress | None = None, label: str = "") -> tuple[
                        dict[str, np.ndarray], str, float]:
    """Nanoseconds per call for each contender, timed interleaved in blocks: every round
    runs each contender's block (``SETTLE_SECONDS`` of untimed calls, then about
    ``BLOCK_SECONDS`` of timed ones) in a fresh seeded random order, so drift on a shared
    machine hits all alike while each is timed in its own steady state. Every contender runs in
    every round until each has ``plan.min_runs`` runs and ``plan.min_seconds`` have passed,
    or until ``plan.max_seconds``. Returns the samples, why the loop stopped ("runs": the
    runs and minimum time were reached; "time": the time budget ran out first) and the
    seconds spent timing."""
    names = list(fns)
    rng = np.random.default_rng(plan.seed)
    per_call = {n: _warm_up(fns[n], plan, len(names)) for n in names}
    block = {n: max(1, int(BLOCK_SECONDS / max(per_call[n], 1e-9))) for n in names}
    if len(names) == 1:  # nothing to interleave with: stop close to min_runs
        block = {n: min(b, -(-plan.min_runs // 10)) for n, b in block.items()}
    samples: dict[str, list[int]] = {n: [] for n in names}
    start = time.perf_counter()
    last_report = start
    stopped_by = "runs"
    while True:
        elapsed = time.perf_counter() - start
        if (elapsed >= plan.min_seconds
                and all(len(samples[n]) >= plan.min_runs for n in names)):
            break
        if elapsed >= plan.max_seconds:
            stopped_by = "time"
            break
        for i in rng.permutation(len(names)):
            name = names[i]
            fn, out = fns[name], samples[name]
            if len(names) > 1:  # untimed: the others' thread pools calm down, ours wakes
                settle = time.perf_counter() + SETTLE_SECONDS
                fn()
                while time.perf_counter() < settle:
                    fn()
            for _ in range(block[name]):
                t = time.perf_counter_ns()
                fn()
                out.append(time.perf_counter_ns() - t)
        now = time.perf_counter()
        if progress is not None and now - last_report > 0.1:
            last_report = now
            done = min(min(len(v) for v in samples.values()) / plan.min_runs,
                       (now - start) / max(plan.min_seconds, 1e-9))
            progress(label, min(1.0, max(done, (now - start) / plan.max_seconds)))
    if progress is not None:
        progress(label, 1.0)
    return ({n: np.asarray(v, dtype=np.float64) for n, v in samples.items()}, stopped_by,
            time.perf_counter() - start)


def _warm_up(fn: Callable[[], Any], plan: TimingPlan, contenders: int) -> float:
    """Run ``fn`` ``plan.warmup_runs`` times and for ``plan.warmup_seconds`` (at most a
    quarter of the time budget, shared by the contenders); returns seconds per call."""
    cap = plan.max_seconds / 4 / contenders
    t0 = time.perf_counter()
    runs = 0
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - t0
        if (runs >= plan.warmup_runs and elapsed >= plan.warmup_seconds) or elapsed >= cap:
            return elapsed / runs


def summarize(samples_ns: np.ndarray, batch: int, plan: TimingPlan) -> dict[str, Interval]:
    """p50/p95/p99 and mean in milliseconds and throughput in rows/s, each with a seeded
    percentile-bootstrap interval at ``plan.confidence``."""
    x = np.sort(np.asarray(samples_ns, dtype=np.float64)) / 1e6
    n = len(x)
    rng = np.random.default_rng(plan.seed)
    lo_q, hi_q = (1 - plan.confidence) / 2, (1 + plan.confidence) / 2
    out: dict[str, Interval] = {}
    for name, q in QUANTILES.items():
        reps = bootstrap_quantile(x, q, plan.resamples, rng)
        low, high = (float(v) for v in np.quantile(reps, [lo_q, hi_q]))
        if n * (1 - q) < TAIL_RUNS:  # too few runs beyond the quantile to bound it
            high = math.inf
        out[name] = Interval(float(x[order_index(n, q)]), low, high)
    means = bootstrap_mean(x, plan.resamples, rng)
    m_low, m_high = (float(v) for v in np.quantile(means, [lo_q, hi_q]))
    mean = float(x.mean())
    out["mean"] = Interval(mean, m_low, m_high)
    out["throughput"] = Interval(batch / mean * 1e3, batch / m_high * 1e3, batch / m_low * 1e3)
    return out


def order_index(n: int, q: float) -> int:
    """0-based index of the q-quantile in n sorted values: the ceil(q*n)-th smallest."""
    return min(n - 1, max(0, math.ceil(q * n - 1e-9) - 1))


def bootstrap_quantile(sorted_x: np.ndarray, q: float, resamples: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of the q-quantile, drawn exactly and cheaply: the k-th smallest
    of n draws from the sample is ``x[ceil(n * U) - 1]`` with ``U ~ Beta(k, n - k + 1)``
    (the k-th order statistic of n uniforms), so no resample of n values is materialised."""
    n = len(sorted_x)
    k = order_index(n, q) + 1
    u = rng.beta(k, n - k + 1, size=resamples)
    idx = np.clip(np.ceil(n * u).astype(np.int64) - 1, 0, n - 1)
    return sorted_x[idx]


def bootstrap_mean(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = len(x)
    resamples = int(min(resamples, max(200, 20_000_000 // max(n, 1))))
    out = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(n, 1))
    for i in range(0, resamples, chunk):
        m = min(chunk, resamples - i)
        out[i:i + m] = x[rng.integers(0, n, size=(m, n))].mean(axis=1)
    return out


def stats_from_samples(model: str, provider: str, batch: int, samples_ns: np.ndarray,
                       plan: TimingPlan, stopped_by: str, seconds: float,
                       environment: dict[str, Any]) -> LatencyStats:
    s = summarize(samples_ns, batch, plan)
    return LatencyStats(model=model, provider=provider, batch=batch, runs=len(samples_ns),
                        seconds=seconds, stopped_by=stopped_by, p50_ms=s["p50"],
                        p95_ms=s["p95"], p99_ms=s["p99"], mean_ms=s["mean"],
                        throughput=s["throughput"], confidence=plan.confidence,
                        environment=environment)


def ratio_interval(original: np.ndarray, onnx: np.ndarray, plan: TimingPlan) -> Interval:
    """original p50 / ONNX p50 with a bootstrap interval (independent replicates)."""
    a, b = np.sort(original), np.sort(onnx)
    rng = np.random.default_rng(plan.seed + 1)
    reps = (bootstrap_quantile(a, 0.5, plan.resamples, rng)
            / bootstrap_quantile(b, 0.5, plan.resamples, rng))
    lo, hi = np.quantile(reps, [(1 - plan.confidence) / 2, (1 + plan.confidence) / 2])
    return Interval(float(a[order_index(len(a), 0.5)] / b[order_index(len(b), 0.5)]),
                    float(lo), float(hi))


# -- environment ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores and versions: what every measurement records."""
    import onnxruntime

    from baton import __version__

    logical = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = logical
    cpu, physical = _cpuinfo()
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "logical_cores": logical,
        "physical_cores": physical or logical,
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "baton": __version__,
    }


def _cpuinfo() -> tuple[str | None, int | None]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, None
    model = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.M)
    cores = set()
    for block in text.split("\n\n"):
        pid = re.search(r"^physical id\s*:\s*(\d+)", block, flags=re.M)
        cid = re.search(r"^core id\s*:\s*(\d+)", block, flags=re.M)
        if pid and cid:
            cores.add((pid.group(1), cid.group(1)))
    return (model.group(1).strip() if model else None), (len(cores) or None)


# -- sessions ---------------------------------------------------------------------------


@dataclass
class Runner:
    """A timed callable for the ONNX model on one provider, and what it records."""

    run: Callable[[], Any]
    environment: dict[str, Any]


def _settings(provider: str, threads: int | None, optimization: str, *, tf32: bool = False,
              cuda_graph: bool = False) -> Any:
    from baton.runtime.providers import RunSettings

    options = {PROVIDERS["cuda"]: {"enable_cuda_graph": "1"}} if cuda_graph else {}
    return RunSettings(providers=(provider,), tf32=tf32, optimization=optimization,
                       threads=threads or 0, provider_options=options)


def _threads_record(threads: int | None, env: Mapping[str, Any]) -> dict[str, Any]:
    if threads is not None:
        return {"intra_op_threads": threads, "threads_chosen_by": "--threads"}
    return {"intra_op_threads": env.get("physical_cores"),
            "threads_chosen_by": "onnxruntime default (one per physical core)"}


def cuda_available() -> bool:
    import onnxruntime as ort

    return PROVIDERS["cuda"] in ort.get_available_providers()


def no_cuda_reason() -> str:
    import onnxruntime as ort

    return (f"no CUDA execution provider (onnxruntime {ort.__version__} offers "
            f"{', '.join(ort.get_available_providers())}; install onnxruntime-gpu on a machine "
            "with an NVIDIA GPU)")


def cpu_runner(subject: Subject, feeds: dict[str, np.ndarray], threads: int | None,
               env: Mapping[str, Any]) -> Runner:
    from baton.runtime.session import make_ort_session

    settings = _settings("cpu", threads, subject.optimization)
    sess = make_ort_session(subject.model_bytes, settings=settings)
    names = [o.name for o in sess.get_outputs()]
    return Runner(lambda: sess.run(names, feeds),
                  {**_threads_record(threads, env), "session_providers": sess.get_providers(),
                   "graph_optimization_level": subject.optimization})


def cuda_runner(subject: Subject, feeds: dict[str, np.ndarray], threads: int | None,
                env: Mapping[str, Any], *, cuda_graph: bool = False, tf32: bool = False
                ) -> Runner:
    """The model on the CUDA provider with device-resident inputs and outputs (I/O binding);
    ``cuda_graph`` captures the run once and replays it (fixed shapes only); TF32 is off
    unless asked. onnxruntime synchronises the CUDA stream at the end of each run, so the
    wall time of ``run_with_iobinding`` includes the GPU's work.

    Not exercised on a GPU in baton's own test-suite (its CI machines have none)."""
    import onnxruntime as ort

    from baton.runtime.session import make_ort_session

    settings = _settings("cuda", threads, subject.optimization, tf32=tf32,
                         cuda_graph=cuda_graph)
    sess = make_ort_session(subject.model_bytes, settings=settings)
    names = [o.name for o in sess.get_outputs()]
    first = dict(zip(names, sess.run(names, feeds)))  # shapes and dtypes of the outputs
    io = sess.io_binding()
    keep: list[Any] = []  # device buffers must outlive the binding
    host_inputs = []
    for name, arr in feeds.items():
        if arr.dtype == object:  # strings cannot live on the device
            io.bind_cpu_input(name, arr)
            host_inputs.append(name)
            continue
        value = ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
        keep.append(value)
        io.bind_ortvalue_input(name, value)
    host_outputs = []
    for name in names:
        out = first[name]
        if not isinstance(out, np.ndarray) or out.dtype == object:
            io.bind_output(name, "cpu")
            host_outputs.append(name)
        elif cuda_graph:  # a replayed graph writes to fixed addresses
            value = ort.OrtValue.ortvalue_from_shape_and_type(out.shape, out.dtype, "cuda", 0)
            keep.append(value)
            io.bind_ortvalue_output(name, value)
        else:
            io.bind_output(name, "cuda", 0)
    io.synchronize_inputs()

    def run() -> None:
        sess.run_with_iobinding(io)

    return Runner(run, {
        **_threads_record(threads, env), "session_providers": sess.get_providers(),
        "graph_optimization_level": subject.optimization, "io_binding": True,
        "cuda_graph": cuda_graph, "tf32": tf32, "device_id": 0,
        "inputs_on_host": host_inputs, "outputs_on_host": host_outputs,
    })


def onnx_runner(provider: str, subject: Subject, feeds: dict[str, np.ndarray],
                threads: int | None, env: Mapping[str, Any], *, cuda_graph: bool = False,
                tf32: bool = False) -> Runner:
    if provider == "cuda":
        return cuda_runner(subject, feeds, threads, env, cuda_graph=cuda_graph, tf32=tf32)
    return cpu_runner(subject, feeds, threads, env)


# -- budgets ----------------------------------------------------------------------------

BUDGET_FORMAT = "PROVIDER:batch=N:METRIC<=LIMIT"
BUDGET_EXAMPLES = "cpu:batch=1:p99<=2ms, cuda:batch=32:p50<=500us, cpu:batch=256:throughput>=5000/s"
_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_METRIC_RE = re.compile(
    r"^(?P<metric>[a-z0-9]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>[0-9]*\.?[0-9]+(?:e[+-]?\d+)?)"
    r"\s*(?P<unit>ns|us|µs|ms|s|/s|rows/s)?$", flags=re.I)


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


# -- budget configuration ---------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: tomli, a dependency of baton there
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            from baton.errors import MissingDependencyError

            raise MissingDependencyError(
                f"reading budgets from {path} needs tomli on Python 3.10",
                expected="'tomli' importable", found="ModuleNotFoundError",
                hint="pip install tomli (or reinstall baton, which depends on it there)",
            ) from exc
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}", expected="a valid TOML file",
                         found=f"{type(exc).__name__}: {exc}", hint="fix the file") from exc


def find_budget_config(start: str | os.PathLike[str] | None = None
                       ) -> tuple[list[str], Path | None]:
    """Budgets from the nearest ``baton.toml`` (``budgets = [...]``) or ``pyproject.toml``
    (``[tool.baton] budgets = [...]``), looking in ``start`` (default: the current directory)
    and then its parents; in one directory ``baton.toml`` wins. ``([], None)`` when none."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        for name in ("baton.toml", "pyproject.toml"):
            path = d / name
            if not path.is_file():
                continue
            data = read_toml(path)
            table = data if name == "baton.toml" else data.get("tool", {}).get("baton")
            if not isinstance(table, dict) or "budgets" not in table:
                continue
            budgets = table["budgets"]
            if not isinstance(budgets, list) or not all(isinstance(b, str) for b in budgets):
                where = "budgets" if name == "baton.toml" else "[tool.baton] budgets"
                raise UsageError(f"{where} in {path} is not a list of strings",
                                 expected=f'{where} = ["cpu:batch=1:p99<=2ms", ...]',
                                 found=repr(budgets)[:200], hint="fix the file")
            return budgets, path
    return [], None


def resolve_budgets(cli: Sequence[str], start: str | os.PathLike[str] | None = None,
                    *, use_config: bool = True) -> tuple[list[Budget], Path | None]:
    """The budgets to check: the config file's, then the command line's. A command-line
    budget for the same provider, batch and metric replaces the file's; others add."""
    specs, path = find_budget_config(start) if use_config else ([], None)
    merged: dict[tuple[str, int, str], Budget] = {}
    for text in specs:
        b = Budget.parse(text, str(path))
        merged[b.key] = b
    for text in cli:
        b = Budget.parse(text, "--budget")
        merged[b.key] = b
    return list(merged.values()), path


# -- inputs -----------------------------------------------------------------------------


@dataclass
class Subject:
    """The converted model to time: its bytes, input schema and golden inputs."""

    description: str
    model_bytes: bytes
    inputs: list[Any]
    golden: dict[str, np.ndarray]
    optimization: str = "all"  # the graph optimisation level the bundle was tuned to


def open_subject(bundle_or_onnx: Any) -> Subject:
    from baton.bundle import Bundle, read_golden
    from baton.parity.check import open_target
    from baton.runtime._files import MODEL, BundleFiles

    target = open_target(bundle_or_onnx)  # checks a bundle's hashes; reads a bare .onnx
    if isinstance(bundle_or_onnx, Bundle):
        return Subject(target.description, bundle_or_onnx.model_bytes, target.inputs,
                       dict(bundle_or_onnx.golden_inputs),
                       _optimization(bundle_or_onnx.manifest))
    path = Path(os.fspath(bundle_or_onnx))
    if path.suffix.lower() == ".onnx" and path.is_file():
        return Subject(target.description, path.read_bytes(), target.inputs, {})
    files = BundleFiles(path)
    manifest = files.manifest()
    golden, _ = read_golden(files, manifest)
    return Subject(target.description, files.read(MODEL), target.inputs, golden,
                   _optimization(manifest))


def _optimization(manifest: Mapping[str, Any]) -> str:
    return str(manifest.get("runtime", {}).get("graph_optimization_level", "all"))


def cycle_rows(data: Any, batch: int) -> Any:
    """``batch`` rows of ``data``, its rows repeated in order as often as needed."""
    from baton.schema import n_rows, take_rows

    n = n_rows(data)
    if n == 0:
        raise SchemaError("no rows to time the model on", expected="at least one row",
                          found="0 rows", hint="pass --data with real rows")
    return take_rows(data, np.arange(batch) % n)


def golden_as_data(golden: Mapping[str, np.ndarray], inputs: Sequence[Any]) -> Any:
    """The golden feeds in the form a model's ``prepare`` takes: a DataFrame when the
    inputs come from named columns, the array of a single input, else a dict by name."""
    if inputs and all(s.from_frame for s in inputs):
        import pandas as pd

        cols: dict[str, Any] = {}
        for s in inputs:
            arr = np.asarray(golden[s.name])
            names = list(s.columns) if s.columns is not None else [s.column]
            arr2 = arr.reshape(len(arr), -1)
            for i, c in enumerate(names):
                cols[c] = arr2[:, i]
        return pd.DataFrame(cols)
    if len(inputs) == 1:
        return np.asarray(golden[inputs[0].name])
    return {k: np.asarray(v) for k, v in golden.items()}


@dataclass
class Workload:
    """What one measurement runs: the ONNX feeds and, with the original, its prepared rows."""

    feeds: dict[str, np.ndarray]
    original: Callable[[], Any] | None


def make_workload(subject: Subject, batch: int, data: Any, model: Any, converter: Any
                  ) -> Workload:
    from baton.schema import to_feeds

    if data is None and not subject.golden:
        raise UsageError("no rows to time the model on",
                         expected="a bundle with golden vectors, or --data",
                         found=f"{subject.description} without golden vectors",
                         hint="pass --data FILE with rows the model takes")
    if data is None:
        feeds = {k: np.ascontiguousarray(v)
                 for k, v in cycle_rows(dict(subject.golden), batch).items()}
    else:
        prepared = converter.prepare(model, data) if converter is not None else data
        feeds = to_feeds(cycle_rows(prepared, batch), subject.inputs)
    if model is None:
        return Workload(feeds, None)
    if data is None:
        try:
            rows = converter.prepare(model, cycle_rows(golden_as_data(subject.golden,
                                                                       subject.inputs), batch))
            converter.predict(model, rows)
        except Exception as exc:  # noqa: BLE001 - each framework raises its own errors
            raise UsageError(
                "cannot rebuild the original model's input from the bundle's golden vectors",
                expected="golden vectors the original model takes",
                found=f"{type(exc).__name__}: {str(exc).strip()[:200]}",
                hint="pass --data FILE with rows in the original model's format",
            ) from exc
    else:
        rows = cycle_rows(converter.prepare(model, data), batch)
    return Workload(feeds, lambda: converter.predict(model, rows))


# -- the library functions --------------------------------------------------------------


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
        from baton.parity.report import _write_text

        return _write_text(Path(path), self.to_json() + "\n")


def _measure(subject: Subject, provider: str, batch: int, workload: Workload,
             threads: int | None, plan: TimingPlan, env: dict[str, Any], *,
             cuda_graph: bool, tf32: bool, progress: Progress | None
             ) -> tuple[LatencyStats, LatencyStats | None, Interval | None]:
    shapes = {k: list(v.shape) for k, v in workload.feeds.items()}
    record = {**env, "provider": provider, "batch": batch, "input_shapes": shapes}
    if provider == "cuda" and not cuda_available():
        reason = no_cuda_reason()
        skipped = LatencyStats("onnx", provider, batch, environment=record, skipped=reason)
        orig = None if workload.original is None else LatencyStats(
            "original", provider, batch, environment=record, skipped=reason)
        return skipped, orig, None
    try:
        runner = onnx_runner(provider, subject, workload.feeds, threads, env,
                             cuda_graph=cuda_graph, tf32=tf32)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
        if provider != "cuda":
            raise
        reason = f"the CUDA provider could not run the model: {str(exc).strip()[:300]}"
        return LatencyStats("onnx", provider, batch, environment=record, skipped=reason), None, None
    fns: dict[str, Callable[[], Any]] = {"onnx": runner.run}
    if workload.original is not None:
        fns["original"] = workload.original
    label = f"{provider} batch {batch}"
    samples, stopped_by, seconds = time_contenders(fns, plan, progress, label)
    onnx = stats_from_samples("onnx", provider, batch, samples["onnx"], plan, stopped_by,
                              seconds, {**record, **runner.environment})
    if workload.original is None:
        return onnx, None, None
    original = stats_from_samples("original", provider, batch, samples["original"], plan,
                                  stopped_by, seconds,
                                  {**record, "threads_chosen_by": "the original's framework"})
    return onnx, original, ratio_interval(samples["original"], samples["onnx"], plan)


def _check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise UsageError("--threads must be at least 1", expected="an integer >= 1",
                         found=str(threads),
                         hint="leave --threads out to let onnxruntime choose")


def bench(bundle_or_onnx: Any, *, model: Any = None, data: Any = None,
          batches: Sequence[int] = (1, 32, 1024), providers: Sequence[str] = ("cpu",),
          threads: int | None = None, plan: TimingPlan | None = None,
          cuda_graph: bool = False, tf32: bool = False, progress: Progress | None = None,
          data_name: str | None = None) -> BenchResult:
    """Time the converted model (and, given ``model``, the original beside it) for each
    provider and batch size, on ``data`` rows or the bundle's golden vectors."""
    plan = plan or TimingPlan()
    _check_threads(threads)
    for p in providers:
        if p not in PROVIDERS:
            raise UsageError(f"unknown provider {p!r}", expected=", ".join(PROVIDERS),
                             found=p, hint="pass --provider cpu or --provider cpu,cuda")
    if not batches or any(b < 1 for b in batches):
        raise UsageError("batch sizes must be at least 1", expected="e.g. --batch 1,32,1024",
                         found=", ".join(map(str, batches)), hint="pass positive integers")
    subject = open_subject(bundle_or_onnx)
    converter = None
    if model is not None:
        from baton.converters import find_converter

        converter = find_converter(model)
    env = machine()
    entries = []
    for provider in providers:
        for batch in batches:
            workload = make_workload(subject, batch, data, model, converter)
            onnx, original, speedup = _measure(subject, provider, batch, workload, threads,
                                               plan, env, cuda_graph=cuda_graph, tf32=tf32,
                                               progress=progress)
            entries.append(BenchEntry(provider, batch, onnx, original, speedup))
    return BenchResult(subject.description,
                       None if converter is None else converter.describe(model),
                       data_name if data is not None else "golden vectors", entries, plan, env)


def check_budgets(bundle_or_onnx: Any, data: Any, budgets: Sequence[Budget], *,
                  model: Any = None, threads: int | None = None, plan: TimingPlan | None = None,
                  strict: bool = False, config: str | os.PathLike[str] | None = None,
                  cuda_graph: bool = False, tf32: bool = False,
                  progress: Progress | None = None) -> LatencyReport:
    """Time the converted model once for every provider and batch size the budgets name
    (on ``data``'s rows, prepared for ``model`` when given) and decide each budget."""
    plan = plan or TimingPlan()
    _check_threads(threads)
    subject = open_subject(bundle_or_onnx)
    if model is not None and data is not None:
        from baton.converters import find_converter

        data = find_converter(model).prepare(model, data)
    env = machine()
    measured: dict[tuple[str, int], LatencyStats] = {}
    for b in budgets:
        if (b.provider, b.batch) in measured:
            continue
        # budgets are about the converted model: the original is not timed here
        workload = make_workload(subject, b.batch, data, None, None)
        stats, _, _ = _measure(subject, b.provider, b.batch, workload, threads, plan, env,
                               cuda_graph=cuda_graph, tf32=tf32, progress=progress)
        measured[(b.provider, b.batch)] = stats
    results = [b.decide(measured[(b.provider, b.batch)]) for b in budgets]
    return LatencyReport(list(measured.values()), results, strict=strict,
                         config=None if config is None else str(config), plan=plan)


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
