"""Rendering latency: measurements, budget decisions and ``baton bench`` results (rich
tables on a terminal, plain text when piped), and a progress bar on a terminal only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from baton._render import _say, _table
from baton.parity.latency import Progress
from baton.results.latency import BenchResult, LatencyReport, LatencyStats, fmt_interval


def _stats_row(s: LatencyStats) -> list[str]:
    if s.skipped is not None:
        return [s.model, s.provider, str(s.batch), "-", "skipped", "", "", s.skipped]
    assert s.p50_ms and s.p95_ms and s.p99_ms and s.throughput
    return [s.model, s.provider, str(s.batch), str(s.runs), fmt_interval(s.p50_ms, "ms"),
            fmt_interval(s.p95_ms, "ms"), fmt_interval(s.p99_ms, "ms"),
            fmt_interval(s.throughput, "/s")]


HEADERS = ["model", "provider", "batch", "runs", "p50", "p95", "p99", "throughput (rows/s)"]


def render_latency(latency: LatencyReport, console: Console) -> None:
    """The measurements behind the budgets, then one line per budget with its verdict."""
    pct = f"{latency.plan.confidence:.0%}"
    _table(console, f"latency (value [{pct} interval])", HEADERS,
           [_stats_row(s) for s in latency.measurements])
    if latency.config:
        _say(console, f"budgets from {latency.config} (and --budget)")
    _table(console, "budgets", ["budget", "verdict", "detail"], [
        [b.budget.text, b.verdict.upper() if b.gates(latency.strict) else b.verdict, b.detail]
        for b in latency.budgets
    ])
    undecided = [b for b in latency.budgets if b.verdict in ("undecided", "skipped")]
    if undecided and not latency.strict:
        _say(console, f"note: {len(undecided)} budget(s) undecided or skipped: not a failure "
                      "(exit 0); --strict-budgets makes them fail", "yellow")


def render_bench(result: BenchResult, console: Console) -> None:
    env = result.environment
    _say(console, f"target: {result.target}")
    _say(console, f"model:  {result.model or '- (no --model: the ONNX model alone)'}")
    _say(console, f"data:   {result.data}")
    _say(console, f"machine: {env.get('cpu')}, {env.get('physical_cores')} physical / "
                  f"{env.get('logical_cores')} logical cores ({env.get('usable_cores')} usable), "
                  f"onnxruntime {env.get('onnxruntime')}")
    rows = []
    for e in result.entries:
        rows.append(_stats_row(e.onnx))
        if e.original is not None:
            rows.append(_stats_row(e.original))
    pct = f"{result.plan.confidence:.0%}"
    _table(console, f"latency (value [{pct} interval])", HEADERS, rows)
    ratios = [[e.provider, str(e.batch), f"{e.speedup.value:.2f}x [{e.speedup.low:.2f}, "
               f"{e.speedup.high:.2f}]"] for e in result.entries if e.speedup is not None]
    if ratios:
        _table(console, "speed-up (original p50 / ONNX p50)", ["provider", "batch", "speed-up"],
               ratios)
    for e in result.entries:
        threads = e.onnx.environment.get("intra_op_threads")
        if e.onnx.skipped is None:
            _say(console, f"{e.provider} batch {e.batch}: {e.onnx.runs} runs in "
                          f"{e.onnx.seconds:.2f} s (stopped by {e.onnx.stopped_by}), "
                          f"{threads} intra-op threads "
                          f"({e.onnx.environment.get('threads_chosen_by')})")
        else:
            _say(console, f"{e.provider} batch {e.batch}: skipped: {e.onnx.skipped}", "yellow")


@contextmanager
def progress_bar(console: Console) -> Iterator[Progress | None]:
    """A rich progress bar (on stderr) when it is a terminal; ``None`` when piped."""
    err = Console(stderr=True)
    if not (console.is_terminal and err.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    tasks: dict[str, TaskID] = {}
    with RichProgress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
        def update(label: str, fraction: float) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"timing {label}", total=1.0)
            bar.update(tasks[label], completed=fraction)

        yield update
