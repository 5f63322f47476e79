"""Tolerances: how close the converted model's outputs must be to the original's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from baton.errors import UsageError

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
#: Output kinds compared by exact agreement, row by row; every other kind by numbers.
LABEL_KINDS = ("label",)


@dataclass(frozen=True)
class Tolerance:
    """``|onnx - original| <= atol + rtol * |original|`` elementwise for numbers;
    ``agreement`` is the share of rows whose label must match exactly (1.0 = all)."""

    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    agreement: float = 1.0

    def __post_init__(self) -> None:
        for name in ("atol", "rtol"):
            v = getattr(self, name)
            if not v >= 0:
                raise UsageError(
                    f"tolerance {name} must be a number >= 0",
                    expected=">= 0", found=repr(v), hint=f"pass e.g. --{name} 1e-5",
                )
        if not 0.0 <= self.agreement <= 1.0:
            raise UsageError(
                "label agreement must lie between 0 and 1",
                expected="0 <= agreement <= 1", found=repr(self.agreement),
                hint="1.0 means every label must match",
            )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tolerance:
        return cls(**{k: float(v) for k, v in d.items() if k in ("atol", "rtol", "agreement")})


ToleranceArg = Tolerance | Mapping[str, Tolerance] | None


def resolve(
    arg: ToleranceArg, output: str, stored: Mapping[str, Tolerance] | None = None
) -> Tolerance:
    """The tolerance for one output: the caller's (global or per output), else the bundle's,
    else the default."""
    if isinstance(arg, Tolerance):
        return arg
    if isinstance(arg, Mapping) and output in arg:
        return arg[output]
    if stored and output in stored:
        return stored[output]
    return Tolerance()


def with_overrides(base: Tolerance, atol: float | None, rtol: float | None) -> Tolerance:
    changes = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    return replace(base, **changes) if changes else base


# -- the one tolerance rule ---------------------------------------------------------------
# compare (the parity report), the parity search, the runtime's self-check and the server's
# warm-up all decide agreement here, so they cannot drift apart.


@dataclass(frozen=True)
class Closeness:
    """Elementwise ``|actual - expected| <= atol + rtol * |expected|`` over float64 arrays.

    The same value on both sides agrees (NaN with NaN, an infinity with itself); an
    infinite or NaN expected value agrees only with itself; NaN on one side only is an
    infinite error."""

    equal: np.ndarray  #: the same value on both sides
    err: np.ndarray  #: |actual - expected|; 0 where equal, inf where NaN on one side only
    finite: np.ndarray  #: the expected value is finite
    magnitude: np.ndarray  #: |expected|
    ok: np.ndarray  #: within the tolerance it was computed for

    @property
    def finite_magnitude(self) -> np.ndarray:
        """|expected| where it is finite, else 0 (the bound a non-finite value gets)."""
        return np.where(self.finite, self.magnitude, 0.0)

    def bound(self, atol: float, rtol: float) -> np.ndarray:
        """``atol + rtol * |expected|``, elementwise (``atol`` where expected is not finite)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return atol + rtol * self.finite_magnitude

    def within(self, atol: float, rtol: float) -> np.ndarray:
        """The rule, elementwise, at ``atol`` and ``rtol``."""
        with np.errstate(invalid="ignore"):
            return self.equal | (self.finite & (self.err <= self.bound(atol, rtol)))


def closeness(expected: np.ndarray, actual: np.ndarray, tolerance: Tolerance) -> Closeness:
    """The tolerance rule, elementwise: ``expected`` and ``actual`` of one shape."""
    b = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        equal = (a == b) | (np.isnan(a) & np.isnan(b))
        err = np.where(equal, 0.0, np.abs(a - b))
        err = np.where(np.isnan(err), np.inf, err)  # NaN on one side only
    c = Closeness(equal, err, np.isfinite(b), np.abs(b), equal)
    return replace(c, ok=c.within(tolerance.atol, tolerance.rtol))


def as_array(value: Any) -> np.ndarray:
    """An output as an array; a ZipMap (onnxruntime's list of dicts) becomes [rows, classes]."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = list(value[0])
        return np.asarray([[r[k] for k in keys] for r in value], dtype=np.float64)
    return np.asarray(value)


def aligned(expected: np.ndarray, actual: np.ndarray) -> np.ndarray | None:
    """``expected`` in ``actual``'s shape when both hold the same rows, else None: (N,) and
    (N, 1) hold the same rows; (N, 1) and (1, N) do not."""
    if expected.shape == actual.shape:
        return expected
    same_rows = expected.ndim == 0 or actual.ndim == 0 or len(expected) == len(actual)
    if (same_rows and expected.size == actual.size
            and expected.squeeze().shape == actual.squeeze().shape):
        return expected.reshape(actual.shape)
    return None


def numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "fiub"


def row_view(a: np.ndarray) -> np.ndarray:
    """``a`` as a matrix of rows (a scalar is one row of one value)."""
    return a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)


def compared_as_labels(kind: str, expected: np.ndarray, actual: np.ndarray) -> bool:
    """Labels, and outputs that are not both numeric, agree only exactly."""
    return kind in LABEL_KINDS or not (numeric(expected) and numeric(actual))


def label_text(v: Any) -> str:
    """A label as text, so that b"a" and "a", 1.0 and 1 compare equal."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def labels_equal(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per row of two row views, whether every label agrees exactly."""
    if numeric(expected) and numeric(actual):
        return np.asarray((expected == actual).all(axis=1))
    text = np.vectorize(label_text, otypes=[object])
    return np.asarray((text(expected) == text(actual)).all(axis=1))


def rows_agree(kind: str, expected: Any, actual: Any, tolerance: Tolerance) -> np.ndarray:
    """Per row, whether the converted model's output agrees with the original's: labels
    exactly, numbers by :func:`closeness`; no row agrees when the shapes differ."""
    exp, act = np.asarray(expected), as_array(actual)
    fitted = aligned(exp, act)
    if fitted is None:
        return np.zeros(len(exp) if exp.ndim else 1, dtype=bool)
    e, a = row_view(fitted), row_view(act)
    if compared_as_labels(kind, e, a):
        return labels_equal(e, a)
    if not e.shape[1]:
        return np.ones(len(e), dtype=bool)
    return np.asarray(closeness(e, a, tolerance).ok.all(axis=1))


def disagreement(kind: str, expected: Any, actual: Any, tolerance: Tolerance) -> str | None:
    """Why ``actual`` is out of tolerance of ``expected`` (one line), or None when it is
    within: labels by their agreement rate, numbers value by value."""
    exp, act = np.asarray(expected), as_array(actual)
    fitted = aligned(exp, act)
    if fitted is None:
        return f"shape {list(act.shape)}, expected {list(exp.shape)}"
    e, a = row_view(fitted), row_view(act)
    if compared_as_labels(kind, e, a):
        same = labels_equal(e, a)
        if (float(same.mean()) if len(same) else 1.0) < tolerance.agreement:
            return f"{int((~same).sum())} of {len(same)} labels differ"
        return None
    c = closeness(e, a, tolerance)
    if c.ok.all():
        return None
    bad = c.err[~c.ok]
    finite = bad[np.isfinite(bad)]
    worst = float(finite.max()) if finite.size else float("inf")
    return f"{int(bad.size)} values out of tolerance, worst abs difference {worst:.3g}"
