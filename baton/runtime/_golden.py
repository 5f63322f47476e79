"""Golden vectors: the ``TensorProto`` files of a bundle's ``test_data_set_0``, read
without the ``onnx`` package (the runtime needs numpy and onnxruntime only).

A ``TensorProto`` (onnx.proto3) holds ``dims`` (1), ``data_type`` (2) and the values in
``raw_data`` (9, little-endian, as ``onnx.numpy_helper.from_array`` writes numbers) or in a
typed field: ``float_data`` (4), ``int32_data`` (5, also for the narrower integers, bool and
float16 bit patterns), ``string_data`` (6), ``int64_data`` (7), ``double_data`` (10),
``uint64_data`` (11). A tensor whose data lies in another file (``data_location`` 14,
``external_data`` 13) is refused: onnx would read it from the working directory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from baton.errors import BundleError, first_line
from baton.manifest import Manifest
from baton.runtime._external import _varint, records
from baton.runtime._files import GOLDEN_DIR, BundleFiles
from baton.schema import TensorSpec

#: TensorProto.DataType -> numpy dtype (little-endian); 8 (STRING) is text
_DTYPES: dict[int, str] = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8",
                           9: "?", 10: "<f2", 11: "<f8", 12: "<u4", 13: "<u8"}
_STRING = 8
_DIMS, _DATA_TYPE, _FLOAT, _INT32, _STRINGS, _INT64 = 1, 2, 4, 5, 6, 7
_RAW, _DOUBLE, _UINT64, _EXTERNAL_DATA, _DATA_LOCATION = 9, 10, 11, 13, 14


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int for varints, bytes for the others."""
    for number, wire, value in records(buf, 0, len(buf)):
        yield number, wire, value if wire == 0 else bytes(buf[value[0]:value[1]])


def _varints(data: bytes) -> list[int]:
    buf, pos, out = memoryview(data), 0, []
    while pos < len(buf):
        value, pos = _varint(buf, pos, len(buf))
        out.append(value)
    return out


def _signed(values: list[int]) -> list[int]:
    """Varints of int32/int64 fields: negative numbers are 64-bit two's complement."""
    return [v - (1 << 64) if v >= 1 << 63 else v for v in values]


def parse_tensor(data: bytes) -> tuple[str, np.ndarray]:
    """(name, values) of a serialized TensorProto; text as an object array of ``str``."""
    dims: list[int] = []
    data_type = 0
    name = ""
    raw: bytes | None = None
    typed: dict[int, list[Any]] = {}
    for number, wire, value in _fields(memoryview(data)):
        if number == _DIMS:
            dims += _signed(_varints(value)) if wire == 2 else _signed([value])
        elif number == _DATA_TYPE and wire == 0:
            data_type = value
        elif number == 8 and wire == 2:
            name = value.decode("utf-8")
        elif number == _RAW and wire == 2:
            raw = value
        elif number in (_DATA_LOCATION,) and wire == 0 and value == 1:
            raise ValueError("its data lies in another file (external data), which golden "
                             "vectors never do")
        elif number == _EXTERNAL_DATA:
            raise ValueError("its data lies in another file (external data), which golden "
                             "vectors never do")
        elif number in (_FLOAT, _INT32, _STRINGS, _INT64, _DOUBLE, _UINT64):
            typed.setdefault(number, []).append((wire, value))
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in {dims}")
    count = math.prod(dims)
    if data_type == _STRING:
        texts = [v.decode("utf-8") for w, v in typed.get(_STRINGS, []) if w == 2]
        if len(texts) != count:
            raise ValueError(f"{len(texts)} strings for shape {dims}")
        out = np.empty(count, dtype=object)
        for i, text in enumerate(texts):  # one by one: a list would pass through numpy's
            out[i] = text                 # fixed-width text, which drops trailing NULs
        return name, out.reshape(dims)
    if data_type not in _DTYPES:
        raise ValueError(f"unsupported data_type {data_type}")
    dtype = np.dtype(_DTYPES[data_type])
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise ValueError(f"{len(raw)} bytes of raw_data for {count} values of {dtype}")
        values = np.frombuffer(raw, dtype=dtype)
    else:
        values = _typed_values(typed, data_type, dtype)
        if values.size != count:
            raise ValueError(f"{values.size} values for shape {dims}")
    return name, values.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def _typed_values(typed: Mapping[int, list[Any]], data_type: int, dtype: np.dtype[Any]
                  ) -> np.ndarray:
    def packed(field: int, fixed: str | None) -> list[Any]:
        out: list[Any] = []
        for wire, value in typed.get(field, []):
            if fixed is not None:
                out += np.frombuffer(value, dtype=fixed).tolist()
            else:
                out += _varints(value) if wire == 2 else [value]
        return out

    if data_type == 1:
        return np.asarray(packed(_FLOAT, "<f4"), dtype=dtype)
    if data_type == 11:
        return np.asarray(packed(_DOUBLE, "<f8"), dtype=dtype)
    if data_type == 7:
        return np.asarray(_signed(packed(_INT64, None)), dtype=dtype)
    if data_type in (12, 13):
        return np.asarray(packed(_UINT64, None), dtype=dtype)
    ints = _signed(packed(_INT32, None))
    if data_type == 10:  # float16: bit patterns in int32_data
        return np.asarray(ints, dtype="<u2").view("<f2")
    return np.asarray(ints, dtype=np.int64).astype(dtype)


def read_golden(files: BundleFiles, manifest: Manifest
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The golden inputs and outputs of a bundle, by tensor name (those it holds)."""

    def read(prefix: str, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
        out = {}
        for i, spec in enumerate(specs):
            name = f"{GOLDEN_DIR}/{prefix}_{i}.pb"
            if not files.exists(name):
                continue
            try:
                _, out[spec.name] = parse_tensor(files.read(name))
            except BundleError:
                raise
            except (ValueError, TypeError, OverflowError) as exc:  # MalformedModel too
                raise BundleError(
                    f"{name} in {files.path} is not a golden tensor baton can read",
                    expected="a serialized onnx.TensorProto holding its own data",
                    found=first_line(exc, 200), hint="re-create the bundle with 'baton convert'",
                ) from exc
        return out

    return read("input", manifest.inputs), read("output", manifest.outputs)
