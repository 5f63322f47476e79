"""Tolerances: how close the converted model's outputs must be to the original's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from baton.errors import UsageError

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4


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
