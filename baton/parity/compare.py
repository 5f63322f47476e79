"""Comparing one output of the converted model with the original's, by the output's kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baton.schema import to_jsonable
from baton.tolerance import Tolerance

LABEL_KINDS = ("label",)
#: Kinds whose rows are vectors worth a cosine similarity (reported, not gated).
VECTOR_KINDS = ("transformed", "tensor", "embedding")
WORST_ROWS = 5
_SHOW = 10  # values shown per row in the worst rows


@dataclass
class WorstRow:
    row: int
    inputs: dict[str, Any]
    expected: Any
    actual: Any
    abs_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "inputs": self.inputs,
            "expected": self.expected,
            "actual": self.actual,
            "abs_error": to_jsonable(self.abs_error),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorstRow:
        return cls(d["row"], d.get("inputs", {}), d.get("expected"), d.get("actual"),
                   _num(d.get("abs_error")))


@dataclass
class OutputDiff:
    """How one output of the converted model compares with the original's."""

    name: str
    kind: str
    rows: int
    passed: bool
    tolerance: Tolerance
    mismatched_rows: int = 0
    agreement: float | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    p99_abs: float | None = None
    p99_rel: float | None = None
    min_cosine: float | None = None
    min_atol: float | None = None
    min_rtol: float | None = None
    worst: list[WorstRow] = field(default_factory=list)
    message: str | None = None

    def __bool__(self) -> bool:
        return self.passed

    @property
    def is_label(self) -> bool:
        return self.kind in LABEL_KINDS

    def summary(self) -> str:
        if self.message:
            return self.message
        if self.is_label:
            return (f"{self.agreement:.4%} of {self.rows} labels agree "
                    f"(gate {self.tolerance.agreement:.2%}); {self.mismatched_rows} rows differ")
        return (f"max abs {_fmt(self.max_abs)}, max rel {_fmt(self.max_rel)}, "
                f"p99 abs {_fmt(self.p99_abs)}; {self.mismatched_rows} of {self.rows} rows "
                f"outside atol {self.tolerance.atol:g} + rtol {self.tolerance.rtol:g}; "
                f"passes at atol >= {_fmt_up(self.min_atol)} (rtol {self.tolerance.rtol:g}) "
                f"or rtol >= {_fmt_up(self.min_rtol)} (atol {self.tolerance.atol:g})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "passed": self.passed,
            "tolerance": {k: to_jsonable(v) for k, v in self.tolerance.to_dict().items()},
            "mismatched_rows": self.mismatched_rows,
            "agreement": self.agreement,
            "max_abs": to_jsonable(self.max_abs),
            "max_rel": to_jsonable(self.max_rel),
            "p99_abs": to_jsonable(self.p99_abs),
            "p99_rel": to_jsonable(self.p99_rel),
            "min_cosine": to_jsonable(self.min_cosine),
            "min_atol": to_jsonable(self.min_atol),
            "min_rtol": to_jsonable(self.min_rtol),
            "worst_rows": [w.to_dict() for w in self.worst],
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputDiff:
        return cls(
            name=d["name"], kind=d["kind"], rows=int(d["rows"]), passed=bool(d["passed"]),
            tolerance=Tolerance.from_dict(d.get("tolerance", {})),
            mismatched_rows=int(d.get("mismatched_rows", 0)), agreement=d.get("agreement"),
            max_abs=_num(d.get("max_abs")), max_rel=_num(d.get("max_rel")),
            p99_abs=_num(d.get("p99_abs")), p99_rel=_num(d.get("p99_rel")),
            min_cosine=_num(d.get("min_cosine")), min_atol=_num(d.get("min_atol")),
            min_rtol=_num(d.get("min_rtol")),
            worst=[WorstRow.from_dict(w) for w in d.get("worst_rows", [])],
            message=d.get("message"),
        )


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[v]
    return float(v)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _fmt_up(v: float | None) -> str:
    """Three significant digits, rounded up: a tolerance printed as "passes at" passes."""
    if v is None:
        return "n/a"
    if not np.isfinite(v) or v == 0:
        return f"{v:g}"
    text = f"{v:.3g}"
    if float(text) < v:
        exp = int(np.floor(np.log10(abs(v)))) - 2
        text = f"{(np.ceil(v / 10.0 ** exp) * 10.0 ** exp):.3g}"
        if float(text) < v:  # rounding in the power of ten
            text = f"{np.nextafter(float(text), np.inf):.17g}"
    return text


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
    exp, act = np.asarray(expected), _as_array(actual)
    rows = len(exp) if exp.ndim else 1
    aligned = _aligned(exp, act)
    if aligned is None:
        return OutputDiff(
            name, kind, rows, False, tolerance, mismatched_rows=rows,
            message=f"shape differs: original {list(exp.shape)}, ONNX {list(act.shape)}",
        )
    exp = aligned
    if kind in LABEL_KINDS or not (_numeric(exp) and _numeric(act)):
        return _compare_labels(name, kind, exp, act, tolerance, row_inputs)
    return _compare_numbers(name, kind, exp, act, tolerance, row_inputs)


def _aligned(exp: np.ndarray, act: np.ndarray) -> np.ndarray | None:
    """``exp`` in ``act``'s shape when both hold the same rows, else None: (N,) and (N, 1)
    hold the same rows; (N, 1) and (1, N) do not."""
    if exp.shape == act.shape:
        return exp
    same_rows = exp.ndim == 0 or act.ndim == 0 or len(exp) == len(act)
    if same_rows and exp.size == act.size and exp.squeeze().shape == act.squeeze().shape:
        return exp.reshape(act.shape)
    return None


def _as_array(value: Any) -> np.ndarray:
    """onnxruntime's outputs as arrays; a ZipMap (list of dicts) becomes [rows, classes]."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = list(value[0])
        return np.asarray([[r[k] for k in keys] for r in value], dtype=np.float64)
    return np.asarray(value)


def _numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "fiub"


def _row_view(a: np.ndarray) -> np.ndarray:
    return a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)


def _shown(v: np.ndarray) -> Any:
    flat = v.reshape(-1)
    vals = to_jsonable(flat[:_SHOW])
    return vals[0] if flat.size == 1 else vals + (["…"] if flat.size > _SHOW else [])


def _compare_labels(name: str, kind: str, exp: np.ndarray, act: np.ndarray, tol: Tolerance,
                    row_inputs: RowInputs | None) -> OutputDiff:
    e, a = _row_view(exp), _row_view(act)
    if _numeric(e) and _numeric(a):
        same = (e == a).all(axis=1)
    else:
        same = (np.vectorize(_text)(e) == np.vectorize(_text)(a)).all(axis=1)
    rows = len(e)
    agreement = float(same.mean()) if rows else 1.0
    bad = np.flatnonzero(~same)
    worst = [WorstRow(int(r), row_inputs(int(r)) if row_inputs else {}, _shown(e[r]), _shown(a[r]))
             for r in bad[:WORST_ROWS]]
    return OutputDiff(
        name, kind, rows, agreement >= tol.agreement, tol, mismatched_rows=len(bad),
        agreement=agreement, worst=worst,
    )


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _compare_numbers(name: str, kind: str, exp: np.ndarray, act: np.ndarray, tol: Tolerance,
                     row_inputs: RowInputs | None) -> OutputDiff:
    b = _row_view(exp).astype(np.float64)
    a = _row_view(act).astype(np.float64)
    rows = len(b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        equal = (a == b) | (np.isnan(a) & np.isnan(b))
        err = np.where(equal, 0.0, np.abs(a - b))
        err = np.where(np.isnan(err), np.inf, err)  # NaN on one side only
        mag = np.abs(b)
        finite_b = np.isfinite(b)
        mag_b = np.where(finite_b, mag, 0.0)
        bound = tol.atol + tol.rtol * mag_b
        ok = equal | (finite_b & (err <= bound))
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
    row_ok = ok.all(axis=1) if b.shape[1] else np.ones(rows, dtype=bool)
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
                          lambda t: t + tol.rtol * mag_b, err, equal, finite_b),
        min_rtol=_passing(max(_stat(need_rtol.reshape(-1), np.max) or 0.0, 0.0),
                          lambda t: tol.atol + t * mag_b, err, equal, finite_b),
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


def _passing(t: float, bound: Callable[[float], np.ndarray], err: np.ndarray,
             equal: np.ndarray, finite_b: np.ndarray) -> float:
    """A minimum tolerance computed by subtraction, rounded up until it really passes.

    ``err - rtol*|b|`` (or ``(err - atol)/|b|``) can land an ulp below the bound it was
    solved from, so the reported "passes at" value would fail when re-run.
    """
    if not np.isfinite(t):
        return t

    def ok(v: float) -> bool:
        with np.errstate(invalid="ignore", over="ignore"):
            return bool(np.all(equal | (finite_b & (err <= bound(v)))))

    step = float(np.spacing(t))
    cand = t
    while not ok(cand) and np.isfinite(cand):
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


def rows_agree(kind: str, expected: Any, actual: Any, tolerance: Tolerance) -> np.ndarray:
    """Per row, whether the converted model's output agrees with the original's, by the same
    test as :func:`compare` (``mismatched_rows`` counts the ``False``); for the parity search,
    which needs to know *which* rows of a batch diverge."""
    exp, act = np.asarray(expected), _as_array(actual)
    aligned = _aligned(exp, act)
    if aligned is None:
        return np.zeros(len(exp) if exp.ndim else 1, dtype=bool)
    exp = aligned
    e, a = _row_view(exp), _row_view(act)
    if kind in LABEL_KINDS or not (_numeric(e) and _numeric(a)):
        if _numeric(e) and _numeric(a):
            return np.asarray((e == a).all(axis=1))
        return np.asarray((np.vectorize(_text)(e) == np.vectorize(_text)(a)).all(axis=1))
    b, x = e.astype(np.float64), a.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        equal = (x == b) | (np.isnan(x) & np.isnan(b))
        err = np.where(equal, 0.0, np.abs(x - b))
        err = np.where(np.isnan(err), np.inf, err)
        finite_b = np.isfinite(b)
        bound = tolerance.atol + tolerance.rtol * np.where(finite_b, np.abs(b), 0.0)
        ok = equal | (finite_b & (err <= bound))
    return ok.all(axis=1) if b.shape[1] else np.ones(len(b), dtype=bool)
