"""The Parquet records of ``baton serve --record`` (baton.records) and the recorder that
writes them (baton.serving.record.Recorder): real pyarrow files, real threads, no mocks."""

from __future__ import annotations

import logging
import math
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton.envelope import columns_of
from baton.errors import UsageError
from baton.records import (
    TIME,
    is_records,
    layout,
    read_records,
    records_table,
    write_records,
)
from baton.schema.rows import to_feeds
from baton.schema.spec import TensorSpec
from baton.serving.record import Recorder, parse_size

N = "N"
#: a churn-like DataFrame model: float, int64, text, bool columns, and two columns read as
#: one [N, 2] matrix
FRAME_INPUTS = [
    TensorSpec("age", "float64", (N, 1), column="age"),
    TensorSpec("tenure_months", "int64", (N, 1), column="tenure_months"),
    TensorSpec("city", "string", (N, 1), column="city"),
    TensorSpec("active", "bool", (N, 1), column="active"),
    TensorSpec("pair", "float32", (N, 2), columns=("lo", "hi")),
]
FRAME_OUTPUTS = [TensorSpec("label", "string", (N,), kind="label"),
                 TensorSpec("probabilities", "float32", (N, 2), kind="probabilities")]
MATRIX_INPUTS = [TensorSpec("input", "float32", (N, 4))]
MATRIX_OUTPUTS = [TensorSpec("variable", "float32", (N, 1), kind="prediction")]
TENSOR_INPUTS = [TensorSpec("pixels", "float32", (N, 3, 2))]
TENSOR_OUTPUTS = [TensorSpec("logits", "float32", (N, 3, 2), kind="tensor"),
                  TensorSpec("label", "int64", (N,), kind="label")]
DICT_INPUTS = [TensorSpec("ids", "int64", (N, 3)), TensorSpec("scale", "float64", (N,))]
DICT_OUTPUTS = [TensorSpec("score", "float64", (N,), kind="scores")]

LAYOUTS = {"frame": (FRAME_INPUTS, FRAME_OUTPUTS), "matrix": (MATRIX_INPUTS, MATRIX_OUTPUTS),
           "tensor": (TENSOR_INPUTS, TENSOR_OUTPUTS), "dict": (DICT_INPUTS, DICT_OUTPUTS)}

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)
TEXT = st.text(max_size=8)


def values(draw: Any, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    count = math.prod(shape)
    if dtype == "string":
        out = np.empty(count, dtype=object)
        out[:] = draw(st.lists(TEXT, min_size=count, max_size=count))
        return out.reshape(shape)
    element = {"float32": FLOATS, "float64": st.floats(allow_nan=True),
               "int64": st.integers(-2**63, 2**63 - 1), "bool": st.booleans()}[dtype]
    return np.array(draw(st.lists(element, min_size=count, max_size=count)),
                    dtype=dtype).reshape(shape)


def request(draw: Any, specs: list[TensorSpec], rows: int) -> dict[str, np.ndarray]:
    """One request's arrays, as the server decodes them (the batch axis first)."""
    return {s.name: values(draw, s.dtype, (rows, *row_shape(s))) for s in specs}


def row_shape(spec: TensorSpec) -> tuple[int, ...]:
    return tuple(d for d in spec.shape[1:] if isinstance(d, int))


@st.composite
def traffic(draw: Any) -> tuple[str, list[tuple[float, dict[str, Any], dict[str, Any]]]]:
    kind = draw(st.sampled_from(sorted(LAYOUTS)))
    inputs, outputs = LAYOUTS[kind]
    start = datetime(2026, 3, 1, 23, 59, 58, tzinfo=timezone.utc).timestamp()
    batches = []
    for i in range(draw(st.integers(1, 4))):
        rows = draw(st.integers(1, 5))
        batches.append((start + i * 0.7, request(draw, inputs, rows),
                        request(draw, outputs, rows)))
    return kind, batches


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=traffic())
def test_records_round_trip(case: tuple[str, list[Any]]) -> None:
    kind, batches = case
    inputs, outputs = LAYOUTS[kind]
    lay = layout(inputs, outputs, model=kind, digest="sha256:" + "ab" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_records(records_table(lay, batches), tmp)
        # the UTC day of the first row, whatever the other rows' days
        assert path.parent == Path(tmp) / "2026-03-01"
        assert path.name.startswith("records-20260301T235958-")
        back = read_records(tmp)
        assert [p.name for p in Path(tmp).rglob("*")] == ["2026-03-01", path.name]
    rows = sum(len(next(iter(feeds.values()))) for _, feeds, _ in batches)
    assert back.rows == rows and back.files == [path]
    assert back.digests == ["sha256:" + "ab" * 32]
    sent = {s.name: np.concatenate([feeds[s.name] for _, feeds, _ in batches]) for s in inputs}
    served = {s.name: np.concatenate([outs[s.name] for _, _, outs in batches])
              for s in outputs}
    # the data is in the form the original model takes: baton turns it into the same feeds
    feeds = to_feeds(back.data, inputs)
    assert list(feeds) == list(sent)
    for name, arr in sent.items():
        assert feeds[name].dtype == arr.dtype and feeds[name].shape == arr.shape, name
        np.testing.assert_array_equal(feeds[name], arr, err_msg=name)
    assert list(back.served) == list(served)
    for name, arr in served.items():
        assert back.served[name].dtype == arr.dtype, name
        np.testing.assert_array_equal(back.served[name], arr, err_msg=name)
    times = [np.datetime64(int(round(t * 1e6)), "us") for t, feeds, _ in batches
             for _ in range(len(next(iter(feeds.values()))))]
    assert back.times.tolist() == [t.tolist() for t in times]
    expected_form = {"frame": "DataFrame", "matrix": "ndarray", "tensor": "ndarray",
                     "dict": "dict"}[kind]
    assert type(back.data).__name__ == expected_form


def test_layout_names_columns_as_the_envelope_does() -> None:
    """The records' input columns are the envelope's columns of the data read back."""
    rng = np.random.default_rng(0)
    cases = {
        "frame": {"age": rng.normal(size=(3, 1)), "tenure_months": np.arange(3).reshape(3, 1),
                  "city": np.array([["Oslo"], ["Lima"], ["Pune"]], dtype=object),
                  "active": np.array([[True], [False], [True]]),
                  "pair": rng.normal(size=(3, 2)).astype(np.float32)},
        "matrix": {"input": rng.normal(size=(3, 4)).astype(np.float32)},
        "dict": {"ids": np.arange(9).reshape(3, 3), "scale": rng.normal(size=3)},
    }
    expected = {"frame": ["age", "tenure_months", "city", "active", "lo", "hi"],
                "matrix": ["x0", "x1", "x2", "x3"], "dict": ["ids", "scale"]}
    for kind, feeds in cases.items():
        inputs, outputs = LAYOUTS[kind]
        outs = {s.name: np.zeros((3, *row_shape(s)),
                                 dtype=object if s.dtype == "string" else s.dtype)
                for s in outputs}
        table = records_table(layout(inputs, outputs, model=kind), [(0.0, feeds, outs)])
        with tempfile.TemporaryDirectory() as tmp:
            back = read_records(write_records(table, tmp))
        names = [n for n, _ in columns_of(back.data)]
        assert names == expected[kind]
        assert table.column_names == [*names, *(f"output:{s.name}" for s in outputs), TIME]


def test_metadata_names_the_model_and_its_specs(tmp_path: Path) -> None:
    import json

    lay = layout(MATRIX_INPUTS, MATRIX_OUTPUTS, model="wine", digest="sha256:00")
    feeds = {"input": np.ones((2, 4), dtype=np.float32)}
    path = write_records(records_table(lay, [(0.0, feeds, {"variable": np.ones(
        (2, 1), dtype=np.float32)})]), tmp_path)
    meta = json.loads(pq.read_schema(path).metadata[b"baton"])
    assert meta == {"format": "baton-records/1", "model": "wine", "digest": "sha256:00",
                    "inputs": [{"name": "input", "dtype": "float32", "shape": ["N", 4]}],
                    "outputs": [{"name": "variable", "dtype": "float32", "shape": ["N", 1],
                                 "kind": "prediction"}]}
    schema = pq.read_schema(path)
    assert schema.field(TIME).type == pa.timestamp("us", tz="UTC")
    assert schema.field("output:variable").type == pa.list_(pa.float32(), 1)
    assert is_records(path) and is_records(tmp_path)


def test_outputs_not_asked_for_are_missing(tmp_path: Path) -> None:
    lay = layout(FRAME_INPUTS, FRAME_OUTPUTS, model="churn")
    feeds = [{"age": np.full((n, 1), float(n)), "tenure_months": np.full((n, 1), n),
              "city": np.full((n, 1), "Oslo", dtype=object),
              "active": np.ones((n, 1), dtype=bool),
              "pair": np.zeros((n, 2), dtype=np.float32)} for n in (2, 1)]
    batches = [(0.0, feeds[0], {"label": np.array(["a", "b"], dtype=object)}),
               (1.0, feeds[1], {"probabilities": np.array([[0.25, 0.75]], np.float32)})]
    back = read_records(write_records(records_table(lay, batches), tmp_path))
    assert back.served["label"].tolist() == ["a", "b", None]
    np.testing.assert_array_equal(back.served["probabilities"],
                                  [[np.nan, np.nan], [np.nan, np.nan], [0.25, 0.75]])
    assert back.data["age"].tolist() == [2.0, 2.0, 1.0]
    assert back.answered["label"].tolist() == [True, True, False]
    assert back.answered["probabilities"].tolist() == [False, False, True]


# -- atomic files ---------------------------------------------------------------------------

def big_table(rows: int = 20_000, seed: int = 0) -> Any:
    lay = layout(MATRIX_INPUTS, MATRIX_OUTPUTS, model="big")
    rng = np.random.default_rng(seed)
    feeds = {"input": rng.normal(size=(rows, 4)).astype(np.float32)}
    return records_table(lay, [(1.7e9, feeds, {"variable": feeds["input"][:, :1].copy()})])


def test_files_appear_whole(tmp_path: Path) -> None:
    """A reader listing the directory while files are written only ever sees whole files."""
    table = big_table()
    done = threading.Event()
    seen: dict[Path, int] = {}
    problems: list[str] = []

    def reader() -> None:
        while True:
            last = done.is_set()  # one more look once the writes are over
            for f in tmp_path.rglob("records-*.parquet"):
                if f not in seen:
                    try:
                        seen[f] = pq.read_table(f).num_rows
                    except Exception as exc:  # noqa: BLE001 - a partial file
                        problems.append(f"{f.name}: {exc}")
            if last:
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        written = [write_records(table, tmp_path) for _ in range(8)]
    finally:
        done.set()
        thread.join()
    assert problems == []
    assert len(set(written)) == 8 and all(seen[f] == 20_000 for f in written)
    assert [f for f in tmp_path.rglob("*") if f.is_file() and f not in written] == []


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    # a column Parquet cannot store: the write fails after the temporary file was opened
    table = pa.table({"odd": pa.array([(1, 2, 3)], type=pa.month_day_nano_interval()),
                      TIME: pa.array([0], type=pa.timestamp("us", tz="UTC"))})
    with pytest.raises(pa.ArrowException):
        write_records(table, tmp_path)
    assert [f.name for f in tmp_path.rglob("*") if f.is_file()] == []


# -- reading: what is wrong, said clearly ------------------------------------------------------

def test_empty_directory_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not records")
    assert not is_records(tmp_path)
    with pytest.raises(UsageError) as info:
        read_records(tmp_path)
    text = str(info.value)
    assert f"no records in {tmp_path}" in text and "1 other file" in text
    assert "--record" in text and "--record-every" in text
    with pytest.raises(UsageError, match="no records at"):
        read_records(tmp_path / "missing")


def test_another_models_records_are_refused(tmp_path: Path) -> None:
    mine = layout(MATRIX_INPUTS, MATRIX_OUTPUTS, model="wine")
    other = layout(DICT_INPUTS, DICT_OUTPUTS, model="ids")
    a = write_records(records_table(mine, [(0.0, {"input": np.ones((1, 4), np.float32)},
                                            {"variable": np.ones((1, 1), np.float32)})]),
                      tmp_path)
    b = write_records(records_table(other, [(1.0, {"ids": np.ones((1, 3), np.int64),
                                                   "scale": np.ones(1)},
                                             {"score": np.ones(1)})]), tmp_path)
    with pytest.raises(UsageError) as info:
        read_records(tmp_path)
    text = str(info.value)
    assert "different models" in text and str(a) in text and str(b) in text
    assert "input float32 [N, 4]" in text and "ids int64 [N, 3]" in text


def test_records_of_two_bundles_of_one_model_read_together(tmp_path: Path) -> None:
    feeds = {"input": np.ones((2, 4), np.float32)}
    outs = {"variable": np.ones((2, 1), np.float32)}
    for i, digest in enumerate(["sha256:01", "sha256:02", "sha256:01"]):
        lay = layout(MATRIX_INPUTS, MATRIX_OUTPUTS, model="wine", digest=digest)
        write_records(records_table(lay, [(float(i), feeds, outs)]), tmp_path)
    back = read_records(tmp_path)
    assert back.rows == 6 and back.digests == ["sha256:01", "sha256:02"]
    assert back.data.shape == (6, 4)


def test_damaged_and_foreign_files(tmp_path: Path) -> None:
    path = write_records(big_table(2000), tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError) as info:
        read_records(tmp_path)
    assert f"cannot read the records file {path}" in str(info.value)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), plain)
    assert not is_records(plain)
    with pytest.raises(UsageError, match="holds no baton records"):
        read_records(plain)


# -- the recorder ---------------------------------------------------------------------------

MATRIX = layout(MATRIX_INPUTS, MATRIX_OUTPUTS, model="m")


def matrix_request(rows: int, value: float, width: int = 4) -> tuple[dict[str, Any],
                                                                      dict[str, Any]]:
    feeds = {"input": np.full((rows, width), value, dtype=np.float32)}
    return feeds, {"variable": feeds["input"][:, :1] * 2}


@pytest.fixture()
def serve_log() -> Iterator[list[logging.LogRecord]]:
    """What the recorder logs on 'baton.serve' (which may not propagate to the root)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("baton.serve")
    handler, level = Keep(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def wait_for(predicate: Any, what: str, seconds: float = 30) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen")
        time.sleep(0.01)


def test_recorder_writes_what_it_was_offered(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest="sha256:aa",
                   every=0.05).start()
    for i in range(5):
        rec.offer(*matrix_request(i + 1, float(i)))
    wait_for(lambda: rec.written_rows == 15, "the first file")
    rec.offer(*matrix_request(2, 9.0))
    rec.close()
    assert rec.written_rows == 17 and rec.dropped_rows == 0 and rec.failed_writes == 0
    assert rec.written_files == len(list(tmp_path.rglob("records-*.parquet"))) >= 2
    back = read_records(tmp_path)
    assert back.data[:, 0].tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 3, 3] + [4] * 5 + [9, 9]
    np.testing.assert_array_equal(back.served["variable"], back.data[:, :1] * 2)
    rec.offer(*matrix_request(1, 1.0))  # after close: ignored, never raises
    assert rec.written_rows == 17


def test_rate_samples_requests(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None, rate=0.25,
                   seed=7, max_queue=4000)
    for i in range(2000):
        rec.offer(*matrix_request(1, float(i)))
    rec.close()
    assert 350 < rec.written_rows < 650 and rec.dropped_rows == 0
    kept = read_records(tmp_path).data[:, 0]
    assert len(set(kept.tolist())) == len(kept)  # whole requests, each once


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None,
                   max_queue=1)
    for i in range(5):  # the writer is not running: the queue holds one request
        rec.offer(*matrix_request(3, float(i)))
    assert rec.dropped_rows == 12 and rec.queued == 1
    rec.close()
    assert rec.written_rows == 3 and rec.dropped_rows == 12
    assert read_records(tmp_path).data[:, 0].tolist() == [0.0, 0.0, 0.0]


def test_queue_bytes_are_bounded(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None,
                   max_queue_bytes=100_000)
    for i in range(4):  # 3000 rows x 4 float32 = 48 kB, plus the outputs
        rec.offer(*matrix_request(3000, float(i)))
    assert rec.queued == 1 and rec.dropped_rows == 9000
    rec.close()
    assert rec.written_rows == 3000


def test_rotation_deletes_only_the_oldest_records(tmp_path: Path,
                                                  serve_log: list[logging.LogRecord]) -> None:
    # files of about 200-400 kB (random float64, incompressible) against a bound of 1 MB
    lay_inputs = [TensorSpec("input", "float64", (N, 1000))]
    outputs = [TensorSpec("y", "float64", (N,))]
    rng = np.random.default_rng(1)
    day = tmp_path / datetime.now(timezone.utc).strftime("%Y-%m-%d")
    day.mkdir()
    mine = [tmp_path / "notes.txt", day / "records-mine.parquet", tmp_path / "keep.parquet"]
    for f in mine:
        f.write_bytes(b"x" * 2_000_000)  # the user's, larger than the bound: never touched
    rec = Recorder(tmp_path, lay_inputs, outputs, model="big", digest=None,
                   max_bytes=1_000_000, every=0.01).start()
    for i in range(7):
        rec.offer({"input": rng.normal(size=(20, 1000))}, {"y": np.full(20, float(i))})
        wait_for(lambda: rec.written_files == i + 1, f"file {i + 1}")  # noqa: B023
    rec.close()
    kept = sorted(tmp_path.rglob("records-*-*-*.parquet"), key=lambda f: f.name)
    assert all(f.exists() and f.stat().st_size == 2_000_000 for f in mine)
    assert sum(f.stat().st_size for f in kept) <= 1_000_000 and len(kept) >= 2
    assert rec.rotated_files == 7 - len(kept)
    # the newest stay: the outputs hold the request's number
    assert read_records(kept[0]).served["y"][0] == 7 - len(kept)
    assert sorted(float(read_records(f).served["y"][0]) for f in kept) == [
        float(i) for i in range(7 - len(kept), 7)]
    deleted = [r.getMessage() for r in serve_log if "the oldest records file" in r.getMessage()]
    assert len(deleted) == rec.rotated_files and all(r.levelno == logging.INFO
                                                     for r in serve_log
                                                     if "oldest" in r.getMessage())


def test_failing_writes_are_counted_never_raised(tmp_path: Path,
                                                 serve_log: list[logging.LogRecord]) -> None:
    rec = Recorder(tmp_path, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None,
                   every=0.01).start()
    # files where the day directories go: every write fails (for root too)
    now = datetime.now(timezone.utc)
    blocks = [tmp_path / (now + timedelta(days=d)).strftime("%Y-%m-%d") for d in (0, 1)]
    for b in blocks:
        b.write_text("in the way")
    for i in range(3):
        rec.offer(*matrix_request(2, float(i)))
        wait_for(lambda: rec.failed_writes == i + 1, f"failure {i + 1}")  # noqa: B023
    assert rec.dropped_rows == 6 and rec.written_rows == 0
    errors = [r for r in serve_log if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once per kind
    assert "cannot write 2 rows of records" in errors[0].getMessage()
    for b in blocks:  # the disk is fine again: recording goes on
        b.unlink()
    rec.offer(*matrix_request(2, 5.0))
    rec.close()
    assert rec.written_rows == 2 and rec.failed_writes == 3
    assert read_records(tmp_path).data[:, 0].tolist() == [5.0, 5.0]


def test_a_request_that_does_not_fit_is_dropped_alone(
        tmp_path: Path, serve_log: list[logging.LogRecord]) -> None:
    rec = Recorder(tmp_path, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None)
    rec.offer(*matrix_request(2, 1.0))
    rec.offer({"input": "not an array"}, {})  # type: ignore[dict-item]
    rec.offer(*matrix_request(3, 7.0, width=5))  # queued, but 5 values a row, not 4
    rec.offer(*matrix_request(1, 2.0))
    rec.close()
    assert rec.written_rows == 3 and rec.dropped_rows == 3 and rec.failed_writes == 0
    assert read_records(tmp_path).data[:, 0].tolist() == [1.0, 1.0, 2.0]
    errors = [r.getMessage() for r in serve_log if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "input 'input': expected 3 rows of shape [4]" in errors[0]


@pytest.mark.parametrize(("options", "words"), [
    ({"rate": 0}, ["--record-rate 0", "above 0 and at most 1"]),
    ({"rate": 1.5}, ["--record-rate 1.5"]),
    ({"rate": float("nan")}, ["--record-rate nan"]),
    ({"max_bytes": 999_999}, ["--record-max-bytes must be at least 1 MB", "999999"]),
    ({"every": 0}, ["--record-every 0"]),
    ({"every": float("inf")}, ["--record-every inf"]),
])
def test_bad_options(tmp_path: Path, options: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        Recorder(tmp_path, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None, **options)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_directory_must_be_a_directory(tmp_path: Path) -> None:
    taken = tmp_path / "records"
    taken.write_text("a file")
    with pytest.raises(UsageError) as info:
        Recorder(taken, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None)
    assert f"--record {taken} is not a directory" in str(info.value)
    with pytest.raises(UsageError, match="cannot write records to"):
        Recorder(taken / "below", MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None)
    made = tmp_path / "a" / "b"
    Recorder(made, MATRIX_INPUTS, MATRIX_OUTPUTS, model="m", digest=None).close()
    assert made.is_dir() and list(made.iterdir()) == []  # no probe left behind


@pytest.mark.parametrize(("text", "size"), [
    ("1048576", 1_048_576), ("1GB", 10**9), ("500MB", 500 * 10**6), ("2GiB", 2 << 30),
    ("1.5 GB", 1_500_000_000), ("64kib", 65536), ("10 B", 10)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text, "--record-max-bytes") == size


@pytest.mark.parametrize("text", ["1G", "abc", "-1", "", "1 GBs", "1e9"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_size(text, "--record-max-bytes")
    assert "--record-max-bytes" in str(info.value) and "GiB" in str(info.value)


def test_dynamic_and_unbatched_inputs(tmp_path: Path) -> None:
    inputs = [TensorSpec("seq", "float32", (N, None)), TensorSpec("table", "int64", (3,))]
    outputs = [TensorSpec("out", "float32", (N, None), kind="tensor")]
    lay = layout(inputs, outputs, model="seq")
    table = np.array([7, 8, 9])

    def batch(rows: int, width: int, value: float) -> Any:
        seq = np.full((rows, width), value, dtype=np.float32)
        return (0.0, {"seq": seq, "table": table}, {"out": seq * 2})

    first = write_records(records_table(lay, [batch(2, 4, 1.0), batch(1, 4, 2.0)]), tmp_path)
    back = read_records(first)
    assert back.data["seq"].shape == (3, 4) and back.data["seq"][:, 0].tolist() == [1, 1, 2]
    np.testing.assert_array_equal(back.data["table"], table)
    np.testing.assert_array_equal(back.served["out"], back.data["seq"] * 2)
    write_records(records_table(lay, [batch(1, 5, 3.0)]), tmp_path)
    with pytest.raises(UsageError) as info:
        read_records(tmp_path)  # rows of 4 and of 5 values: not one array
    assert "rows of 'seq'" in str(info.value) and "4, 5" in str(info.value)
