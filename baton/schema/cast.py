"""Casting one input's values to its spec, value for value, or refusing them with an error
that names the input, what it expects and what it found.

Only numpy here.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Any

import numpy as np

from baton.errors import InputValidationError, first_line
from baton.schema.spec import TensorSpec, dtype_name_or_raw, numpy_dtype


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
            found=f"{type(values).__name__}: {first_line(exc, 200)}",
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
    try:  # onnxruntime takes text as UTF-8: a lone surrogate ("\ud800") has no encoding
        "".join(out.reshape(-1)).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        raise _bad_input(spec, found, f"{bad!r} is a lone surrogate, which is no text UTF-8 "
                         "can encode: replace it (s.encode('utf-8', 'replace').decode() makes it "
                         "'?'), or repair the text where it was decoded"
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



def _bad_input(spec: TensorSpec, found: str, hint: str) -> InputValidationError:
    return InputValidationError(
        f"input {spec.name!r}: expected {spec.describe()}, got {found}",
        expected=spec.describe(),
        found=found,
        hint=hint,
    )
