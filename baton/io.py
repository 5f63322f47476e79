"""Reading data files: ``.csv``, ``.parquet``, ``.npy``, ``.npz``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import BatonError, UsageError, first_line, require

DATA_SUFFIXES = (".csv", ".parquet", ".npy", ".npz")
#: names of the arrays in an .npz that hold labels beside the features (never inputs)
_LABELS = {"y", "Y", "labels", "target", "targets"}


def read_data(path: str | os.PathLike[str]) -> Any:
    """A DataFrame (``.csv``, ``.parquet``), an array (``.npy``, an ``.npz`` holding one
    array, or one named ``X``/``x``/``data``/``inputs`` beside labels ``y``/``target``), or a
    dict of arrays (an ``.npz`` holding one array per model input, named like the inputs)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise UsageError(
            f"baton cannot read data files of type {suffix or '(no suffix)'!r}: {p}",
            expected="one of " + ", ".join(DATA_SUFFIXES),
            found=suffix or "no suffix",
            hint="save the data as CSV or Parquet (DataFrames) or .npy (arrays)",
        )
    if not p.is_file():
        raise UsageError(f"no data file at {p}", expected="an existing file",
                         found="nothing at that path", hint="check the path")
    # pandas (and pyarrow) come with the `pandas` extra: a missing one is named with it
    # (MissingDependencyError), not taken for a file that cannot be read
    if suffix == ".csv":
        pd = require("pandas", "pandas", "Reading CSV data")
    elif suffix == ".parquet":
        pd = require("pandas", "pandas", "Reading Parquet data")
        require("pyarrow", "pandas", "Reading Parquet data")
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix == ".parquet":
            return pd.read_parquet(p)
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        with np.load(p, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if len(keys) == 1:
                return npz[keys[0]]
            for k in ("X", "x", "data", "inputs"):
                # the features beside their labels (np.savez(f, X=X, y=y)); beside other
                # arrays, x is one of several model inputs
                if k in keys and set(keys) - {k} <= _LABELS:
                    return npz[k]
            # several arrays: one per model input (or column), by name
            return {k: npz[k] for k in keys}
    except BatonError:
        raise
    except Exception as exc:  # noqa: BLE001 - each reader raises its own errors
        raise UsageError(
            f"cannot read {p} as {suffix[1:]} data",
            expected=f"a valid {suffix} file",
            found=first_line(exc, 300, with_type=True),
            hint="check the file is complete and of the type its name says",
        ) from exc
