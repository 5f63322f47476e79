"""The timing loop: warm-up, then every contender timed interleaved in blocks, until the
plan's runs and time are reached or its time budget runs out."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from baton.results.latency import TimingPlan

__all__ = ["BLOCK_SECONDS", "SETTLE_SECONDS", "Progress", "TimingPlan", "time_contenders"]

#: Interleaved timing runs each contender for about this long before switching ...
BLOCK_SECONDS = 0.4
#: ... after this long of untimed calls: thread pools of the contender that ran before
#: (onnxruntime's, OpenMP's) go on spinning for tens of milliseconds and would be timed too.
SETTLE_SECONDS = 0.1

Progress = Callable[[str, float], None]
"""``progress(label, fraction)``: called as a measurement advances (fraction 0..1)."""


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
