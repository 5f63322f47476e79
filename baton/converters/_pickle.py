"""Pickle and joblib model files: refused unless the user says they trust the file.

A registration of model files alone (the ``pickle`` entry point of ``baton.converters``): a
pickle may hold any framework's model, which the converters then recognise.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from baton.contract import ModelFile
from baton.errors import UsageError


def _load_pickle(path: Path, trust_pickle: bool) -> Any:
    if not trust_pickle:
        raise UsageError(
            f"refusing to load {path}: loading a pickle runs arbitrary code from the file",
            expected="a format that runs no code (.skops for scikit-learn, a LightGBM, "
            "XGBoost or CatBoost model file), or --trust-pickle for a file you trust",
            found=f"a {path.suffix} file",
            hint="pass --trust-pickle if you made this file yourself (statsmodels results "
            "and PyTorch pickles have no safe format); or re-save a scikit-learn model with "
            "skops.io.dump(model, 'model.skops'), a tree model with its library's "
            "save_model",
        )
    try:
        if path.suffix.lower() == ".joblib":
            import joblib

            return joblib.load(path)
        with open(path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - the user has said they trust this file
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"{path} needs the Python package '{exc.name}' to be unpickled",
            expected=f"'{exc.name}' installed",
            found="ModuleNotFoundError",
            hint="install the framework the model was trained with (e.g. pip install "
            "'baton[sklearn]')",
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a broken pickle raises anything
        raise UsageError(
            f"cannot unpickle {path}",
            expected="a model saved with pickle or joblib",
            found=f"{type(exc).__name__}: {exc}"[:300],
            hint="check the file was written completely by the same library versions",
        ) from exc


class PickleFiles:
    """``.pkl``, ``.pickle`` and ``.joblib`` files, loaded only with ``--trust-pickle``."""

    name = "pickle"
    model_files = tuple(
        ModelFile(suffix, _load_pickle, framework="pickle", what="pickle", needs_trust=True)
        for suffix in (".pkl", ".pickle", ".joblib"))


__all__ = ["PickleFiles"]
