"""Converters: a model object or file -> ONNX graph + a reference runner for the original.

Converters are registered through the ``baton.converters`` entry-point group (see
:mod:`baton.converters._registry`); the contract they implement is :mod:`baton.contract`.
"""

from __future__ import annotations

from baton.converters._registry import (
    ENTRY_POINT_GROUP,
    Conversion,
    Converter,
    ModelFile,
    converters,
    find_converter,
    load_model_file,
    model_file_help,
    model_files,
    register,
    register_loader,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Conversion",
    "Converter",
    "ModelFile",
    "converters",
    "find_converter",
    "load_model_file",
    "model_file_help",
    "model_files",
    "register",
    "register_loader",
]
