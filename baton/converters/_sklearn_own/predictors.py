"""Small estimators skl2onnx has no converter for, or a wrong one, computed as scikit-learn
1.9 computes them.

* ``DummyRegressor``: the fitted constant (``constant_``) on every row.
* ``IsotonicRegression``: scipy's ``interp1d`` (linear) over ``X_thresholds_``/
  ``y_thresholds_``, which hands float64 data to ``np.interp``: the segment ``j`` with
  ``x[j] <= v < x[j + 1]``, ``slope * (v - x[j]) + y[j]`` (from the other end where that is
  NaN), ``y[j]`` exactly at a threshold and at the ends; NaN outside the thresholds
  (``out_of_bounds="nan"``, and for ``"raise"``, where scikit-learn raises), clipped first
  for ``"clip"``. Always in float64 (scikit-learn casts to the thresholds' dtype).
* ``CCA``, ``PLSCanonical``: ``predict`` = ``(X - _x_mean) @ coef_.T + intercept_``;
  ``PLSSVD``: ``transform`` = ``((X - _x_mean) / _x_std) @ x_weights_``.
* ``Binarizer``: ``x > threshold`` as 1, else 0 (NaN is 0); skl2onnx's gives 1 at the
  threshold itself.
* ``AdditiveChi2Sampler``: the sampled chi2 map of ``_transform_dense`` (zeros stay 0).
* ``NMF``, ``MiniBatchNMF``, ``LatentDirichletAllocation``: refused (their transform
  iterates per row until it converges).
* ``Normalizer``: each row divided by its l1, l2 or max norm, where a norm below
  ``10 * eps`` is taken as 1 (``_handle_zeros_in_scale``): a zero row stays zero, where
  skl2onnx's divides it into NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import (
    Emit,
    Own,
    regressor_shape,
    transformer_shape,
)


def _dummy_regressor(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    constant = np.asarray(e.model.constant_, dtype=e.dtype).reshape(1, -1)
    e.per_row(constant, out=e.output())


def _isotonic_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension()])


def _isotonic(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    e.dtype = np.float64  # scikit-learn computes in the thresholds' dtype (float64)
    m = e.model
    xs = np.asarray(m.X_thresholds_, dtype=np.float64)
    ys = np.asarray(m.y_thresholds_, dtype=np.float64)
    flat = e.op("Reshape", e.to_float(operator.inputs[0].full_name),
                e.const([-1], np.int64))
    if m.out_of_bounds == "clip":
        flat = e.op("Clip", flat, e.const(m.X_min_), e.const(m.X_max_))
    if len(xs) == 1:  # one threshold: scikit-learn repeats its y, whatever x is
        shape = e.op("Shape", flat)
        e.op("Expand", e.const(ys[:1]), shape, out=e.output())
        return
    n = len(xs)
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])
    column = e.op("Unsqueeze", flat, e.const([1], np.int64))
    # numpy's binary search: j with xs[j] <= x < xs[j + 1] (-1 below the first)
    at_or_below = e.op("Cast", e.op("LessOrEqual", e.const(xs[None, :]), column), to=7)
    j = e.op("Sub", e.op("ReduceSum", at_or_below, e.const([1], np.int64), keepdims=0),
             e.const(1, np.int64))
    jc = e.op("Clip", j, e.const(0, np.int64), e.const(n - 2, np.int64))
    jn = e.op("Add", jc, e.const(1, np.int64))
    x_lo, x_hi = (e.op("Gather", e.const(xs), i, axis=0) for i in (jc, jn))
    y_lo, y_hi = (e.op("Gather", e.const(ys), i, axis=0) for i in (jc, jn))
    slope = e.op("Gather", e.const(slopes), jc, axis=0)
    value = e.op("Add", e.op("Mul", slope, e.op("Sub", flat, x_lo)), y_lo)
    # a NaN one way: the other way; still NaN on a flat segment: its y
    other = e.op("Add", e.op("Mul", slope, e.op("Sub", flat, x_hi)), y_hi)
    value = e.op("Where", e.op("IsNaN", value), other, value)
    flat_nan = e.op("And", e.op("IsNaN", value), e.op("Equal", y_lo, y_hi))
    value = e.op("Where", flat_nan, y_lo, value)
    value = e.op("Where", e.op("Equal", flat, x_lo), y_lo, value)
    value = e.op("Where", e.op("GreaterOrEqual", j, e.const(n - 1, np.int64)),
                 e.const(ys[-1]), value)
    value = e.op("Where", e.op("Less", j, e.const(0, np.int64)), e.const(ys[0]), value)
    value = e.op("Where", e.op("IsNaN", flat), flat, value)
    if m.out_of_bounds != "clip":
        outside = e.op("Or", e.op("Less", flat, e.const(xs[0])),
                       e.op("Greater", flat, e.const(xs[-1])))
        value = e.op("Where", outside, e.const(np.nan), value)
    e.op("Identity", value, out=e.output())


def _pls_predict(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    m = e.model
    centred = e.op("Sub", e.x, e.const(np.asarray(m._x_mean)[None, :]))
    raw = e.op("Add", e.matmul(centred, np.asarray(m.coef_).T),
               e.const(np.asarray(m.intercept_)[None, :]))
    e.op("Identity", raw, out=e.output())


def _pls_svd_transform(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    m = e.model
    scaled = e.op("Div", e.op("Sub", e.x, e.const(np.asarray(m._x_mean)[None, :])),
                  e.const(np.asarray(m._x_std)[None, :]))
    e.op("MatMul", scaled, e.const(np.asarray(m.x_weights_)), out=e.output())


def _binarizer(scope: Any, operator: Any, container: Any) -> None:
    from onnx import helper

    e = Emit(scope, operator, container)
    above = e.op("Greater", e.x, e.const(e.model.threshold))
    e.op("Cast", above, out=e.output(),
         to=helper.np_dtype_to_tensor_dtype(np.dtype(e.dtype)))


def _normalizer(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    axis = e.const([1], np.int64)
    norm = e.model.norm
    if norm == "l1":
        norms = e.op("ReduceSum", e.op("Abs", e.x), axis, keepdims=1)
    elif norm == "l2":
        norms = e.op("Sqrt", e.op("ReduceSum", e.op("Mul", e.x, e.x), axis, keepdims=1))
    else:
        norms = e.op("ReduceMax", e.op("Abs", e.x), axis, keepdims=1)
    tiny = e.op("Less", norms, e.const(10 * np.finfo(e.dtype).eps))
    norms = e.op("Where", tiny, e.const(1.0), norms)
    e.op("Div", e.x, norms, out=e.output())


def _additive_chi2(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    m = e.model
    interval = m.sample_interval if m.sample_interval is not None else {
        1: 0.8, 2: 0.5, 3: 0.4}[m.sample_steps]
    nonzero = e.op("Not", e.op("Equal", e.x, e.const(0.0)))
    zero = e.const(0.0)
    safe = e.op("Where", nonzero, e.x, e.const(1.0))  # no log(0): those entries stay 0
    parts = [e.op("Where", nonzero, e.op("Sqrt", e.op("Mul", e.x, e.const(interval))),
                  zero)]
    log_step = e.op("Mul", e.const(interval), e.op("Log", safe))
    step = e.op("Mul", e.op("Mul", e.const(2.0), safe), e.const(interval))
    for j in range(1, m.sample_steps):
        factor = e.op("Sqrt", e.op("Div", step, e.const(np.cosh(np.pi * j * interval))))
        angle = e.op("Mul", e.const(float(j)), log_step)
        for trig in ("Cos", "Sin"):
            parts.append(e.op("Where", nonzero, e.op("Mul", factor, e.op(trig, angle)), zero))
    e.op("Concat", *parts, out=e.output(), axis=1)


def _refuse_iterative(remedy: str) -> Any:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        from baton.errors import UnsupportedModelError

        name = type(operator.raw_operator).__name__
        raise UnsupportedModelError(
            f"baton cannot convert {name}: its transform solves an optimisation for each "
            "row (iterations until convergence), which no fixed ONNX graph reproduces",
            expected="a transform with a closed form (a matrix product, a kernel, a lookup)",
            found=f"{name} (transform iterates per row)",
            hint=remedy)

    return convert


def _n_features(model: Any) -> int:
    return int(model.n_features_in_)


CONVERTERS = [
    Own("sklearn.dummy.DummyRegressor", regressor_shape, _dummy_regressor,
        note="the fitted constant on every row"),
    Own("sklearn.isotonic.IsotonicRegression", _isotonic_shape, _isotonic,
        note="linear interpolation between the fitted thresholds, as scipy's interp1d"),
    Own("sklearn.cross_decomposition.CCA", regressor_shape, _pls_predict,
        note="predict: (X - mean) @ coef_.T + intercept_"),
    Own("sklearn.cross_decomposition.PLSCanonical", regressor_shape, _pls_predict,
        note="predict: (X - mean) @ coef_.T + intercept_"),
    Own("sklearn.cross_decomposition.PLSSVD",
        transformer_shape(lambda m: m.x_weights_.shape[1]), _pls_svd_transform,
        note="transform: standardised X @ x_weights_"),
    Own("sklearn.kernel_approximation.AdditiveChi2Sampler",
        transformer_shape(lambda m: m.n_features_in_ * (2 * m.sample_steps - 1)),
        _additive_chi2, note="the sampled chi2 feature map: sqrt, then cos/sin of log"),
    Own("sklearn.decomposition.NMF", transformer_shape(lambda m: m.n_components_),
        _refuse_iterative("fit TruncatedSVD or PCA in its place, or convert the model "
                          "that takes NMF's output and compute NMF's transform before it"),
        note="refused: the transform solves a non-negative least squares per row"),
    Own("sklearn.decomposition.MiniBatchNMF", transformer_shape(lambda m: m.n_components_),
        _refuse_iterative("fit TruncatedSVD or PCA in its place, or convert the model "
                          "that takes MiniBatchNMF's output and compute its transform "
                          "before it"),
        note="refused: the transform solves a non-negative least squares per row"),
    Own("sklearn.decomposition.LatentDirichletAllocation",
        transformer_shape(lambda m: m.n_components),
        _refuse_iterative("fit TruncatedSVD or PCA on the counts in its place, or convert "
                          "the model that takes the topic mixtures and compute them before "
                          "it"),
        note="refused: the transform runs variational inference per row"),
    Own("sklearn.preprocessing.Binarizer", transformer_shape(_n_features), _binarizer,
        note="x > threshold as 1, else 0"),
    Own("sklearn.preprocessing.Normalizer", transformer_shape(_n_features), _normalizer,
        note="rows divided by their norm; a zero row stays zero"),
]
