"""Every benchmark in one run: rewrites docs/benchmarks.md.

    python benchmarks/run_all.py            # a few minutes on a 2-core machine
    python benchmarks/run_all.py --quick    # fewer runs; prints the latency section only

Runs bench_sklearn.py, bench_input.py, bench_trees.py, bench_torch.py, bench_serve.py,
bench_stream.py (the streaming check's peak memory and rows/s) and bench_spark.py (Spark
scoring with the bundle vs a pandas UDF; where pyspark is not installed its section says
it was not measured), each writing its section (medians of interleaved rounds, baton
beside the original or the peer a user would pick instead), then times one model per
framework with ``baton bench``'s engine (baton.parity.latency.bench): p50/p99 with 95 %
bootstrap intervals for ONNX and the original side by side, and the speed-up, on the CPU
and on CUDA where onnxruntime has it (reported as skipped where not).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import BENCHMARKS_MD, HEADER, write_section  # noqa: E402

SCRIPTS = ["bench_sklearn.py", "bench_input.py", "bench_trees.py", "bench_torch.py",
           "bench_serve.py", "bench_stream.py", "bench_spark.py"]
#: measured only where pyspark imports; else its section says so
SPARK_SCRIPT, SPARK_TITLE = "bench_spark.py", \
    "Spark: scoring with the bundle vs a pandas UDF with the original"
LATENCY_TITLE = "Latency percentiles: `baton bench` (ONNX vs original, CPU and CUDA)"


def models() -> list[tuple[str, Any, Any, str]]:
    """(name, fitted model, sample, how to save it) for one model per framework."""
    from baton.demo import train_demo_model

    out: list[tuple[str, Any, Any, str]] = []
    demo, X_train, _ = train_demo_model()
    out.append(("scikit-learn demo pipeline (31 columns)", demo, X_train, "skops"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 20))
    y = X[:, 0] * 2 + np.sin(X[:, 1]) + rng.normal(0, 0.1, 5000)
    try:
        import lightgbm as lgb

        out.append(("LightGBM LGBMRegressor (200 trees)",
                    lgb.LGBMRegressor(n_estimators=200, verbose=-1).fit(X, y), X[:500], "txt"))
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(0)
        mlp = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                  torch.nn.Linear(256, 10)).eval()
        out.append(("PyTorch MLP 64-256-10", mlp, torch.randn(64, 64), "pt2"))
    except ImportError:
        pass
    return out


def latency_section(quick: bool) -> list[str]:
    import baton
    from baton.converters import find_converter
    from baton.parity.latency import TimingPlan, bench, cuda_available, fmt_interval

    plan = (TimingPlan(min_runs=200, min_seconds=0, max_seconds=3) if quick
            else TimingPlan(min_runs=1000, min_seconds=1, max_seconds=10))
    rows = []
    env: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model, sample, _) in enumerate(models()):
            path = baton.convert(model, sample).save(Path(tmp) / f"m{i}.baton")
            result = bench(path, model=model, converter=find_converter(model),
                           batches=(1, 32), providers=("cpu", "cuda"), plan=plan)
            env = result.environment
            for e in result.entries:
                if e.onnx.skipped is not None:
                    rows.append(f"| {name} | {e.provider} | {e.batch} | skipped: "
                                f"{e.onnx.skipped} | | | | |")
                    continue
                o, g = e.onnx, e.original
                assert o.p50_ms and o.p99_ms and g and g.p50_ms and g.p99_ms and e.speedup
                rows.append(
                    f"| {name} | {e.provider} | {e.batch} | {fmt_interval(o.p50_ms, 'ms')} | "
                    f"{fmt_interval(o.p99_ms, 'ms')} | {fmt_interval(g.p50_ms, 'ms')} | "
                    f"{fmt_interval(g.p99_ms, 'ms')} | {e.speedup.value:.1f}x "
                    f"[{e.speedup.low:.1f}, {e.speedup.high:.1f}] |")
                print(rows[-1], flush=True)
    cuda = ("CUDA measured" if cuda_available() else
            "CUDA: no CUDA execution provider on this machine, so skipped (the CUDA path "
            "has not been run on a GPU yet)")
    return [
        "Command: `python benchmarks/run_all.py` (writes this whole page); one model: "
        "`baton bench BUNDLE --model MODEL --batch 1,32 --provider cpu,cuda`.",
        f"Machine: {env.get('cpu')}, {env.get('physical_cores')} physical / "
        f"{env.get('logical_cores')} logical cores, Python {env.get('python')}, onnxruntime "
        f"{env.get('onnxruntime')}, baton {env.get('baton')}; {cuda}.",
        "",
        f"Timing loop: warm-up, then at least {plan.min_runs} runs and {plan.min_seconds:g} s "
        f"or at most {plan.max_seconds:g} s, ONNX and original interleaved in blocks; values "
        "with their 95 % bootstrap intervals. *ONNX*: onnxruntime `run` on prepared feeds "
        "(onnxruntime's default threads); *original*: the framework's own prediction on the "
        "same rows. Speed-up = original p50 / ONNX p50, with its interval. See "
        "[latency.md](latency.md) for how to read the intervals.",
        "",
        "Caveats: the original's time is its converter's prediction, all outputs included "
        "(a scikit-learn classifier runs `predict` and `predict_proba`, as the ONNX model "
        "gives both), so it sits above the single-call medians of the sections above. "
        "Originals with their own thread pools (LightGBM's OpenMP, PyTorch) share the cores "
        "with onnxruntime's; on a busy 2-core machine they can stall for whole scheduler "
        "slices (LightGBM at 16 ms per call was seen under a load average of 6), so "
        f"measure on a quiet machine. Load average while measuring: {_load()}.",
        "",
        "| model | provider | batch | ONNX p50 | ONNX p99 | original p50 | original p99 "
        "| speed-up (p50) |",
        "|---|---|---:|---|---|---|---|---|",
        *rows,
    ]


def _load() -> str:
    import os

    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer runs; print the latency section, write nothing")
    args = parser.parse_args()
    if args.quick:
        print("\n".join(latency_section(quick=True)))
        return
    for script in SCRIPTS:
        print(f"== {script}", file=sys.stderr, flush=True)
        if script == SPARK_SCRIPT and importlib.util.find_spec("pyspark") is None:
            write_section(SPARK_TITLE, ["Not measured: pyspark is not installed here "
                                        "(`pip install 'baton[spark]'`, and Java 17)."])
            print("not measured: pyspark is not installed", file=sys.stderr)
            continue
        subprocess.run([sys.executable, str(HERE / script)], check=True)
    print("== baton bench", file=sys.stderr, flush=True)
    write_section(LATENCY_TITLE, latency_section(quick=False))
    text = BENCHMARKS_MD.read_text()
    BENCHMARKS_MD.write_text(HEADER + text[text.index("\n## "):])
    print(f"wrote {BENCHMARKS_MD}", file=sys.stderr)


if __name__ == "__main__":
    main()
