"""Statistics of timed runs: percentiles (the ``ceil(q*n)``-th smallest time), mean and
throughput, each with a seeded bootstrap interval, and the original-to-ONNX ratio."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from baton.results.latency import QUANTILES, TAIL_RUNS, Interval, LatencyStats, TimingPlan


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
