"""Clusterers and outlier detectors, computed as scikit-learn 1.9 computes them.

* ``OneClassSVM``: libsvm's one-class decision ``sum_i dual_coef_i K(sv_i, x) + _intercept_``
  (``svm_predict_values``) for the linear, rbf, poly (libsvm's ``powi``, by squaring),
  sigmoid and precomputed kernels, always in float64 (scikit-learn hands libsvm float64);
  label 1 where the decision is > 0, else -1.
* ``EllipticEnvelope``: ``-(mahalanobis)**2 - offset_`` with scipy's mahalanobis
  ``sqrt((x - location_) · precision · (x - location_))`` in float64; label 1 where the
  decision is >= 0, else -1.
* ``MeanShift``, ``AffinityPropagation``: ``pairwise_distances_argmin`` to
  ``cluster_centers_`` as its ArgKmin backend computes it (float64, ``max(0, |x|² - 2 x·c +
  |c|²)``, the first centre on ties); an AffinityPropagation without centres (it did not
  converge) labels every row -1, as its ``predict`` does.
* ``Birch``: ``subcluster_labels_`` of the ArgKmin-nearest subcluster (with the fitted
  ``_subcluster_norms`` as ``|c|²``); ``transform``: ``euclidean_distances``.
* ``BisectingKMeans``: ``_predict_recursive`` down ``_bisecting_tree``, each split decided
  as k-means' Lloyd step decides it (``|c|² - 2 x·c`` in the data's precision, the right
  child only when strictly nearer); ``transform``: ``euclidean_distances``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit, Own, labelled_shape
from baton.errors import UnsupportedModelError

#: OneClassSVM's rbf kernel is formed as libsvm does (``sum (x - sv)²``) while the
#: [N, n_SV, n_features] difference stays below this many values per row; above it, as
#: ``|x|² + |sv|² - 2 x·sv`` (the last digits may differ from libsvm's)
RBF_DIRECT_LIMIT = 20_000


# -- shared pieces --------------------------------------------------------------------------

def _x64(e: Emit) -> str:
    """The input in float64 (scikit-learn computes these in float64 for float32 data)."""
    if e.dtype == np.float64:
        return e.x
    from onnx import TensorProto

    return e.op("Cast", e.x, to=TensorProto.DOUBLE)


def _to_output(e: Emit, value: str, out: str) -> str:
    """``value`` (float64) into the output ``out`` in the operator's precision."""
    if e.dtype == np.float64:
        return e.op("Identity", value, out=out)
    from onnx import TensorProto

    return e.op("Cast", value, out=out, to=TensorProto.FLOAT)


def _row_sq_norms(e: Emit, x: str) -> str:
    """``|x|²`` per row, [N, 1]."""
    return e.op("ReduceSum", e.op("Mul", x, x), e.const([1], np.int64), keepdims=1)


def _blas_sq_norms(c: np.ndarray) -> np.ndarray:
    """``|c|²`` per row as ArgKmin's ``_sqeuclidean_row_norms64`` forms it (BLAS ddot)."""
    from scipy.linalg.blas import ddot

    c = np.ascontiguousarray(c, dtype=np.float64)
    return np.array([ddot(row, row) for row in c], dtype=np.float64)


def _argkmin(e: Emit, centres: np.ndarray, norms: np.ndarray | None = None) -> str:
    """The index [N] of the nearest centre as scikit-learn's ArgKmin (k=1, euclidean)
    finds it: float64 ``max(0, (|x|² + -2 x·c) + |c|²)``, the first of equal ones."""
    c = np.asarray(centres, dtype=np.float64)
    yy = _blas_sq_norms(c) if norms is None else np.asarray(norms, dtype=np.float64)
    x = _x64(e)
    mid = e.op("MatMul", x, e.const((-2.0 * c).T, np.float64))
    d = e.op("Add", e.op("Add", _row_sq_norms(e, x), mid), e.const(yy[None, :], np.float64))
    zero = e.const(0.0, np.float64)
    d = e.op("Where", e.op("Greater", d, zero), d, zero)  # Cython's max(0., d): NaN -> 0
    return e.op("ArgMin", d, axis=1, keepdims=0, select_last_index=0)


def _euclidean(e: Emit, centres: np.ndarray, out: str) -> str:
    """``euclidean_distances(X, centres)`` into ``out``: ``(-2 x·c + |x|²) + |c|²`` in
    float64, clipped at 0 and square-rooted; when both the data and the centres are float32,
    the float64 sum is rounded to float32 before the clip and root (its upcast path)."""
    from onnx import TensorProto
    from sklearn.utils.extmath import row_norms

    c = np.asarray(centres)
    both32 = e.dtype == np.float32 and c.dtype == np.float32
    c64 = c.astype(np.float64)
    x = _x64(e)
    d = e.op("Add", e.op("Add", e.op("MatMul", x, e.const((-2.0 * c64).T, np.float64)),
                         _row_sq_norms(e, x)),
             e.const(row_norms(c64, squared=True)[None, :], np.float64))
    dtype: Any = np.float64
    if both32:
        d, dtype = e.op("Cast", d, to=TensorProto.FLOAT), np.float32
    zero = e.const(0.0, dtype)
    d = e.op("Sqrt", e.op("Where", e.op("Less", d, zero), zero, d))  # np.maximum keeps NaN
    return e.op("Identity", d, out=out) if both32 else _to_output(e, d, out)


def _gather(e: Emit, table: Any, index: str, out: str) -> str:
    return e.op("Gather", e.const(np.asarray(table, dtype=np.int64), np.int64), index,
                out=out, axis=0)


def _same_for_every_row(e: Emit, value: int, out: str) -> str:
    row = e.per_row(np.array([value], dtype=np.int64))
    return e.op("Reshape", row, e.const([-1], np.int64), out=out)


def _label_only_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """One output, the label: baton's kinds for a clusterer without ``transform``
    (skl2onnx's default parser gives every ClusterMixin a label and scores)."""
    from skl2onnx._parse import _get_sklearn_operator_name
    from skl2onnx.common.data_types import Int64TensorType

    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    return operator.outputs


def _refuse(model: Any, why: str, expected: str, hint: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"baton cannot convert {type(model).__name__}: {why}",
                                 expected=expected, found=f"{type(model).__name__}", hint=hint)


# -- nearest centre -------------------------------------------------------------------------

def _nearest_centre(scope: Any, operator: Any, container: Any) -> None:
    """MeanShift, AffinityPropagation: ``pairwise_distances_argmin(X, cluster_centers_)``."""
    e = Emit(scope, operator, container)
    centres = getattr(e.model, "cluster_centers_", None)
    if centres is None:
        raise _refuse(
            e.model, "it was fitted on a precomputed affinity and cannot predict new rows",
            expected="AffinityPropagation(affinity='euclidean')",
            hint="fit AffinityPropagation with affinity='euclidean' on the feature rows, or "
            "fit a classifier on its labels_ and convert that")
    centres = np.asarray(centres)
    if centres.shape[0] == 0:  # did not converge: predict labels every row -1
        _same_for_every_row(e, -1, e.output(0))
        return
    e.op("Identity", _argkmin(e, centres), out=e.output(0))


def _birch(scope: Any, operator: Any, container: Any) -> None:
    """Birch: ``subcluster_labels_[argmin]`` (ArgKmin with ``_subcluster_norms``) and
    ``transform`` (``euclidean_distances`` to ``subcluster_centers_``)."""
    e = Emit(scope, operator, container)
    m = e.model
    index = _argkmin(e, m.subcluster_centers_, m._subcluster_norms)
    _gather(e, m.subcluster_labels_, index, e.output(0))
    if len(operator.outputs) > 1:
        _euclidean(e, m.subcluster_centers_, e.output(1))


def _bisecting_kmeans(scope: Any, operator: Any, container: Any) -> None:
    """BisectingKMeans: the leaf ``_predict_recursive`` reaches. Every split's two
    distances ``|c|² + -2 x·c`` (Lloyd's ``_update_chunk_dense``) are computed for every row;
    a row goes right where the right child is strictly nearer; the leaf is the one whose
    path has no mismatching turn (``turns @ W + b == 0``, small integers)."""
    from sklearn.utils.extmath import row_norms

    e = Emit(scope, operator, container)
    m = e.model
    mean = getattr(m, "_X_mean", None)
    splits: list[Any] = []
    leaves: list[tuple[int, list[tuple[int, int]]]] = []  # (label, [(split, went right)])

    def walk(node: Any, path: list[tuple[int, int]]) -> None:
        if node.left is None:
            leaves.append((int(node.label), path))
            return
        k = len(splits)
        splits.append(node)
        walk(node.left, [*path, (k, 0)])
        walk(node.right, [*path, (k, 1)])

    walk(m._bisecting_tree, [])
    if not splits:
        _same_for_every_row(e, leaves[0][0], e.output(0))
    else:
        pairs = []
        for node in splits:
            centers = np.vstack((node.left.center, node.right.center))
            if mean is not None:
                centers += mean
            pairs.append(centers)
        lefts = np.stack([p[0] for p in pairs])
        rights = np.stack([p[1] for p in pairs])
        both = np.vstack([lefts, rights]).astype(e.dtype)
        norms = np.concatenate([row_norms(p, squared=True) for p in pairs])  # l0 r0 l1 r1 ..
        norms = np.concatenate([norms[0::2], norms[1::2]]).astype(e.dtype)
        d = e.op("Add", e.op("MatMul", e.x, e.const((-2 * both).T)), e.const(norms[None, :]))
        k = len(splits)
        cols = e.const([0], np.int64), e.const([k], np.int64), e.const([2 * k], np.int64)
        one = e.const([1], np.int64)
        d_left = e.op("Slice", d, cols[0], cols[1], one)
        d_right = e.op("Slice", d, cols[1], cols[2], one)
        from onnx import helper

        right = e.op("Cast", e.op("Less", d_right, d_left),
                     to=helper.np_dtype_to_tensor_dtype(np.dtype(e.dtype)))
        w = np.zeros((k, len(leaves)))
        b = np.zeros(len(leaves))
        for j, (_, path) in enumerate(leaves):
            for split, went_right in path:
                w[split, j] = -1.0 if went_right else 1.0
                b[j] += went_right
        mismatch = e.op("Add", e.matmul(right, w), e.const(b[None, :]))
        leaf = e.op("ArgMin", mismatch, axis=1, keepdims=0)
        _gather(e, [label for label, _ in leaves], leaf, e.output(0))
    if len(operator.outputs) > 1:
        _euclidean(e, m.cluster_centers_, e.output(1))


# -- outlier detectors ----------------------------------------------------------------------

def _outlier_outputs(e: Emit, decision: str, inlier_at_zero: bool) -> None:
    """label (1 inlier, -1 outlier) from the float64 decision; scores = the decision."""
    zero = e.const(0.0, np.float64)
    inlier = e.op("GreaterOrEqual" if inlier_at_zero else "Greater", decision, zero)
    e.op("Where", inlier, e.const(1, np.int64), e.const(-1, np.int64), out=e.output(0))
    if len(e.operator.outputs) > 1:
        _to_output(e, decision, e.output(1))


def _powi(e: Emit, base: str, times: int) -> str:
    """libsvm's ``powi``: ``base**times`` by repeated squaring, in its order."""
    ret: str | None = None
    tmp = base
    t = times
    while t > 0:
        if t % 2 == 1:
            ret = tmp if ret is None else e.op("Mul", ret, tmp)
        t //= 2
        if t > 0:
            tmp = e.op("Mul", tmp, tmp)
    if ret is None:  # degree 0: libsvm's 1.0, whatever the base
        return e.op("Expand", e.const(1.0, np.float64), e.op("Shape", base))
    return ret


def _one_class_svm(scope: Any, operator: Any, container: Any) -> None:
    """OneClassSVM: libsvm's ``Kernel::k_function`` against every support vector, then
    ``sum_i coef_i K_i - rho`` (``_intercept_`` = -rho), in float64."""
    e = Emit(scope, operator, container)
    m = e.model
    kernel = m.kernel
    if callable(kernel):
        raise _refuse(m, "its kernel is a Python callable, which an ONNX graph cannot run",
                      expected="kernel='rbf', 'linear', 'poly', 'sigmoid' or 'precomputed'",
                      hint="refit with a named kernel, or precompute the kernel matrix and fit "
                      "with kernel='precomputed' (the graph then takes that matrix)")
    f64 = np.float64
    x = _x64(e)
    coef = np.asarray(m._dual_coef_.toarray() if hasattr(m._dual_coef_, "toarray")
                      else m._dual_coef_, dtype=f64).reshape(-1, 1)
    if kernel == "precomputed":
        k = e.op("Gather", x, e.const(np.asarray(m.support_, dtype=np.int64), np.int64), axis=1)
    else:
        sv = m.support_vectors_
        sv = np.asarray(sv.toarray() if hasattr(sv, "toarray") else sv, dtype=f64)
        gamma, coef0 = float(m._gamma), float(m.coef0)
        if kernel == "rbf":
            if sv.size <= RBF_DIRECT_LIMIT:
                diff = e.op("Sub", e.op("Unsqueeze", x, e.const([1], np.int64)),
                            e.const(sv[None, :, :], f64))
                sq = e.op("ReduceSum", e.op("Mul", diff, diff), e.const([2], np.int64),
                          keepdims=0)
            else:
                sq = e.op("Add", e.op("Add", _row_sq_norms(e, x),
                                      e.const((sv * sv).sum(axis=1)[None, :], f64)),
                          e.op("MatMul", x, e.const((-2.0 * sv).T, f64)))
                zero = e.const(0.0, f64)
                sq = e.op("Where", e.op("Less", sq, zero), zero, sq)
            k = e.op("Exp", e.op("Mul", e.const(-gamma, f64), sq))
        else:
            dot = e.op("MatMul", x, e.const(sv.T, f64))
            if kernel == "linear":
                k = dot
            else:
                base = e.op("Add", e.op("Mul", e.const(gamma, f64), dot), e.const(coef0, f64))
                k = e.op("Tanh", base) if kernel == "sigmoid" else _powi(e, base, int(m.degree))
    total = e.op("MatMul", k, e.const(coef, f64))
    intercept = e.const(np.asarray(m._intercept_, dtype=f64)[:1], f64)
    decision = e.op("Reshape", e.op("Add", total, intercept), e.const([-1], np.int64))
    _outlier_outputs(e, decision, inlier_at_zero=False)


def _elliptic_envelope(scope: Any, operator: Any, container: Any) -> None:
    """EllipticEnvelope: ``-(mahalanobis) - offset_``, scipy's mahalanobis
    (``d = x - location_``, ``sqrt(d · (precision d))``) squared, in float64."""
    e = Emit(scope, operator, container)
    m = e.model
    f64 = np.float64
    precision = np.asarray(m.get_precision(), dtype=f64)
    location = np.asarray(m.location_, dtype=f64)
    d = e.op("Sub", _x64(e), e.const(location[None, :], f64))
    s = e.op("ReduceSum", e.op("Mul", d, e.op("MatMul", d, e.const(precision.T, f64))),
             e.const([1], np.int64), keepdims=0)
    dist = e.op("Sqrt", s)
    decision = e.op("Sub", e.op("Neg", e.op("Mul", dist, dist)),
                    e.const(float(m.offset_), f64))
    _outlier_outputs(e, decision, inlier_at_zero=True)


def _no_scores(model: Any) -> int:
    return 0


CONVERTERS = [
    Own("sklearn.svm.OneClassSVM", labelled_shape(_no_scores), _one_class_svm,
        note="libsvm's one-class decision in float64 (linear, rbf, poly, sigmoid, "
        "precomputed kernels); label 1 where it is > 0"),
    Own("sklearn.covariance.EllipticEnvelope", labelled_shape(_no_scores), _elliptic_envelope,
        note="-(squared mahalanobis) - offset_ in float64; label 1 where it is >= 0"),
    Own("sklearn.cluster.MeanShift", labelled_shape(_no_scores), _nearest_centre,
        parser=_label_only_parser, note="the nearest cluster centre (first on ties)"),
    Own("sklearn.cluster.AffinityPropagation", labelled_shape(_no_scores), _nearest_centre,
        parser=_label_only_parser,
        note="the nearest cluster centre (first on ties); -1 without centres"),
    Own("sklearn.cluster.Birch", labelled_shape(lambda m: len(m.subcluster_centers_)), _birch,
        note="the nearest subcluster's label; distances to the subcluster centres"),
    Own("sklearn.cluster.BisectingKMeans", labelled_shape(lambda m: len(m.cluster_centers_)),
        _bisecting_kmeans,
        note="the leaf reached down the bisecting tree; distances to the cluster centres"),
]
