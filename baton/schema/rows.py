"""User data as rows: ONNX feeds from a DataFrame, a dict or an array, rows taken from
them, and values made JSON-friendly.

Only numpy here; a DataFrame is read through its own methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from baton.errors import SchemaError
from baton.schema.cast import cast_to_spec
from baton.schema.spec import BATCH, TensorSpec, _as_array, is_dataframe, require_columns


def to_feeds(data: Any, inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Turn user data (DataFrame, dict of columns/arrays, or array) into ONNX feeds."""
    if not inputs:
        raise SchemaError("the model declares no inputs", expected="at least one input",
                          found="none", hint="re-convert the model")
    if is_dataframe(data):
        if all(s.from_frame for s in inputs):
            require_columns(data, [c for s in inputs for c in _columns_of(s)])
            return {s.name: cast_to_spec(_frame_values(data, s), s) for s in inputs}
        if len(inputs) == 1:
            return {inputs[0].name: cast_to_spec(data.to_numpy(), inputs[0])}
    if isinstance(data, Mapping):
        feeds = {}
        for s in inputs:
            if s.columns is not None and s.name not in data:
                missing = [c for c in s.columns if c not in data]
                if not missing:
                    feeds[s.name] = cast_to_spec(
                        np.column_stack([np.asarray(data[c]) for c in s.columns]), s)
                    continue
            key = s.column if s.column is not None and s.column in data else s.name
            if key not in data:
                raise SchemaError(
                    f"missing input {s.name!r}",
                    expected="keys " + ", ".join(repr(i.column or i.name) for i in inputs),
                    found="keys " + ", ".join(map(repr, data)),
                    hint="pass one entry per model input",
                )
            feeds[s.name] = cast_to_spec(data[key], s)
        return feeds
    arr = _as_array(data, "data")
    if len(inputs) == 1:
        return {inputs[0].name: cast_to_spec(arr, inputs[0])}
    if arr.ndim == 2 and arr.shape[1] == len(inputs) and all(s.column for s in inputs):
        return {s.name: cast_to_spec(arr[:, i], s) for i, s in enumerate(inputs)}
    raise SchemaError(
        "cannot map the data onto the model's inputs",
        expected=", ".join(f"{s.name} {s.describe()}" for s in inputs),
        found=f"an array of shape {arr.shape}",
        hint="pass a DataFrame with the named columns, or a dict of arrays keyed by input name",
    )


def _columns_of(spec: TensorSpec) -> list[str]:
    if spec.columns is not None:
        return list(spec.columns)
    return [spec.column] if spec.column is not None else []


def _frame_values(frame: Any, spec: TensorSpec) -> np.ndarray:
    if spec.columns is not None:
        return np.asarray(frame[list(spec.columns)].to_numpy())
    return np.asarray(frame[spec.column].to_numpy())


def n_rows(data: Any, whole: Sequence[str] = ()) -> int:
    """The rows of the data; ``whole``: inputs without a batch dimension, not counted."""
    if isinstance(data, Mapping):
        first = next((v for k, v in data.items() if k not in whole), None)
        return len(first if first is not None else next(iter(data.values())))
    return len(data)


def unbatched(inputs: Sequence[TensorSpec]) -> tuple[str, ...]:
    """The inputs whose dimension 0 is not the batch (declared with ``batch_dims``)."""
    return tuple(s.name for s in inputs if not s.shape or s.shape[0] != BATCH)


def take_rows(data: Any, rows: np.ndarray | Sequence[int], whole: Sequence[str] = ()) -> Any:
    """The given rows of a DataFrame, dict of arrays or array, in the same container type;
    ``whole``: inputs without a batch dimension, kept as they are."""
    idx = np.asarray(rows, dtype=np.int64)
    if is_dataframe(data):
        return data.iloc[idx]
    if isinstance(data, Mapping):
        return {k: v if k in whole else np.asarray(v)[idx] for k, v in data.items()}
    return np.asarray(data)[idx]


def row_values(data: Any, row: int, limit: int = 20) -> dict[str, Any]:
    """One row's input values as a JSON-friendly dict (at most ``limit`` entries)."""
    if is_dataframe(data):
        rec = data.iloc[row]
        items = [(str(k), rec[k]) for k in list(data.columns)[:limit]]
    elif isinstance(data, Mapping):
        items = [(str(k), _scalar(np.asarray(v)[row])) for k, v in list(data.items())[:limit]]
    else:
        vals = np.asarray(data)[row].reshape(-1)
        items = [(f"x{i}", v) for i, v in enumerate(vals[:limit])]
    return {k: to_jsonable(v) for k, v in items}


def _scalar(v: Any) -> Any:
    """A one-element row of a [N, 1] input as its value."""
    return v.reshape(-1)[0] if isinstance(v, np.ndarray) and v.size == 1 else v


def to_jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [to_jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "Infinity" if v > 0 else "-Infinity"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)
