"""Input and output schemas: what a model takes and gives, and how user data becomes feeds.

Only numpy here; pandas is touched only when the caller passed a DataFrame (so it is
installed), and then imported inside the function.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from baton.errors import InputValidationError, SchemaError

#: The dtypes a baton tensor may have, by their numpy names ("string" for text).
DTYPES = ("float32", "float64", "int64", "int32", "bool", "string")

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
        _require_columns(sample, cols)
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


def _require_columns(frame: Any, columns: Sequence[str]) -> None:
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


def cast_to_spec(values: Any, spec: TensorSpec, *, narrow: bool = True) -> np.ndarray:
    """Cast one input's values to its spec, or raise naming input, expectation and finding.

    Values are converted value for value or refused with InputValidationError: integers
    outside the target's range, booleans other than 0/1, complex numbers, dates, durations,
    structured arrays, ragged lists, bytes that are not UTF-8 and objects that are neither
    numbers nor text. Arrays in the other byte order are read in their own.

    ``narrow=False`` (``Session.run``: a caller that hands over arrays must cast them
    itself) also refuses float64 (or int64) arrays for a float32 input instead of rounding
    them, and values the input's float type cannot hold: integers beyond 2**53 (float64) or
    2**24 (float32) that it would round, finite values beyond its range. ``narrow=True``
    (``to_feeds``, the parity check's mapping) rounds them, as the parity check did."""
    target = numpy_dtype(spec.dtype)
    arr = _read(values, spec)
    found = "None" if values is None else f"{dtype_name_or_raw(arr.dtype)} {list(arr.shape)}"
    if (arr.dtype.kind == "f" and target.kind != "O" and isinstance(values, (list, tuple))
            and np.any(np.abs(arr) >= 2.0 ** _exact_bits(target))):
        # numpy reads Python ints mixed with floats, or beyond int64, as float64 and rounds
        # them: keep the Python values, each checked below
        arr = np.array(values, dtype=object)
    if arr.dtype.kind in _UNFIT:
        raise _bad_input(spec, found, _UNFIT[arr.dtype.kind])
    if not arr.dtype.isnative:  # onnxruntime would read the bytes in its own order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if (not narrow and target == np.float32 and arr.dtype.kind in "fiu"
            and arr.dtype.itemsize > 4 and isinstance(values, np.ndarray)):
        raise _bad_input(spec, found, "this input is float32: cast the array yourself "
                         "(x.astype(np.float32)) if rounding the values is acceptable; "
                         "baton does not narrow float64 silently")
    if spec.dtype == "string":
        arr = _text(arr, spec, found)
    elif arr.dtype != target:
        arr = _numbers(arr, spec, target, found, exact=not narrow,
                       handed=isinstance(values, np.ndarray))
    if len(spec.shape) != arr.ndim:
        if arr.ndim == 1 and len(spec.shape) == 2 and spec.shape[1] == 1:
            arr = arr.reshape(-1, 1)
        else:
            raise _bad_input(spec, found, f"pass an array of rank {len(spec.shape)}")
    for want, got in zip(spec.shape[1:], arr.shape[1:]):
        if isinstance(want, int) and want != got:
            raise _bad_input(spec, found, f"pass {want} values per row for this input")
    return np.ascontiguousarray(arr)


#: why values of these numpy kinds are refused for every input, and what to do instead
_UNFIT = {
    "c": "complex numbers would lose their imaginary part: pass the real values the model "
    "was trained on yourself (x.real, x.imag or abs(x))",
    "M": "dates are not numbers (nor text) to the model: convert them yourself as the model "
    "was trained on, e.g. to epoch seconds (x.astype('datetime64[s]').astype(np.int64)) or "
    "to text (x.astype(str))",
    "m": "durations are not numbers to the model: convert them yourself as the model was "
    "trained on, e.g. to seconds (x / np.timedelta64(1, 's'))",
    "V": "structured (record) arrays are not tensors: pass one plain array per input, "
    "e.g. x['field']",
}


def _exact_bits(target: np.dtype[Any]) -> int:
    """Integers of up to this many bits are exact in ``target`` (or in float64, through
    which text and objects reach integer inputs)."""
    return 24 if target == np.float32 else 53


def _read(values: Any, spec: TensorSpec) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    try:
        return np.asarray(values)
    except Exception as exc:  # noqa: BLE001 - ragged lists, objects numpy cannot read
        raise InputValidationError(
            f"input {spec.name!r}: expected {spec.describe()}, got a {type(values).__name__} "
            "that is not an array",
            expected=spec.describe(),
            found=f"{type(values).__name__}: {str(exc).splitlines()[0][:200]}",
            hint="pass an array, or nested lists with the same number of values in every row",
        ) from exc


def _text(arr: np.ndarray, spec: TensorSpec, found: str) -> np.ndarray:
    if arr.dtype.kind not in "USO":
        raise _bad_input(spec, found, "pass text for this input (categories or strings)")
    out = np.empty(arr.shape, dtype=object)
    try:
        # str() of every value, missing ones included (None -> "None", NaN -> "nan"): the
        # same text skl2onnx writes for the categories an encoder learned from them
        out.reshape(-1)[:] = [v if type(v) is str else _as_text(v) for v in arr.reshape(-1)]
    except UnicodeDecodeError as exc:
        raise _bad_input(spec, found, f"bytes {exc.object[:20]!r} are not UTF-8 text: decode "
                         "them yourself with their encoding (e.g. b.decode('latin-1'))") from exc
    except TypeError as exc:
        raise _bad_input(spec, found, f"a {exc} is neither text nor a number: pass strings "
                         "(str(v) yourself, if that is the text the model was trained on)"
                         ) from exc
    return out


def _as_text(v: Any) -> str:
    if isinstance(v, str):
        return str(v)
    if isinstance(v, bytes):
        return v.decode()
    if (v is None or isinstance(v, (numbers.Number, np.bool_))
            or type(v).__name__ in ("NAType", "NaTType")):  # pandas' missing values
        return str(v)
    raise TypeError(type(v).__name__)


def _numbers(arr: np.ndarray, spec: TensorSpec, target: np.dtype[Any], found: str, *,
             exact: bool, handed: bool) -> np.ndarray:
    """Numbers (or text and objects) for a numeric input, converted value for value."""
    if arr.dtype.kind in "USO":
        return _parse(arr, spec, target, found, exact=exact)
    if target.kind == "b":
        _require_bool(arr, spec, found)
    elif target.kind in "iu":
        if arr.dtype.kind == "f":
            _require_whole(arr, spec, found)
        _require_range(arr, spec, target, found)
    else:
        with np.errstate(over="ignore") if exact else contextlib.nullcontext():
            out = arr.astype(target)  # beyond the range: refused below (run), inf (predict)
        if exact:
            _require_exact(arr, out, spec, found, handed=handed)
        return out
    return arr.astype(target)


def _parse(raw: np.ndarray, spec: TensorSpec, target: np.dtype[Any], found: str, *,
           exact: bool) -> np.ndarray:
    """Text and objects for a numeric input. They reach integer and boolean inputs through
    float64, so that they get the checks of numbers ("False" is not True, 1.5 is not 1,
    NaN is refused), and then exactly if numpy can read them so (Python ints beyond 2**53)."""
    try:
        # beyond the target's range: refused below (run, and integer inputs), inf (predict)
        with (np.errstate(over="ignore") if exact or target.kind != "f"
              else contextlib.nullcontext()):
            out = raw.astype(np.float64 if target.kind in "iub" else target)
    except OverflowError as exc:  # a Python int beyond float64
        if target.kind in "iu":
            raise _out_of_range(spec, target, found, _first_outside(raw, target)) from exc
        raise _bad_input(spec, found, f"a value lies beyond the {spec.dtype} range; clean or "
                         "rescale the data") from exc
    except (TypeError, ValueError) as exc:
        raise _bad_input(spec, found, "pass numbers for this input" if target.kind != "b" else
                         "pass 0/1 or True/False for this input (text is read as a number: "
                         "'1' and '0', not 'True')") from exc
    if target.kind == "f":
        if exact:
            _require_exact_objects(raw, out, spec, found)
        return out
    if target.kind == "b":
        _require_bool(out, spec, found)
        return out.astype(target)
    _require_whole(out, spec, found)
    try:
        whole = raw.astype(target)
    except OverflowError as exc:
        raise _out_of_range(spec, target, found, _first_outside(raw, target)) from exc
    except (TypeError, ValueError):  # e.g. "1.0", "1e3": through float64
        _require_range(out, spec, target, found)
        return out.astype(target)
    if not np.array_equal(whole.astype(np.float64), out):  # wrapped (numpy 1.x casts so)
        raise _out_of_range(spec, target, found, _first_outside(raw, target))
    return whole


def _require_bool(arr: np.ndarray, spec: TensorSpec, found: str) -> None:
    bad = ~((arr == 0) | (arr == 1))  # NaN included
    if bad.any():
        raise _bad_input(
            spec, found, f"value {_show(arr[bad][0])} is not a boolean: a bool input takes "
            "0/1 (or True/False) only; map the data yourself (e.g. x != 0) if that is what "
            "the model was trained on")


def _require_whole(arr: np.ndarray, spec: TensorSpec, found: str) -> None:
    finite = arr[np.isfinite(arr)] if arr.size else arr
    if len(finite) < arr.size or not np.all(finite == np.round(finite)):
        raise _bad_input(spec, found, "integer inputs cannot hold NaN or fractions; clean the data")


def _require_range(arr: np.ndarray, spec: TensorSpec, target: np.dtype[Any], found: str
                   ) -> None:
    """Integers or whole floats within the integer ``target``'s range."""
    info = np.iinfo(target)
    if arr.dtype.kind == "b" or not arr.size:
        return
    if arr.dtype.kind in "iu":
        have = np.iinfo(arr.dtype)
        # compared as Python ints: exact whatever numpy's rules for mixed int types
        if (info.min <= have.min and have.max <= info.max) or (
                info.min <= int(arr.min()) and int(arr.max()) <= info.max):
            return
        raise _out_of_range(spec, target, found, next(
            v for v in arr.reshape(-1).tolist() if not info.min <= v <= info.max))
    # floats: the bounds are powers of two, exact in float64
    wide = arr if arr.dtype.itemsize >= 8 else arr.astype(np.float64)
    bad = ~((wide >= float(info.min)) & (wide < float(info.max + 1)))
    if bad.any():
        raise _out_of_range(spec, target, found, arr[bad][0])


def _require_exact(arr: np.ndarray, out: np.ndarray, spec: TensorSpec, found: str, *,
                   handed: bool) -> None:
    """Numbers converted to a float input hold their values: integers it would round and
    finite values beyond its range are refused; so are floats it would round where the
    caller handed an array (Python floats in a list for a float32 input are rounded)."""
    kind = arr.dtype.kind
    if kind in "iu":
        if np.iinfo(arr.dtype).bits - (kind == "i") <= _exact_bits(out.dtype):
            return
        with np.errstate(invalid="ignore", over="ignore"):
            bad = out.astype(arr.dtype) != arr
        if bad.any():
            raise _inexact(spec, found, arr[bad][0], out[bad][0])
    elif kind == "f" and arr.dtype.itemsize > out.dtype.itemsize:
        beyond = np.isinf(out) & np.isfinite(arr)
        if beyond.any():
            raise _beyond(spec, found, arr[beyond][0])
        if handed:
            with np.errstate(invalid="ignore", over="ignore"):
                bad = (out.astype(arr.dtype) != arr) & ~np.isnan(arr)
            if bad.any():
                raise _inexact(spec, found, arr[bad][0], out[bad][0])


def _require_exact_objects(raw: np.ndarray, out: np.ndarray, spec: TensorSpec, found: str
                           ) -> None:
    """Python ints (exact at any size) that the float input would round, and finite values
    beyond its range, among objects or text: looked at one by one, where a float's value
    is large enough to be in doubt."""
    with np.errstate(invalid="ignore"):
        doubt = np.abs(out) >= 2.0 ** _exact_bits(out.dtype)
    for v, o in zip(raw[doubt], out[doubt]):
        if isinstance(v, (bool, np.bool_)):
            continue
        if isinstance(v, (int, np.integer)):
            if int(v) != float(o):  # Python compares int and float exactly
                raise _inexact(spec, found, v, o)
            continue
        try:
            value = float(v)
        except (TypeError, ValueError, OverflowError):
            continue
        if math.isfinite(value) and not math.isfinite(float(o)):
            raise _beyond(spec, found, v)


def _first_outside(raw: np.ndarray, target: np.dtype[Any]) -> Any:
    """The first of some text or objects that lies outside the integer ``target``'s range."""
    info = np.iinfo(target)
    for v in raw.reshape(-1):
        try:
            n = int(v)
        except (TypeError, ValueError, OverflowError):
            try:
                n = int(float(v))
            except (TypeError, ValueError, OverflowError):
                continue
        if not info.min <= n <= info.max:
            return v
    return None


def _show(v: Any) -> str:
    return str(v.item() if isinstance(v, np.generic) else v)


def _out_of_range(spec: TensorSpec, target: np.dtype[Any], found: str, value: Any
                  ) -> InputValidationError:
    info = np.iinfo(target)
    which = "a value" if value is None else f"value {_show(value)}"
    return _bad_input(spec, found, f"{which} lies outside the {spec.dtype} range "
                      f"[{info.min}, {info.max}]; clean or rescale the data")


def _inexact(spec: TensorSpec, found: str, value: Any, rounded: Any) -> InputValidationError:
    bits = _exact_bits(numpy_dtype(spec.dtype))
    return _bad_input(
        spec, found, f"value {_show(value)} cannot be represented exactly as {spec.dtype} (it "
        f"would run as {_show(rounded)}; {spec.dtype} holds integers exactly only up to "
        f"2**{bits}): round or rescale the data yourself if that is acceptable")


def _beyond(spec: TensorSpec, found: str, value: Any) -> InputValidationError:
    big = float(np.finfo(numpy_dtype(spec.dtype)).max)
    return _bad_input(spec, found, f"value {_show(value)} lies beyond the {spec.dtype} range "
                      f"(±{big:.4g}): it would run as infinity; clean or rescale the data")


def dtype_name_or_raw(dtype: np.dtype[Any]) -> str:
    try:
        return dtype_name(dtype)
    except SchemaError:
        return str(dtype)


def _bad_input(spec: TensorSpec, found: str, hint: str) -> InputValidationError:
    return InputValidationError(
        f"input {spec.name!r}: expected {spec.describe()}, got {found}",
        expected=spec.describe(),
        found=found,
        hint=hint,
    )


def to_feeds(data: Any, inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Turn user data (DataFrame, dict of columns/arrays, or array) into ONNX feeds."""
    if not inputs:
        raise SchemaError("the model declares no inputs", expected="at least one input",
                          found="none", hint="re-convert the model")
    if is_dataframe(data):
        if all(s.from_frame for s in inputs):
            _require_columns(data, [c for s in inputs for c in _columns_of(s)])
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


def n_rows(data: Any) -> int:
    if isinstance(data, Mapping):
        first = next(iter(data.values()))
        return len(first)
    return len(data)


def take_rows(data: Any, rows: np.ndarray | Sequence[int]) -> Any:
    """The given rows of a DataFrame, dict of arrays or array, in the same container type."""
    idx = np.asarray(rows, dtype=np.int64)
    if is_dataframe(data):
        return data.iloc[idx]
    if isinstance(data, Mapping):
        return {k: np.asarray(v)[idx] for k, v in data.items()}
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
