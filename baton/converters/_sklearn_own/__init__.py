"""baton's own converters for scikit-learn estimators that skl2onnx lacks or gets wrong.

Each is registered into skl2onnx (``update_registered_converter``), so it is used for the
estimator alone and as a step of a Pipeline or ColumnTransformer alike. The graphs compute
in the input's precision (float64 in, float64 arithmetic) and follow scikit-learn 1.9's own
formulas; each module's docstring names the scikit-learn code it reproduces.

``register()`` is called by the scikit-learn converter before every conversion; it is
idempotent. Modules: ``predictors`` (dummies), ``classifiers`` (classifiers and
regressors), ``clusters`` (clusterers and outlier detectors), ``decomposition``
(decompositions, kernel approximations, embeddings), ``encoders`` (encoders, discretisers,
functions, target transforms), ``text`` (CountVectorizer/TfidfVectorizer without a locale).
"""

from __future__ import annotations

import importlib

from baton.converters._sklearn_own._base import Own

__all__ = ["Own", "register", "registered"]

_MODULES = ("predictors", "classifiers", "clusters", "decomposition", "encoders", "text")
_DONE: list[Own] = []


def registered() -> list[Own]:
    """Every converter of this package (registering them first)."""
    register()
    return list(_DONE)


def register() -> None:
    if _DONE:
        return
    owns: list[Own] = []
    for name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        owns += list(module.CONVERTERS)
    for own in owns:
        own.register()
    _DONE.extend(owns)
