"""Session tuning at conversion: the onnxruntime graph optimisation level that serves the
model fastest at batch 1 while still passing parity, recorded in the bundle's manifest
(``runtime.graph_optimization_level``) and used by every :class:`baton.runtime.Session`.

onnxruntime's default (``all``) is kept unless another level both passes parity and is
clearly faster (by ``MARGIN``) in runs interleaved with it, so that timing noise on a
shared machine does not flip the choice.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from baton.manifest import Tuning
from baton.masks import apply_masks
from baton.parity.compare import compare
from baton.runtime.providers import RunSettings
from baton.runtime.session import make_ort_session
from baton.schema import TensorSpec
from baton.tolerance import Tolerance

LEVELS = ("all", "extended", "basic")
#: another level must be at least this much faster than onnxruntime's default to be chosen
MARGIN = 0.10
SECONDS = 0.15
MIN_ROUNDS, MAX_ROUNDS = 5, 400


def tune_session(model_bytes: bytes, feeds: Mapping[str, np.ndarray],
                 expected: Mapping[str, Any], outputs: list[TensorSpec],
                 tolerances: Mapping[str, Tolerance], run: RunSettings | None = None,
                 *, seconds: float = SECONDS, seed: int = 0,
                 masks: Mapping[str, Any] | None = None) -> Tuning:
    """Choose a graph optimisation level: the manifest's ``runtime`` section (outputs
    aligned with ``masks``, the envelope's mask regions, compared where they are set)."""
    run = run or RunSettings()
    names = [o.name for o in outputs]
    sessions = {lvl: make_ort_session(model_bytes,
                                      settings=dataclasses.replace(run, optimization=lvl))
                for lvl in LEVELS}
    passing = []
    for lvl, sess in sessions.items():
        got = dict(zip(names, sess.run(names, dict(feeds))))
        want, got, _ = apply_masks(masks or {}, feeds, expected, got)
        if all(compare(o.name, o.kind or "tensor", want[o.name], got[o.name],
                       tolerances.get(o.name, Tolerance())) for o in outputs):
            passing.append(lvl)
    one = {k: v[:1] for k, v in feeds.items()}
    times: dict[str, list[float]] = {lvl: [] for lvl in passing}
    order = list(passing)
    rng = random.Random(seed)
    start = time.perf_counter()
    rounds = 0
    while passing and rounds < MAX_ROUNDS and (
            rounds < MIN_ROUNDS or time.perf_counter() - start < seconds):
        rng.shuffle(order)
        for lvl in order:
            t0 = time.perf_counter()
            sessions[lvl].run(names, one)
            times[lvl].append(time.perf_counter() - t0)
        rounds += 1
    medians = {lvl: float(np.median(t)) for lvl, t in times.items()}
    chosen = "all"
    if "all" in medians:
        best = min(medians, key=medians.__getitem__)
        if medians[best] < (1 - MARGIN) * medians["all"]:
            chosen = best
    elif passing:  # onnxruntime's default failed parity where a lighter level passes
        chosen = min(medians, key=medians.__getitem__)
    return Tuning(chosen, {
        "tuning": {
            "measured_at_batch": 1,
            "rounds": rounds,
            "median_ms": {lvl: round(m * 1e3, 4) for lvl, m in medians.items()},
            "passed_parity": passing,
            "rule": f"onnxruntime's default 'all' unless a level passing parity is "
                    f"{MARGIN:.0%} faster in interleaved runs",
        },
    })
