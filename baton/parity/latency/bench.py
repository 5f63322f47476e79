"""The library functions: ``bench`` (the converted model, and the original beside it, per
provider and batch size) and ``check_budgets`` (time what the budgets name, decide each).

Both are handed the converter of ``model`` by their caller: parity never looks one up."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from baton.contract import Converter
from baton.errors import UsageError, first_line
from baton.parity.latency.environment import cuda_available, machine, no_cuda_reason
from baton.parity.latency.stats import ratio_interval, stats_from_samples
from baton.parity.latency.timing import Progress, TimingPlan, time_contenders
from baton.parity.latency.workload import (
    Subject,
    Workload,
    make_workload,
    onnx_runner,
    open_subject,
)
from baton.results.latency import (
    PROVIDERS,
    BenchEntry,
    BenchResult,
    Budget,
    Interval,
    LatencyReport,
    LatencyStats,
)


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
        reason = f"the CUDA provider could not run the model: {first_line(exc, 300)}"
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


def _check_converter(model: Any, converter: Converter | None, function: str) -> None:
    if model is not None and converter is None:
        raise UsageError(
            f"{function}() was given model= without converter=",
            expected="converter=, the converter of the model (parity does not look one up)",
            found=f"model={type(model).__name__}, converter=None",
            hint=f"pass converter=baton.converters.find_converter(model) to {function}()",
        )


def bench(bundle_or_onnx: Any, *, model: Any = None, converter: Converter | None = None,
          data: Any = None, batches: Sequence[int] = (1, 32, 1024),
          providers: Sequence[str] = ("cpu",), threads: int | None = None,
          plan: TimingPlan | None = None, cuda_graph: bool = False, tf32: bool = False,
          progress: Progress | None = None, data_name: str | None = None) -> BenchResult:
    """Time the converted model (and, given ``model`` and its ``converter``, the original
    beside it) for each provider and batch size, on ``data`` rows or the bundle's golden
    vectors."""
    _check_converter(model, converter, "bench")
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
    if model is None:  # a converter without its model has nothing to run
        converter = None
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
                  model: Any = None, converter: Converter | None = None,
                  threads: int | None = None, plan: TimingPlan | None = None,
                  strict: bool = False, config: str | os.PathLike[str] | None = None,
                  cuda_graph: bool = False, tf32: bool = False,
                  progress: Progress | None = None) -> LatencyReport:
    """Time the converted model once for every provider and batch size the budgets name
    (on ``data``'s rows, prepared by ``converter`` for ``model`` when given) and decide
    each budget."""
    _check_converter(model, converter, "check_budgets")
    plan = plan or TimingPlan()
    _check_threads(threads)
    subject = open_subject(bundle_or_onnx)
    if model is not None and data is not None:
        assert converter is not None  # _check_converter
        data = converter.prepare(model, data)
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
