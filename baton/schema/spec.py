"""Tensor specs: baton's dtypes, the batch dimension, what a model's inputs and outputs are,
and the schema inferred from sample data.

Only numpy here; pandas is touched only when the caller passed a DataFrame (so it is
installed), and then imported inside the function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from baton.errors import SchemaError

#: The dtypes a baton tensor may have, by their numpy names ("string" for text).
DTYPES = ("float32", "float64", "float16", "int64", "int32", "bool", "string")

BATCH = "N"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a converted model.

    ``shape`` uses ``"N"`` for the batch dimension and ``None`` for other dynamic ones.
    ``column`` names the DataFrame column a ``[N, 1]`` input comes from; ``columns`` the
    DataFrame columns, in order, that make up a ``[N, k]`` input (a model fitted on a
    DataFrame that takes one matrix); ``kind`` says how an output is compared (``label``,
    ``probabilities``, ``scores``, ``prediction``, ``transformed``, ``tensor``).
    """

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]
    column: str | None = None
    kind: str | None = None
    columns: tuple[str, ...] | None = None

    @property
    def from_frame(self) -> bool:
        """Whether the input is read from named DataFrame columns."""
        return self.column is not None or self.columns is not None

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype} [{dims}]"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        if self.columns is not None:
            d["columns"] = list(self.columns)
        return {k: v for k, v in d.items() if v is not None or k == "shape"}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorSpec:
        return cls(
            name=str(d["name"]),
            dtype=str(d["dtype"]),
            shape=tuple(d.get("shape", ())),
            column=d.get("column"),
            kind=d.get("kind"),
            columns=tuple(d["columns"]) if d.get("columns") is not None else None,
        )


def from_ort(arg: Any, kind: str | None = None) -> TensorSpec:
    """The spec of an onnxruntime ``NodeArg`` (a session's input or output); the first
    dimension is the batch."""
    inner = arg.type.removeprefix("tensor(").removesuffix(")")
    dtype = {"float": "float32", "double": "float64"}.get(inner, inner)
    shape = tuple(BATCH if i == 0 else (d if isinstance(d, int) else None)
                  for i, d in enumerate(arg.shape))
    return TensorSpec(name=arg.name, dtype=dtype, shape=shape, kind=kind)


def is_dataframe(obj: object) -> bool:
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "columns")


def numpy_dtype(dtype: str) -> np.dtype[Any]:
    if dtype == "string":
        return np.dtype(object)
    if dtype not in DTYPES:
        raise SchemaError(
            f"unknown tensor dtype {dtype!r}",
            expected=", ".join(DTYPES),
            found=dtype,
            hint="check the inputs listed in the bundle's baton.json",
        )
    return np.dtype(dtype)


def dtype_name(dtype: np.dtype[Any]) -> str:
    """The baton dtype name for a numpy dtype (``string`` for text and objects)."""
    if dtype.kind in "USO":
        return "string"
    if dtype.kind == "b":
        return "bool"
    if dtype.kind == "f":
        return "float64" if dtype.itemsize >= 8 else "float32"
    if dtype.kind in "iu":
        return "int64"
    raise SchemaError(
        "unsupported data type in the sample",
        expected="numbers, booleans or text",
        found=str(dtype),
        hint="convert dates and other types to numbers or strings before training",
    )


def infer_inputs(sample: Any, columns: Sequence[str] | None = None, *,
                 one_matrix: bool = False) -> list[TensorSpec]:
    """Infer the input schema from real sample data.

    A DataFrame gives one ``[N, 1]`` input per column, named after it, or with
    ``one_matrix`` one input ``input`` of shape ``[N, columns]`` that records the columns it
    is read from; a 2-D array gives one input ``input`` of shape ``[N, features]``.
    """
    if is_dataframe(sample):
        cols = list(sample.columns) if columns is None else list(columns)
        require_columns(sample, cols)
        if len(sample) == 0:  # an empty frame's columns are object: no types to read
            raise SchemaError(
                "the sample is empty", expected="at least one row", found="0 rows",
                hint="pass real rows of the data the model will see",
            )
        dtypes = {str(c): _column_dtype(sample[c]) for c in cols}
        if one_matrix:
            return [TensorSpec(name="input", dtype=_common_dtype(dtypes), shape=(BATCH, len(cols)),
                               columns=tuple(dtypes))]
        return [TensorSpec(name=c, dtype=t, shape=(BATCH, 1), column=c) for c, t in dtypes.items()]
    arr = _as_array(sample, "sample")
    if arr.ndim != 2:
        raise SchemaError(
            "the sample must be a table of rows",
            expected="a 2-D array [rows, features] or a pandas DataFrame",
            found=f"an array of shape {arr.shape}",
            hint="reshape it, e.g. X.reshape(len(X), -1), or pass a DataFrame",
        )
    if len(arr) == 0:
        raise SchemaError(
            "the sample is empty", expected="at least one row", found="0 rows",
            hint="pass real rows of the data the model will see",
        )
    return [TensorSpec(name="input", dtype=dtype_name(arr.dtype), shape=(BATCH, arr.shape[1]))]


def _common_dtype(dtypes: Mapping[str, str]) -> str:
    """One dtype for columns that feed one matrix: the widest number, or text if all text."""
    kinds = set(dtypes.values())
    if kinds == {"string"}:
        return "string"
    if "string" in kinds:
        text = [c for c, t in dtypes.items() if t == "string"]
        raise SchemaError(
            f"the model takes one numeric matrix, but column{'s' if len(text) > 1 else ''} "
            f"{', '.join(map(repr, text[:5]))} hold{'' if len(text) > 1 else 's'} text",
            expected="numeric columns (or a ColumnTransformer that encodes the text ones)",
            found=", ".join(f"{c}: {t}" for c, t in list(dtypes.items())[:8]),
            hint="pass text and category columns as numeric codes; in a scikit-learn "
            "Pipeline, encode them inside it (a ColumnTransformer with OneHotEncoder) so "
            "that the converted model takes them as they come",
        )
    for t in ("float64", "float32", "int64", "bool"):
        if t in kinds:
            return "float64" if t == "float32" and kinds - {"float32"} else t
    return "float64"


def _column_dtype(series: Any) -> str:
    import pandas as pd

    t = series.dtype
    if isinstance(t, pd.CategoricalDtype):
        return "string"
    if pd.api.types.is_bool_dtype(t):
        return "bool"
    if pd.api.types.is_float_dtype(t):
        return "float32" if getattr(t, "itemsize", 8) == 4 else "float64"
    if pd.api.types.is_integer_dtype(t):
        return "int64"
    if pd.api.types.is_string_dtype(t) or pd.api.types.is_object_dtype(t):
        return "string"
    raise SchemaError(
        f"column {series.name!r} has a type baton cannot feed to ONNX",
        expected="float, integer, boolean, string or category",
        found=str(t),
        hint="convert it to numbers (e.g. dates to epoch seconds) or to strings",
    )


def require_columns(frame: Any, columns: Sequence[str]) -> None:
    """Raise :class:`SchemaError` naming the ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}",
            expected="columns " + ", ".join(map(repr, columns)),
            found="columns " + ", ".join(map(repr, map(str, frame.columns))),
            hint="pass data with the columns the model was trained on",
        )




def _as_array(data: Any, what: str) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data
    if is_dataframe(data):
        return np.asarray(data.to_numpy())
    try:
        return np.asarray(data)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot read is a user error
        raise SchemaError(
            f"cannot read the {what} as an array",
            expected="a numpy array or a pandas DataFrame",
            found=type(data).__name__,
            hint="pass a numpy array or a DataFrame",
        ) from exc



def dtype_name_or_raw(dtype: np.dtype[Any]) -> str:
    try:
        return dtype_name(dtype)
    except SchemaError:
        return str(dtype)

