"""Offline graph optimisation of an exported PyTorch graph, kept only where it pays.

The candidate is onnxscript's onnxruntime fusions (``onnxscript.rewriter.ort_fusions.
optimize_for_ort``: GELU, skip layer normalisation, attention where its pattern is found,
fused MatMul, as onnxruntime contrib ops that its CPU and CUDA providers run). The
exporter has already applied onnxscript's generic optimizer (``torch.onnx.export``'s
``optimize=True``), and onnxruntime's own basic and extended levels are applied when every
Session loads the bundle, so saving onnxruntime's offline-optimised graph gains nothing
(measured: within 3 % of the raw graph) and its ``all`` level is specific to the machine's
CPU: neither is a candidate.

The candidate is kept only when it passes parity at the sample, at batch sizes 1, 2 and 7
and at the other dynamic sizes the conversion checks (each output within its tolerance of
the original model's, or of the raw graph's where the raw graph differs from the original
itself: positions no mask sets) and is at least :data:`MARGIN` faster than the raw graph
at batch 1 and at the sample's batch (medians of interleaved runs); otherwise the raw
graph stays.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from baton.schema import TensorSpec
from baton.tolerance import Tolerance

#: the candidate must be at least this much faster at both batch sizes to be kept
MARGIN = 0.05
SECONDS = 0.1
MIN_ROUNDS, MAX_ROUNDS = 7, 300
METHOD = "onnxscript ort_fusions"


def fuse(onx: Any) -> tuple[Any, dict[str, int]]:
    """A fused copy of the graph and the count of each fusion applied (raises what
    onnxscript raises)."""
    import onnx
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    model = ir.from_proto(onnx.load_from_string(onx.SerializeToString()))
    model, counts = optimize_for_ort(model)
    return ir.to_proto(model), {k: int(v) for k, v in counts.items() if v}


def _close(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if got.dtype.kind not in "fc":
        return bool(np.array_equal(got, want))
    g, w = got.astype(np.float64), want.astype(np.float64)
    return bool(np.allclose(g, w, atol=tol.atol, rtol=tol.rtol, equal_nan=True))


def _median_ms(sessions: Mapping[str, Any], feeds: Mapping[str, np.ndarray]
               ) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in sessions}
    order = list(sessions)
    rng = random.Random(0)
    start = time.perf_counter()
    rounds = 0
    while rounds < MAX_ROUNDS and (rounds < MIN_ROUNDS
                                   or time.perf_counter() - start < SECONDS):
        rng.shuffle(order)
        for k in order:
            t0 = time.perf_counter()
            sessions[k].run(None, dict(feeds))
            times[k].append(time.perf_counter() - t0)
        rounds += 1
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


def optimize_graph(onx: Any, feeds_at: Callable[[Any], dict[str, np.ndarray]],
                   reference_at: Callable[[Any], dict[str, np.ndarray] | None],
                   outputs: list[TensorSpec], tolerances: Mapping[str, Tolerance],
                   sample_batch: int, others: Sequence[str] = ()
                   ) -> tuple[Any, dict[str, Any]]:
    """The graph to bundle (``onx`` or its fused copy) and what was tried, for the
    manifest's ``converter.optimization``. ``feeds_at(b)``: the sample's rows at batch
    ``b`` (None: the sample as given; a label of ``others``: the sample at another
    dynamic size) as onnxruntime feeds; ``reference_at(b)``: the original model's outputs
    on them (None: a size the original rejects, not checked)."""
    from baton.runtime.session import make_ort_session

    record: dict[str, Any] = {"tried": METHOD, "applied": None,
                              "rule": f"kept when it passes parity and is at least "
                                      f"{MARGIN:.0%} faster than the raw export at batch 1 "
                                      "and at the sample's batch"}
    try:
        fused, counts = fuse(onx)
    except Exception as exc:  # noqa: BLE001 - a rewriter failure keeps the raw graph
        record["reason"] = f"the rewriter failed: {type(exc).__name__}: {str(exc)[:200]}"
        return onx, record
    record["fusions"] = counts
    if not counts:
        record["reason"] = "no fusion pattern found"
        return onx, record
    try:
        raw_sess = make_ort_session(onx.SerializeToString())
        new_sess = make_ort_session(fused.SerializeToString())
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
        record["reason"] = f"onnxruntime cannot load the fused graph: {str(exc)[:200]}"
        return onx, record
    names = [o.name for o in outputs]
    for batch in (None, 1, 2, 7, *others):
        feeds, want = feeds_at(batch), reference_at(batch)
        if want is None:
            continue
        try:
            raw = dict(zip(names, raw_sess.run(names, feeds)))
            got = dict(zip(names, new_sess.run(names, feeds)))
        except Exception as exc:  # noqa: BLE001
            record["reason"] = f"the fused graph fails to run: {str(exc)[:200]}"
            return onx, record
        for name in names:
            tol = tolerances.get(name, Tolerance())
            if not (_close(got[name], want[name], tol) or _close(got[name], raw[name], tol)):
                at = ("the sample" if batch is None else batch if isinstance(batch, str)
                      else f"batch {batch}")
                record["reason"] = f"the fused graph fails parity on {name!r} at {at}"
                return onx, record
    medians = {}
    for label, batch in (("batch 1", 1), (f"batch {sample_batch}", None)):
        med = _median_ms({"raw": raw_sess, "optimized": new_sess}, feeds_at(batch))
        medians[label] = {k: round(v, 4) for k, v in med.items()}
    record["median_ms"] = medians
    record["speedup"] = {label: round(m["raw"] / m["optimized"], 3)
                         for label, m in medians.items()}
    if all(m["optimized"] <= (1 - MARGIN) * m["raw"] for m in medians.values()):
        record["applied"] = METHOD
        return fused, record
    record["reason"] = "not faster by the margin"
    return onx, record


def describe(record: Mapping[str, Any]) -> str:
    """One line for the converter's notes."""
    fusions = ", ".join(f"{k} x{v}" for k, v in record.get("fusions", {}).items())
    speed = ", ".join(f"{k} {v:.2f}x" for k, v in record.get("speedup", {}).items())
    if record.get("applied"):
        return (f"graph optimised offline ({record['applied']}: {fusions}); speed-up over the "
                f"raw export: {speed}")
    return (f"graph left as exported: {record.get('tried')} "
            f"{record.get('reason', 'not applied')}"
            + (f" ({fusions}; speed-up {speed})" if speed else ""))
