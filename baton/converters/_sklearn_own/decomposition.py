"""Decompositions, kernel approximations and embeddings skl2onnx has no converter for,
computed as scikit-learn 1.9 computes their ``transform`` (one output, ``transformed``).

* ``FactorAnalysis``: ``((X - mean_) @ Wpsi.T) @ cov_z`` with ``Wpsi = components_ /
  noise_variance_`` and ``cov_z = inv(I + Wpsi @ components_.T)`` (``_factor_analysis.py``).
* ``FastICA``: ``(X - mean_) @ components_.T`` (no centring when ``whiten=False``).
* ``SparsePCA``, ``MiniBatchSparsePCA``: the cholesky ridge regression of ``transform`` is
  linear in X: ``(X - mean_) @ M.T`` with ``M = solve(C C.T + ridge_alpha I, C)``.
* ``BernoulliRBM``: ``expit(X @ components_.T + intercept_hidden_)``.
* ``FeatureAgglomeration``: each cluster's columns pooled by ``np.mean`` (sum over the
  cluster's columns divided by its size, as ``np.bincount`` does), ``np.max`` or ``np.min``.
* ``RBFSampler``: ``cos(X @ random_weights_ + random_offset_) * sqrt(2 / n_components)``.
* ``SkewedChi2Sampler``: the same over ``log(X + skewedness)`` (scikit-learn rejects
  ``X <= -skewedness``; the graph gives NaN or -inf-derived values there).
* ``Nystroem``: ``pairwise_kernels(X, components_) @ normalization_.T`` for the ``rbf``,
  ``linear``, ``poly``, ``polynomial``, ``sigmoid``, ``laplacian`` and ``cosine`` kernels.
* ``PolynomialCountSketch``: the count sketches as matrix products, their discrete Fourier
  transforms (products with ``np.fft.fft(np.eye(n))``), the complex product over the
  degree and the real part of the inverse transform, as ``np.fft.fft``/``ifft`` do in
  ``kernel_approximation.py``.
* ``Isomap``: the k nearest training rows, the geodesic distances through them
  (``dist_matrix_``), then ``kernel_pca_.transform`` of ``-0.5 * G**2``.
* ``LocallyLinearEmbedding``, ``DictionaryLearning``, ``MiniBatchDictionaryLearning``:
  refused (their transform solves an optimisation per row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit, Own, ShapeFn, transformer_shape
from baton.errors import UnsupportedModelError

_I64 = np.int64


class _Wide(Emit):
    """An ``Emit`` that computes in float64 also for a float32 input, as scikit-learn does
    (its fitted attributes are float64 and numpy promotes): ``x`` is the input widened,
    ``out`` the name to write the result to and ``done`` narrows it to the declared output."""

    def __init__(self, scope: Any, operator: Any, container: Any) -> None:
        super().__init__(scope, operator, container)
        self.narrow = self.dtype == np.float32
        self.dtype = np.float64
        self._x = None

    @property
    def x(self) -> str:
        if self._x is None:
            first = self.operator.inputs[0]
            self._x = super().x if not self.narrow else self.to_float(first.full_name)
        return self._x

    @property
    def out(self) -> str | None:
        return None if self.narrow else self.output()

    def done(self, value: str) -> None:
        if self.narrow:
            from onnx import TensorProto

            self.op("Cast", value, to=TensorProto.FLOAT, out=self.output())


def _shape(n_out: Callable[[Any], int]) -> ShapeFn:
    """``transformer_shape``, but float64 for an integer input (scikit-learn's output is
    float64 there, and ``_Wide`` computes in float64)."""
    base = transformer_shape(n_out)

    def shape(operator: Any) -> None:
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        base(operator)
        if not isinstance(operator.inputs[0].type, (DoubleTensorType, FloatTensorType)):
            operator.outputs[0].type = DoubleTensorType(operator.outputs[0].type.shape)

    return shape


def _axes(e: Emit, *axes: int) -> str:
    return e.const(list(axes), _I64)


def _one_output_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """One float output (skl2onnx would declare a clusterer's label and scores)."""
    from skl2onnx._parse import _get_sklearn_operator_name
    from skl2onnx.common.data_types import guess_tensor_type

    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    variable = scope.declare_local_variable("variable", guess_tensor_type(inputs[0].type))
    operator.outputs.append(variable)
    return operator.outputs


def _refuse(model: Any, why: str, hint: str, expected: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"baton cannot convert {type(model).__name__}: {why}",
        expected=expected, found=f"{type(model).__name__}({_short_params(model)})", hint=hint)


def _short_params(model: Any) -> str:
    try:
        params = model.get_params(deep=False)
    except Exception:  # noqa: BLE001 - a user subclass may break get_params
        return ""
    keep = ("kernel", "pooling_func", "metric", "p", "n_neighbors", "radius", "whiten",
            "transform_algorithm")
    return ", ".join(f"{k}={params[k]!r}" for k in keep if k in params)


# -- linear projections ---------------------------------------------------------------------


def _factor_analysis(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    comp = np.asarray(m.components_, dtype=np.float64)
    wpsi = comp / m.noise_variance_
    cov_z = np.linalg.inv(np.eye(len(comp)) + wpsi @ comp.T)
    centred = e.op("Sub", e.x, e.const(m.mean_[None, :]))
    e.done(e.op("MatMul", e.matmul(centred, wpsi.T), e.const(cov_z), out=e.out))


#: above this condition number of the unmixing matrix, float64 rounding (about
#: ``cond * n_features * eps``) reaches the default tolerance's scale on unit-variance sources
_ICA_MAX_COND = 1e8


def _fast_ica(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    cond = float(np.linalg.cond(m.components_))
    if not cond < _ICA_MAX_COND:
        sv = np.linalg.svd(np.asarray(m.components_), compute_uv=False)
        rank = max(1, int(np.sum(sv < sv.min() * 1e8)))  # the directions not blown up
        raise _refuse(
            m, f"its unmixing matrix is singular (condition {cond:.0e}, training data of rank "
            f"{rank} < {m.components_.shape[1]}): scikit-learn's output is rounding noise; "
            f"fit FastICA(n_components={rank})",
            f"fit FastICA(n_components={rank}) (at most the rank of the centred training "
            "data, np.linalg.matrix_rank(X - X.mean(axis=0))), or drop the redundant columns",
            f"an unmixing matrix with condition number below {_ICA_MAX_COND:.0e}")
    x = e.x
    if m.whiten and e.narrow:  # scikit-learn centres a float32 input in float32
        raw = e.operator.inputs[0].full_name
        x = e.to_float(e.op("Sub", raw, e.const(m.mean_[None, :], np.float32)))
    elif m.whiten:
        x = e.op("Sub", x, e.const(m.mean_[None, :]))
    e.done(e.op("MatMul", x, e.const(np.asarray(m.components_).T), out=e.out))


def _sparse_pca(scope: Any, operator: Any, container: Any) -> None:
    from scipy import linalg

    e = _Wide(scope, operator, container)
    m = e.model
    comp = np.asarray(m.components_, dtype=np.float64)
    gram = comp @ comp.T
    gram.flat[:: len(comp) + 1] += m.ridge_alpha
    projection = linalg.solve(gram, comp, assume_a="pos")  # (n_components, n_features)
    centred = e.op("Sub", e.x, e.const(m.mean_[None, :]))
    e.done(e.op("MatMul", centred, e.const(projection.T), out=e.out))


def _rbm(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    p = e.op("Add", e.matmul(e.x, np.asarray(m.components_).T),
             e.const(m.intercept_hidden_[None, :]))
    e.done(e.op("Sigmoid", p, out=e.out))


def _feature_agglomeration(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    labels = np.asarray(m.labels_)
    clusters = np.unique(labels)
    if m.pooling_func is np.mean:
        pool = (labels[:, None] == np.arange(labels.max() + 1)[None, :]).astype(np.float64)
        size = np.bincount(labels).astype(np.float64)
        e.done(e.op("Div", e.matmul(e.x, pool), e.const(size[None, :]), out=e.out))
        return
    reduce = {np.max: "ReduceMax", np.amax: "ReduceMax", np.min: "ReduceMin",
              np.amin: "ReduceMin"}.get(m.pooling_func)
    if reduce is None:
        raise _refuse(
            m, f"its pooling_func {getattr(m.pooling_func, '__name__', m.pooling_func)!r} "
            "has no ONNX equivalent baton reproduces",
            "fit FeatureAgglomeration with pooling_func=np.mean (the default), np.max or np.min",
            "pooling_func np.mean, np.max or np.min")
    parts = []
    for c in clusters:
        cols = e.op("Gather", e.x, e.const(np.flatnonzero(labels == c), _I64), axis=1)
        parts.append(e.op(reduce, cols, _axes(e, 1), keepdims=1))
    e.done(e.op("Concat", *parts, out=e.out, axis=1))


def _n_clusters(model: Any) -> int:
    return len(np.unique(model.labels_))


# -- kernel approximations ------------------------------------------------------------------


def _random_fourier(e: _Wide, x: str, weights: np.ndarray, offset: np.ndarray,
                    scale: float) -> None:
    projection = e.op("Add", e.matmul(x, weights), e.const(np.asarray(offset)[None, :]))
    e.done(e.op("Mul", e.op("Cos", projection), e.const(scale), out=e.out))


def _rbf_sampler(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    _random_fourier(e, e.x, m.random_weights_, m.random_offset_, (2.0 / m.n_components) ** 0.5)


def _skewed_chi2(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    if e.narrow:  # scikit-learn adds and takes the log in float32, then widens
        raw = e.operator.inputs[0].full_name
        logged = e.to_float(e.op("Log", e.op("Add", raw, e.const(m.skewedness, np.float32))))
    else:
        logged = e.op("Log", e.op("Add", e.x, e.const(m.skewedness)))
    _random_fourier(e, logged, m.random_weights_, m.random_offset_,
                    float(np.sqrt(2.0) / np.sqrt(m.n_components)))


_NYSTROEM_KERNELS = ("rbf", "linear", "poly", "polynomial", "sigmoid", "laplacian", "cosine")


def _nystroem(scope: Any, operator: Any, container: Any) -> None:
    from sklearn.preprocessing import normalize

    e = _Wide(scope, operator, container)
    m = e.model
    kernel = m.kernel
    if callable(kernel) or kernel not in _NYSTROEM_KERNELS:
        raise _refuse(
            m, f"its kernel {getattr(kernel, '__name__', kernel)!r} is not one baton "
            "reproduces in ONNX", "fit Nystroem with kernel='rbf' (the default), 'linear', "
            "'poly', 'sigmoid', 'laplacian' or 'cosine'",
            "kernel one of " + ", ".join(_NYSTROEM_KERNELS))
    params = dict(m._get_kernel_params())
    n_features = m.components_.shape[1]
    gamma = params.get("gamma")
    gamma = 1.0 / n_features if gamma is None else gamma
    coef0 = params.get("coef0", 1)
    coef0 = 1 if coef0 is None else coef0
    degree = params.get("degree", 3)
    degree = 3 if degree is None else degree
    comp = np.asarray(m.components_, dtype=np.float64)
    x = e.x
    if kernel == "rbf":
        k = e.op("Exp", e.op("Mul", e.sq_distances(x, comp), e.const(-gamma)))
    elif kernel == "laplacian":
        diff = e.op("Sub", e.op("Unsqueeze", x, _axes(e, 1)), e.const(comp[None, :, :]))
        manhattan = e.op("ReduceSum", e.op("Abs", diff), _axes(e, 2), keepdims=0)
        k = e.op("Exp", e.op("Mul", manhattan, e.const(-gamma)))
    elif kernel == "cosine":
        norms = e.op("Sqrt", e.op("ReduceSum", e.op("Mul", x, x), _axes(e, 1), keepdims=1))
        tiny = e.op("Less", norms, e.const(10 * np.finfo(e.dtype).eps))
        norms = e.op("Where", tiny, e.const(1.0), norms)
        k = e.matmul(e.op("Div", x, norms), normalize(comp).T)
    else:
        k = e.matmul(x, comp.T)
        if kernel in ("poly", "polynomial", "sigmoid"):
            k = e.op("Add", e.op("Mul", k, e.const(gamma)), e.const(coef0))
            k = e.op("Pow", k, e.const(degree)) if kernel != "sigmoid" else e.op("Tanh", k)
    e.done(e.op("MatMul", k, e.const(np.asarray(m.normalization_).T), out=e.out))


def _poly_count_sketch(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    degree, n = int(m.degree), int(m.n_components)
    x = e.op("Mul", e.x, e.const(np.sqrt(m.gamma)))
    if m.coef0 != 0:
        x = e.op("Concat", x, e.per_row(np.asarray([np.sqrt(m.coef0)], dtype=e.dtype)), axis=1)
    index, bits = np.asarray(m.indexHash_), np.asarray(m.bitHash_, dtype=np.float64)
    sketch = np.zeros((index.shape[1], degree, n))
    for d in range(degree):
        sketch[np.arange(index.shape[1]), d, index[d]] = bits[d]
    # the DFT and its inverse as products with np.fft's own transforms of the unit vectors
    # (onnxruntime's DFT of a length that is not a power of two is 1e4 times less exact)
    forward, backward = np.fft.fft(np.eye(n)), np.fft.ifft(np.eye(n))
    fre, fim = e.const(forward.real), e.const(forward.imag)
    a = b = ""
    for d in range(degree):
        counts = e.matmul(x, sketch[:, d, :])  # the count sketch of degree d: [N, n]
        c, f = e.matmul(counts, fre), e.matmul(counts, fim)
        if d == 0:
            a, b = c, f
        else:  # complex product, as numpy multiplies: (ac - bf) + (af + bc)i
            a, b = (e.op("Sub", e.op("Mul", a, c), e.op("Mul", b, f)),
                    e.op("Add", e.op("Mul", a, f), e.op("Mul", b, c)))
    real = e.op("Sub", e.matmul(a, backward.real), e.matmul(b, backward.imag))
    e.done(e.op("Identity", real, out=e.out))


# -- embeddings -----------------------------------------------------------------------------


def _isomap(scope: Any, operator: Any, container: Any) -> None:
    e = _Wide(scope, operator, container)
    m = e.model
    nbrs = m.nbrs_
    p = nbrs.effective_metric_params_.get("p", 2) if nbrs.effective_metric_ == "minkowski" \
        else None
    metric = {"euclidean": 2, "manhattan": 1, "cityblock": 1, "l1": 1, "l2": 2}.get(
        nbrs.effective_metric_, p)
    if m.n_neighbors is None or metric not in (1, 2) or m.neighbors_algorithm == "precomputed":
        raise _refuse(
            m, "baton reproduces Isomap's transform for n_neighbors with the euclidean or "
            "manhattan metric only", "fit Isomap with n_neighbors (the default, 5) and "
            "metric='minkowski' with p=2 (the default) or p=1",
            "n_neighbors set, metric euclidean or manhattan")
    fit = np.asarray(nbrs._fit_X, dtype=np.float64)
    diff = e.op("Sub", e.op("Unsqueeze", e.x, _axes(e, 1)), e.const(fit[None, :, :]))
    if metric == 2:
        dist = e.op("Sqrt", e.op("ReduceSum", e.op("Mul", diff, diff), _axes(e, 2), keepdims=0))
    else:
        dist = e.op("ReduceSum", e.op("Abs", diff), _axes(e, 2), keepdims=0)
    k = e.const([int(m.n_neighbors)], _I64)
    near, idx = (scope.get_unique_variable_name(f"baton_{v}") for v in ("near", "idx"))
    e.op("TopK", dist, k, out=[near, idx], axis=1, largest=0, sorted=1)
    rows = e.op("Gather", e.const(m.dist_matrix_), idx, axis=0)  # [N, k, n_fit]
    geo = e.op("ReduceMin", e.op("Add", rows, e.op("Unsqueeze", near, _axes(e, 2))),
               _axes(e, 1), keepdims=0)
    kernel = e.op("Mul", e.op("Mul", geo, geo), e.const(-0.5))
    _kernel_pca_project(e, m.kernel_pca_, kernel)


def _kernel_pca_project(e: _Wide, kpca: Any, kernel: str) -> None:
    """``KernelPCA.transform`` of a precomputed kernel: centred as ``KernelCenterer`` does,
    then projected on the eigenvectors scaled by ``1 / sqrt(eigenvalue)``."""
    centerer = kpca._centerer
    n_fit = centerer.K_fit_rows_.shape[0]
    cols = e.op("Div", e.op("ReduceSum", kernel, _axes(e, 1), keepdims=1), e.const(n_fit))
    k = e.op("Sub", kernel, e.const(centerer.K_fit_rows_[None, :]))
    k = e.op("Add", e.op("Sub", k, cols), e.const(centerer.K_fit_all_))
    vectors = np.asarray(kpca.eigenvectors_, dtype=np.float64)
    values = np.asarray(kpca.eigenvalues_, dtype=np.float64)
    nz = np.flatnonzero(values)
    scaled = np.zeros_like(vectors)
    scaled[:, nz] = vectors[:, nz] / np.sqrt(values[nz])
    e.done(e.op("MatMul", k, e.const(scaled), out=e.out))


def _isomap_out(model: Any) -> int:
    return int(model.kernel_pca_.eigenvectors_.shape[1])


# -- refused --------------------------------------------------------------------------------


def _refusal(why: str, hint: str) -> Any:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        raise _refuse(operator.raw_operator, why, hint,
                      "a transform with a closed form (a projection, a kernel map)")

    return convert


_OPTIMISATION = ("its transform solves an optimisation per row ({}), which has no closed "
                 "form that ONNX reproduces exactly")

CONVERTERS = [
    Own("sklearn.decomposition.FactorAnalysis",
        _shape(lambda m: m.components_.shape[0]), _factor_analysis,
        note="((X - mean_) @ Wpsi.T) @ cov_z, the latent means"),
    Own("sklearn.decomposition.FastICA",
        _shape(lambda m: m.components_.shape[0]), _fast_ica,
        note="(X - mean_) @ components_.T"),
    Own("sklearn.decomposition.SparsePCA",
        _shape(lambda m: m.components_.shape[0]), _sparse_pca,
        note="the ridge projection on the components, as one matrix"),
    Own("sklearn.decomposition.MiniBatchSparsePCA",
        _shape(lambda m: m.components_.shape[0]), _sparse_pca,
        note="the ridge projection on the components, as one matrix"),
    Own("sklearn.neural_network.BernoulliRBM",
        _shape(lambda m: m.components_.shape[0]), _rbm,
        note="sigmoid(X @ components_.T + intercept_hidden_)"),
    Own("sklearn.cluster.FeatureAgglomeration", _shape(_n_clusters),
        _feature_agglomeration, parser=_one_output_parser,
        note="each cluster's columns pooled (mean, max or min)"),
    Own("sklearn.kernel_approximation.RBFSampler",
        _shape(lambda m: m.random_weights_.shape[1]), _rbf_sampler,
        note="cos(X @ W + b) * sqrt(2 / n_components)"),
    Own("sklearn.kernel_approximation.SkewedChi2Sampler",
        _shape(lambda m: m.random_weights_.shape[1]), _skewed_chi2,
        note="cos(log(X + c) @ W + b) * sqrt(2 / n_components)"),
    Own("sklearn.kernel_approximation.Nystroem",
        _shape(lambda m: m.normalization_.shape[0]), _nystroem,
        note="kernel(X, components_) @ normalization_.T"),
    Own("sklearn.kernel_approximation.PolynomialCountSketch",
        _shape(lambda m: m.n_components), _poly_count_sketch,
        note="count sketches, DFT, product over the degree, inverse DFT"),
    Own("sklearn.manifold.Isomap", _shape(_isomap_out), _isomap,
        note="geodesic distances through the nearest training rows, then kernel PCA"),
    Own("sklearn.manifold.LocallyLinearEmbedding", _shape(lambda m: m.n_components),
        _refusal(_OPTIMISATION.format("a constrained least-squares system over its nearest "
                                      "training rows, solved with a regularised Gram matrix"),
                 "fit sklearn.manifold.Isomap or sklearn.decomposition.KernelPCA (which "
                 "baton converts) in its place, or convert the model that consumes the "
                 "embedding, fitted on precomputed embeddings"),
        note="refused: a per-row least-squares system"),
    Own("sklearn.decomposition.DictionaryLearning",
        _shape(lambda m: m.components_.shape[0]),
        _refusal(_OPTIMISATION.format("sparse coding, OMP or lasso by default"),
                 "fit sklearn.decomposition.PCA or SparsePCA (linear transforms baton "
                 "converts) in its place"),
        note="refused: sparse coding per row"),
    Own("sklearn.decomposition.MiniBatchDictionaryLearning",
        _shape(lambda m: m.components_.shape[0]),
        _refusal(_OPTIMISATION.format("sparse coding, OMP or lasso by default"),
                 "fit sklearn.decomposition.PCA or MiniBatchSparsePCA (linear transforms "
                 "baton converts) in its place"),
        note="refused: sparse coding per row"),
]
