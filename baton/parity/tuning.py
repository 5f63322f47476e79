"""Session tuning at conversion: the onnxruntime graph optimisation level that serves the
model fastest at batch 1 while still passing parity, recorded in the bundle's manifest
(``runtime.graph_optimization_level``) and used by every :class:`baton.runtime.Session`.

onnxruntime's default (``all``) is kept unless another level both passes parity and is
clearly faster (by ``MARGIN``) in runs interleaved with it, so that timing noise on a
shared machine does not flip the choice.

Levels are timed only where they can differ: each level's session saves the graph it
optimised (``SessionOptions.optimized_model_filepath``, CPU only), and levels whose graphs
are the same are one candidate (parity checked once, not timed); where all three are the
same (most scikit-learn pipelines: no fusion applies), nothing is timed and ``all`` is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import tempfile
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
    sessions, same_as = _sessions(model_bytes, run)
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
    while len(passing) > 1 and rounds < MAX_ROUNDS and (
            rounds < MIN_ROUNDS or time.perf_counter() - start < seconds):
        rng.shuffle(order)
        for lvl in order:
            t0 = time.perf_counter()
            sessions[lvl].run(names, one)
            times[lvl].append(time.perf_counter() - t0)
        rounds += 1
    medians = {lvl: float(np.median(t)) for lvl, t in times.items() if t}
    chosen = "all"
    if len(passing) == 1:  # one graph passing parity: nothing to time
        chosen = passing[0]
    elif "all" in medians:
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
            "passed_parity": passing + [lvl for lvl, same in same_as.items()
                                        if same in passing],
            **({"same_graph_as": same_as} if same_as else {}),
            "rule": f"onnxruntime's default 'all' unless a level passing parity is "
                    f"{MARGIN:.0%} faster in interleaved runs",
        },
    })


def _sessions(model_bytes: bytes, run: RunSettings) -> tuple[dict[str, Any], dict[str, str]]:
    """A session per level whose optimised graph differs from those before it (in the order
    all, extended, basic), and the levels left out with the level whose graph they share.
    On CUDA, or where a graph cannot be saved, every level is a candidate."""
    if run.uses_cuda:
        return {lvl: make_ort_session(model_bytes, settings=dataclasses.replace(
            run, optimization=lvl)) for lvl in LEVELS}, {}
    import onnxruntime as ort

    sessions: dict[str, Any] = {}
    seen: dict[str, str] = {}
    same_as: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="baton-tune-") as tmp:
        for lvl in LEVELS:
            settings = dataclasses.replace(run, optimization=lvl)
            path = os.path.join(tmp, f"{lvl}.onnx")
            options = settings.session_options()
            options.optimized_model_filepath = path
            try:
                sess = ort.InferenceSession(model_bytes, sess_options=options,
                                            providers=settings.ort_providers())
                with open(path, "rb") as f:
                    key = hashlib.sha256(f.read()).hexdigest()
            except Exception:  # noqa: BLE001 - a graph onnxruntime cannot save
                sess, key = make_ort_session(model_bytes, settings=settings), lvl
            if key in seen:
                same_as[lvl] = seen[key]
                continue
            seen[key] = lvl
            sessions[lvl] = sess
    return sessions, same_as
