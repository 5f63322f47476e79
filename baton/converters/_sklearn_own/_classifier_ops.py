"""Graph pieces the own classifiers and regressors share: float64 arithmetic whatever the
input's float type (scikit-learn upcasts these estimators' inputs to float64), outputs cast
to the declared type, numpy's argmax, pairwise distances written the way scikit-learn's
code forms them, and refusals."""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit
from baton.errors import UnsupportedModelError


def begin(scope: Any, operator: Any, container: Any) -> Emit:
    """An ``Emit`` that computes in float64: a float32 input is cast up first, as scikit-
    learn's ``check_array``/``check_pairwise_arrays`` do against float64 fitted arrays."""
    from onnx import TensorProto

    e = Emit(scope, operator, container)
    if e.dtype != np.float64:
        e._x = e.op("Cast", operator.inputs[0].full_name, to=TensorProto.DOUBLE)
        e.dtype = np.float64
    return e


def finish(e: Emit, value: str, i: int) -> str:
    """``value`` (float64) into output ``i``, cast to the output's declared float type."""
    from onnx import TensorProto

    if type(e.operator.outputs[i].type).__name__ == "FloatTensorType":
        return e.op("Cast", value, to=TensorProto.FLOAT, out=e.output(i))
    return e.op("Identity", value, out=e.output(i))


def axes(*values: int) -> Any:
    return np.asarray(values, dtype=np.int64)


def argmax(e: Emit, scores: str, last: bool = False) -> str:
    """``np.argmax(scores, axis=1)`` [N] int64: the first NaN's column where a row holds
    one, else the first (``last``: the last) maximum."""
    from onnx import TensorProto

    best = e.op("ArgMax", scores, axis=1, keepdims=0, select_last_index=int(last))
    nan = e.op("Cast", e.op("IsNaN", scores), to=TensorProto.INT64)
    first_nan = e.op("ArgMax", nan, axis=1, keepdims=0)
    any_nan = e.op("Cast", e.op("ReduceMax", nan, e.const([1], np.int64), keepdims=0),
                   to=TensorProto.BOOL)
    return e.op("Where", any_nan, first_nan, best)


def diffs(e: Emit, x: str, points: np.ndarray) -> str:
    """``x[:, None, :] - points[None, :, :]``: [N, M, F]."""
    p = np.asarray(points, dtype=np.float64)
    return e.op("Sub", e.op("Unsqueeze", x, e.const([1], np.int64)), e.const(p[None]))


def pair_reduce(e: Emit, x: str, points: np.ndarray, how: str) -> str:
    """Distances [N, M] from each row of ``x`` to each point, summed feature by feature as
    scipy's ``cdist`` and the neighbour trees do: ``sq`` sum of squares, ``abs`` sum of
    absolute differences, ``max`` largest absolute difference."""
    d = diffs(e, x, points)
    last = e.const([2], np.int64)
    if how == "sq":
        return e.op("ReduceSum", e.op("Mul", d, d), last, keepdims=0)
    if how == "abs":
        return e.op("ReduceSum", e.op("Abs", d), last, keepdims=0)
    return e.op("ReduceMax", e.op("Abs", d), last, keepdims=0)


def sq_norms(e: Emit, x: str) -> str:
    """``row_norms(x, squared=True)`` as [N, 1]."""
    return e.op("ReduceSum", e.op("Mul", x, x), e.const([1], np.int64), keepdims=1)


def euclidean_sq(e: Emit, x: str, points: np.ndarray, queries_first: bool = True,
                 nan_to_zero: bool = False) -> str:
    """``euclidean_distances(., ., squared=True)`` [N, M] with scikit-learn's association:
    ``(-2 x·y + XX) + YY`` clipped at 0, where XX belongs to its first argument: the
    queries (``queries_first``) or the fitted points (``rbf_kernel(X_, X).T``).
    ``nan_to_zero``: clipped as ``ArgKmin``'s Cython ``max(0., d)``, where NaN gives 0."""
    p = np.asarray(points, dtype=np.float64)
    xy = e.matmul(x, (-2.0 * p).T)
    xx, pp = sq_norms(e, x), e.const((p * p).sum(axis=1)[None, :])
    first, second = (xx, pp) if queries_first else (pp, xx)
    d = e.op("Add", e.op("Add", xy, first), second)
    if nan_to_zero:
        return e.op("Where", e.op("Greater", d, e.const(0.0)), d, e.const(0.0))
    return e.op("Max", d, e.const(0.0))


def softmax(e: Emit, scores: str) -> str:
    """scikit-learn's ``softmax``: ``exp(s - max) / sum``."""
    one = e.const([1], np.int64)
    z = e.op("Exp", e.op("Sub", scores, e.op("ReduceMax", scores, one, keepdims=1)))
    return e.op("Div", z, e.op("ReduceSum", z, one, keepdims=1))


def rows_normalised(e: Emit, values: str) -> str:
    """``values / values.sum(axis=1)`` (0/0 stays NaN, as in numpy)."""
    return e.op("Div", values, e.op("ReduceSum", values, e.const([1], np.int64), keepdims=1))


def label(e: Emit, index: str, classes: np.ndarray) -> str:
    """``classes[index]`` into output 0."""
    from baton.converters._sklearn_own._base import label_from_index

    return label_from_index(e, index, np.asarray(classes), e.output(0))


def check_classes(model: Any) -> None:
    """Refuse class labels an int64 or string label cannot carry exactly."""
    classes = np.asarray(model.classes_)
    if classes.ndim != 1:
        refuse(model, "it predicts several outputs at once (2-D y)",
               expected="one target column", found=f"classes_ of shape {classes.shape}",
               hint="fit one estimator per target column and convert each")
    ok = classes.dtype.kind in "iuUOS" or (
        classes.dtype.kind == "f" and np.all(np.isfinite(classes))
        and np.all(classes == np.round(classes)))
    if not ok:
        refuse(model, "its class labels are neither integers nor strings",
               expected="integer or string class labels",
               found=f"classes {classes[:5].tolist()} ({classes.dtype})",
               hint="encode the labels as integers or strings (e.g. LabelEncoder) and refit")


def refuse(model: Any, why: str, *, expected: str, found: str, hint: str) -> None:
    raise UnsupportedModelError(
        f"baton cannot convert {type(model).__name__} exactly: {why} ({hint})",
        expected=expected, found=found, hint=hint)


def heap_argmin(e: Emit, values: str, k: int) -> str:
    """The column scikit-learn's ``ArgKmin`` (k=1) keeps for each row of ``values`` [N, k]:
    column j replaces the kept one unless ``values[j] >= kept`` (``heap_push``), starting
    from +inf, so the first minimum wins, and NaN and infinities fall as they do there."""
    from onnx import TensorProto

    kept, index = e.const(np.inf), ""
    for j in range(k):
        v = e.op("Gather", values, e.const(j, np.int64), axis=1)
        take = e.op("Not", e.op("GreaterOrEqual", v, kept))
        kept = e.op("Where", take, v, kept)
        if j == 0:  # column 0 whether or not it was taken (the heap starts at index 0)
            index = e.op("Mul", e.op("Cast", take, to=TensorProto.INT64), e.const(0, np.int64))
        else:
            index = e.op("Where", take, e.const(j, np.int64), index)
    return index
