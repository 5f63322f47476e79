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

from baton._version import __version__
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

TYPE_CHECKING = False  # not typing's: importing typing would slow `import baton` down
if TYPE_CHECKING:
    from baton import io
    from baton._api import check, convert, recheck, verify
    from baton.bundle import Bundle, load
    from baton.results.diff import OutputDiff
    from baton.results.report import Report
    from baton.schema import TensorSpec
    from baton.tolerance import Tolerance

#: The rest of the API, imported on first use (numpy and onnx take a few hundred ms): so
#: that `import baton.runtime` loads no conversion code, and the `baton` command's entry point
#: (baton._entry) runs before them and turns a Ctrl-C while they load into exit 130.
_LAZY = {
    "io": "baton.io", "check": "baton._api", "convert": "baton._api", "verify": "baton._api",
    "recheck": "baton._api",
    "Bundle": "baton.bundle", "load": "baton.bundle", "OutputDiff": "baton.results.diff",
    "Report": "baton.results.report", "TensorSpec": "baton.schema",
    "Tolerance": "baton.tolerance",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'baton' has no attribute {name!r}")
    import importlib

    loaded = importlib.import_module(module)
    value = loaded if module == f"baton.{name}" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

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
    "recheck",
    "verify",
]
