"""The feed plan behind ``Session.predict`` on a DataFrame and ``Session.predict_records``:
the same feeds (so the same outputs) as ``run`` on feeds prepared by hand, the same feeds
and errors as the validated path ``run(to_feeds(frame, inputs))`` that ``predict`` took
before, and records' errors that name the key, the record and what to send.

The bundles' graphs are Identity (output ``<name>_out`` is input ``<name>``), so an
output is exactly the feed onnxruntime received."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton.errors import BatonError, InputValidationError
from baton.runtime import Session
from baton.schema import TensorSpec, to_feeds
from tests.conftest import identity_bundle

DTYPES = ("float64", "float32", "int64", "int32", "bool", "string")
NUMPY: dict[str, Any] = {"float64": np.float64, "float32": np.float32, "int64": np.int64,
                         "int32": np.int32, "bool": np.bool_, "string": object}
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """One [N, 1] input per dtype, read from the column ``c_<dtype>``; a second text input
    and a float64 [N, 2] input read from two columns."""
    specs = [TensorSpec(t, t, ("N", 1), column=f"c_{t}") for t in DTYPES]
    specs += [TensorSpec("town", "string", ("N", 1), column="c_town"),
              TensorSpec("pair", "float64", ("N", 2), columns=("p0", "p1"))]
    return Session(identity_bundle(tmp_path_factory.mktemp("plan") / "plan.baton", specs))


def prepared(columns: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """The feeds written by hand from the columns' Python values."""
    feeds = {t: np.array(columns[f"c_{t}"], dtype=NUMPY[t]).reshape(-1, 1) for t in DTYPES}
    feeds["town"] = np.array(columns["c_town"], dtype=object).reshape(-1, 1)
    feeds["pair"] = np.column_stack([np.array(columns["p0"], dtype=np.float64),
                                     np.array(columns["p1"], dtype=np.float64)])
    return feeds


def same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype, name
        assert got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def outputs(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{k}_out": v for k, v in feeds.items()}


def old_path(sess: Session, frame: Any) -> dict[str, np.ndarray]:
    return sess.run(to_feeds(frame, sess.inputs))


# -- values -------------------------------------------------------------------------------

FLOATS = st.one_of(st.floats(allow_nan=False, width=64), st.just(math.nan),
                   st.floats(-1e6, 1e6))
TEXT = st.text(st.characters(codec="utf-8"), max_size=6)


@st.composite
def columns(draw: st.DrawFn) -> dict[str, list[Any]]:
    n = draw(st.integers(1, 4))
    col = {
        "c_float64": st.lists(FLOATS, min_size=n, max_size=n),
        "c_float32": st.lists(st.floats(-2.0**100, 2.0**100, width=32), min_size=n, max_size=n),
        "c_int64": st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n),
        "c_int32": st.lists(st.integers(-2**31, 2**31 - 1), min_size=n, max_size=n),
        "c_bool": st.lists(st.booleans(), min_size=n, max_size=n),
        "c_string": st.lists(TEXT, min_size=n, max_size=n),
        "c_town": st.lists(st.sampled_from(["Lyon", "Oslo", "Lima", "Zürich"]), min_size=n,
                           max_size=n),
        "p0": st.lists(FLOATS, min_size=n, max_size=n),
        "p1": st.lists(FLOATS, min_size=n, max_size=n),
    }
    return {k: draw(v) for k, v in col.items()}


def frames(col: dict[str, list[Any]], how: int) -> Any:
    """The same rows as frames pandas lays out differently."""
    n = len(col["c_bool"])
    typed = {k: pd.Series(v, dtype=("str" if k in ("c_string", "c_town") else
                                    NUMPY[k.removeprefix("c_")] if k.startswith("c_")
                                    else np.float64)) for k, v in col.items()}
    if how == 0:  # one block per dtype, pandas' arrow text
        return pd.DataFrame(typed)
    if how == 1:  # text as object, columns shuffled, an extra column
        frame = pd.DataFrame({**typed, "extra": np.arange(n)})
        frame["c_string"] = frame["c_string"].astype(object)
        frame["c_town"] = frame["c_town"].astype(object)
        return frame[list(reversed(frame.columns))]
    if how == 2:  # rows of a bigger frame (blocks are views), columns added one by one
        frame = pd.DataFrame(index=range(n + 2))
        for k, v in typed.items():
            frame[k] = pd.concat([v.iloc[:1], v, v.iloc[:1]], ignore_index=True)
        return frame.iloc[1:n + 1]
    return pd.DataFrame(typed).T.T  # every column object: the validated path decides


@SETTINGS
@given(col=columns(), how=st.integers(0, 3))
def test_predict_on_a_frame_gives_the_prepared_feeds(table: Session, col: dict[str, Any],
                                                     how: int) -> None:
    frame = frames(col, how)
    got = table.predict(frame)
    same(got, old_path(table, frame))
    if how < 3:  # typed columns: the plan reads them, exactly as written by hand
        read = table._plan._read_frame(frame)
        assert read is not None and read[1] == [], "an input left the fast path"
        same(read[0], to_feeds(frame, table.inputs))
        same(got, outputs(prepared(col)))


@SETTINGS
@given(col=columns())
def test_predict_records_gives_the_prepared_feeds(table: Session, col: dict[str, Any]
                                                  ) -> None:
    n = len(col["c_bool"])
    records = [{k: v[i] for k, v in col.items()} for i in range(n)]
    want = outputs(prepared(col))
    same(table.predict_records(records), want)
    same(table.predict_records(records[0]), outputs(prepared({k: v[:1] for k, v in
                                                             col.items()})))
    same(table.predict_records(records), table.predict(frames(col, 0)))


def test_records_as_json_gives_them(table: Session) -> None:
    """ints for float inputs, null (NaN) for floats, null ("None") for text, numpy scalars,
    0/1 for a bool input, whole floats for an int input: what predict makes of them."""
    body = ('[{"c_float64": 1, "c_float32": null, "c_int64": 3.0, "c_int32": -4, '
            '"c_bool": 1, "c_string": null, "c_town": "Oslo", "p0": 2, "p1": 0.5}]')
    records = json.loads(body)
    got = table.predict_records(records)
    assert got["float64_out"].dtype == np.float64 and got["float64_out"][0, 0] == 1.0
    assert np.isnan(got["float32_out"][0, 0]) and got["float32_out"].dtype == np.float32
    assert got["int64_out"][0, 0] == 3 and got["bool_out"][0, 0] is np.True_
    assert got["string_out"][0, 0] == "None" and got["town_out"][0, 0] == "Oslo"
    same(got, table.predict({k: [v] for k, v in records[0].items()}))
    numpy_scalars = {k: np.float64(v) if isinstance(v, float) else v
                     for k, v in records[0].items()}
    same(table.predict_records(numpy_scalars), got)


# -- bad input: the old path's errors --------------------------------------------------------

def good_frame() -> Any:
    return frames({"c_float64": [1.5, 2.0], "c_float32": [0.25, 1.0], "c_int64": [1, 2],
                   "c_int32": [3, 4], "c_bool": [True, False], "c_string": ["a", "b"],
                   "c_town": ["Lyon", "Oslo"], "p0": [0.0, 1.0], "p1": [2.0, 3.0]}, 0)


def with_column(name: str, values: Any) -> Any:
    frame = good_frame()
    frame[name] = values
    return frame


BAD_FRAMES = {
    "missing column": lambda: good_frame().drop(columns="c_int32"),
    "missing one of a matrix's columns": lambda: good_frame().drop(columns="p1"),
    "text for a float input": lambda: with_column("c_float64", ["x", "y"]),
    "numbers as text for a float input": lambda: with_column("c_float64", ["1.5", "2"]),
    "NaN for an int input": lambda: with_column("c_int64", [1.0, np.nan]),
    "a fraction for an int input": lambda: with_column("c_int64", [1.0, 2.5]),
    "beyond int32": lambda: with_column("c_int32", np.array([2**40, 1])),
    "2 for a bool input": lambda: with_column("c_bool", np.array([2, 0])),
    "float64 for a float32 input (rounded)": lambda: with_column("c_float32", [0.1, 1e300]),
    "int for a float input": lambda: with_column("c_float64", np.array([2**53 + 1, 1])),
    "text with None": lambda: with_column("c_string", pd.Series(["a", None], dtype=object)),
    "arrow text with NaN": lambda: with_column("c_town", pd.Series(["Lyon", None],
                                                                   dtype="str")),
    "numbers for a text input": lambda: with_column("c_string", [1.5, 2.0]),
    "a lone surrogate": lambda: with_column("c_string", pd.Series(["a", "\ud800"],
                                                                  dtype=object)),
    "dates": lambda: with_column("c_float64", pd.to_datetime(["2020-01-01", "2021-01-01"])),
    "complex": lambda: with_column("c_float64", np.array([1 + 2j, 3j])),
    "categories for text": lambda: with_column("c_town", pd.Categorical(["Lyon", "Oslo"])),
    "nullable ints with NA": lambda: with_column("c_int64", pd.array([1, None],
                                                                     dtype="Int64")),
    "bools for a float input": lambda: with_column("c_float64", [True, False]),
    "int32 for an int64 input": lambda: with_column("c_int64", np.array([-5, 7], np.int32)),
    "bools for an int input": lambda: with_column("c_int32", [True, False]),
    "uint8 for an int32 input": lambda: with_column("c_int32", np.array([0, 255], np.uint8)),
    "uint64 for an int64 input": lambda: with_column("c_int64", np.array([1, 2**64 - 1],
                                                                         np.uint64)),
    "int64 for an int32 input": lambda: with_column("c_int32", np.array([1, 2**31])),
    "ints for a bool input": lambda: with_column("c_bool", np.array([1, 0])),
    "float32 for a float64 input": lambda: with_column("c_float64", np.array([0.1, 2],
                                                                             np.float32)),
    "big-endian floats": lambda: with_column("c_float64", np.array([0.1, 2], ">f8")),
    "mixed matrix columns": lambda: with_column("p1", np.array([1, 2])),
    "a repeated column": lambda: pd.concat([good_frame(), good_frame()[["c_int64"]]],
                                           axis=1),
    "no rows": lambda: good_frame().iloc[:0],
    "integer column names": lambda: pd.concat([good_frame(), pd.DataFrame({0: [1, 2]})],
                                              axis=1),
}


def outcome(fn: Any) -> Any:
    try:
        return "ok", fn()
    except BatonError as exc:
        return type(exc), (exc.message, exc.expected, exc.found, exc.hint)


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_unusual_frames_get_the_old_paths_answer(table: Session, case: str) -> None:
    frame = BAD_FRAMES[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 1e300 as float32: overflow
        new = outcome(lambda: table.predict(frame))
        old = outcome(lambda: old_path(table, frame))
    assert new[0] == old[0], (new, old)
    if new[0] == "ok":
        same(new[1], old[1])
    else:
        assert new[1] == old[1]
        assert all(new[1]), new  # message, expected, found and hint all said


# -- bad records ---------------------------------------------------------------------------

def good_record() -> dict[str, Any]:
    return {"c_float64": 1.5, "c_float32": 0.25, "c_int64": 1, "c_int32": 3, "c_bool": True,
            "c_string": "a", "c_town": "Lyon", "p0": 0.0, "p1": 2.0}


def record_with(**values: Any) -> dict[str, Any]:
    return {**good_record(), **values}


BAD_RECORDS: dict[str, tuple[Any, list[str]]] = {
    # case: (records, words the error must say)
    "missing key": ({k: v for k, v in good_record().items() if k != "c_int32"},
                    ["lacks 'c_int32'", "add 'c_int32'"]),
    "unknown key": (record_with(colour="red"), ["unknown 'colour'", "remove 'colour'"]),
    "missing in the second record": ([good_record(), {"c_float64": 1.0}],
                                     ["record 1", "lacks"]),
    "text for a float": (record_with(c_float64="1.5"), ["'c_float64'", "str '1.5'",
                                                        "does not parse text"]),
    "a bool for a float": (record_with(p0=True), ["'p0'", "bool True", "a number"]),
    "null for an int": (record_with(c_int64=None), ["'c_int64'", "a whole number"]),
    "a fraction for an int": (record_with(c_int64=2.5), ["'c_int64'", "fractions"]),
    "beyond int32": ([good_record(), record_with(c_int32=2**40)],
                     ["'c_int32'", "1099511627776", "int32 range"]),
    "beyond int64": (record_with(c_int64=2**64), ["'c_int64'", "int64 range"]),
    "beyond float64": (record_with(c_float64=10**400), ["'c_float64'", "float64 range"]),
    "null for a bool": (record_with(c_bool=None), ["'c_bool'", "true or false"]),
    "2 for a bool": (record_with(c_bool=2), ["'c_bool'", "value 2"]),
    "a number for text": (record_with(c_town=5), ["'c_town'", "int 5", "a string"]),
    "a list for a float": (record_with(c_float64=[1.0]), ["'c_float64'", "list"]),
    "a lone surrogate": (record_with(c_string="\ud800"), ["'c_string'", "surrogate"]),
    "not a dict": ([[1.5, 2.0]], ["list [1.5, 2.0] at record 0", "list of dicts"]),
    "a string": ("c_float64", ["str 'c_float64'", "list of dicts"]),
    "none": ([], ["no records", "one dict per row"]),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_records_are_refused_saying_what_to_send(table: Session, case: str) -> None:
    records, words = BAD_RECORDS[case]
    with pytest.raises(InputValidationError) as info:
        table.predict_records(records)
    err = info.value
    assert err.expected and err.found and err.hint, err
    for word in words:
        assert word in str(err), (word, str(err))


# -- a real pipeline ---------------------------------------------------------------------

def test_a_converted_pipeline(mixed_bundle_dir: Any, mixed_frame: Any) -> None:
    """The churn pipeline (floats with NaN, ints, object text, a categorical column): the
    frame path, the records path and the old path agree, one row and many."""
    sess = Session(mixed_bundle_dir)
    for rows in (mixed_frame.iloc[:1], mixed_frame.iloc[5:60]):
        want = old_path(sess, rows)
        same(sess.predict(rows), want)
        records = json.loads(json.dumps(rows.astype({"plan": object}).to_dict("records"),
                                        allow_nan=True))
        same(sess.predict_records(records), want)


def test_records_for_inputs_without_columns(tmp_path: Any) -> None:
    """A bundle converted from arrays: each record holds every input's row by input name,
    cast as predict casts a dict of columns."""
    specs = [TensorSpec("input", "float32", ("N", 3)), TensorSpec("k", "int64", ("N", 1))]
    sess = Session(identity_bundle(tmp_path / "arrays.baton", specs))
    records = [{"input": [0.5, 1, 2.25], "k": [3]}, {"input": [4, 5, 6], "k": [7]}]
    got = sess.predict_records(records)
    same(got, {"input_out": np.array([[0.5, 1, 2.25], [4, 5, 6]], dtype=np.float32),
               "k_out": np.array([[3], [7]])})
    with pytest.raises(InputValidationError, match="'input'"):
        sess.predict_records([{"input": [1.0, 2.0], "k": [3]}])
    with pytest.raises(InputValidationError, match="lacks 'k'"):
        sess.predict_records({"input": [1.0, 2.0, 3.0]})
