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

The package, by seam (the result types live in the leaf :mod:`baton.results.latency`):

    timing        the timing loop and its warm-up
    stats         percentiles, mean and throughput with bootstrap intervals; the ratio
    environment   the machine, the threads, whether CUDA is there
    budgets       which budgets to check (command line, ``baton.toml``, ``pyproject.toml``)
    workload      the model to time, the rows it runs on, the ONNX model's timed callables
    bench         ``bench`` and ``check_budgets``, handed the model's converter by the caller
"""

from __future__ import annotations

from baton.parity.latency.bench import bench, check_budgets
from baton.parity.latency.budgets import find_budget_config, read_toml, resolve_budgets
from baton.parity.latency.environment import (
    cuda_available,
    machine,
    no_cuda_reason,
    threads_record,
)
from baton.parity.latency.stats import (
    bootstrap_mean,
    bootstrap_quantile,
    order_index,
    ratio_interval,
    stats_from_samples,
    summarize,
)
from baton.parity.latency.timing import (
    BLOCK_SECONDS,
    SETTLE_SECONDS,
    Progress,
    time_contenders,
)
from baton.parity.latency.workload import (
    Runner,
    Subject,
    Workload,
    cpu_runner,
    cuda_runner,
    cycle_rows,
    golden_as_data,
    make_workload,
    onnx_runner,
    open_subject,
)
from baton.results.latency import (
    BENCH_VERSION,
    BUDGET_EXAMPLES,
    BUDGET_FORMAT,
    METRICS,
    PROVIDERS,
    QUANTILES,
    TAIL_RUNS,
    BenchEntry,
    BenchResult,
    Budget,
    BudgetResult,
    Interval,
    LatencyReport,
    LatencyStats,
    TimingPlan,
    fmt_interval,
    fmt_value,
)

__all__ = [
    "BENCH_VERSION", "BLOCK_SECONDS", "BUDGET_EXAMPLES", "BUDGET_FORMAT", "METRICS",
    "PROVIDERS", "QUANTILES", "SETTLE_SECONDS", "TAIL_RUNS",
    "BenchEntry", "BenchResult", "Budget", "BudgetResult", "Interval", "LatencyReport",
    "LatencyStats", "Progress", "Runner", "Subject", "TimingPlan", "Workload",
    "bench", "bootstrap_mean", "bootstrap_quantile", "check_budgets", "cpu_runner",
    "cuda_available", "cuda_runner", "cycle_rows", "find_budget_config", "fmt_interval",
    "fmt_value", "golden_as_data", "machine", "make_workload", "no_cuda_reason", "onnx_runner",
    "open_subject", "order_index", "ratio_interval", "read_toml", "resolve_budgets",
    "stats_from_samples", "summarize", "threads_record", "time_contenders",
]
