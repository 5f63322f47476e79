"""``SplineTransformer``: the B-spline basis of every feature, as scikit-learn 1.9's
``SplineTransformer.transform`` gets it from scipy's ``BSpline`` (part of ``encoders``).

The graph evaluates the basis by the Cox-de Boor recursion in float64 (scipy evaluates in
float64 too): the interval ``l`` is scipy's ``find_interval`` (the last knot ``t[l] <= x``
with ``k <= l < n``, so beyond the knots the boundary piece continues), the degree-0 basis
is the indicator of ``l``, and each degree ``p`` combines two neighbours with the weights
``(x - t[i]) / (t[i+p] - t[i])`` and ``(t[i+p+1] - x) / (t[i+p+1] - t[i+1])`` (0 where the
knots coincide). ``periodic`` maps x into the base period first (numpy's ``%``) and folds
the basis with the spline's coefficients; ``constant`` and ``linear`` replace the values
beyond the boundary knots as scikit-learn does (the boundary value, or the tangent there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit, Own


def _n_out(m: Any) -> int:
    return int(m.n_features_out_)


def _shape(operator: Any) -> None:
    from baton.converters._sklearn_own.encoders import _float_type

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator, [n, _n_out(operator.raw_operator)])


def _c(e: Emit, value: Any) -> str:
    return e.const(np.asarray(value, dtype=np.float64), np.float64)


def _basis(e: Emit, x: str, t: np.ndarray, k: int) -> str:
    from baton.converters._sklearn_own.encoders import axes_op

    """The ``n = len(t) - k - 1`` basis functions at x [N, F, 1] (knots ``t`` [F, L]):
    [N, F, n] in float64."""
    f, length = t.shape
    n = length - k - 1
    inner = t[:, k + 1:n]  # l = k + #(inner knots <= x)
    if inner.shape[1]:
        ge = e.op("GreaterOrEqual", x, _c(e, inner[None]))
        count = axes_op(e, "ReduceSum", e.op("Cast", ge, to=11), [2], keepdims=1)
        interval = e.op("Add", count, _c(e, [[[k]]]))
    else:
        interval = e.op("Mul", e.op("Sub", x, x), _c(e, 0.0))
        interval = e.op("Add", interval, _c(e, [[[k]]]))
    b = e.op("Cast", e.op("Equal", interval, _c(e, np.arange(length - 1)[None, None, :])),
             to=11)
    for p in range(1, k + 1):
        m = length - 1 - p
        ti, tip = t[:, :m], t[:, p:p + m]
        tj, tjp = t[:, 1:1 + m], t[:, p + 1:p + 1 + m]
        d1 = np.where(tip - ti > 0, tip - ti, np.inf)
        d2 = np.where(tjp - tj > 0, tjp - tj, np.inf)
        lo = e.op("Slice", b, e.const([0], np.int64), e.const([m], np.int64),
                  e.const([2], np.int64))
        hi = e.op("Slice", b, e.const([1], np.int64), e.const([m + 1], np.int64),
                  e.const([2], np.int64))
        left = e.op("Div", e.op("Mul", e.op("Sub", x, _c(e, ti[None])), lo), _c(e, d1[None]))
        right = e.op("Div", e.op("Mul", e.op("Sub", _c(e, tjp[None]), x), hi),
                     _c(e, d2[None]))
        b = e.op("Add", left, right)
    return b


def _periodic(e: Emit, x: str, t: np.ndarray, k: int) -> str:
    """``t[k] + (x - t[k]) % (t[n] - t[k])`` (numpy's floor modulo), 0 for a zero period."""
    n = t.shape[1] - k - 1
    start, period = t[:, k], t[:, n] - t[:, k]
    safe = np.where(period > 0, period, 1.0)
    period_c = _c(e, safe[None, :, None])
    r = e.op("Mod", e.op("Sub", x, _c(e, start[None, :, None])), period_c, fmod=1)
    r = e.op("Where", e.op("Less", r, _c(e, 0.0)), e.op("Add", r, period_c), r)
    mapped = e.op("Add", r, _c(e, start[None, :, None]))
    zero = e.op("Mul", x, _c(e, 0.0))
    return e.op("Where", e.const((period > 0)[None, :, None], np.bool_), mapped, zero)


def _beyond(e: Emit, m: Any, x: str, values: str) -> str:
    """``constant``/``linear``: outside ``[t[k], t[n]]`` (and at NaN) the boundary values,
    or their tangents, in the first and last columns, zeros elsewhere."""
    splines = m.bsplines_
    s = splines[0].c.shape[1]
    lo, hi = np.zeros(len(splines)), np.zeros(len(splines))
    base_lo, base_hi = np.zeros((len(splines), s)), np.zeros((len(splines), s))
    slope_lo, slope_hi = np.zeros_like(base_lo), np.zeros_like(base_hi)
    k = m.degree  # scikit-learn raises its loop's `degree` for linear, degree <= 1, and
    for f, spl in enumerate(splines):  # keeps it for the next features: so does this
        lo[f], hi[f] = spl.t[k], spl.t[-k - 1]
        f_min, f_max = spl(lo[f]), spl(hi[f])
        if m.extrapolation == "constant":
            base_lo[f, :k] = f_min[:k]
            if k:
                base_hi[f, -k:] = f_max[-k:]
            continue
        fp_min, fp_max = spl(lo[f], nu=1), spl(hi[f], nu=1)
        if k <= 1:
            k += 1
        for j in range(k):
            base_lo[f, j], slope_lo[f, j] = f_min[j], fp_min[j]
            base_hi[f, s - 1 - j], slope_hi[f, s - 1 - j] = f_max[s - 1 - j], fp_max[s - 1 - j]
    lo_c, hi_c = _c(e, lo[None, :, None]), _c(e, hi[None, :, None])
    below_v = e.op("Add", _c(e, base_lo[None]), e.op("Mul", e.op("Sub", x, lo_c),
                                                    _c(e, slope_lo[None])))
    above_v = e.op("Add", _c(e, base_hi[None]), e.op("Mul", e.op("Sub", x, hi_c),
                                                    _c(e, slope_hi[None])))
    inside = e.op("And", e.op("LessOrEqual", lo_c, x), e.op("LessOrEqual", x, hi_c))
    zero = e.op("Mul", values, _c(e, 0.0))
    zero = e.op("Where", e.op("IsNaN", zero), _c(e, 0.0), zero)
    out = e.op("Where", e.op("Greater", x, hi_c), above_v, zero)
    out = e.op("Where", e.op("Less", x, lo_c), below_v, out)
    return e.op("Where", inside, values, out)


def _spline(scope: Any, operator: Any, container: Any) -> None:
    from baton.converters._sklearn_own.encoders import _emit, _matrix, axes_op

    e = _emit(scope, operator, container)
    m = e.model
    k = m.degree
    splines = m.bsplines_
    t = np.stack([np.asarray(spl.t, dtype=np.float64) for spl in splines])
    x = axes_op(e, "Unsqueeze", _matrix(e, np.float64), [2])  # [N, F, 1]
    raw = x
    if m.extrapolation == "periodic":
        x = _periodic(e, x, t, k)
    b = _basis(e, x, t, k)  # [N, F, n]
    coef = np.stack([np.asarray(spl.c, dtype=np.float64) for spl in splines])  # [F, n, s]
    s = coef.shape[2]
    if not all(np.array_equal(c, np.eye(c.shape[0], c.shape[1])) for c in coef):
        b4 = axes_op(e, "Unsqueeze", b, [2])
        b = axes_op(e, "Squeeze", e.op("MatMul", b4, _c(e, coef)), [2])
    elif b_width(t, k) != s:
        b = e.op("Slice", b, e.const([0], np.int64), e.const([s], np.int64),
                 e.const([2], np.int64))
    if m.extrapolation in ("constant", "linear"):
        b = _beyond(e, m, raw, b)
    elif m.handle_missing == "zeros":
        b = e.op("Where", e.op("IsNaN", raw), _c(e, 0.0), b)
    flat = e.op("Reshape", b, e.const([0, len(splines) * s], np.int64))  # 0: keep N
    if not m.include_bias:
        keep = [j for j in range(len(splines) * s) if (j + 1) % s != 0]
        flat = e.op("Gather", flat, e.const(np.asarray(keep, np.int64), np.int64), axis=1)
    e.op("Cast", flat, out=e.output(), to=1 if e.dtype == np.float32 else 11)


def b_width(t: np.ndarray, k: int) -> int:
    return int(t.shape[1] - k - 1)


CONVERTERS = [
    Own("sklearn.preprocessing.SplineTransformer", _shape, _spline,
        note="B-spline basis by the Cox-de Boor recursion (float64), every extrapolation"),
]
