"""Fuzz ``Session.run`` and ``Session.predict`` with arbitrary feeds: arrays of every dtype
(big-endian, complex, dates, structured, object, text, bytes; odd shapes), lists, nested
and ragged lists, scalars, None, dicts with wrong, extra or missing keys.

The only exception allowed is a BatonError. When a call succeeds, every value that the
input's dtype can hold must come out as that value: the outputs must equal those of the
same values fed as correctly typed native arrays (the bundles' graphs are Identity, so
that is also what the outputs must be), and a value the dtype cannot hold (an integer out
of range or beyond a float's exact integers, a boolean other than 0/1, bytes that are not
UTF-8, an object that is neither a number nor text) must have been refused. Feeds of
well-formed, exactly representable values must run."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from baton.errors import BatonError
from baton.runtime import Session
from baton.schema import TensorSpec
from tests.conftest import identity_bundle
from tests.fuzz import FUZZ

DTYPES = ("float32", "float64", "int64", "int32", "bool", "string")
NATIVE: dict[str, Any] = {"float32": np.float32, "float64": np.float64, "int64": np.int64,
                          "int32": np.int32, "bool": np.bool_, "string": object}


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """Six [N, 2] inputs, one per dtype (named after it), for run."""
    specs = [TensorSpec(t, t, ("N", 2)) for t in DTYPES]
    return Session(identity_bundle(tmp_path_factory.mktemp("wide") / "wide.baton", specs))


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """Six [N, 1] inputs read from columns named after their dtypes, for predict."""
    specs = [TensorSpec(t, t, ("N", 1), column=t) for t in DTYPES]
    return Session(identity_bundle(tmp_path_factory.mktemp("tab") / "tab.baton", specs))


# -- what is fed --------------------------------------------------------------------------

def magnitudes(bits: int) -> st.SearchStrategy[int]:
    return st.integers(0, bits).flatmap(lambda b: st.one_of(
        st.integers(-(2**b), 2**b), st.integers(-2, 2).map(lambda d: 2**b + d),
        st.integers(-2, 2).map(lambda d: -(2**b) + d)))


#: integers of every size, and those just past where a float's integers stop being exact
INTS = st.one_of(magnitudes(70), st.sampled_from(
    [2**53 + 1, -(2**53) - 3, 2**24 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64 + 1, 2**31, 2]))
FLOATS = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1.0, 0.5, 2.0**53 + 2, 1e39, -1e39,
                                                 2.0**63, -(2.0**63), 3.4e38]))
TEXT = st.text(max_size=3)
BYTES = st.one_of(st.binary(max_size=3), TEXT.map(str.encode))
ODD = st.one_of(st.just(1 + 2j), st.builds(object), st.just({"a": 1}), st.dates())
SCALARS = st.one_of(st.booleans(), INTS, FLOATS, TEXT, BYTES, st.none(), ODD)
#: what one list holds: mostly one kind of value, as real data does
LIST_ELEMENTS = [INTS, st.one_of(FLOATS, INTS), FLOATS, st.one_of(TEXT, ODD), st.booleans(),
                 TEXT, BYTES, st.integers(0, 1), SCALARS]
#: the dtypes next to each declared one: wider, narrower, unsigned, other kinds
NEAR = {t: [np.dtype(d) for d in near] for t, near in {
    "float32": ("f4", "i4", "u4", "i8", "f2", "f8", "?"),
    "float64": ("f8", "i8", "u8", "f2", "f4", "?", "U4"),
    "int64": ("i8", "u8", "f8", "u4", "f4", "?", "U4"),
    "int32": ("i4", "i8", "u8", "u4", "f8", "f4", "?"),
    "bool": ("?", "i8", "f8", "u1", "f2", "U1", "S1"),
    "string": ("U3", "S3", [("a", "f8")], "O", "U1", "S1", "i8"),
}.items()}
ARRAY_DTYPES = st.one_of(
    hnp.scalar_dtypes(), hnp.byte_string_dtypes(max_len=3), hnp.unicode_string_dtypes(max_len=3),
    hnp.array_dtypes(max_size=2), st.sampled_from([np.dtype(np.longdouble), np.dtype("O")]),
).flatmap(lambda d: st.sampled_from([d, d.newbyteorder("S")]))


def native(dtype: str, n: int, k: int) -> st.SearchStrategy[np.ndarray]:
    """An array of exactly the declared dtype (object arrays of str for text)."""
    if dtype == "string":
        return hnp.arrays(np.dtype("O"), (n, k), elements=TEXT)
    return hnp.arrays(np.dtype(NATIVE[dtype]), (n, k))


#: dtypes no input takes, whatever their values
UNFIT = [np.dtype(d) for d in ("c16", "c8", "M8[s]", "M8[D]", "m8[s]")] + [
    np.dtype([("a", "f8")]), np.dtype([("a", "i4"), ("b", "U2")])]
FORMS = ["near"] * 6 + ["native", "unfit", "array", "object", "numbers", "list", "list", "junk"]


@st.composite
def carrier(draw: st.DrawFn, dtype: str, n: int, k: int) -> Any:
    """Values for one input of ``dtype`` and shape [n, k]: mostly of that shape."""
    shape: Any = draw(st.sampled_from([(n, k)] * 8 + [(n,), None]))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    form = draw(st.sampled_from(FORMS))
    order = draw(st.sampled_from("S="))
    if form == "native":
        return draw(hnp.arrays(np.dtype(NATIVE[dtype]) if dtype != "string" else np.dtype("U3"),
                               shape))
    if form in ("near", "unfit", "array"):  # every value drawn (no fill): no run of zeros
        if form == "array":
            return draw(hnp.arrays(draw(ARRAY_DTYPES), shape, fill=st.nothing()))
        near = draw(st.sampled_from(NEAR[dtype] if form == "near" else UNFIT))
        return draw(hnp.arrays(near.newbyteorder(order), shape, fill=st.nothing()))
    if form in ("object", "numbers"):
        return draw(hnp.arrays(np.dtype("O"), shape, fill=st.nothing(), elements=SCALARS
                               if form == "object" else st.one_of(INTS, FLOATS, st.booleans())))
    if form == "list":
        elements = draw(st.sampled_from(LIST_ELEMENTS))
        values = draw(hnp.arrays(np.dtype("O"), shape, elements=elements,
                                 fill=st.nothing())).tolist()
        if (isinstance(values, list) and len(values) > 1 and isinstance(values[0], list)
                and values[0] and draw(st.booleans())):
            values[0] = values[0][:-1]  # ragged
        return values
    return draw(st.one_of(SCALARS, st.dictionaries(TEXT, st.integers(), max_size=2)))


# -- the oracle ---------------------------------------------------------------------------

REFUSE, SKIP = object(), object()


def longdouble(dtype: np.dtype[Any]) -> bool:
    """Floats wider than float64, in either byte order: tolist() rounds them, so their values
    are not judged here (tests/runtime/test_feeds_hardening.py has the case)."""
    return dtype.kind == "f" and dtype.itemsize > 8


def judge(v: Any, dtype: str, origin: np.dtype[Any] | None, narrow: bool) -> Any:
    """What ``v`` (a Python value: an element of an array's tolist(), of an object array or
    of a list) must become in an input of ``dtype``: the value, REFUSE (the call must not
    succeed), or SKIP (parsed text, rounding that is allowed: not judged here).
    ``origin`` is the dtype of the array that held it (None for lists)."""
    if dtype == "string":
        if origin is not None and origin.kind in "biuf":
            return REFUSE  # numbers are not text
        if isinstance(v, str):
            return v
        if origin is not None and origin.kind == "O":
            return SKIP  # known gap: onnxruntime str()s object arrays on run's fast path
        if isinstance(v, bytes):
            try:
                return v.decode()
            except UnicodeDecodeError:
                return REFUSE
        if v is None or isinstance(v, (bool, int, float, complex)):
            return SKIP  # str() of the number, as numpy reads it among text
        return REFUSE
    if isinstance(v, (str, bytes)):
        return SKIP  # numbers given as text are parsed
    if v is None:
        return math.nan if dtype.startswith("float") else REFUSE
    if not isinstance(v, (bool, int, float)):
        # other numbers (Fraction, Decimal, numpy scalars in object arrays) are read through
        # float(); objects that are no numbers must be refused
        return SKIP if isinstance(v, numbers.Number) or hasattr(v, "__float__") else REFUSE
    if dtype == "bool":
        return bool(v) if v in (0, 1) else REFUSE
    if dtype in ("int64", "int32"):
        info = np.iinfo(dtype)
        if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
            return REFUSE
        return int(v) if info.min <= v <= info.max else REFUSE
    wide_array = (origin is not None and origin.kind in "iuf" and origin.itemsize > 4)
    if dtype == "float32" and wide_array and not narrow:
        return REFUSE  # a float64 or int64 array for a float32 input: the caller casts
    if isinstance(v, float) and (dtype == "float64" or math.isnan(v)):
        return v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow to inf is judged below
        held = float(np.array(float(v) if abs(v) < 2**1000 else math.copysign(math.inf, v),
                              NATIVE[dtype]))
    if held == v:  # exact (Python compares int and float exactly)
        return held
    if narrow:
        return held if isinstance(v, float) else SKIP  # predict rounds as the parity check did
    if isinstance(v, float) and (math.isfinite(held) or not math.isfinite(v)):
        return held  # Python floats in lists or objects are rounded to float32
    return REFUSE  # integers a float would round, finite values beyond its range


def expected_outputs(sess: Session, feeds: dict[str, Any], got: dict[str, np.ndarray],
                     narrow: bool) -> tuple[dict[str, np.ndarray], list[str]]:
    """The native arrays the values stand for (where not judged, the value that came out),
    and what should have been refused."""
    native, wrong = {}, []
    for spec in sess.inputs:
        values, out = feeds[spec.name], got[f"{spec.name}_out"]
        origin = values.dtype if isinstance(values, np.ndarray) else None
        if origin is not None and (origin.kind in "cmMV" or longdouble(origin)):
            if origin.kind != "f":
                wrong.append(f"{spec.name}: {origin} ran")
            native[spec.name] = out
            continue
        flat = (values.reshape(-1) if isinstance(values, np.ndarray) and origin.kind == "O"
                else np.array(values.tolist() if origin is not None else values,
                              dtype=object).reshape(-1))
        if flat.size != out.size:
            wrong.append(f"{spec.name}: {flat.size} values gave {out.shape}")
            native[spec.name] = out
            continue
        want = []
        for v, o in zip(flat.tolist(), out.reshape(-1).tolist()):
            w = judge(v, spec.dtype, origin, narrow)
            if w is REFUSE:
                wrong.append(f"{spec.name}: {v!r} ran as {o!r}")
            want.append(o if w is REFUSE or w is SKIP else w)
        native[spec.name] = np.array(want, dtype=NATIVE[spec.dtype]).reshape(out.shape)
    return native, wrong


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], context: Any) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if a[name].dtype == object:
            assert a[name].tolist() == b[name].tolist(), (name, context)
        else:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{name}: {context!r}")


def well_formed(sess: Session, feeds: Any, n: int, narrow: bool) -> bool:
    """Whether every input has n rows of values its dtype holds exactly (so it must run)."""
    if not isinstance(feeds, dict) or set(feeds) != {s.name for s in sess.inputs}:
        return False
    for spec in sess.inputs:
        values = feeds[spec.name]
        k = spec.shape[1]
        if not isinstance(values, np.ndarray) or longdouble(values.dtype) or (
                values.dtype.kind not in ("U" if spec.dtype == "string" else "biuf")):
            return False
        if (spec.dtype == "float32" and not narrow and values.dtype.kind in "iuf"
                and values.dtype.itemsize > 4):
            return False  # a float64 or int64 array for a float32 input, even empty
        if values.shape != (n, k) and not (k == 1 and values.shape == (n,)):
            return False
        if not all(judge(v, spec.dtype, values.dtype, narrow) not in (REFUSE, SKIP)
                   for v in values.reshape(-1).tolist()):
            return False
    return True


# -- the fuzz tests ------------------------------------------------------------------------

def check(sess: Session, call: Any, data_in: Any, feeds: Any, n: int, narrow: bool) -> None:
    """``call(data_in)`` raises a BatonError (and ``feeds``, the arrays it stands for, were
    not well formed), or gives the outputs of the values fed as native arrays."""
    try:
        got = call(data_in)
    except BatonError:
        assert not well_formed(sess, feeds, n, narrow), "refused a well-formed feed"
        return
    if not isinstance(feeds, dict) or set(feeds) != {s.name for s in sess.inputs}:
        assert narrow, f"run took feeds {feeds!r}"
        return  # predict ignores extra keys: nothing to compare value for value
    native, wrong = expected_outputs(sess, feeds, got, narrow=narrow)
    assert not wrong, wrong
    assert_same(sess.run(native), got, feeds)


@FUZZ
@given(data=st.data())
def test_run_refuses_or_gives_the_values(wide: Session, data: st.DataObject) -> None:
    """Each input in turn gets anything, beside native arrays for the others; then the
    feeds as a whole are broken (a name missing or extra, not a dict)."""
    n = data.draw(st.sampled_from([1, 2, 3, 2, 1, 3, 0]), label="rows")
    base = {s.name: data.draw(native(s.dtype, n, 2), label=s.name) for s in wide.inputs}
    for spec in wide.inputs:
        feeds = {**base, spec.name: data.draw(carrier(spec.dtype, n, 2), label=spec.name)}
        check(wide, wide.run, feeds, feeds, n, narrow=False)
    name = data.draw(st.sampled_from(list(base)))
    broken = data.draw(st.sampled_from([
        {k: v for k, v in base.items() if k != name}, {**base, "extra": base[name]},
        {**base, 7: base[name]}, {**base, None: base[name]}, list(base.values()), tuple(base),
        None, base[name], name]), label="broken feeds")
    check(wide, wide.run, broken, broken, n, narrow=False)


@FUZZ
@given(data=st.data())
def test_predict_refuses_or_gives_the_values(tabular: Session, data: st.DataObject) -> None:
    """Each column in turn gets anything, in a dict of columns or a DataFrame; then one array
    for all columns, and data that is no table at all."""
    import pandas as pd

    n = data.draw(st.integers(1, 3), label="rows")
    base = {s.name: data.draw(native(s.dtype, n, 1), label=s.name) for s in tabular.inputs}
    for spec in tabular.inputs:
        columns = {**base, spec.name: data.draw(carrier(spec.dtype, n, 1), label=spec.name)}
        if data.draw(st.booleans(), label="as a DataFrame"):
            try:
                frame = pd.DataFrame({k: v.reshape(-1) if isinstance(v, np.ndarray) else v
                                      for k, v in columns.items()})
            except Exception:  # noqa: BLE001 - pandas cannot make this frame: nothing to test
                continue
            feeds = {c: frame[c].to_numpy() for c in frame.columns}
            check(tabular, tabular.predict, frame.iloc[:, ::-1], feeds, n, narrow=True)
        else:
            check(tabular, tabular.predict, columns, columns, n, narrow=True)
    arr = data.draw(hnp.arrays(data.draw(ARRAY_DTYPES), (n, 6)), label="one array")
    check(tabular, tabular.predict, arr, {s.name: arr[:, i] for i, s in enumerate(tabular.inputs)},
          n, narrow=True)
    odd = data.draw(st.one_of(st.none(), SCALARS, st.just(list(base.values())),
                              st.just({**base, "extra": 1}),
                              st.just({k: v for k, v in list(base.items())[1:]})), label="odd")
    check(tabular, tabular.predict, odd, odd, n, narrow=True)
