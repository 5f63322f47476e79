"""``OutputDiff``: how one output of the converted model compares with the original's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baton.schema import to_jsonable
from baton.tolerance import LABEL_KINDS, Tolerance

WORST_ROWS = 5


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
    #: an output compared only where an attention mask sets a position
    #: (:mod:`baton.masks`): ``{"mask": NAME, "compared": n, "total": m}``
    positions: dict[str, Any] | None = None
    #: the relative accuracy of ``p99_abs``/``p99_rel`` when they come from a quantile
    #: sketch (a streamed check beyond its exact buffer; :mod:`baton.parity.stream`);
    #: None when they are exact
    p99_accuracy: float | None = None

    def __bool__(self) -> bool:
        return self.passed

    @property
    def is_label(self) -> bool:
        return self.kind in LABEL_KINDS

    def summary(self) -> str:
        text = self._summary()
        if self.positions:
            p = self.positions
            text += (f"; compared {p['compared']:,} of {p['total']:,} positions (where "
                     f"{p['mask']} sets them)")
        return text

    def _summary(self) -> str:
        if self.message:
            return self.message
        if self.is_label:
            return (f"{self.agreement:.4%} of {self.rows} labels agree "
                    f"(gate {self.tolerance.agreement:.2%}); {self.mismatched_rows} rows differ")
        p99 = (f"p99 abs {_fmt(self.p99_abs)}" if self.p99_accuracy is None else
               f"p99 abs ~{_fmt(self.p99_abs)} (sketch, within {self.p99_accuracy:.0%})")
        return (f"max abs {_fmt(self.max_abs)}, max rel {_fmt(self.max_rel)}, "
                f"{p99}; {self.mismatched_rows} of {self.rows} rows "
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
            **({"positions": dict(self.positions)} if self.positions else {}),
            **({"p99_accuracy": self.p99_accuracy} if self.p99_accuracy is not None else {}),
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
            message=d.get("message"), positions=d.get("positions"),
            p99_accuracy=_num(d.get("p99_accuracy")),
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
