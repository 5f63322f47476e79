"""The streaming comparison (:mod:`baton.parity.stream`) and the streamed check: batches of
any split, merged in any order, give what ``compare`` gives on all the rows at once; the
p99 sketch keeps its stated accuracy; a real check over a Parquet file in small batches
equals the in-memory check; ``rows=`` samples are seeded and uniform.

``compare`` (tested on its own in test_compare.py) is the reference here; the sketch's
p99 is held against numpy's percentile.
"""

from __future__ import annotations

import functools
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from baton.io import Reservoir, count_rows, iter_batches, read_data, sample_rows
from baton.parity.compare import compare
from baton.parity.stream import (
    SKETCH_ACCURACY,
    OutputAccumulator,
    QuantileSketch,
)
from baton.schema import row_values
from baton.tolerance import Tolerance
from tests.conftest import make_mixed_frame

SETTINGS = settings(max_examples=60, deadline=None)

tolerances = st.builds(
    Tolerance,
    atol=st.sampled_from([0.0, 1e-7, 1e-5, 1e-3, 0.5]) | st.floats(0, 1),
    rtol=st.sampled_from([0.0, 1e-6, 1e-4, 1e-2, 0.5]) | st.floats(0, 1),
    agreement=st.sampled_from([1.0, 0.9, 0.5]),
)
# few distinct values: ties in errors (worst rows) and in the needed tolerances
values = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e-3, 2.0, 1e6, 3.14159]) | st.floats(
    -1e3, 1e3, allow_nan=False, width=32)
special = st.sampled_from([np.nan, np.inf, -np.inf])


@st.composite
def numeric_outputs(draw: Any) -> tuple[str, np.ndarray, np.ndarray, Tolerance]:
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rows = draw(st.integers(1, 40))
    shape: tuple[int, ...] = (rows,) if draw(st.booleans()) else (rows, draw(st.integers(1, 4)))
    b = draw(hnp.arrays(np.float64, shape, elements=values | special))
    noise = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from(
        [0.0, 0.0, 0.0, 1e-9, -1e-6, 1e-4, 0.3, np.nan])))
    a = np.where(draw(hnp.arrays(bool, shape)), b, b + noise)
    kind = draw(st.sampled_from(["probabilities", "prediction", "score", "embedding"]))
    return kind, b.astype(dtype), a.astype(dtype), draw(tolerances)


@st.composite
def label_outputs(draw: Any) -> tuple[str, np.ndarray, np.ndarray, Tolerance]:
    rows = draw(st.integers(1, 40))
    pool = draw(st.sampled_from([[0, 1, 2], ["a", "b"]]))
    b = np.asarray(draw(st.lists(st.sampled_from(pool), min_size=rows, max_size=rows)))
    a = np.asarray(draw(st.lists(st.sampled_from(pool), min_size=rows, max_size=rows)))
    a = np.where(draw(hnp.arrays(bool, (rows,))), b, a)
    return "label", b, a, draw(tolerances)


def cuts(draw: Any, rows: int) -> list[int]:
    """Batch boundaries: 0 < c1 < ... < rows (empty batches too, now and then)."""
    inner = draw(st.lists(st.integers(0, rows), max_size=6))
    return [0, *sorted(inner), rows]


def accumulate(kind: str, b: np.ndarray, a: np.ndarray, tol: Tolerance, bounds: list[int],
               inputs: np.ndarray, exact_values: int | None = None) -> list[OutputAccumulator]:
    """One accumulator per batch [bounds[i], bounds[i+1])."""
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        acc = OutputAccumulator("y", kind, tol, **(
            {} if exact_values is None else {"exact_values": exact_values}))
        if hi > lo:
            acc.update(b[lo:hi], a[lo:hi], functools.partial(at, inputs[lo:hi]), lo)
        out.append(acc)
    return out


def at(batch: np.ndarray, r: int) -> dict[str, Any]:
    return row_values(batch, r)


def whole(kind: str, b: np.ndarray, a: np.ndarray, tol: Tolerance,
          inputs: np.ndarray) -> dict[str, Any]:
    return compare("y", kind, b, a, tol, lambda r: row_values(inputs, r)).to_dict()


def merged(parts: list[OutputAccumulator], order: list[int]) -> OutputAccumulator:
    return functools.reduce(lambda x, y: x.merge(y), [parts[i] for i in order])


@SETTINGS
@given(st.one_of(numeric_outputs(), label_outputs()), st.data())
def test_any_split_merged_in_any_order_equals_compare(output: Any, data: Any) -> None:
    kind, b, a, tol = output
    rows = len(b)
    inputs = np.arange(rows * 2, dtype=np.float64).reshape(rows, 2)
    bounds = cuts(data.draw, rows)
    parts = accumulate(kind, b, a, tol, bounds, inputs)
    order = data.draw(st.permutations(range(len(parts))))
    assert merged(parts, list(order)).result().to_dict() == whole(kind, b, a, tol, inputs)
    # one accumulator fed every batch in turn: the same
    one = OutputAccumulator("y", kind, tol)
    for lo, hi in zip(bounds, bounds[1:]):
        if hi > lo:
            one.update(b[lo:hi], a[lo:hi], functools.partial(at, inputs[lo:hi]), lo)
    assert one.result().to_dict() == whole(kind, b, a, tol, inputs)


@SETTINGS
@given(numeric_outputs(), st.data())
def test_merge_is_associative_and_commutative(output: Any, data: Any) -> None:
    kind, b, a, tol = output
    rows = len(b)
    inputs = np.arange(rows, dtype=np.float64).reshape(rows, 1)
    cut = sorted(data.draw(st.lists(st.integers(0, rows), min_size=2, max_size=2)))
    x, y, z = accumulate(kind, b, a, tol, [0, *cut, rows], inputs)
    left = x.merge(y).merge(z).result().to_dict()
    assert left == x.merge(y.merge(z)).result().to_dict()
    assert left == z.merge(x).merge(y).result().to_dict()
    assert x.merge(y).result().to_dict() == y.merge(x).result().to_dict()
    # merging changes neither side, and the accumulators pickle (Spark ships them)
    before = x.result().to_dict()
    x.merge(y)
    assert x.result().to_dict() == before
    assert pickle.loads(pickle.dumps(x)).result().to_dict() == before


def test_min_rtol_rounds_up_for_a_value_below_the_largest_need() -> None:
    """Row 0 needs a smaller rtol than row 1 by subtraction, yet fails at row 1's by
    rounding: the minimum passing rtol is decided by row 0, in another batch."""
    b = np.array([4.1069033065806206e-05, 1.0])
    a = np.array([1.3140006797233027e-05, 1.4365682759118028])
    tol = Tolerance(atol=1e-5, rtol=1e-4)
    err = np.abs(a - b)
    need = (err - tol.atol) / np.abs(b)
    assert need[0] < need[1]
    assert not err[0] <= tol.atol + need[1] * abs(b[0])  # row 0 fails at the largest need
    want = whole("prediction", b, a, tol, np.zeros((2, 1)))
    assert want["min_rtol"] > need[1]
    parts = accumulate("prediction", b, a, tol, [0, 1, 2], np.zeros((2, 1)))
    for order in ([0, 1], [1, 0]):
        assert merged(parts, order).result().to_dict() == want


def test_shape_mismatch_is_reported_over_all_batches() -> None:
    b, a = np.zeros(10), np.zeros((10, 2))
    parts = accumulate("prediction", b, a, Tolerance(), [0, 4, 10], np.zeros((10, 1)))
    got = merged(parts, [1, 0]).result()
    want = compare("y", "prediction", b, a, Tolerance())
    assert got.to_dict() == want.to_dict()
    assert not got.passed and "shape differs" in (got.message or "")


def test_sketched_p99_within_its_accuracy_beyond_the_exact_buffer() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    b = rng.normal(size=n)
    noise = rng.lognormal(-12, 2, n) * np.where(rng.random(n) < 0.3, 0.0, 1.0)  # 30 % exact
    a = b + noise
    tol = Tolerance(atol=1e-5, rtol=1e-4)
    inputs = np.zeros((n, 1))
    parts = accumulate("prediction", b, a, tol, [0, 70_000, 140_000, n], inputs,
                       exact_values=65_536)
    got = merged(parts, [2, 0, 1]).result()
    want = compare("y", "prediction", b, a, tol, lambda r: row_values(inputs, r))
    err = np.abs(a - b)
    assert got.p99_abs == pytest.approx(np.percentile(err, 99), rel=SKETCH_ACCURACY)
    rel = np.where(err == 0, 0.0, err / np.abs(b))
    assert got.p99_rel == pytest.approx(np.percentile(rel, 99), rel=SKETCH_ACCURACY)
    assert got.p99_accuracy == SKETCH_ACCURACY and "sketch" in got.summary()
    # every other field stays exact
    g, w = got.to_dict(), want.to_dict()
    for k in ("p99_abs", "p99_rel", "p99_accuracy"):
        g.pop(k, None), w.pop(k, None)
    assert g == w
    # within the exact buffer, nothing is approximate
    assert "p99_accuracy" not in OutputAccumulator("y", "prediction", tol).result().to_dict()


def test_quantile_sketch_order_statistics_and_merge() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.exponential(3.0, 50_000), np.zeros(500), [np.inf] * 3])
    one, two = QuantileSketch(), QuantileSketch()
    one.add(x[:20_000])
    two.add(x[20_000:])
    sk = one.merge(two)
    s = np.sort(x)
    for rank in (0, 499, 500, 10_000, 49_000, len(x) - 4):
        assert sk.value_at(rank) == pytest.approx(s[rank], rel=SKETCH_ACCURACY, abs=0)
    assert sk.value_at(len(x) - 1) == np.inf
    assert sk.quantile(0.5) == pytest.approx(np.median(x), rel=SKETCH_ACCURACY)


# -- the reader and the sample ---------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stream")
    frame = make_mixed_frame(2_000, seed=5)
    frame["row_id"] = np.arange(len(frame))  # not a model input: extra columns are ignored
    out = {"parquet": d / "rows.parquet", "csv": d / "rows.csv"}
    frame.to_parquet(out["parquet"])
    frame.to_csv(out["csv"], index=False)
    return out


def test_batches_read_back_the_whole_file(files: dict[str, Path]) -> None:
    import pandas as pd

    for path in files.values():
        want = read_data(path)
        batches = list(iter_batches(path, rows=300))
        assert [len(b) for b in batches] == [300] * 6 + [200]
        pd.testing.assert_frame_equal(pd.concat(batches), want)
        assert list(batches[0].dtypes) == list(want.dtypes)
        pd.testing.assert_frame_equal(next(iter_batches(path)), want)
    assert count_rows(files["parquet"]) == 2_000 and count_rows(files["csv"]) is None


def test_parquet_batches_do_not_hold_the_file(tmp_path: Path) -> None:
    """Arrow's memory stays about a row group or two while the batches are read (pyarrow's
    default pre-buffering would keep the whole file by the last batch)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = pd.DataFrame(np.random.default_rng(0).normal(size=(400_000, 6)), columns=list("abcdef"))
    pq.write_table(pa.Table.from_pandas(x, preserve_index=False), tmp_path / "x.parquet",
                   row_group_size=20_000)
    size = int(x.memory_usage().sum())
    del x
    peak, rows = 0, 0
    for batch in iter_batches(tmp_path / "x.parquet", rows=10_000):
        peak = max(peak, pa.total_allocated_bytes())
        rows += len(batch)
    assert rows == 400_000
    assert peak < size / 3, f"Arrow held {peak / 2**20:.1f} MiB of a {size / 2**20:.1f} MiB file"


def test_csv_batches_keep_text_columns_text(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": np.arange(10.0), "city": ["Oslo"] * 5 + [None] * 5})
    frame.to_csv(tmp_path / "t.csv", index=False)
    first, later = iter_batches(tmp_path / "t.csv", rows=5)
    want = read_data(tmp_path / "t.csv")["city"].dtype
    assert later["city"].dtype == first["city"].dtype == want
    assert later["city"].isna().all() and list(later.index) == [5, 6, 7, 8, 9]


def test_rows_sample_is_seeded_and_in_file_order(files: dict[str, Path]) -> None:
    whole_frame = read_data(files["parquet"])
    sample, total = sample_rows(files["parquet"], 300, seed=4, rows=128)
    again, _ = sample_rows(files["parquet"], 300, seed=4, rows=128)
    other, _ = sample_rows(files["parquet"], 300, seed=5, rows=128)
    assert total == 2_000 and len(sample) == 300
    assert sample.equals(again) and not sample.equals(other)
    # each sampled row is a row of the file, in file order
    ids = sample["row_id"].to_numpy()
    assert (np.diff(ids) > 0).all()
    assert sample.reset_index(drop=True).equals(
        whole_frame.iloc[ids].reset_index(drop=True))
    small, total = sample_rows(files["csv"], 5_000, seed=0)
    assert total == 2_000 and small.equals(read_data(files["csv"]))


def test_reservoir_is_uniform() -> None:
    n, k, runs = 40, 8, 2_000
    counts = np.zeros(n)
    for seed in range(runs):
        r = Reservoir(k, seed)
        for lo in range(0, n, 7):  # batches of 7 rows
            r.add(np.arange(lo, min(lo + 7, n)))
        counts[r.sample()] += 1
    expect = runs * k / n  # 400 each; sd about 18
    assert np.abs(counts - expect).max() < 5 * np.sqrt(expect * (1 - k / n))


# -- a real check, streamed ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["right", "wrong"])
def test_streamed_check_equals_in_memory(which: str, files: dict[str, Path],
                                         fitted_pipeline: Any, other_pipeline: Any,
                                         mixed_bundle_dir: Path) -> None:
    import baton

    model = fitted_pipeline if which == "right" else other_pipeline
    frame = read_data(files["parquet"])
    memory = baton.check(model, mixed_bundle_dir, frame, search=False)
    streamed = baton.check(model, mixed_bundle_dir, iter_batches(files["parquet"], rows=97),
                           search=False)
    assert streamed.rows == memory.rows == 2_000
    assert [o.to_dict() for o in streamed.outputs] == [o.to_dict() for o in memory.outputs]
    assert streamed.notes == memory.notes and bool(streamed) == bool(memory)
    assert bool(memory) == (which == "right")
    if which == "wrong":
        assert any(o.worst for o in streamed.outputs)
        assert all(o.min_atol is not None for o in streamed.outputs if not o.is_label)


def test_streamed_search_from_a_sample_says_so(files: dict[str, Path], fitted_pipeline: Any,
                                               mixed_bundle_dir: Path) -> None:
    from baton.converters import find_converter
    from baton.parity.check import check_batches
    from baton.parity.search import SearchBudget

    budget = SearchBudget.parse("150")
    report = check_batches(fitted_pipeline, mixed_bundle_dir,
                           iter_batches(files["parquet"], rows=500),
                           converter=find_converter(fitted_pipeline), search_budget=budget,
                           sample_rows=400)
    assert report.rows == 2_000 and report.search is not None
    assert any("sample of 400 of the 2,000 rows" in n for n in report.notes)


def test_check_accumulator_merges_partitions(files: dict[str, Path], fitted_pipeline: Any,
                                             other_pipeline: Any,
                                             mixed_bundle_dir: Path) -> None:
    """As Spark uses it: one accumulator per partition, merged, then report_from."""
    import baton
    from baton.converters import find_converter
    from baton.parity.check import accumulator_for, open_target, report_from

    target = open_target(mixed_bundle_dir)
    model = other_pipeline
    frame = read_data(files["parquet"])
    conv = find_converter(model)
    parts = []
    for lo, hi in ((1200, 2000), (0, 700), (700, 1200)):
        prepared = conv.prepare(model, frame.iloc[lo:hi])
        expected = conv.predict(model, prepared)
        acc = accumulator_for(target, expected)
        acc.update(prepared, expected,
                   target.run(baton.schema.to_feeds(prepared, target.inputs)), lo)
        parts.append(acc)
    # a partition numbered from its own first row, shifted once the rows before it are known
    lo, hi = 700, 1200
    prepared = conv.prepare(model, frame.iloc[lo:hi])
    expected = conv.predict(model, prepared)
    late = accumulator_for(target, expected)
    late.update(prepared, expected, target.run(baton.schema.to_feeds(prepared, target.inputs)),
                0)
    late.shift_rows(lo)
    assert [o.to_dict() for o in late.diffs()] == [o.to_dict() for o in parts[2].diffs()]
    acc = pickle.loads(pickle.dumps(parts[0])).merge(parts[1]).merge(parts[2])
    report = report_from(acc, model=conv.describe(model), target=target,
                         data_name="partitions", notes=["merged"])
    memory = baton.check(model, mixed_bundle_dir, frame, search=False)
    assert report.rows == 2_000 and not report
    assert [o.to_dict() for o in report.outputs] == [o.to_dict() for o in memory.outputs]
    assert report.digest == memory.digest and report.target == memory.target


def test_cli_rows_checks_a_seeded_sample(files: dict[str, Path], fitted_pipeline: Any,
                                         mixed_bundle_dir: Path, tmp_path: Path) -> None:
    import skops.io as sio
    from typer.testing import CliRunner

    from baton.cli import app

    sio.dump(fitted_pipeline, tmp_path / "model.skops")
    outs = []
    for name in ("a.json", "b.json"):
        result = CliRunner().invoke(app, [
            "check", str(tmp_path / "model.skops"), str(mixed_bundle_dir), "--data",
            str(files["csv"]), "--rows", "300", "--seed", "7", "--no-search",
            "--json", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outs.append(json.loads((tmp_path / name).read_text()))
    assert outs[0]["rows"] == 300
    assert any("a seeded sample of 300 of 2,000 rows (seed 7)" in n for n in outs[0]["notes"])
    assert outs[0]["outputs"] == outs[1]["outputs"]
