"""``RadiusNeighborsTransformer`` (part of ``encoders``): scikit-learn 1.9's
``radius_neighbors_graph`` of new rows against the fitted ones, densified (baton compares
the dense matrix): the distance (``mode="distance"``) or 1 (``"connectivity"``) where a
fitted point lies within ``radius``, 0 elsewhere.

Distances are formed as the estimator forms them: the neighbour trees (``kd_tree``,
``ball_tree``) and scipy sum the per-feature terms (``sum (x - y)^2``, ``sum |x - y|``,
``max |x - y|``, ``sum |x - y|^p``) and compare the reduced distance with the reduced
radius; brute force euclidean uses ``x·x - 2 x·y + y·y`` (clipped at 0). All in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Own

_ALIASES = {"l2": "euclidean", "cityblock": "manhattan", "l1": "manhattan",
            "infinity": "chebyshev"}


def _metric(m: Any) -> tuple[str, float]:
    """(euclidean | manhattan | chebyshev | minkowski, p), or a refusal."""
    from baton.converters._sklearn_own.encoders import _refuse

    metric = _ALIASES.get(m.effective_metric_, m.effective_metric_)
    params = dict(m.effective_metric_params_ or {})
    p = float(params.pop("p", 2))
    if params.get("w", 0) is None:
        params.pop("w")
    if metric == "minkowski" and p in (1.0, 2.0):
        metric = "euclidean" if p == 2 else "manhattan"
    if metric not in ("euclidean", "manhattan", "chebyshev", "minkowski") or params or (
            metric == "minkowski" and not np.isfinite(p)):
        raise _refuse(
            f"baton cannot convert RadiusNeighborsTransformer with metric={m.metric!r}: "
            "only euclidean, manhattan, chebyshev or minkowski (no weights)",
            expected="metric euclidean, manhattan, chebyshev or minkowski (any p, no 'w')",
            found=f"metric={m.metric!r}, metric_params={m.metric_params!r}",
            hint="refit with one of these metrics")
    return metric, p


def _shape(operator: Any) -> None:
    from baton.converters._sklearn_own.encoders import _float_type

    m = operator.raw_operator
    _metric(m)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator, [n, int(m.n_samples_fit_)])


def _radius_graph(scope: Any, operator: Any, container: Any) -> None:
    from baton.converters._sklearn_own.encoders import _emit, _matrix, axes_op

    e = _emit(scope, operator, container)
    out_dtype, e.dtype = e.dtype, np.float64
    m = e.model
    metric, p = _metric(m)
    x = _matrix(e, np.float64)
    fit = np.asarray(m._fit_X, dtype=np.float64)
    if metric == "euclidean" and m._fit_method == "brute":
        xx = axes_op(e, "ReduceSum", e.op("Mul", x, x), [1], keepdims=1)
        cc = e.const((fit * fit).sum(axis=1)[None, :])
        rdist = e.op("Add", e.op("Add", xx, e.matmul(x, (-2 * fit).T)), cc)
        rdist = e.op("Max", rdist, e.const(0.0))
    else:
        d = e.op("Sub", axes_op(e, "Unsqueeze", x, [1]), e.const(fit[None]))
        if metric == "euclidean":
            rdist = axes_op(e, "ReduceSum", e.op("Mul", d, d), [2], keepdims=0)
        elif metric == "manhattan":
            rdist = axes_op(e, "ReduceSum", e.op("Abs", d), [2], keepdims=0)
        elif metric == "chebyshev":
            rdist = axes_op(e, "ReduceMax", e.op("Abs", d), [2], keepdims=0)
        else:
            powers = e.op("Pow", e.op("Abs", d), e.const(p))
            rdist = axes_op(e, "ReduceSum", powers, [2], keepdims=0)
    radius = float(m.radius)
    limit = radius * radius if metric == "euclidean" else (
        radius ** p if metric == "minkowski" else radius)
    inside = e.op("LessOrEqual", rdist, e.const(limit))
    if m.mode == "connectivity":
        value = e.op("Cast", inside, to=11)
    else:
        dist = (e.op("Sqrt", rdist) if metric == "euclidean" else
                e.op("Pow", rdist, e.const(1.0 / p)) if metric == "minkowski" else rdist)
        value = e.op("Where", inside, dist, e.const(0.0))
    e.op("Cast", value, out=e.output(), to=1 if out_dtype == np.float32 else 11)


CONVERTERS = [
    Own("sklearn.neighbors.RadiusNeighborsTransformer", _shape, _radius_graph,
        note="the radius neighbours graph, densified: distance (or 1) within radius, else 0"),
]
