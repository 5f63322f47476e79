"""The Open Inference Protocol (v2) tensor formats: requests in, responses out.

numpy and the standard library only; no web framework. A request body is JSON, or JSON
followed by raw tensor bytes (the binary tensor data extension: the JSON's length in the
``Inference-Header-Content-Length`` header, each binary input's byte count in its
``parameters.binary_data_size``). Every problem with a request is an :class:`HttpError`
with its status code and a one-line message naming what was expected and what was found.
"""

from __future__ import annotations

import json
import math
import reprlib
import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baton.errors import BatonError
from baton.schema import BATCH, TensorSpec, to_jsonable

#: baton dtype -> Open Inference Protocol datatype
DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32",
             "bool": "BOOL", "string": "BYTES"}
#: Open Inference Protocol datatype -> numpy dtype (little-endian, as the binary
#: extension sends them); BYTES are object arrays of str
NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
#: the strings that stand for the non-finite floats in JSON, which has no literal for them
#: (as in baton's own JSON files); accepted in FP16/FP32/FP64 ``data`` and written in responses
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: what a JSON ``data`` list of each datatype must hold, in words
_WORDS = {"BOOL": "true/false", "BYTES": "strings",
          "FP": "numbers (or the strings 'NaN', 'Infinity', '-Infinity')"}
#: nesting of ``data`` lists beyond this is refused (numpy takes at most 64 axes)
_MAX_DEPTH = 64
#: values from the request quoted in error messages: short, and never deeply recursive
_brief = reprlib.Repr()
_brief.maxlevel, _brief.maxlist, _brief.maxdict, _brief.maxstring = 2, 6, 4, 60
_brief.maxlong, _brief.maxother = 40, 60


class HttpError(Exception):
    """A request the server answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @classmethod
    def bad_request(cls, exc: BatonError) -> HttpError:
        """A 400 from one of baton's own errors, on one line."""
        parts = [exc.message]
        if exc.expected is not None:
            parts.append(f"expected {exc.expected}")
        if exc.found is not None:
            parts.append(f"found {exc.found}")
        if exc.hint:
            parts.append(exc.hint)
        return cls(400, "; ".join(parts))


def oip_datatype(dtype: str) -> str:
    """The protocol's datatype for a baton dtype name."""
    return DATATYPES[dtype]


def oip_shape(spec: TensorSpec) -> list[int]:
    """A spec's shape as the protocol writes it: ``-1`` for the batch and other free axes."""
    return [d if isinstance(d, int) else -1 for d in spec.shape]


#: numpy dtype -> Open Inference Protocol datatype, for the numeric dtypes
_BY_DTYPE = {dt: name for name, dt in NUMPY.items() if name != "BYTES"}


def array_datatype(arr: np.ndarray) -> str:
    found = _BY_DTYPE.get(arr.dtype)
    if found is not None:
        return found
    if arr.dtype.kind in "USO":
        return "BYTES"
    for name, dt in NUMPY.items():
        if name != "BYTES" and arr.dtype == dt:
            return name
    raise ValueError(f"no Open Inference Protocol datatype for numpy {arr.dtype}")


def tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": oip_datatype(spec.dtype), "shape": oip_shape(spec)}


@dataclass
class InferRequest:
    """A decoded ``/infer`` request: one array per model input, and what to send back."""

    feeds: dict[str, np.ndarray]
    outputs: list[str]
    binary: set[str] = field(default_factory=set)
    id: str | None = None


def decode_request(body: bytes, header_length: str | None, inputs: Sequence[TensorSpec],
                   outputs: Sequence[str]) -> InferRequest:
    """Parse and validate an ``/infer`` body against the model's inputs and outputs."""
    json_part, binary = _split(body, header_length)
    try:
        request = json.loads(json_part)
    except RecursionError:
        raise HttpError(400, "the request body is JSON nested too deeply for this server: "
                        "expected an inference request (objects and lists a few levels "
                        "deep)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int of > 4300 digits
        raise HttpError(400, f"the request body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(request, dict):
        raise HttpError(400, "the request must be a JSON object with 'inputs'; found "
                        f"{_kind(request)}")
    parameters = _object(request.get("parameters", {}), "'parameters'")
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not all(isinstance(t, dict) for t in raw_inputs):
        raise HttpError(400, "'inputs' must be a list of tensors {name, shape, datatype, data}")
    by_name = {s.name: s for s in inputs}
    names = [t.get("name") for t in raw_inputs]
    odd = [n for n in names if not isinstance(n, str)]
    if odd:
        raise HttpError(400, "each of 'inputs' must have a 'name', a string: expected one of "
                        f"{_names([s.name for s in inputs])}, found {_quoted(odd[0])}")
    counts = Counter(names)
    unknown = [n for n in names if n not in by_name]
    missing = [s.name for s in inputs if s.name not in counts]
    repeated = sorted(n for n, k in counts.items() if k > 1)
    if unknown or missing or repeated:
        what = "; ".join(w for w in (
            f"unknown {_names(unknown)}" if unknown else "",
            f"missing {_names(missing)}" if missing else "",
            f"repeated {_names(repeated)}" if repeated else "") if w)
        raise HttpError(400, f"the inputs do not match the model's ({what}): expected "
                        f"{_names([s.name for s in inputs])}, found {_names(names) or 'none'}")
    feeds: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in raw_inputs:
        spec = by_name[tensor["name"]]
        feeds[spec.name], offset = _decode_tensor(tensor, spec, binary, offset)
    if offset != len(binary):
        raise HttpError(400, f"the body holds {len(binary)} bytes of binary tensor data, but "
                        f"the inputs' binary_data_size add up to {offset}")
    _check_batch(feeds, inputs)
    wanted, binary_out = _requested_outputs(request.get("outputs"), outputs,
                                            bool(parameters.get("binary_data_output", False)))
    request_id = request.get("id")
    if request_id is not None and (not isinstance(request_id, (str, int))
                                   or isinstance(request_id, bool)):
        raise HttpError(400, f"'id' must be a string; found {_quoted(request_id)}")
    return InferRequest(feeds, wanted, binary_out,
                        None if request_id is None else str(request_id))


class _Fallback(Exception):
    """Raised by the compiled decoder on anything but a plain valid request: the request is
    then decoded by :func:`decode_request`, which says what is wrong."""


_EMPTY: dict[str, Any] = {}
_MISSING: Any = object()
_FLOAT_TYPES = frozenset({float, int})
_INT_TYPES = frozenset({int})
_BOOL_TYPES = frozenset({bool})
_STR_TYPES = frozenset({str})


class _InputPlan:
    """What one input accepts, worked out once: datatype, rank, fixed axes, value types."""

    __slots__ = ("name", "where", "datatype", "dtype", "rank", "fixed", "batch", "types",
                 "group", "low", "high", "most", "lane")

    def __init__(self, spec: TensorSpec) -> None:
        self.name = spec.name
        self.where = f"input {spec.name!r}"
        self.datatype = oip_datatype(spec.dtype)
        self.dtype = NUMPY[self.datatype]
        self.rank = len(spec.shape)
        self.fixed = tuple((axis, d) for axis, d in enumerate(spec.shape) if isinstance(d, int))
        self.batch = bool(spec.shape) and spec.shape[0] == BATCH
        kind = self.dtype.kind
        self.group = ("FP" if kind == "f" else "BOOL" if kind == "b"
                      else "BYTES" if kind == "O" else "INT")
        self.types = {"FP": _FLOAT_TYPES, "BOOL": _BOOL_TYPES, "BYTES": _STR_TYPES,
                      "INT": _INT_TYPES}[self.group]
        self.low = self.high = 0
        self.most = math.inf
        if self.group == "INT":
            info = np.iinfo(self.dtype)
            self.low, self.high = int(info.min), int(info.max)
        elif self.group == "FP" and self.dtype.itemsize < 8:
            self.most = float(np.finfo(self.dtype).max)
        #: a column ([N, 1] or [N]) of float64, integers or booleans: flat JSON data for it
        #: takes the shortest way (RequestDecoder._fast)
        column = self.batch and (self.rank == 1 or (self.rank == 2 and self.fixed == ((1, 1),)))
        self.lane = column and (self.group in ("INT", "BOOL") or (
            self.group == "FP" and self.dtype.itemsize == 8))

    def shape(self, value: Any) -> list[int]:
        if type(value) is not list or len(value) != self.rank:
            raise _Fallback
        for d in value:
            if type(d) is not int or d < 0:
                raise _Fallback
        for axis, d in self.fixed:
            if value[axis] != d:
                raise _Fallback
        if self.batch and value[0] < 1:
            raise _Fallback
        return value

    def from_json(self, data: Any, count: int) -> np.ndarray:
        if type(data) is not list:
            raise _Fallback
        items: list[Any] = data
        if items and type(items[0]) is list:
            try:
                items = _flatten(data, self.where, "")
            except HttpError:
                raise _Fallback from None
        if len(items) != count or count == 0 or not set(map(type, items)) <= self.types:
            raise _Fallback
        group = self.group
        if group == "FP":
            arr = np.array(items, dtype=np.float64)  # OverflowError: an int beyond float64
            if self.most != math.inf and not bool(
                    (np.abs(arr[np.isfinite(arr)]) <= self.most).all()):
                raise _Fallback
            return arr if self.dtype.itemsize == 8 else arr.astype(self.dtype)
        if group == "INT":
            if min(items) < self.low or max(items) > self.high:
                raise _Fallback
            return np.array(items, dtype=self.dtype)
        if group == "BOOL":
            return np.array(items, dtype=self.dtype)
        try:
            "".join(items).encode("utf-8")
        except UnicodeEncodeError:
            raise _Fallback from None
        out = np.empty(count, dtype=object)
        out[:] = items
        return out


class RequestDecoder:
    """:func:`decode_request`, compiled for one model's inputs and outputs.

    A valid request is decoded with checks worked out once per input (datatype, rank, fixed
    axes, value types) and no error message formatted; anything else goes to
    :func:`decode_request`, so a bad request gets exactly its answer."""

    def __init__(self, inputs: Sequence[TensorSpec], outputs: Sequence[str]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._plans = {s.name: _InputPlan(s) for s in self.inputs}
        self._batched = [s.name for s in self.inputs if s.shape and s.shape[0] == BATCH]

    def __call__(self, body: bytes, header_length: str | None) -> InferRequest:
        try:
            return self._fast(body, header_length)
        except (_Fallback, ValueError, TypeError, OverflowError, KeyError, RecursionError,
                MemoryError):
            return decode_request(body, header_length, self.inputs, self.outputs)

    def _fast(self, body: bytes, header_length: str | None) -> InferRequest:
        json_part, binary = _split(body, header_length)  # its errors come first anyway
        request = json.loads(json_part)
        if type(request) is not dict:
            raise _Fallback
        parameters = request.get("parameters", _EMPTY)
        if type(parameters) is not dict:
            raise _Fallback
        raw_inputs = request.get("inputs")
        plans = self._plans
        if type(raw_inputs) is not list or len(raw_inputs) != len(plans):
            raise _Fallback
        feeds: dict[str, np.ndarray] = {}
        #: the numeric columns sent as flat lists, by dtype: their plans, all their values
        #: and their rows, made into one array of shape [columns, rows(, 1)]
        columns: dict[np.dtype[Any], tuple[list[_InputPlan], list[Any], int]] = {}
        offset = 0
        for tensor in raw_inputs:
            if type(tensor) is not dict:
                raise _Fallback
            plan = plans.get(tensor.get("name"))  # type: ignore[arg-type]
            if plan is None or plan.name in feeds or tensor.get("datatype") != plan.datatype:
                raise _Fallback
            shape = tensor.get("shape")
            params = tensor.get("parameters", _MISSING)
            if plan.lane and plan.group != "BOOL" and type(params) is dict \
                    and len(params) == 1 and "data" not in tensor:
                # the shortest way in binary: a column of native numbers, read in place
                size = params.get("binary_data_size")
                if type(shape) is not list or len(shape) != plan.rank or type(size) is not int:
                    raise _Fallback
                rows = shape[0]
                if type(rows) is not int or rows < 1 or size != rows * plan.dtype.itemsize \
                        or offset + size > len(binary) or not plan.dtype.isnative or (
                        plan.rank == 2 and (type(shape[1]) is not int or shape[1] != 1)):
                    raise _Fallback
                feeds[plan.name] = np.frombuffer(binary, dtype=plan.dtype, count=rows,
                                                 offset=offset).reshape(shape)
                offset += size
                continue
            data = tensor.get("data")
            if plan.lane and params is _MISSING and type(data) is list and data \
                    and type(data[0]) is not list:
                # the shortest way: a column of numbers as a flat list, checked inline
                if type(shape) is not list or len(shape) != plan.rank:
                    raise _Fallback
                rows = shape[0]
                if type(rows) is not int or rows < 1 or len(data) != rows or (
                        plan.rank == 2 and (type(shape[1]) is not int or shape[1] != 1)):
                    raise _Fallback
                if (type(data[0]) not in plan.types if rows == 1
                        else not set(map(type, data)) <= plan.types):
                    raise _Fallback
                if plan.group == "INT" and (min(data) < plan.low or max(data) > plan.high):
                    raise _Fallback
                # made below, with the other columns of its dtype, as one array
                group = columns.get(plan.dtype)
                if group is None:
                    columns[plan.dtype] = group = ([], [], rows)
                elif group[2] != rows:
                    raise _Fallback  # rows differ: decode_request says so
                group[0].append(plan)
                group[1].extend(data)
                feeds[plan.name] = None  # type: ignore[assignment]
                continue
            shape = plan.shape(shape)
            count = math.prod(shape)
            params = tensor.get("parameters", _EMPTY)
            size = None
            if type(params) is not dict:
                raise _Fallback
            if params:
                if any(k.startswith("shared_memory") for k in params):
                    raise _Fallback
                size = params.get("binary_data_size")
            if size is not None:
                if (type(size) is not int or size < 0 or "data" in tensor
                        or offset + size > len(binary)):
                    raise _Fallback
                try:
                    arr = _from_binary(binary[offset:offset + size], plan.datatype, count,
                                       plan.where)
                except HttpError:
                    raise _Fallback from None
                offset += size
            elif "data" in tensor:
                arr = plan.from_json(tensor["data"], count)
            else:
                raise _Fallback
            feeds[plan.name] = arr.reshape(shape)
        if offset != len(binary):
            raise _Fallback
        for dtype, (group_plans, values, rows) in columns.items():
            # OverflowError (an int beyond float64): decode_request explains it
            block = np.array(values, dtype=dtype).reshape(len(group_plans), rows)
            for plan, column in zip(group_plans, block):
                feeds[plan.name] = column if plan.rank == 1 else column.reshape(rows, 1)
        batched = self._batched
        if len(batched) > 1:
            rows = feeds[batched[0]].shape[0]
            if any(feeds[n].shape[0] != rows for n in batched):
                raise _Fallback
        # the inputs are valid: past here decode_request would answer the same errors
        wanted, binary_out = _requested_outputs(
            request.get("outputs"), self.outputs,
            bool(parameters.get("binary_data_output", False)))
        request_id = request.get("id")
        if request_id is not None and type(request_id) is not str:
            if type(request_id) is not int:
                raise _Fallback
            request_id = str(request_id)
        return InferRequest(feeds, wanted, binary_out, request_id)


def _names(names: Sequence[Any], most: int = 6) -> str:
    shown = ", ".join(map(_brief.repr, names[:most]))
    return shown + (f", … ({len(names)} in all)" if len(names) > most else "")


def _kind(value: Any) -> str:
    """A JSON value's type, in JSON's words."""
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(
                type(value), type(value).__name__)


def _quoted(value: Any) -> str:
    """A value from the request for an error message: its JSON type and a short repr."""
    return _kind(value) if value is None else f"{_kind(value)} {_brief.repr(value)}"


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    digits = header_length.strip()
    n = int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 20 else -1
    if not 0 <= n <= len(body):
        raise HttpError(400, f"Inference-Header-Content-Length is {_brief.repr(header_length)}:"
                        f" expected a byte count from 0 to the body's {len(body)} bytes")
    return body[:n], body[n:]


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise HttpError(400, f"{what} must be a JSON object; found {_kind(value)}")
    return value


def _decode_tensor(tensor: Mapping[str, Any], spec: TensorSpec, binary: bytes,
                   offset: int) -> tuple[np.ndarray, int]:
    where = f"input {spec.name!r}"
    want = oip_datatype(spec.dtype)
    datatype = tensor.get("datatype")
    if datatype != want:
        raise HttpError(400, f"{where}: expected datatype {want}, found "
                        f"{_brief.repr(datatype)}")
    shape = _shape(tensor.get("shape"), spec, where)
    count = math.prod(shape)
    params = _object(tensor.get("parameters", {}), f"{where}: 'parameters'")
    if any(k.startswith("shared_memory") for k in params):
        raise HttpError(400, f"{where}: shared-memory tensors are not supported; send the "
                        "data in the body")
    size = params.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise HttpError(400, f"{where}: binary_data_size must be a byte count; found "
                            f"{_quoted(size)}")
        if "data" in tensor:
            raise HttpError(400, f"{where}: both 'data' and binary_data_size given; send one")
        if offset + size > len(binary):
            raise HttpError(400, f"{where}: binary_data_size {size} runs past the end of the "
                            f"body ({len(binary) - offset} bytes left)")
        arr = _from_binary(binary[offset:offset + size], want, count, where)
        offset += size
    elif "data" in tensor:
        arr = _from_json(tensor["data"], want, count, where)
    else:
        raise HttpError(400, f"{where}: no 'data' (nor binary_data_size in 'parameters')")
    return arr.reshape(shape), offset


def _shape(value: Any, spec: TensorSpec, where: str) -> list[int]:
    if not isinstance(value, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        raise HttpError(400, f"{where}: 'shape' must be a list of sizes, e.g. "
                        f"{[1 if d == -1 else d for d in oip_shape(spec)]}; found "
                        f"{_quoted(value)}")
    expected = f"shape {oip_shape(spec)} (-1: any size)"
    if len(value) != len(spec.shape):
        raise HttpError(400, f"{where}: expected {expected}, found shape "
                        f"{_brief.repr(value)} (rank {len(value)}, not {len(spec.shape)})")
    for axis, (want, got) in enumerate(zip(spec.shape, value)):
        if isinstance(want, int) and want != got:
            raise HttpError(400, f"{where}: expected {expected}, found shape {value} (axis "
                            f"{axis} must be {want})")
    if spec.shape and spec.shape[0] == BATCH and value[0] < 1:
        raise HttpError(400, f"{where}: expected at least one row, found shape {value}")
    return value


def _from_json(data: Any, datatype: str, count: int, where: str) -> np.ndarray:
    """A JSON ``data`` list (flat, or nested with rows of equal length) as a flat array."""
    target = NUMPY[datatype]
    group = "FP" if target.kind == "f" else datatype if datatype in _WORDS else "INT"
    words = _WORDS.get(group, "integers")
    items = _flatten(data, where, words)
    if len(items) != count:
        raise HttpError(400, f"{where}: the shape holds {count} element"
                        f"{'' if count == 1 else 's'}, but 'data' has {len(items)}")
    if group == "FP":
        wrong = [v for v in items if type(v) not in (float, int)
                 and not (type(v) is str and v in NON_FINITE)]
    else:
        want = {"BOOL": bool, "BYTES": str}.get(group, int)
        wrong = [v for v in items if type(v) is not want]
    if wrong:
        raise HttpError(400, f"{where}: {datatype} data must be {words}; found "
                        f"{_value_word(wrong[0])} such as {_brief.repr(wrong[:3])}")
    if group == "BYTES":
        try:
            "".join(items).encode("utf-8")
        except UnicodeEncodeError:
            raise HttpError(400, f"{where}: BYTES data must be text; found a string with a "
                            "lone UTF-16 surrogate (\\ud800-\\udfff), which is not "
                            "text") from None
        out = np.empty(count, dtype=object)
        out[:] = items
        return out
    if group == "INT":
        info = np.iinfo(target)
        low, high = (min(items), max(items)) if items else (0, 0)
        if low < info.min or high > info.max:
            raise HttpError(400, f"{where}: {datatype} values must lie in [{info.min}, "
                            f"{info.max}]; found {_brief.repr(low)} to {_brief.repr(high)}")
        return np.array(items, dtype=target)
    if group == "BOOL":
        return np.array(items, dtype=target)
    if any(type(v) is str for v in items):
        items = [NON_FINITE[v] if type(v) is str else v for v in items]
    most = float(np.finfo(target).max)
    try:
        wide = np.array(items, dtype=np.float64)
        fits = bool((np.abs(wide[np.isfinite(wide)]) <= most).all())
    except OverflowError:  # an integer beyond float64's range
        fits = False
    if not fits:
        raise HttpError(400, f"{where}: {datatype} values must lie within ±{most:g} (or be "
                        "'NaN', 'Infinity', '-Infinity'); found a larger number")
    return wide.astype(target)


def _flatten(data: Any, where: str, words: str) -> list[Any]:
    """The leaves of a flat or regularly nested list, in row-major order (no recursion)."""
    if not isinstance(data, list):
        raise HttpError(400, f"{where}: 'data' must be a list of {words}, flat or nested; "
                        f"found {_quoted(data)}")
    items: list[Any] = data
    for _ in range(_MAX_DEPTH):
        lists = sum(type(v) is list for v in items)
        if lists == 0:
            return items
        if lists != len(items) or len({len(v) for v in items}) > 1:
            raise HttpError(400, f"{where}: 'data' must be a flat or nested list of {words}, "
                            "with rows of equal length")
        items = [v for row in items for v in row]
    raise HttpError(400, f"{where}: 'data' is nested over {_MAX_DEPTH} lists deep; send it "
                    "flat, in row-major order")


def _value_word(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return "numbers with a decimal point"
    return {bool: "true/false", str: "strings", float: "fractions", int: "integers",
            list: "lists", dict: "objects", type(None): "nulls"}.get(type(value), "values")


def _from_binary(raw: bytes, datatype: str, count: int, where: str) -> np.ndarray:
    if datatype == "BYTES":
        items: list[str] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                break
            (n,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + n > len(raw):
                pos = len(raw) + 1
                break
            try:
                items.append(raw[pos:pos + n].decode("utf-8"))
            except UnicodeDecodeError:
                raise HttpError(400, f"{where}: BYTES element {len(items)} is not UTF-8 "
                                "text") from None
            pos += n
        if pos != len(raw):
            raise HttpError(400, f"{where}: BYTES data must be elements each prefixed by its "
                            "4-byte little-endian length; the bytes do not parse so")
        if len(items) != count:
            raise HttpError(400, f"{where}: the shape holds {count} elements, but the binary "
                            f"data has {len(items)}")
        out = np.empty(count, dtype=object)
        out[:] = items
        return out
    target = NUMPY[datatype]
    if len(raw) != count * target.itemsize:
        raise HttpError(400, f"{where}: the shape holds {count} {datatype} elements "
                        f"({count * target.itemsize} bytes), but binary_data_size is "
                        f"{len(raw)}")
    if datatype == "BOOL":
        return np.frombuffer(raw, dtype=np.uint8) != 0
    return np.frombuffer(raw, dtype=target).astype(target.newbyteorder("="))


def _check_batch(feeds: Mapping[str, np.ndarray], inputs: Sequence[TensorSpec]) -> None:
    rows = {s.name: feeds[s.name].shape[0] for s in inputs if s.shape and s.shape[0] == BATCH}
    if len(set(rows.values())) > 1:
        raise HttpError(400, "the inputs must have the same number of rows (the first axis); "
                        "found " + ", ".join(f"{k} {v}" for k, v in rows.items()))


def _requested_outputs(value: Any, outputs: Sequence[str],
                       binary_default: bool) -> tuple[list[str], set[str]]:
    if value is None:
        return list(outputs), set(outputs) if binary_default else set()
    if not isinstance(value, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in value):
        raise HttpError(400, "'outputs' must be a list of {name, parameters}")
    names = [o["name"] for o in value]
    unknown = [n for n in names if n not in outputs]
    if unknown:
        raise HttpError(400, f"unknown output {', '.join(map(repr, unknown))}: expected one "
                        f"of {', '.join(map(repr, outputs))}")
    binary = set()
    for o in value:
        params = _object(o.get("parameters", {}), f"output {o['name']!r}: 'parameters'")
        if params.get("classification"):
            raise HttpError(400, f"output {o['name']!r}: the classification extension is not "
                            "supported; request the output itself")
        if any(k.startswith("shared_memory") for k in params):
            raise HttpError(400, f"output {o['name']!r}: shared-memory outputs are not "
                            "supported")
        if params.get("binary_data", binary_default):
            binary.add(o["name"])
    return list(dict.fromkeys(names)), binary


def encode_response(model_name: str, request: InferRequest,
                    results: Mapping[str, np.ndarray],
                    model_version: str | None = None) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    response: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        response["model_version"] = model_version
    if request.id is not None:
        response["id"] = request.id
    tensors = []
    chunks: list[bytes] = []
    for name in request.outputs:
        arr = np.asarray(results[name])
        tensor: dict[str, Any] = {"name": name, "datatype": array_datatype(arr),
                                  "shape": list(arr.shape)}
        if name in request.binary:
            raw = _to_binary(arr)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = _to_list(arr)
        tensors.append(tensor)
    response["outputs"] = tensors
    # strict JSON: NaN and the infinities are already the strings 'NaN', 'Infinity' and
    # '-Infinity' (see _to_list), which Triton's clients read back as floats
    header = json.dumps(response, separators=(",", ":"), allow_nan=False).encode()
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def _to_list(arr: np.ndarray) -> list[Any]:
    flat = arr.reshape(-1)
    if arr.dtype.kind in "SO":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
    if arr.dtype.kind in "fc" and not np.isfinite(flat).all():
        return [to_jsonable(v) for v in flat.tolist()]
    return flat.tolist()


def _to_binary(arr: np.ndarray) -> bytes:
    if arr.dtype.kind in "USO":
        parts = []
        for v in arr.reshape(-1):
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    if arr.dtype.kind == "b":
        return arr.astype(np.uint8).tobytes()
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
