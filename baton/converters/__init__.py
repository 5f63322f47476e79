"""Converters: a model object or file -> ONNX graph + a reference runner for the original."""

from __future__ import annotations

from baton.converters._registry import (
    Conversion,
    Converter,
    converters,
    find_converter,
    load_model_file,
    register,
    register_loader,
)

__all__ = [
    "Conversion",
    "Converter",
    "converters",
    "find_converter",
    "load_model_file",
    "register",
    "register_loader",
]
