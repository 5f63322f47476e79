"""The one registry of converters and of the model-file loaders that go with them.

Adding a framework is one module that defines a :class:`Converter` and calls
:func:`register` (and :func:`register_loader` for its native file formats); nothing else
in baton branches on the framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx

from baton.errors import UnsupportedModelError, UsageError
from baton.schema import TensorSpec
from baton.tolerance import Tolerance


@dataclass
class Conversion:
    """What a converter hands over: the graph, its schema, and where it came from."""

    model: onnx.ModelProto
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: dict[str, Any]
    converter: dict[str, Any]
    precision: str
    tolerances: dict[str, Tolerance] = field(default_factory=dict)


class Converter(Protocol):
    """A framework's converter: recognises its models, converts them, runs the original."""

    name: str
    framework: str
    extra: str

    def accepts(self, model: Any) -> bool: ...

    def prepare(self, model: Any, data: Any) -> Any:
        """The data as the original model takes it (e.g. only its training columns)."""
        ...

    def infer_inputs(self, model: Any, sample: Any) -> list[TensorSpec]: ...

    def convert(self, model: Any, sample: Any, inputs: list[TensorSpec], *,
                opset: int | None) -> Conversion: ...

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        """The original model's outputs on ``data``, keyed like the ONNX outputs."""
        ...

    def describe(self, model: Any) -> str: ...


_CONVERTERS: list[Converter] = []
_LOADERS: dict[str, tuple[Callable[[Path, bool], Any], str]] = {}


def register(converter: Converter, *, before: str | None = None) -> Converter:
    """Add a converter; ``before`` names one it must be asked before (a converter for some of
    another's models, e.g. scikit-learn's tree ensembles before scikit-learn in general)."""
    if any(c.name == converter.name for c in _CONVERTERS):
        raise ValueError(f"a converter named {converter.name!r} is already registered")
    names = [c.name for c in _CONVERTERS]
    _CONVERTERS.insert(names.index(before) if before in names else len(names), converter)
    return converter


def register_loader(suffix: str, loader: Callable[[Path, bool], Any], what: str) -> None:
    """Register ``loader(path, trust_pickle)`` for model files ending in ``suffix``."""
    _LOADERS[suffix.lower()] = (loader, what)


def converters() -> list[Converter]:
    _load_builtin()
    return list(_CONVERTERS)


def find_converter(model: Any) -> Converter:
    for conv in converters():
        if conv.accepts(model):
            return conv
    cls = type(model)
    raise UnsupportedModelError(
        f"baton has no converter for {cls.__module__}.{cls.__qualname__}",
        expected="a model from one of: "
        + ", ".join(sorted({c.framework for c in converters()})),
        found=f"{cls.__module__}.{cls.__qualname__}",
        hint="pass a fitted model of one of those frameworks (PyTorch arrives with its own "
        "converter)",
    )


def load_model_file(path: str | Path, *, trust_pickle: bool = False) -> Any:
    """Load a model file by its suffix through the registered loaders."""
    _load_builtin()
    p = Path(path)
    if not p.exists():
        raise UsageError(
            f"no model file at {p}",
            expected="a saved model (" + ", ".join(sorted(_LOADERS)) + ")",
            found="nothing at that path",
            hint="check the path",
        )
    suffix = p.suffix.lower()
    if suffix not in _LOADERS:
        raise UsageError(
            f"baton cannot read model files of type {suffix or '(no suffix)'!r}: {p}",
            expected="one of " + ", ".join(f"{s} ({w})" for s, (_, w) in sorted(_LOADERS.items())),
            found=suffix or "no suffix",
            hint="save scikit-learn models with skops.io.dump(model, 'model.skops'), LightGBM "
            "with booster.save_model('model.txt'), XGBoost with save_model('model.json'), "
            "CatBoost with save_model('model.cbm')",
        )
    loader, _ = _LOADERS[suffix]
    return loader(p, trust_pickle)


_BUILTIN_LOADED = False


def _load_builtin() -> None:
    """Import the built-in converter modules (cheap: they import frameworks lazily)."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    from baton.converters import (  # noqa: F401
        _pickle,
        catboost,
        lightgbm,
        pipeline_trees,
        sklearn,
        sklearn_trees,
        torch,
        xgboost,
    )
