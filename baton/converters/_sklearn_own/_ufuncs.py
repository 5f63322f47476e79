"""The numpy ufuncs baton writes as ONNX (part of ``encoders``: ``FunctionTransformer``
and ``TransformedTargetRegressor``'s ``func``/``inverse_func``), each elementwise in the
graph's float precision."""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit


def _log1p(e: Emit, x: str) -> str:
    """``log(u)·(x/(u-1))`` with ``u = 1+x`` (x where ``u == 1``, +inf at +inf): within an
    ulp or two of ``np.log1p`` for tiny and huge x alike."""
    one = e.const(1.0)
    u = e.op("Add", x, one)
    d = e.op("Sub", u, one)
    r = e.op("Mul", e.op("Log", u), e.op("Div", x, d))
    r = e.op("Where", e.op("Equal", d, e.const(0.0)), x, r)
    return e.op("Where", e.op("IsInf", x, detect_negative=0), x, r)


def _expm1(e: Emit, x: str) -> str:
    """Kahan's ``(u-1)·(x/log(u))`` with ``u = exp(x)`` (x where ``u == 1``, -1 where
    ``u - 1 == -1``, +inf where u is)."""
    one = e.const(1.0)
    u = e.op("Exp", x)
    d = e.op("Sub", u, one)
    r = e.op("Mul", d, e.op("Div", x, e.op("Log", u)))
    r = e.op("Where", e.op("Equal", u, one), x, r)
    r = e.op("Where", e.op("Equal", d, e.const(-1.0)), d, r)
    return e.op("Where", e.op("IsInf", u, detect_negative=0), u, r)


def _unary(op_type: str) -> Any:
    return lambda e, x: e.op(op_type, x)


def ufuncs() -> dict[Any, Any]:
    """numpy ufunc -> graph builder ``(e, x) -> name``."""
    ln2, ln10 = np.log(2.0), np.log(10.0)
    return {
        np.log: _unary("Log"),
        np.log1p: _log1p,
        np.log2: lambda e, x: e.op("Div", e.op("Log", x), e.const(ln2)),
        np.log10: lambda e, x: e.op("Div", e.op("Log", x), e.const(ln10)),
        np.exp: _unary("Exp"),
        np.expm1: _expm1,
        np.sqrt: _unary("Sqrt"),
        np.abs: _unary("Abs"),
        np.fabs: _unary("Abs"),
        np.negative: _unary("Neg"),
        np.positive: _unary("Identity"),
        np.square: lambda e, x: e.op("Mul", x, x),
        np.reciprocal: _unary("Reciprocal"),
        np.tanh: _unary("Tanh"),
        np.floor: _unary("Floor"),
        np.ceil: _unary("Ceil"),
        np.rint: _unary("Round"),
    }


def ufunc_names() -> str:
    return ", ".join(f"np.{f.__name__}" for f in ufuncs())
