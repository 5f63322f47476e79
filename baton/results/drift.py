"""``DriftReport``: how far data has moved from what a bundle was proven on.

Per input column (the envelope's names): the share of rows outside the proven envelope,
the population stability index against the conversion sample's profile, and the unseen
categories. A column fails when its outside share exceeds ``max_outside`` with evidence (the
lower end of an exact one-sided 95 % interval of the share lies above it: 2 rows outside of
171 is 1.2 %, and 1 of 20 is 5 %, but either could well come from under 1 %, so they
hold; 3 of 20 fails) or, where PSI decides
(enough rows on both sides), its PSI exceeds ``max_psi``. ``bool(report)`` is whether every
column holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: unseen categories listed by name per column, at most
MAX_UNSEEN = 10
#: one minus the confidence of the one-sided interval an outside share is judged by (95 %)
ALPHA = 0.05


def share_low(k: int, n: int, alpha: float = ALPHA) -> float:
    """The lower end of the exact one-sided (Clopper-Pearson) interval of a share of ``k``
    in ``n``: the least share under which ``k`` or more of ``n`` would come with
    probability ``alpha``. Exact, so that 1 row of 20 (``0.26 %``) is no evidence
    of a share above 1 %, where the Wilson interval (1.1 %) would say it is."""
    if n <= 0 or k <= 0:
        return 0.0
    if k >= n:
        return float(alpha ** (1 / n))
    lo, hi = 0.0, k / n
    for _ in range(60):  # bisection: P(X >= k | p) = I_p(k, n - k + 1) grows with p
        mid = (lo + hi) / 2
        if _betainc(k, n - k + 1, mid) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (a continued fraction)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _fraction(a, b, x) / a
    return 1.0 - front * _fraction(b, a, 1.0 - x) / b


def _fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


@dataclass
class ColumnDrift:
    """One column's drift."""

    name: str
    #: the envelope's kind of the column (float, int, text, bool, mask), or the profile's
    kind: str
    #: rows judged
    rows: int
    #: rows outside the envelope (None: the bundle records no envelope for it)
    outside: int | None = None
    max_outside: float = 0.01
    #: why the first few outside rows lie outside
    examples: list[str] = field(default_factory=list)
    #: PSI against the conversion sample (None: not available, see ``psi_note``)
    psi: float | None = None
    max_psi: float = 0.2
    #: whether the PSI decides the verdict (enough rows on both sides)
    psi_decides: bool = False
    psi_note: str | None = None
    #: the PSI's bins: labels, the sample's shares, the data's counts
    bins: list[dict[str, Any]] = field(default_factory=list)
    #: unseen categories and how often each came (the most frequent first, capped)
    unseen: dict[str, int] = field(default_factory=dict)
    #: all unseen values, also those beyond the cap
    unseen_total: int = 0

    @property
    def outside_share(self) -> float | None:
        if self.outside is None:
            return None
        return self.outside / self.rows if self.rows else 0.0

    @property
    def outside_low(self) -> float | None:
        """The least share outside that these rows show with 95 % confidence."""
        return None if self.outside is None else share_low(self.outside, self.rows)

    @property
    def outside_failed(self) -> bool:
        low = self.outside_low
        return low is not None and low > self.max_outside

    @property
    def psi_failed(self) -> bool:
        return self.psi_decides and self.psi is not None and self.psi > self.max_psi

    @property
    def passed(self) -> bool:
        return not (self.outside_failed or self.psi_failed)

    def __bool__(self) -> bool:
        return self.passed

    def summary(self) -> str:
        """One line: the outside share and PSI against their thresholds, unseen categories."""
        parts = []
        share = self.outside_share
        if share is None:
            parts.append("outside share not available (no envelope)")
        else:
            low = self.outside_low or 0.0
            parts.append(f"{share:.1%} of rows outside the envelope ({self.outside} of "
                         f"{self.rows}"
                         + (f"; at least {low:.1%} with 95 % confidence" if self.outside else "")
                         + f"; threshold {self.max_outside:.1%})")
        if self.psi is None:
            parts.append("PSI not available" + (f" ({self.psi_note})" if self.psi_note else ""))
        else:
            parts.append(f"PSI {self.psi:.3g} (threshold {self.max_psi:g}"
                         + ("" if self.psi_decides else ", not deciding: few rows") + ")")
        if self.unseen_total:
            names = ", ".join(f"{k!r} x{v}" for k, v in self.unseen.items())
            more = self.unseen_total - sum(self.unseen.values())
            parts.append(f"unseen categories: {names}" + (f" and {more} more" if more else ""))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "rows": self.rows, "passed": self.passed,
            "outside": self.outside, "outside_share": self.outside_share,
            "outside_low": self.outside_low,
            "max_outside": self.max_outside, "examples": self.examples,
            "psi": _finite(self.psi), "max_psi": self.max_psi, "psi_decides": self.psi_decides,
            "psi_note": self.psi_note, "bins": self.bins, "unseen": self.unseen,
            "unseen_total": self.unseen_total,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnDrift:
        return cls(
            str(d["name"]), str(d.get("kind", "")), int(d["rows"]),
            None if d.get("outside") is None else int(d["outside"]),
            float(d.get("max_outside", 0.01)), [str(e) for e in d.get("examples", [])],
            None if d.get("psi") is None else float(d["psi"]), float(d.get("max_psi", 0.2)),
            bool(d.get("psi_decides", False)), d.get("psi_note"), list(d.get("bins", [])),
            {str(k): int(v) for k, v in d.get("unseen", {}).items()},
            int(d.get("unseen_total", 0)))


@dataclass
class DriftReport:
    """Drift of every column, the thresholds it was judged by, and notes."""

    columns: list[ColumnDrift]
    rows: int
    max_outside: float = 0.01
    max_psi: float = 0.2
    #: PSI decides only from this many rows (of the data and of the conversion sample)
    min_rows_psi: int = 300
    #: rows of the conversion sample the profile was observed on (None: no profile)
    profile_rows: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(self.columns)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failing(self) -> list[ColumnDrift]:
        return [c for c in self.columns if not c.passed]

    @property
    def failures(self) -> list[str]:
        return [f"input {c.name}: {c.summary()}" for c in self.failing]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def thresholds(self) -> str:
        return (f"outside the envelope <= {self.max_outside:.2%} of rows (with 95 % "
                f"confidence), PSI <= "
                f"{self.max_psi:g} (PSI decides from {self.min_rows_psi} rows)")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rows": self.rows, "max_outside": self.max_outside,
                "max_psi": self.max_psi, "min_rows_psi": self.min_rows_psi,
                "profile_rows": self.profile_rows, "notes": self.notes,
                "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftReport:
        return cls([ColumnDrift.from_dict(c) for c in d.get("columns", [])], int(d["rows"]),
                   float(d.get("max_outside", 0.01)), float(d.get("max_psi", 0.2)),
                   int(d.get("min_rows_psi", 300)),
                   None if d.get("profile_rows") is None else int(d["profile_rows"]),
                   [str(n) for n in d.get("notes", [])])


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)
