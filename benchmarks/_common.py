"""Shared by the benchmark scripts: interleaved timing and writing docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Latest results of `benchmarks/`. Every ratio below was measured side by side in one
run, on one machine; absolute times depend on the machine, ratios much less.
`python benchmarks/run_all.py` runs them all and rewrites this page; each section names
the command that reproduces it alone.
"""


def time_interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median milliseconds per call. Each round runs every contender once, in a fresh random
    order: whoever runs right after a slow contender pays for waking onnxruntime's thread
    pool, and drift on a shared machine, alike."""
    for fn in fns.values():  # warm-up
        for _ in range(3):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    rng = np.random.default_rng(0)
    names = list(fns)
    for _ in range(rounds):
        for name in rng.permutation(names):
            t0 = time.perf_counter_ns()
            fns[name]()
            samples[name].append(time.perf_counter_ns() - t0)
    return {k: statistics.median(v) / 1e6 for k, v in samples.items()}


def machine(**versions: str) -> str:
    extra = ", ".join(f"{k} {v}" for k, v in versions.items())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {extra}")


def write_section(title: str, body: list[str], path: Path = BENCHMARKS_MD) -> None:
    """Replace (or add) the ``## title`` section of docs/benchmarks.md."""
    text = path.read_text() if path.exists() else HEADER
    section = f"## {title}\n\n" + "\n".join(body).rstrip() + "\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", flags=re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)
