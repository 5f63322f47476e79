"""GaussianProcessClassifier (binary Laplace approximation; multiclass one-vs-rest), as
``sklearn/gaussian_process/_gpc.py`` (1.9) predicts, with every matrix that does not depend
on the query precomputed at conversion:

* ``f = k(X, X_train_) @ (y_train_ - pi_)`` (latent mean; the label is ``f > 0``);
* ``v = k(X, X_train_) @ solve(L_, diag(W_sr_)).T``; ``var = k.diag(X) - sum(v * v)``;
* ``pi_star`` from the five-erf approximation of the logistic (``LAMBDAS``, ``COEFS``),
  with erf written out as Cephes' rational approximations (scipy's ``erf``; onnxruntime has
  no float64 Erf); one-vs-rest normalises the classes' ``pi_star``.

Kernels: ConstantKernel, WhiteKernel, RBF, Matern (nu 0.5, 1.5, 2.5, inf), RationalQuadratic,
ExpSineSquared, DotProduct, and Sum/Product/Exponentiation of these
(``sklearn/gaussian_process/kernels.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from baton.converters._sklearn_own import _classifier_ops as g
from baton.converters._sklearn_own._base import (
    CLASSIFIER_OPTIONS,
    Own,
    labelled_shape,
    n_classes,
)

#: Cephes ndtr.c: erf(x) = x T(x^2) / U(x^2) for |x| < 1, erfc(x) = exp(-x^2) P(x) / Q(x)
#: for 1 <= x < 8, exp(-x^2) R(x) / S(x) beyond (U, Q, S without their leading 1)
_T = [9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
      7.00332514112805075473E3, 5.55923013010394962768E4]
_U = [3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
      2.26290000613890934246E4, 4.92673942608635921086E4]
_P = [2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
      4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
      9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2]
_Q = [1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
      9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
      1.65666309194161350182E3, 5.57535340817727675546E2]
_R = [5.64189583547755073984E-1, 1.27536670759978104416E0, 5.01905042251180477414E0,
      6.16021097993053585195E0, 7.40974269950448939160E0, 2.97886665372100240670E0]
_S = [2.26052863220117276590E0, 9.39603524938001434673E0, 1.20489539808096656605E1,
      1.70814450747565897222E1, 9.60896809063285878198E0, 3.36907645100081516050E0]


def _polevl(e: Any, x: str, coefs: list[float], monic: bool = False) -> str:
    """Cephes polevl (Horner from the highest power); p1evl with ``monic``."""
    ans = e.op("Add", x, e.const(coefs[0])) if monic else e.const(coefs[0])
    for c in coefs[1:]:
        ans = e.op("Add", e.op("Mul", ans, x), e.const(c))
    return ans


def erf(e: Any, z: str) -> str:
    """Cephes' erf, elementwise in float64 (NaN stays NaN)."""
    ax = e.op("Abs", z)
    zz = e.op("Mul", z, z)
    small = e.op("Div", e.op("Mul", z, _polevl(e, zz, _T)), _polevl(e, zz, _U, monic=True))
    a = e.op("Min", e.op("Max", ax, e.const(1.0)), e.const(27.0))  # erfc(27) is 0 to 1
    mid = e.op("Div", _polevl(e, a, _P), _polevl(e, a, _Q, monic=True))
    far = e.op("Div", _polevl(e, a, _R), _polevl(e, a, _S, monic=True))
    ratio = e.op("Where", e.op("Less", a, e.const(8.0)), mid, far)
    erfc = e.op("Mul", e.op("Exp", e.op("Neg", e.op("Mul", a, a))), ratio)
    big = e.op("Mul", e.op("Sign", z), e.op("Sub", e.const(1.0), erfc))
    out = e.op("Where", e.op("Less", ax, e.const(1.0)), small, big)
    return e.op("Where", e.op("IsNaN", z), z, out)


# -- kernels: a value is a tensor name or a python float (the same on every entry) ---------

Value = str | float


def _tensor(e: Any, v: Value, cols: int) -> str:
    return e.per_row(np.full(cols, v, dtype=np.float64)) if isinstance(v, float) else v


def _combine(e: Any, op: str, a: Value, b: Value) -> Value:
    if isinstance(a, float) and isinstance(b, float):
        return a + b if op == "Add" else a * b
    return e.op(op, a if isinstance(a, str) else e.const(a), b if isinstance(b, str)
                else e.const(b))


def _scaled(e: Any, x: str, fit: np.ndarray, ls: Any) -> tuple[str, np.ndarray]:
    ls = np.asarray(ls, dtype=np.float64)
    return e.op("Div", x, e.const(ls)), fit / ls


def kernel(e: Any, k: Any, x: str, fit: np.ndarray) -> Value:
    """``k(X_train_, X).T``: [N, M] (or a float, the same for every pair)."""
    from sklearn.gaussian_process import kernels as K

    if isinstance(k, (K.Sum, K.Product)):
        return _combine(e, "Add" if isinstance(k, K.Sum) else "Mul",
                        kernel(e, k.k1, x, fit), kernel(e, k.k2, x, fit))
    if isinstance(k, K.Exponentiation):
        base = kernel(e, k.kernel, x, fit)
        if isinstance(base, float):
            return float(base ** k.exponent)
        return e.op("Pow", base, e.const(float(k.exponent)))
    if isinstance(k, K.ConstantKernel):
        return float(k.constant_value)
    if isinstance(k, K.WhiteKernel):
        return 0.0  # zero between different sets of points
    if isinstance(k, K.DotProduct):
        return e.op("Add", e.matmul(x, fit.T), e.const(k.sigma_0 ** 2))
    if isinstance(k, K.RationalQuadratic):
        d = g.pair_reduce(e, x, fit, "sq")
        tmp = e.op("Div", d, e.const(2 * k.alpha * k.length_scale ** 2))
        return e.op("Pow", e.op("Add", e.const(1.0), tmp), e.const(-k.alpha))
    if isinstance(k, K.ExpSineSquared):
        d = e.op("Sqrt", g.pair_reduce(e, x, fit, "sq"))
        arg = e.op("Div", e.op("Mul", e.const(np.pi), d), e.const(k.periodicity))
        s = e.op("Div", e.op("Sin", arg), e.const(k.length_scale))
        return e.op("Exp", e.op("Mul", e.const(-2.0), e.op("Mul", s, s)))
    if isinstance(k, K.Matern):  # before RBF: Matern subclasses RBF
        xs, fs = _scaled(e, x, fit, k.length_scale)
        d = e.op("Sqrt", g.pair_reduce(e, xs, fs, "sq"))
        if k.nu == 0.5:
            return e.op("Exp", e.op("Neg", d))
        if k.nu == np.inf:
            return e.op("Exp", e.op("Div", e.op("Neg", e.op("Mul", d, d)), e.const(2.0)))
        if k.nu in (1.5, 2.5):
            t = e.op("Mul", d, e.const(math.sqrt(3) if k.nu == 1.5 else math.sqrt(5)))
            poly = e.op("Add", e.const(1.0), t)
            if k.nu == 2.5:
                poly = e.op("Add", poly, e.op("Div", e.op("Mul", t, t), e.const(3.0)))
            return e.op("Mul", poly, e.op("Exp", e.op("Neg", t)))
    elif isinstance(k, K.RBF):
        xs, fs = _scaled(e, x, fit, k.length_scale)
        return e.op("Exp", e.op("Mul", e.const(-0.5), g.pair_reduce(e, xs, fs, "sq")))
    g.refuse(e.model, f"its kernel {k!r} is not one baton writes as a graph",
             expected="ConstantKernel, WhiteKernel, RBF, Matern (nu 0.5, 1.5, 2.5 or inf), "
             "RationalQuadratic, ExpSineSquared, DotProduct and their sums, products and "
             "powers", found=f"kernel_={k!r}",
             hint="refit with a kernel built from those (e.g. 1.0 * RBF(1.0), the default)")
    raise AssertionError  # refuse raises


def diag(e: Any, k: Any, x: str) -> Value:
    """``k.diag(X)``: [N, 1] (or a float)."""
    from sklearn.gaussian_process import kernels as K

    if isinstance(k, (K.Sum, K.Product)):
        return _combine(e, "Add" if isinstance(k, K.Sum) else "Mul",
                        diag(e, k.k1, x), diag(e, k.k2, x))
    if isinstance(k, K.Exponentiation):
        base = diag(e, k.kernel, x)
        if isinstance(base, float):
            return float(base ** k.exponent)
        return e.op("Pow", base, e.const(float(k.exponent)))
    if isinstance(k, K.ConstantKernel):
        return float(k.constant_value)
    if isinstance(k, K.WhiteKernel):
        return float(k.noise_level)
    if isinstance(k, K.DotProduct):
        return e.op("Add", g.sq_norms(e, x), e.const(k.sigma_0 ** 2))
    return 1.0  # stationary kernels


# -- the classifier ------------------------------------------------------------------------

_LAMBDAS = np.array([0.41, 0.4, 0.37, 0.44, 0.39])
_COEFS = np.array([-1854.8214151, 3516.89893646, 221.29346712, 128.12323805,
                   -2010.49422654])


def _binary(e: Any, b: Any, x: str) -> tuple[str, str]:
    """Latent mean f [N, 1] and ``pi_star`` [N, 1] of one binary Laplace GPC."""
    from scipy.linalg import solve
    from sklearn.gaussian_process._gpc import COEFS, LAMBDAS

    if not (np.allclose(LAMBDAS.ravel(), _LAMBDAS) and np.allclose(COEFS.ravel(), _COEFS)):
        raise AssertionError("scikit-learn's GPC constants changed")
    fit = np.asarray(b.X_train_, dtype=np.float64)
    ks = _tensor(e, kernel(e, b.kernel_, x, fit), len(fit))
    a = (b.y_train_ - b.pi_).astype(np.float64)
    f = e.matmul(ks, a[:, None])
    w = solve(b.L_, np.diag(b.W_sr_))  # v = solve(L_, W_sr_[:, None] * K_star)
    v = e.matmul(ks, w.T)
    dg = diag(e, b.kernel_, x)
    vv = e.op("ReduceSum", e.op("Mul", v, v), e.const([1], np.int64), keepdims=1)
    var = e.op("Sub", dg if isinstance(dg, str) else e.const(dg), vv)
    lam = LAMBDAS.reshape(1, -1).astype(np.float64)
    alpha = e.op("Div", e.const(1.0), e.op("Mul", e.const(2.0), var))
    gamma = e.op("Mul", e.const(lam), f)
    root = e.op("Sqrt", e.op("Div", alpha, e.op("Add", alpha, e.const(lam ** 2))))
    integrals = e.op("Div", e.op("Mul", e.op("Sqrt", e.op("Div", e.const(np.pi), alpha)),
                                 erf(e, e.op("Mul", gamma, root))),
                     e.op("Mul", e.const(2.0), e.op("Sqrt", e.op(
                         "Mul", e.op("Mul", var, e.const(2.0)), e.const(np.pi)))))
    pi_star = e.op("Add", e.op("ReduceSum", e.op("Mul", e.const(COEFS.reshape(1, -1)),
                                                 integrals),
                                e.const([1], np.int64), keepdims=1),
                   e.const(0.5 * COEFS.sum()))
    return f, pi_star


def _gpc(scope: Any, operator: Any, container: Any) -> None:
    e = g.begin(scope, operator, container)
    m = e.model
    g.check_classes(m)
    if m.n_classes_ > 2 and m.multi_class != "one_vs_rest":
        g.refuse(m, "multi_class='one_vs_one' has no predict_proba",
                 expected="multi_class='one_vs_rest' (the default)",
                 found=f"multi_class={m.multi_class!r}",
                 hint="refit with multi_class='one_vs_rest'")
    if m.n_classes_ == 2:
        f, pi_star = _binary(e, m.base_estimator_, e.x)
        positive = e.op("Reshape", e.op("Cast", e.op("Greater", f, e.const(0.0)), to=7),
                        e.const([-1], np.int64))
        g.label(e, positive, m.classes_)
        g.finish(e, e.op("Concat", e.op("Sub", e.const(1.0), pi_star), pi_star, axis=1), 1)
        return
    parts = []
    for est in m.base_estimator_.estimators_:
        if not hasattr(est, "kernel_"):
            g.refuse(m, "a one-vs-rest part is a constant predictor",
                     expected="every class both present and absent in the training data",
                     found=type(est).__name__, hint="refit on data with every class")
        parts.append(_binary(e, est, e.x)[1])
    scores = e.op("Concat", *parts, axis=1)
    # OneVsRestClassifier.predict: the last class with the largest pi_star
    g.label(e, g.argmax(e, scores, last=True), m.classes_)
    g.finish(e, g.rows_normalised(e, scores), 1)


CONVERTERS = [
    Own("sklearn.gaussian_process.GaussianProcessClassifier", labelled_shape(n_classes),
        _gpc, options=CLASSIFIER_OPTIONS,
        note="Laplace posterior mean/variance and the erf approximation of the logistic"),
]
