"""baton: convert notebook models to ONNX and prove the converted model gives the
original's predictions.

    >>> import baton
    >>> bundle = baton.convert(model, X_sample)      # doctest: +SKIP
    >>> bundle.save("model.baton")                   # doctest: +SKIP
    >>> report = baton.check(model, "model.baton", X_test)  # doctest: +SKIP
    >>> bool(report)                                 # doctest: +SKIP

Importing baton loads neither torch, scikit-learn nor pandas.
"""

from __future__ import annotations

__version__ = "0.1.0"

from baton import io
from baton._api import check, convert, verify
from baton.bundle import Bundle, load
from baton.errors import (
    BatonError,
    BundleError,
    BundleIntegrityError,
    ConversionError,
    InputValidationError,
    MissingDependencyError,
    ParityError,
    SchemaError,
    UnsupportedModelError,
    UsageError,
)
from baton.parity.compare import OutputDiff
from baton.parity.report import Report
from baton.schema import TensorSpec
from baton.tolerance import Tolerance

__all__ = [
    "BatonError",
    "Bundle",
    "BundleError",
    "BundleIntegrityError",
    "ConversionError",
    "InputValidationError",
    "MissingDependencyError",
    "OutputDiff",
    "ParityError",
    "Report",
    "SchemaError",
    "TensorSpec",
    "Tolerance",
    "UnsupportedModelError",
    "UsageError",
    "__version__",
    "check",
    "convert",
    "io",
    "load",
    "verify",
]
