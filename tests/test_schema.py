"""Input schemas from sample data, and user data turned into ONNX feeds."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from baton.errors import InputValidationError, SchemaError
from baton.schema import TensorSpec, cast_to_spec, infer_inputs, row_values, to_feeds

SETTINGS = settings(max_examples=50, deadline=None)

# column kind -> (how to make a column of n rows, the baton dtype it must get)
KINDS = ("float", "float_nan", "float32", "int", "int32", "bool", "string", "string_none",
         "category")
WANT = {"float": "float64", "float_nan": "float64", "float32": "float32", "int": "int64",
        "int32": "int64", "bool": "bool", "string": "string", "string_none": "string",
        "category": "string"}
NUMPY = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_,
         "string": object}
words = st.sampled_from(["a", "b", "", "Ωmega", "x y"])


def column(draw: st.DrawFn, kind: str, n: int) -> Any:
    if kind in ("float", "float_nan", "float32"):
        nan = kind == "float_nan"
        vals = draw(st.lists(st.floats(-1e6, 1e6) | (st.just(np.nan) if nan else st.nothing()),
                             min_size=n, max_size=n))
        if nan:
            vals[0] = np.nan
        return pd.Series(vals, dtype=np.float32 if kind == "float32" else np.float64)
    if kind in ("int", "int32"):
        return pd.Series(draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n)),
                         dtype=np.int32 if kind == "int32" else np.int64)
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    text: list[str | None] = list(draw(st.lists(words, min_size=n, max_size=n)))
    if kind == "string_none":
        text[0] = None
    if kind == "category":
        return pd.Series(pd.Categorical(text))
    return pd.Series(text)


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, list[str]]:
    n = draw(st.integers(1, 12))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    names = draw(st.lists(st.text("abcdefghij_ ", min_size=1, max_size=6),
                          min_size=len(kinds), max_size=len(kinds), unique=True))
    frame = pd.DataFrame({name: column(draw, k, n) for name, k in zip(names, kinds)})
    return frame, kinds


# -- infer_inputs -----------------------------------------------------------------------


@SETTINGS
@given(sample=frames())
def test_dataframe_gives_one_n_by_1_input_per_column(sample: tuple[pd.DataFrame, list[str]]
                                                     ) -> None:
    frame, kinds = sample
    specs = infer_inputs(frame)
    assert [s.name for s in specs] == list(frame.columns)
    assert [s.column for s in specs] == list(frame.columns)
    assert [s.dtype for s in specs] == [WANT[k] for k in kinds]
    assert all(s.shape == ("N", 1) for s in specs)


def test_dataframe_column_subset_in_the_given_order() -> None:
    frame = pd.DataFrame({"a": [1.0], "b": ["x"], "c": [True]})
    specs = infer_inputs(frame, columns=["c", "a"])
    assert [(s.name, s.dtype) for s in specs] == [("c", "bool"), ("a", "float64")]


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(["float32", "float64", "int64", "int32", "bool",
                                              "U3"]))
def test_2d_array_gives_one_input(data: st.DataObject, dtype: str) -> None:
    rows, cols = data.draw(st.integers(1, 10)), data.draw(st.integers(1, 6))
    arr = data.draw(hnp.arrays(np.dtype(dtype), (rows, cols)))
    want = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int64",
            "bool": "bool", "U3": "string"}[dtype]
    assert infer_inputs(arr) == [TensorSpec(name="input", dtype=want, shape=("N", cols))]


def test_nested_lists_are_a_2d_sample() -> None:
    assert infer_inputs([[1.0, 2.0], [3.0, 4.0]]) == [
        TensorSpec(name="input", dtype="float64", shape=("N", 2))]


@pytest.mark.parametrize(("sample", "found"), [
    (np.arange(5.0), "(5,)"),  # 1-D
    (np.array([]), "(0,)"),  # empty and 1-D
    (np.zeros((2, 3, 4)), "(2, 3, 4)"),  # 3-D
])
def test_array_that_is_not_a_table_is_refused(sample: np.ndarray, found: str) -> None:
    with pytest.raises(SchemaError) as info:
        infer_inputs(sample)
    err = info.value
    assert err.expected is not None and "2-D" in err.expected
    assert err.found is not None and found in err.found
    assert "2-D" in str(err) and found in str(err)


def test_empty_array_is_refused() -> None:
    with pytest.raises(SchemaError) as info:
        infer_inputs(np.empty((0, 3)))
    err = info.value
    assert "empty" in err.message
    assert err.expected is not None and "row" in err.expected
    assert err.found is not None and "0 rows" in err.found


def test_empty_dataframe_is_refused() -> None:
    """An empty frame's columns are ``object``: their types cannot be read from it."""
    with pytest.raises(SchemaError) as info:
        infer_inputs(pd.DataFrame({"age": pd.Series([], dtype=object), "city": []}))
    err = info.value
    assert "empty" in err.message
    assert err.found is not None and "0 rows" in err.found


@pytest.mark.parametrize("values", [
    pd.date_range("2024-01-01", periods=3),
    pd.date_range("2024-01-01", periods=3, tz="UTC"),
    pd.to_timedelta([1, 2, 3], unit="s"),
])
def test_datetime_column_is_refused(values: Any) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "when": values})
    with pytest.raises(SchemaError) as info:
        infer_inputs(frame)
    err = info.value
    assert "'when'" in err.message
    assert err.expected is not None and "float" in err.expected and "string" in err.expected
    assert err.found == str(frame["when"].dtype)


def test_missing_column_for_inference_is_named() -> None:
    with pytest.raises(SchemaError, match="'income'"):
        infer_inputs(pd.DataFrame({"age": [1.0]}), columns=["age", "income"])


# -- to_feeds ---------------------------------------------------------------------------


def expected_feed(series: pd.Series, dtype: str) -> np.ndarray:
    """What one column must become: a contiguous [N, 1] array of the spec's dtype."""
    if dtype == "string":
        # missing text as Python prints it ("None", "nan"): the text skl2onnx gives the
        # categories an encoder learned from missing values
        vals = [{None: "None"}.get(v, "nan" if isinstance(v, float) and v != v else str(v))
                for v in series.tolist()]
        return np.array(vals, dtype=object).reshape(-1, 1)
    return np.array(series.tolist(), dtype=NUMPY[dtype]).reshape(-1, 1)


@SETTINGS
@given(sample=frames(), order=st.randoms(use_true_random=False), extra=st.booleans())
def test_to_feeds_maps_dataframe_columns_by_name(sample: tuple[pd.DataFrame, list[str]],
                                                 order: Any, extra: bool) -> None:
    frame, kinds = sample
    specs = [TensorSpec(name=f"in_{i}", dtype=WANT[k], shape=("N", 1), column=str(c))
             for i, (c, k) in enumerate(zip(frame.columns, kinds))]
    shuffled = list(frame.columns)
    order.shuffle(shuffled)
    data = frame[shuffled]
    if extra:
        data = data.assign(**{"unused column": 7})
    feeds = to_feeds(data, specs)
    assert list(feeds) == [s.name for s in specs]
    for s in specs:
        got, want = feeds[s.name], expected_feed(frame[s.column], s.dtype)
        assert got.shape == (len(frame), 1)
        assert got.dtype == want.dtype
        assert got.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got, want)


def test_to_feeds_accepts_a_dict_of_columns() -> None:
    specs = [TensorSpec("age", "float64", ("N", 1), column="age"),
             TensorSpec("n", "int64", ("N", 1), column="n")]
    feeds = to_feeds({"n": [1, 2], "age": [3.5, 4.0]}, specs)
    np.testing.assert_array_equal(feeds["age"], [[3.5], [4.0]])
    np.testing.assert_array_equal(feeds["n"], [[1], [2]])
    assert feeds["n"].dtype == np.int64


@pytest.mark.parametrize("missing", [["income"], ["income", "city"]])
def test_to_feeds_names_a_missing_column(missing: list[str]) -> None:
    specs = [TensorSpec(c, "float64", ("N", 1), column=c) for c in ["age", *missing]]
    with pytest.raises(SchemaError) as info:
        to_feeds(pd.DataFrame({"age": [1.0, 2.0], "other": [3.0, 4.0]}), specs)
    err = info.value
    assert not isinstance(err, InputValidationError)
    for c in missing:
        assert repr(c) in err.message
    assert err.found is not None and "'other'" in err.found


@pytest.mark.parametrize(("dtype", "text"), [
    ("float64", ["31", "young", "40"]),
    ("float32", ["n/a", "1.5", "2"]),
    ("int64", ["one", "2", "3"]),
    ("bool", ["yes", "no", "yes"]),
    ("bool", ["False", "True", "False"]),
])
def test_text_in_a_numeric_column_is_refused(dtype: str, text: list[str]) -> None:
    spec = TensorSpec("age", dtype, ("N", 1), column="age")
    for column in (pd.Series(text), pd.Series(text, dtype=object), pd.Categorical(text)):
        with pytest.raises(InputValidationError) as info:
            to_feeds(pd.DataFrame({"age": column}), [spec])
        err = info.value
        assert err.message == f"input 'age': expected {dtype} [N, 1], got string [3]"
        assert err.expected == f"{dtype} [N, 1]"
        assert err.found == "string [3]"


def test_numbers_in_a_text_column_are_refused() -> None:
    spec = TensorSpec("city", "string", ("N", 1), column="city")
    with pytest.raises(InputValidationError, match=re.escape(
            "input 'city': expected string [N, 1], got float64 [2]")):
        to_feeds(pd.DataFrame({"city": [1.0, 2.0]}), [spec])


# -- integer inputs ---------------------------------------------------------------------

int_specs = st.sampled_from([TensorSpec("n", "int64", ("N", 1), column="n"),
                             TensorSpec("n", "int32", ("N", 1), column="n")])
wholes = st.integers(-(2 ** 31), 2 ** 31 - 1).map(float)


@SETTINGS
@given(spec=int_specs, good=st.lists(wholes, max_size=10),
       bad=st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer())),
       at=st.integers(0, 10), container=st.sampled_from(["frame", "array", "object", "list"]))
def test_integer_inputs_refuse_nan_and_fractions(spec: TensorSpec, good: list[float],
                                                 bad: float, at: int, container: str) -> None:
    vals = list(good)
    vals.insert(min(at, len(vals)), bad)
    data: Any = {
        "frame": pd.DataFrame({"n": vals}),
        "array": {"n": np.array(vals)},
        "object": {"n": np.array(vals, dtype=object)},
        "list": {"n": vals},
    }[container]
    with pytest.raises(InputValidationError) as info:
        to_feeds(data, [spec])
    assert info.value.message.startswith(f"input 'n': expected {spec.dtype} [N, 1], got ")


@SETTINGS
@given(spec=int_specs, vals=st.lists(wholes, min_size=1, max_size=10),
       container=st.sampled_from(["frame", "array", "object"]))
def test_integer_inputs_take_whole_floats_exactly(spec: TensorSpec, vals: list[float],
                                                  container: str) -> None:
    data: Any = {
        "frame": pd.DataFrame({"n": vals}),
        "array": {"n": np.array(vals)},
        "object": {"n": np.array(vals, dtype=object)},
    }[container]
    got = to_feeds(data, [spec])["n"]
    assert got.dtype == np.dtype(spec.dtype)
    assert got.reshape(-1).tolist() == [int(v) for v in vals]


@pytest.mark.parametrize(("dtype", "value"), [
    ("int64", 1e19), ("int64", -1e300), ("int64", 2.0 ** 63), ("int32", 2.0 ** 31),
    ("int32", -(2.0 ** 31) - 1),
])
def test_integer_inputs_refuse_values_out_of_range(dtype: str, value: float) -> None:
    """A whole float too big for the integer type must not wrap around silently."""
    spec = TensorSpec("n", dtype, ("N", 1))
    with pytest.raises(InputValidationError, match=re.escape(f"expected {dtype} [N, 1]")):
        cast_to_spec(np.array([1.0, value]), spec)


@pytest.mark.parametrize(("dtype", "value"), [("int64", -(2.0 ** 63)), ("int32", -(2.0 ** 31)),
                                              ("int32", 2.0 ** 31 - 1)])
def test_integer_inputs_take_the_extreme_values(dtype: str, value: float) -> None:
    got = cast_to_spec(np.array([value]), TensorSpec("n", dtype, ("N", 1)))
    assert got.tolist() == [[int(value)]]


def test_nullable_integer_column_with_missing_values_is_refused() -> None:
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    with pytest.raises(InputValidationError, match="input 'n'"):
        to_feeds(frame, [TensorSpec("n", "int64", ("N", 1), column="n")])


# -- row values -------------------------------------------------------------------------


def test_row_values_of_a_dataframe_row() -> None:
    frame = pd.DataFrame({"age": [1.5, np.nan], "city": ["Oslo", None], "n": [1, 2],
                          "ok": [True, False], "c": pd.Categorical(["x", "y"])})
    # a missing value is missing whatever the column: pandas holds it as NaN
    assert row_values(frame, 1) == {"age": "NaN", "city": "NaN", "n": 2, "ok": False, "c": "y"}
    assert row_values(frame, 0, limit=2) == {"age": 1.5, "city": "Oslo"}


def test_row_values_of_an_array_row() -> None:
    arr = np.array([[1.0, np.inf], [-np.inf, 2.0]])
    assert row_values(arr, 1) == {"x0": "-Infinity", "x1": 2.0}
