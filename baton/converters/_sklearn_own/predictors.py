"""Classifiers, regressors, clusterers and outlier detectors skl2onnx has no converter for
(or a wrong one), computed as scikit-learn 1.9 computes them.

* ``DummyRegressor``: the fitted constant (``constant_``) on every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit, Own, regressor_shape


def _dummy_regressor(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    constant = np.asarray(e.model.constant_, dtype=e.dtype).reshape(1, -1)
    e.per_row(constant, out=e.output())

CONVERTERS = [
    Own("sklearn.dummy.DummyRegressor", regressor_shape, _dummy_regressor,
        note="the fitted constant on every row"),
]
