"""Classifiers and regressors skl2onnx has no converter for (or an inexact one), computed in
float64 as scikit-learn 1.9 computes them (a float32 input is cast up, as scikit-learn does
against its float64 fitted arrays; outputs are cast to the declared type).

* ``DummyClassifier`` (``prior``, ``most_frequent``, ``constant``): the fitted constant
  label and probabilities on every row (``sklearn/dummy.py``).
* ``NearestCentroid``: ``predict`` (argmin distance to ``centroids_``, or the discriminant
  scores with priors) and, for the euclidean metric, ``predict_proba`` = exp of the log-
  softmax of ``_decision_function`` (``sklearn/neighbors/_nearest_centroid.py``).
* ``LinearDiscriminantAnalysis``: ``X @ coef_.T + intercept_``; expit (binary) or softmax
  (``sklearn/discriminant_analysis.py``).
* ``KernelRidge``: ``pairwise_kernels(X, X_fit_) @ dual_coef_`` for the linear, poly,
  rbf, laplacian, sigmoid and cosine kernels (``sklearn/metrics/pairwise.py``).
* ``LabelPropagation``/``LabelSpreading``: normalised ``kernel @ label_distributions_``
  (rbf: a row whose weights all underflow gives NaN, and label ``classes_[0]``, as in
  scikit-learn; knn: the ``n_neighbors`` nearest fitted points).
* ``RadiusNeighborsClassifier``/``RadiusNeighborsRegressor``: votes (or mean) of the fitted
  points within ``radius`` (uniform or distance weights).
* ``GaussianProcessClassifier``: see ``_gaussian_process``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own import _classifier_ops as g
from baton.converters._sklearn_own import _gaussian_process as gp
from baton.converters._sklearn_own._base import (
    CLASSIFIER_OPTIONS,
    Own,
    labelled_shape,
    n_classes,
    transformer_shape,
)

_FLOAT, _INT64, _DOUBLE = 1, 7, 11  # onnx.TensorProto's FLOAT, INT64, DOUBLE


def _float32(operator: Any) -> bool:
    return type(operator.inputs[0].type).__name__ == "FloatTensorType"


def _index_per_row(e: Any, index: int) -> str:
    rows = e.per_row(np.asarray([index], dtype=np.int64))
    return e.op("Reshape", rows, e.const([-1], np.int64))


# -- DummyClassifier -----------------------------------------------------------------------

def _dummy_classifier(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    g.check_classes(m)
    strategy = m._strategy
    if strategy in ("stratified", "uniform") or m.n_outputs_ != 1 or m.sparse_output_:
        g.refuse(m, f"strategy={strategy!r} draws a random label for every call"
                 if strategy in ("stratified", "uniform") else "it has several outputs",
                 expected="strategy 'prior', 'most_frequent' or 'constant', one output",
                 found=f"strategy={strategy!r}, n_outputs_={m.n_outputs_}",
                 hint="refit with strategy='prior' (same probabilities, the most frequent "
                 "label) or 'most_frequent'; a random baseline cannot be reproduced")
    prior = np.asarray(m.class_prior_, dtype=np.float64)
    classes = np.asarray(m.classes_)
    if strategy == "constant":
        index = int(np.flatnonzero(classes == m.constant)[0])
    else:
        index = int(prior.argmax())
    proba = prior if strategy == "prior" else np.eye(len(classes))[index]
    g.label(e, _index_per_row(e, index), classes)
    g.finish(e, e.per_row(proba), 1)


# -- NearestCentroid -----------------------------------------------------------------------

def _nc_distances(e: Any, x: str, centres: np.ndarray, metric: str) -> str:
    """pairwise_distances(x, centres): euclidean via ``euclidean_distances`` (sqrt of the
    clipped GEMM form), manhattan via ``cdist`` (cityblock)."""
    if metric == "manhattan":
        return g.pair_reduce(e, x, centres, "abs")
    return e.op("Sqrt", g.euclidean_sq(e, x, centres))


def _nearest_centroid(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    g.check_classes(m)
    prior = np.asarray(m.class_prior_, dtype=np.float64)
    centres = np.asarray(m.centroids_, dtype=np.float64)
    uniform = bool(np.isclose(prior, 1 / len(m.classes_)).all())
    scores = ""
    if len(operator.outputs) > 1 or not uniform:  # _decision_function
        std = np.asarray(m.within_class_std_dev_, dtype=np.float64)
        std = np.where(std != 0, std, 1.0)
        xn = e.op("Div", e.x, e.const(std[None, :]))
        d = _nc_distances(e, xn, centres / std, m.metric)
        with np.errstate(divide="ignore"):
            log_prior = 2.0 * np.log(prior)
        scores = e.op("Sub", e.const(log_prior[None, :]), e.op("Mul", d, d))
    if uniform:  # pairwise_distances_argmin(X, centroids_)
        if m.metric == "manhattan":
            d = g.pair_reduce(e, e.x, centres, "abs")
        else:
            d = g.euclidean_sq(e, e.x, centres, nan_to_zero=True)
        g.label(e, g.heap_argmin(e, d, len(centres)), m.classes_)
    else:
        g.label(e, g.argmax(e, scores), m.classes_)
    if len(operator.outputs) > 1:  # predict_proba: exp(s - max - log(sum(exp(s - max))))
        one = e.const([1], np.int64)
        ll = e.op("Sub", scores, e.op("ReduceMax", scores, one, keepdims=1))
        lse = e.op("Log", e.op("ReduceSum", e.op("Exp", ll), one, keepdims=1))
        g.finish(e, e.op("Exp", e.op("Sub", ll, lse)), 1)


def _label_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """The default classifier outputs where the model has ``predict_proba``, else the label
    alone (NearestCentroid with the manhattan metric)."""
    from skl2onnx._parse import _get_sklearn_operator_name, _parse_sklearn_classifier
    from skl2onnx.common.data_types import Int64TensorType

    if hasattr(model, "predict_proba"):
        return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)
    op = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    op.inputs = inputs
    op.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    return op.outputs


# -- LinearDiscriminantAnalysis ------------------------------------------------------------

def _lda(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    g.check_classes(m)
    coef = np.asarray(m.coef_, dtype=np.float64)
    scores = e.op("Add", e.matmul(e.x, coef.T),
                  e.const(np.asarray(m.intercept_, dtype=np.float64)[None, :]))
    if len(m.classes_) == 2:
        positive = e.op("Greater", scores, e.const(0.0))
        index = e.op("Reshape", e.op("Cast", positive, to=_INT64), e.const([-1], np.int64))
        g.label(e, index, m.classes_)
        p = e.op("Sigmoid", scores)
        proba = e.op("Concat", e.op("Sub", e.const(1.0), p), p, axis=1)
    else:
        g.label(e, g.argmax(e, scores), m.classes_)
        proba = g.softmax(e, scores)
    g.finish(e, proba, 1)


# -- KernelRidge ---------------------------------------------------------------------------

_KERNELS = ("linear", "poly", "polynomial", "rbf", "laplacian", "sigmoid", "cosine")


def _normalise_rows(e: Any, x: str) -> str:
    """sklearn.preprocessing.normalize: x / ||x|| (a zero row stays zero)."""
    norm = e.op("Sqrt", g.sq_norms(e, x))
    norm = e.op("Where", e.op("Equal", norm, e.const(0.0)), e.const(1.0), norm)
    return e.op("Div", x, norm)


def _pairwise_kernel(e: Any, m: Any, x: str, fit: np.ndarray) -> str:
    """``pairwise_kernels(x, fit, metric=m.kernel, gamma, degree, coef0)``."""
    kernel = m.kernel
    gamma = m.gamma if m.gamma is not None else 1.0 / fit.shape[1]
    if kernel == "rbf":
        return e.op("Exp", e.op("Mul", g.euclidean_sq(e, x, fit), e.const(-gamma)))
    if kernel == "laplacian":
        return e.op("Exp", e.op("Mul", g.pair_reduce(e, x, fit, "abs"), e.const(-gamma)))
    if kernel == "cosine":
        norms = np.sqrt((fit * fit).sum(axis=1))
        fit_n = fit / np.where(norms == 0, 1.0, norms)[:, None]
        return e.matmul(_normalise_rows(e, x), fit_n.T)
    k = e.matmul(x, fit.T)
    if kernel == "linear":
        return k
    k = e.op("Add", e.op("Mul", k, e.const(gamma)), e.const(m.coef0))
    if kernel == "sigmoid":
        return e.op("Tanh", k)
    return e.op("Pow", k, e.const(m.degree))


def _kernel_ridge(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    if not isinstance(m.kernel, str) or m.kernel not in _KERNELS:
        g.refuse(m, f"kernel {m.kernel!r} is not one baton writes as a graph",
                 expected="kernel " + ", ".join(map(repr, _KERNELS)),
                 found=f"kernel={m.kernel!r}",
                 hint="refit with one of these kernels (a precomputed or callable kernel "
                 "is computed outside the model and cannot be exported)")
    fit = np.asarray(m.X_fit_, dtype=np.float64)
    dual = np.asarray(m.dual_coef_, dtype=np.float64)
    pred = e.matmul(_pairwise_kernel(e, m, e.x, fit), dual.reshape(len(fit), -1))
    g.finish(e, pred, 0)


def _n_targets(model: Any) -> int:
    coef = np.asarray(getattr(model, "dual_coef_", getattr(model, "_y", [0])))
    return 1 if coef.ndim < 2 else coef.shape[1]


# -- LabelPropagation / LabelSpreading -----------------------------------------------------

def _label_propagation(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    g.check_classes(m)
    fit = np.asarray(m.X_, dtype=np.float64)
    dist = np.asarray(m.label_distributions_, dtype=np.float64)
    if m.kernel == "rbf":  # rbf_kernel(X_, X).T @ label_distributions_
        d = g.euclidean_sq(e, e.x, fit, queries_first=False)
        if _float32(operator) and m.X_.dtype == np.float32:
            # float32 on both sides: scikit-learn forms the distances in float64, stores
            # them in float32 and takes exp there (where a row's weights underflow sooner)
            d = e.op("Cast", d, to=_FLOAT)
            w = e.op("Exp", e.op("Mul", d, e.const(-m.gamma, np.float32)))
            w = e.op("Cast", w, to=_DOUBLE)
        else:
            w = e.op("Exp", e.op("Mul", d, e.const(-m.gamma)))
        votes = e.matmul(w, dist)
    elif m.kernel == "knn":  # sum of label_distributions_ over the n_neighbors nearest
        d = g.pair_reduce(e, e.x, fit, "sq")
        names = [e.scope.get_unique_variable_name(n) for n in ("baton_topv", "baton_topi")]
        e.op("TopK", d, e.const([m.n_neighbors], np.int64), axis=1, largest=0, sorted=1,
             out=names)
        votes = e.op("ReduceSum", e.op("Gather", e.const(dist), names[1], axis=0),
                     e.const([1], np.int64), keepdims=0)
    else:
        g.refuse(m, "its kernel is a callable", expected="kernel 'rbf' or 'knn'",
                 found=f"kernel={m.kernel!r}", hint="refit with kernel='rbf' or 'knn'")
    proba = g.rows_normalised(e, votes)
    g.label(e, g.argmax(e, proba), m.classes_)
    g.finish(e, proba, 1)


# -- RadiusNeighborsClassifier / RadiusNeighborsRegressor ----------------------------------

_ALIASES = {"l2": "euclidean", "cityblock": "manhattan", "l1": "manhattan",
            "infinity": "chebyshev"}


def _radius_weights(e: Any, m: Any) -> str:
    """Weights [N, M] of the fitted points within ``radius`` (0 elsewhere): 1 (uniform) or
    1/distance, where a row with a point at distance 0 (1/d infinite) weighs those points
    1 and the others 0 (``_get_weights``). Points are in the radius where the tree's
    reduced distance is <= the reduced radius (``query_radius``)."""
    metric = _ALIASES.get(m.effective_metric_, m.effective_metric_)
    params = dict(m.effective_metric_params_ or {})
    p = params.pop("p", 2 if metric == "euclidean" else 1)
    if params.get("w", 0) is None:
        params.pop("w")
    if metric == "minkowski" and p == 2:
        metric = "euclidean"
    if metric == "minkowski" and p == 1:
        metric = "manhattan"
    if (metric not in ("euclidean", "manhattan", "chebyshev", "minkowski") or params
            or not (isinstance(m.weights, str) or m.weights is None)
            or m.weights not in (None, "uniform", "distance")):
        g.refuse(m, "its metric or weights are not ones baton writes as a graph",
                 expected="metric euclidean, manhattan, chebyshev or minkowski (any p, "
                 "no 'w'); weights 'uniform' or 'distance'",
                 found=f"metric={m.metric!r}, metric_params={m.metric_params!r}, "
                 f"weights={m.weights!r}",
                 hint="refit with a supported metric and weights='uniform' or 'distance'")
    fit = np.asarray(m._fit_X, dtype=np.float64)
    if metric == "euclidean":
        rdist, limit = g.pair_reduce(e, e.x, fit, "sq"), m.radius * m.radius
    elif metric == "minkowski":
        d = e.op("Abs", g.diffs(e, e.x, fit))
        rdist = e.op("ReduceSum", e.op("Pow", d, e.const(float(p))),
                     e.const([2], np.int64), keepdims=0)
        limit = m.radius ** p
    else:
        rdist = g.pair_reduce(e, e.x, fit, "abs" if metric == "manhattan" else "max")
        limit = m.radius
    inside = e.op("LessOrEqual", rdist, e.const(limit))
    ones = e.op("Cast", inside, to=_DOUBLE)  # DOUBLE
    if m.weights in (None, "uniform"):
        return ones
    dist = (e.op("Sqrt", rdist) if metric == "euclidean" else
            e.op("Pow", rdist, e.const(1.0 / p)) if metric == "minkowski" else rdist)
    inv = e.op("Div", e.const(1.0), dist)
    at_zero = e.op("And", inside, e.op("IsInf", inv))
    zeros = e.op("Cast", at_zero, to=_DOUBLE)
    any_zero = e.op("Greater", e.op("ReduceMax", zeros, e.const([1], np.int64), keepdims=1),
                    e.const(0.0))
    return e.op("Where", any_zero, zeros, e.op("Where", inside, inv, e.const(0.0)))


def _radius_regressor(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    w = _radius_weights(e, m)
    y = np.asarray(m._y, dtype=np.float64)
    total = e.op("ReduceSum", w, e.const([1], np.int64), keepdims=1)
    g.finish(e, e.op("Div", e.matmul(w, y.reshape(len(y), -1)), total), 0)


def _radius_classifier(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    if m.outputs_2d_:
        g.refuse(m, "it predicts several outputs at once (2-D y)",
                 expected="one target column", found="outputs_2d_=True",
                 hint="fit one estimator per target column and convert each")
    g.check_classes(m)
    w = _radius_weights(e, m)
    classes = np.asarray(m.classes_)
    votes = e.matmul(w, np.eye(len(classes))[np.asarray(m._y).ravel()])
    outlier = m.outlier_label_[0] if m.outlier_label_ is not None else None
    if outlier is None:  # scikit-learn raises on a row without neighbours: NaN here
        proba = g.rows_normalised(e, votes)
        g.label(e, g.argmax(e, proba), classes)
        g.finish(e, proba, 1)
        return
    one = e.const([1], np.int64)
    alone = e.op("Equal", e.op("ReduceSum", w, one, keepdims=1), e.const(0.0))
    onehot = (classes == outlier).astype(np.float64)[None, :]
    votes = e.op("Where", alone, e.const(onehot), votes)
    total = e.op("ReduceSum", votes, one, keepdims=1)
    total = e.op("Where", e.op("Equal", total, e.const(0.0)), e.const(1.0), total)
    proba = e.op("Div", votes, total)
    none = e.op("Equal", e.op("ReduceMax", proba, one, keepdims=0), e.const(0.0))
    index = e.op("Where", none, e.const(len(classes), np.int64), g.argmax(e, proba))
    g.label(e, index, np.append(classes, np.asarray([outlier]).astype(classes.dtype)))
    g.finish(e, proba, 1)


_CLS = labelled_shape(n_classes)

CONVERTERS = [
    Own("sklearn.dummy.DummyClassifier", _CLS, _dummy_classifier, options=CLASSIFIER_OPTIONS,
        note="the fitted label and class probabilities on every row (prior, most_frequent, "
        "constant)"),
    Own("sklearn.neighbors.NearestCentroid", _CLS, _nearest_centroid, parser=_label_parser,
        options=CLASSIFIER_OPTIONS,
        note="nearest centroid; probabilities from the discriminant scores (euclidean)"),
    Own("sklearn.discriminant_analysis.LinearDiscriminantAnalysis", _CLS, _lda,
        options=CLASSIFIER_OPTIONS, note="X @ coef_.T + intercept_, expit or softmax"),
    Own("sklearn.kernel_ridge.KernelRidge", transformer_shape(_n_targets), _kernel_ridge,
        note="pairwise kernel to X_fit_ @ dual_coef_"),
    Own("sklearn.semi_supervised.LabelPropagation", _CLS, _label_propagation,
        options=CLASSIFIER_OPTIONS, note="normalised kernel @ label_distributions_"),
    Own("sklearn.semi_supervised.LabelSpreading", _CLS, _label_propagation,
        options=CLASSIFIER_OPTIONS, note="normalised kernel @ label_distributions_"),
    Own("sklearn.neighbors.RadiusNeighborsClassifier", _CLS, _radius_classifier,
        options=CLASSIFIER_OPTIONS, note="weighted votes of the fitted points in the radius"),
    Own("sklearn.neighbors.RadiusNeighborsRegressor", transformer_shape(_n_targets),
        _radius_regressor, note="weighted mean of the fitted points in the radius (NaN "
        "without one)"),
    *gp.CONVERTERS,
]
