"""Comparing one output of the converted model with the original's, by the output's kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from baton.results.diff import WORST_ROWS, OutputDiff, WorstRow
from baton.schema import to_jsonable
from baton.tolerance import (
    LABEL_KINDS,
    Tolerance,
    aligned,
    as_array,
    closeness,
    compared_as_labels,
    labels_equal,
    row_view,
    rows_agree,
)

#: Kinds whose rows are vectors worth a cosine similarity (reported, not gated).
VECTOR_KINDS = ("transformed", "tensor", "embedding")
_SHOW = 10  # values shown per row in the worst rows

__all__ = ["LABEL_KINDS", "VECTOR_KINDS", "WORST_ROWS", "OutputDiff", "WorstRow", "compare",
           "rows_agree"]

#: the names the parity search reads (one definition each, in baton.tolerance)
_as_array, _row_view = as_array, row_view


RowInputs = Callable[[int], dict[str, Any]]


def compare(
    name: str,
    kind: str,
    expected: Any,
    actual: Any,
    tolerance: Tolerance,
    row_inputs: RowInputs | None = None,
) -> OutputDiff:
    """Compare the converted model's ``actual`` output with the original's ``expected``."""
    exp, act = np.asarray(expected), as_array(actual)
    rows = len(exp) if exp.ndim else 1
    fitted = aligned(exp, act)
    if fitted is None:
        return OutputDiff(
            name, kind, rows, False, tolerance, mismatched_rows=rows,
            message=f"shape differs: original {list(exp.shape)}, ONNX {list(act.shape)}",
        )
    if compared_as_labels(kind, fitted, act):
        return _compare_labels(name, kind, fitted, act, tolerance, row_inputs)
    return _compare_numbers(name, kind, fitted, act, tolerance, row_inputs)


def _shown(v: np.ndarray) -> Any:
    flat = v.reshape(-1)
    vals = to_jsonable(flat[:_SHOW])
    return vals[0] if flat.size == 1 else vals + (["…"] if flat.size > _SHOW else [])


def _compare_labels(name: str, kind: str, exp: np.ndarray, act: np.ndarray, tol: Tolerance,
                    row_inputs: RowInputs | None) -> OutputDiff:
    e, a = row_view(exp), row_view(act)
    same = labels_equal(e, a)
    rows = len(e)
    agreement = float(same.mean()) if rows else 1.0
    bad = np.flatnonzero(~same)
    worst = [WorstRow(int(r), row_inputs(int(r)) if row_inputs else {}, _shown(e[r]), _shown(a[r]))
             for r in bad[:WORST_ROWS]]
    return OutputDiff(
        name, kind, rows, agreement >= tol.agreement, tol, mismatched_rows=len(bad),
        agreement=agreement, worst=worst,
    )


def _compare_numbers(name: str, kind: str, exp: np.ndarray, act: np.ndarray, tol: Tolerance,
                     row_inputs: RowInputs | None) -> OutputDiff:
    b = row_view(exp).astype(np.float64)
    a = row_view(act).astype(np.float64)
    rows = len(b)
    c = closeness(b, a, tol)
    equal, err, ok, mag, finite_b = c.equal, c.err, c.ok, c.magnitude, c.finite
    bound = c.bound(tol.atol, tol.rtol)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rel = np.where(err == 0, 0.0,
                       np.where((mag > 0) & np.isfinite(mag), err / mag, np.inf))
        need_atol = np.where(ok & equal, 0.0, np.where(finite_b, err - tol.rtol * mag, np.inf))
        need_rtol = np.where(
            ok & equal, 0.0,
            np.where(err <= tol.atol, 0.0, np.where(mag > 0, (err - tol.atol) / mag, np.inf)),
        )
        need_rtol = np.where(finite_b | equal, need_rtol, np.inf)
        ratio = np.where(err == 0, 0.0, np.where(bound > 0, err / bound, np.inf))
        row_ratio = ratio.max(axis=1) if b.shape[1] else np.zeros(rows)
    row_ok = np.asarray(ok.all(axis=1)) if b.shape[1] else np.ones(rows, dtype=bool)
    flat_err, flat_rel = err.reshape(-1), rel.reshape(-1)
    row_err = err.max(axis=1) if b.shape[1] else np.zeros(rows)
    # by error relative to the tolerance, then (when the tolerance is 0 and every ratio is
    # infinite) by the error itself
    order = np.lexsort((-row_err, -row_ratio))
    shown = [int(r) for r in order[:WORST_ROWS] if row_ratio[r] > 0 or not row_ok[r]]
    worst = [
        WorstRow(r, row_inputs(r) if row_inputs else {}, _shown(b[r]), _shown(a[r]),
                 float(err[r].max()) if b.shape[1] else 0.0)
        for r in shown
    ]
    diff = OutputDiff(
        name, kind, rows, bool(row_ok.all()), tol,
        mismatched_rows=int((~row_ok).sum()),
        max_abs=_stat(flat_err, np.max), max_rel=_stat(flat_rel, np.max),
        p99_abs=_stat(flat_err, _p99),
        p99_rel=_stat(flat_rel, _p99),
        min_atol=_passing(max(_stat(need_atol.reshape(-1), np.max) or 0.0, 0.0),
                          lambda t: bool(c.within(t, tol.rtol).all())),
        min_rtol=_passing(max(_stat(need_rtol.reshape(-1), np.max) or 0.0, 0.0),
                          lambda t: bool(c.within(tol.atol, t).all())),
        worst=worst,
    )
    if kind in VECTOR_KINDS and b.shape[1] > 1:
        diff.min_cosine = _min_cosine(a, b)
    return diff


def _stat(x: np.ndarray, fn: Callable[[np.ndarray], Any]) -> float | None:
    return float(fn(x)) if x.size else None


def _p99(x: np.ndarray) -> float:
    """The 99th percentile of errors (never NaN: they hold no NaN, but may hold inf).

    Linear interpolation next to an infinite error computes ``inf - inf`` or ``0 * inf``;
    the limit there is the upper neighbour, which ``method="higher"`` gives.
    """
    with np.errstate(invalid="ignore"):
        p = float(np.percentile(x, 99))
    return float(np.percentile(x, 99, method="higher")) if np.isnan(p) else p


def _passing(t: float, passes: Callable[[float], bool]) -> float:
    """A minimum tolerance computed by subtraction, rounded up until it really ``passes``.

    ``err - rtol*|b|`` (or ``(err - atol)/|b|``) can land an ulp below the bound it was
    solved from, so the reported "passes at" value would fail when re-run.
    """
    if not np.isfinite(t):
        return t
    step = float(np.spacing(t))
    cand = t
    while not passes(cand) and np.isfinite(cand):
        cand = t + step
        step *= 2
    return float(cand)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    with np.errstate(invalid="ignore", divide="ignore"):
        num = (a * b).sum(axis=1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cos = np.where(den > 0, num / den, np.where(np.all(a == b, axis=1), 1.0, 0.0))
    finite = cos[np.isfinite(cos)]
    return float(finite.min()) if finite.size else None
