"""Properties of ``compare()``: the elementwise rule, non-finite values, minimum tolerances,
labels, worst rows, shape alignment and cosine similarity.

Every expectation is computed here with plain numpy from the rule in DESIGN.md
(``|a - b| <= atol + rtol * |b|``, ``b`` the original's output), never by calling baton.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from baton.parity.compare import WORST_ROWS, compare
from baton.schema import row_values
from baton.tolerance import Tolerance

DTYPES = [np.float32, np.float64]
SETTINGS = settings(max_examples=60, deadline=None)

tolerances = st.builds(
    Tolerance,
    atol=st.sampled_from([0.0, 1e-7, 1e-5, 1e-3, 0.5]) | st.floats(0, 1),
    rtol=st.sampled_from([0.0, 1e-6, 1e-4, 1e-2, 0.5]) | st.floats(0, 1),
)
shapes = st.one_of(
    st.tuples(st.integers(1, 25)),
    st.tuples(st.integers(1, 25), st.integers(1, 4)),
)


def width_of(dtype: Any) -> Literal[32, 64]:
    return 32 if dtype == np.float32 else 64


def values(dtype: Any, lo: float = -1e4, hi: float = 1e4) -> st.SearchStrategy[float]:
    width = width_of(dtype)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width)


@st.composite
def near_boundary(draw: st.DrawFn, dtype: Any) -> tuple[np.ndarray, np.ndarray, Tolerance]:
    """``expected`` and an ``actual`` whose errors cluster around ``atol + rtol*|b|``."""
    shape = draw(shapes)
    tol = draw(tolerances)
    b = draw(hnp.arrays(dtype, shape, elements=values(dtype)))
    factors = draw(hnp.arrays(
        np.float64, shape,
        elements=st.sampled_from([0.0, 0.5, 0.999999, 1.0, 1.000001, 2.0, -1.0, -1.000001])
        | st.floats(-3, 3),
    ))
    bound = tol.atol + tol.rtol * np.abs(b.astype(np.float64))
    a = (b.astype(np.float64) + factors * bound).astype(dtype)
    return b, a, tol


def rule(b: np.ndarray, a: np.ndarray, tol: Tolerance) -> np.ndarray:
    """The elementwise verdict for finite values, in float64, as DESIGN.md states it."""
    b64, a64 = b.astype(np.float64), a.astype(np.float64)
    return np.abs(a64 - b64) <= tol.atol + tol.rtol * np.abs(b64)


def rows_of(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def passes(b: np.ndarray, a: np.ndarray, tol: Tolerance) -> bool:
    return compare("y", "scores", b, a, tol).passed


# -- identical arrays ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), tol=tolerances | st.just(Tolerance(atol=0.0, rtol=0.0)))
def test_identical_arrays_pass_with_zero_error(dtype: Any, data: st.DataObject,
                                               tol: Tolerance) -> None:
    # any float, NaN and ±inf included
    b = data.draw(hnp.arrays(dtype, shapes, elements=st.floats(width=width_of(dtype))))
    d = compare("y", "scores", b, b.copy(), tol)
    assert d.passed and bool(d)
    assert d.mismatched_rows == 0
    assert d.rows == len(b)
    assert d.max_abs == 0.0
    assert d.min_atol == 0.0 and d.min_rtol == 0.0
    assert d.worst == []


# -- the elementwise rule ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_elementwise_rule_decides_pass_and_fail(dtype: Any, data: st.DataObject) -> None:
    b, a, tol = data.draw(near_boundary(dtype))
    ok = rule(b, a, tol)
    row_ok = rows_of(ok).all(axis=1)
    d = compare("y", "scores", b, a, tol)
    assert d.passed == bool(ok.all())
    assert d.mismatched_rows == int((~row_ok).sum())
    err = np.abs(a.astype(np.float64) - b.astype(np.float64))
    assert d.max_abs == float(err.max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_rule_uses_the_original_as_reference(dtype: Any) -> None:
    """rtol scales with |original|, not |ONNX|: the same pair passes one way round only."""
    tol = Tolerance(atol=0.0, rtol=0.1)
    big, small = np.array([10.0], dtype=dtype), np.array([9.05], dtype=dtype)
    assert passes(big, small, tol)  # |9.05-10| = 0.95 <= 0.1 * 10
    assert not passes(small, big, tol)  # 0.95 > 0.1 * 9.05


# -- NaN and infinity -------------------------------------------------------------------


finite_tables = st.integers(1, 20).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(1, 3), st.integers(0, n - 1)))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(dims=finite_tables, data=st.data())
def test_nan_in_both_at_the_same_place_agrees(dtype: Any, dims: tuple[int, int, int],
                                              data: st.DataObject) -> None:
    n, k, row = dims
    b = data.draw(hnp.arrays(dtype, (n, k), elements=values(dtype)))
    b[row, data.draw(st.integers(0, k - 1))] = np.nan
    a = b.copy()
    d = compare("y", "scores", b, a, Tolerance(atol=0.0, rtol=0.0))
    assert d.passed and d.mismatched_rows == 0 and d.max_abs == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", ["original", "onnx"])
@SETTINGS
@given(dims=finite_tables, data=st.data())
def test_nan_on_one_side_fails(dtype: Any, side: str, dims: tuple[int, int, int],
                               data: st.DataObject) -> None:
    n, k, row = dims
    b = data.draw(hnp.arrays(dtype, (n, k), elements=values(dtype)))
    a = b.copy()
    (b if side == "original" else a)[row, data.draw(st.integers(0, k - 1))] = np.nan
    d = compare("y", "scores", b, a, Tolerance(atol=1e6, rtol=1.0))  # a huge tolerance
    assert not d.passed
    assert d.mismatched_rows == 1
    assert [w.row for w in d.worst] == [row]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_same_infinity_agrees(dtype: Any, sign: float) -> None:
    b = np.array([[1.0, sign * np.inf], [2.0, 3.0]], dtype=dtype)
    d = compare("y", "scores", b, b.copy(), Tolerance(atol=0.0, rtol=0.0))
    assert d.passed and d.max_abs == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("orig", "onnx"), [
    (np.inf, 1.0), (1.0, np.inf), (-np.inf, 1.0), (1.0, -np.inf),
    (np.inf, -np.inf), (-np.inf, np.inf), (np.inf, np.nan), (np.nan, -np.inf),
])
@pytest.mark.parametrize("tol", [Tolerance(), Tolerance(atol=1e300, rtol=1.0)])
def test_infinity_against_anything_else_fails(dtype: Any, orig: float, onnx: float,
                                              tol: Tolerance) -> None:
    b = np.array([0.5, orig, 2.0], dtype=dtype)
    a = np.array([0.5, onnx, 2.0], dtype=dtype)
    d = compare("y", "scores", b, a, tol)
    assert not d.passed
    assert d.mismatched_rows == 1
    assert [w.row for w in d.worst] == [1]


# -- minimum tolerances -----------------------------------------------------------------


@st.composite
def noisy(draw: st.DrawFn, dtype: Any) -> tuple[np.ndarray, np.ndarray, Tolerance]:
    shape = draw(shapes)
    tol = draw(tolerances)
    b = draw(hnp.arrays(dtype, shape, elements=values(dtype, -1e3, 1e3)))
    if draw(st.booleans()):
        noise = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1, 1)))
        scale = draw(st.sampled_from([1e-9, 1e-6, 1e-3, 1.0]))
        a = (b.astype(np.float64) + noise * scale).astype(dtype)
    else:
        a = draw(hnp.arrays(dtype, shape, elements=values(dtype, -1e3, 1e3)))
    return b, a, tol


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_min_atol_is_the_least_atol_that_passes(dtype: Any, data: st.DataObject) -> None:
    b, a, tol = data.draw(noisy(dtype))
    d = compare("y", "scores", b, a, tol)
    assert d.min_atol is not None and d.min_atol >= 0.0
    assert passes(b, a, Tolerance(atol=d.min_atol, rtol=tol.rtol))
    err = np.abs(a.astype(np.float64) - b.astype(np.float64))
    # Slightly below fails, once the gap is above float64 resolution of the errors.
    below = d.min_atol * (1 - 1e-6)
    if d.min_atol > 1e-8 * err.max() and below < d.min_atol:  # (not at subnormal resolution)
        assert not passes(b, a, Tolerance(atol=below, rtol=tol.rtol))
    if d.passed:
        assert d.min_atol <= tol.atol


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_min_atol_without_rtol_is_the_max_abs_error(dtype: Any, data: st.DataObject) -> None:
    b, a, tol = data.draw(noisy(dtype))
    d = compare("y", "scores", b, a, Tolerance(atol=tol.atol, rtol=0.0))
    assert d.min_atol == float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_min_rtol_is_the_least_rtol_that_passes(dtype: Any, data: st.DataObject) -> None:
    b, a, tol = data.draw(noisy(dtype))
    b64, a64 = b.astype(np.float64), a.astype(np.float64)
    # No finite rtol helps an element whose error exceeds atol while its original is 0 (or
    # so tiny that the rtol it needs is beyond float64).
    excess = np.abs(a64 - b64) - tol.atol
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        hopeless = bool(np.any((excess > 0) & ~np.isfinite(excess / np.abs(b64))))
    d = compare("y", "scores", b, a, tol)
    assert d.min_rtol is not None and d.min_rtol >= 0.0
    assert math.isinf(d.min_rtol) == hopeless
    if hopeless:
        return
    assert passes(b, a, Tolerance(atol=tol.atol, rtol=d.min_rtol))
    err = np.abs(a64 - b64)
    needy = err > tol.atol  # the elements that need some rtol
    # Slightly below fails, once rtol*|b| is above float64 resolution of the errors there
    # (and is a normal number: among subnormals a product loses its relative precision).
    below = d.min_rtol * (1 - 1e-6)
    tiny = np.finfo(np.float64).tiny
    if (d.min_rtol > 0 and below < d.min_rtol
            and d.min_rtol * np.abs(b64[needy]).min() > 1e-8 * (tol.atol + err.max())
            and below * np.abs(b64[needy]).min() > tiny / np.finfo(np.float64).eps):
        assert not passes(b, a, Tolerance(atol=tol.atol, rtol=below))
    if d.passed:
        assert d.min_rtol <= tol.rtol


def test_min_tolerances_on_a_known_case() -> None:
    b = np.array([1.0, 10.0, 100.0])
    a = np.array([1.5, 10.0, 101.0])  # errors 0.5, 0, 1
    d = compare("y", "scores", b, a, Tolerance(atol=0.25, rtol=0.0))
    assert not d.passed
    assert d.min_atol == 1.0  # the largest error
    # rtol needed: (0.5 - 0.25) / 1 = 0.25 and (1 - 0.25) / 100 = 0.0075
    assert d.min_rtol == pytest.approx(0.25, rel=1e-12)
    assert d.min_rtol is not None
    assert passes(b, a, Tolerance(atol=0.25, rtol=d.min_rtol))


@pytest.mark.parametrize(("orig", "onnx", "tol", "which"), [
    # (0.8 - 0.7) / 0.7 rounds so that 0.7 * rtol < 0.8 - 0.7: one ulp short of passing
    (0.7, 0.7 + 0.1, Tolerance(atol=0.0, rtol=0.0), "rtol"),
    # 0.4 - 0.3 * 0.3 rounds so that atol + 0.3 * 0.3 < 0.4: one ulp short of passing
    (0.3, 0.7, Tolerance(atol=0.0, rtol=0.3), "atol"),
])
def test_min_tolerance_passes_despite_rounding(orig: float, onnx: float, tol: Tolerance,
                                               which: str) -> None:
    b, a = np.array([orig]), np.array([onnx])
    d = compare("y", "scores", b, a, tol)
    assert d.min_atol is not None and d.min_rtol is not None
    if which == "atol":
        assert passes(b, a, Tolerance(atol=d.min_atol, rtol=tol.rtol))
    else:
        assert passes(b, a, Tolerance(atol=tol.atol, rtol=d.min_rtol))


# -- error statistics -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_error_statistics_of_finite_outputs(dtype: Any, data: st.DataObject) -> None:
    b, a, tol = data.draw(noisy(dtype))
    b64, a64 = b.astype(np.float64), a.astype(np.float64)
    err = np.abs(a64 - b64)
    d = compare("y", "scores", b, a, tol)
    assert d.max_abs == float(err.max())
    assert d.p99_abs == pytest.approx(float(np.percentile(err, 99)), rel=1e-12, abs=0)
    rel = [0.0 if e == 0 else (e / abs(o) if o != 0 else math.inf)
           for e, o in zip(err.reshape(-1).tolist(), b64.reshape(-1).tolist())]
    assert d.max_rel == max(rel)


@pytest.mark.parametrize(("errors_at", "n", "p99"), [
    ([0, 1], 2, math.inf),  # both errors infinite: not inf - inf = NaN
    ([100], 101, 0.0),  # the 99th percentile of 101 values is the 100th smallest
    ([99], 100, math.inf),
])
def test_p99_with_infinite_errors_is_not_nan(errors_at: list[int], n: int, p99: float) -> None:
    b = np.zeros(n)
    a = b.copy()
    a[errors_at] = np.nan  # NaN on one side: an infinite error
    d = compare("y", "scores", b, a, Tolerance())
    assert d.max_abs == math.inf
    assert d.p99_abs == p99


# -- labels -----------------------------------------------------------------------------


@st.composite
def label_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    pools: list[list[Any]] = [[0, 1, 2, 3], ["cat", "dog", "", "émeu"]]
    pool = draw(st.sampled_from(pools))
    n = draw(st.integers(1, 40))
    exp = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    flips = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    act = [draw(st.sampled_from(pool)) if f else e for e, f in zip(exp, flips)]
    as_obj = draw(st.booleans()) and isinstance(pool[0], str)
    dtype = object if as_obj else None
    return np.array(exp, dtype=dtype), np.array(act, dtype=dtype)


@SETTINGS
@given(pair=label_pairs(), gate=st.sampled_from([0.0, 0.5, 0.9, 1.0]) | st.floats(0, 1))
def test_labels_use_exact_agreement_rate(pair: tuple[np.ndarray, np.ndarray],
                                         gate: float) -> None:
    exp, act = pair
    same = [e == a for e, a in zip(exp.tolist(), act.tolist())]
    n, k = len(same), sum(same)
    calls: list[int] = []

    def inputs(r: int) -> dict[str, Any]:
        calls.append(r)
        return {"row": r, "label": str(exp[r])}

    d = compare("label", "label", exp, act, Tolerance(atol=1e9, rtol=1e9, agreement=gate),
                inputs)
    assert d.agreement == k / n
    assert d.passed == (k / n >= gate)
    assert d.mismatched_rows == n - k
    bad = [i for i, s in enumerate(same) if not s]
    assert [w.row for w in d.worst] == bad[:WORST_ROWS]
    for w in d.worst:
        assert w.inputs == {"row": w.row, "label": str(exp[w.row])}
        assert (w.expected, w.actual) == (exp.tolist()[w.row], act.tolist()[w.row])


def test_labels_ignore_the_numeric_tolerance() -> None:
    """A label that is off by a little is still a different label."""
    d = compare("label", "label", np.array([1, 2, 3]), np.array([1, 2, 4]),
                Tolerance(atol=10.0, rtol=10.0))
    assert not d.passed
    assert d.agreement == 2 / 3


def test_string_labels_compare_with_integer_like_floats() -> None:
    """ONNX may return class ids as floats while the original returned ints."""
    d = compare("label", "label", np.array([0, 1, 2]), np.array([0.0, 1.0, 2.0]), Tolerance())
    assert d.passed and d.agreement == 1.0


# -- worst rows -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_worst_rows_have_the_largest_errors_and_their_inputs(dtype: Any,
                                                             data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 30))
    k = data.draw(st.integers(1, 3))
    b = data.draw(hnp.arrays(dtype, (n, k), elements=values(dtype, -100, 100)))
    a = data.draw(hnp.arrays(dtype, (n, k), elements=values(dtype, -100, 100)))
    keep = data.draw(hnp.arrays(np.bool_, (n, k)))
    a = np.where(keep, b, a)  # many rows exact, the others anything
    features = data.draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(-5, 5)))
    tol = Tolerance(atol=data.draw(st.sampled_from([1e-6, 1e-2, 1.0])), rtol=0.0)

    d = compare("y", "scores", b, a, tol, lambda r: {"x0": float(features[r, 0]),
                                                     "x1": float(features[r, 1]), "row": r})

    row_err = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=1)
    nonzero = sorted(row_err[row_err > 0].tolist(), reverse=True)
    assert len(d.worst) == min(WORST_ROWS, len(nonzero))
    assert [w.abs_error for w in d.worst] == nonzero[:WORST_ROWS]
    assert len({w.row for w in d.worst}) == len(d.worst)
    for w in d.worst:
        assert w.abs_error == row_err[w.row]
        assert w.inputs == {"x0": float(features[w.row, 0]), "x1": float(features[w.row, 1]),
                            "row": w.row}
        shown_b = [float(v) for v in b[w.row]]
        shown_a = [float(v) for v in a[w.row]]
        assert (w.expected, w.actual) == ((shown_b[0], shown_a[0]) if k == 1
                                          else (shown_b, shown_a))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_failing_rows_are_listed_before_passing_ones(dtype: Any, data: st.DataObject) -> None:
    b, a, tol = data.draw(near_boundary(dtype))
    d = compare("y", "scores", b, a, tol)
    row_ok = np.asarray(rows_of(rule(b, a, tol)).all(axis=1))
    listed_ok = [bool(row_ok[w.row]) for w in d.worst]
    assert listed_ok == sorted(listed_ok)  # every failing row before any passing one
    assert listed_ok.count(False) == min(WORST_ROWS, int((~row_ok).sum()))


def test_worst_rows_carry_row_values_of_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"age": [30.0, np.nan, 51.0], "city": ["Oslo", "Lima", None],
                          "n": [1, 2, 3]})
    b = np.array([0.1, 0.2, 0.3])
    a = np.array([0.1, 0.9, 0.3])
    d = compare("p", "probabilities", b, a, Tolerance(), lambda r: row_values(frame, r))
    assert [w.row for w in d.worst] == [1]
    assert d.worst[0].inputs == {"age": "NaN", "city": "Lima", "n": 2}
    assert d.worst[0].abs_error == pytest.approx(0.7)


# -- shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flat_side", ["original", "onnx"])
@SETTINGS
@given(data=st.data())
def test_column_vector_and_flat_vector_are_aligned(dtype: Any, flat_side: str,
                                                   data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 30))
    b = data.draw(hnp.arrays(dtype, (n,), elements=values(dtype, -10, 10)))
    a = b.copy()
    bad = data.draw(st.sets(st.integers(0, n - 1), max_size=3))
    for r in bad:
        a[r] = a[r] + 1
    exp, act = (b, a.reshape(n, 1)) if flat_side == "original" else (b.reshape(n, 1), a)
    d = compare("y", "prediction", exp, act, Tolerance())
    assert d.message is None
    assert d.rows == n
    assert d.passed == (not bad)
    assert d.mismatched_rows == len(bad)
    assert {w.row for w in d.worst} == bad


@pytest.mark.parametrize(("orig", "onnx"), [
    ((5, 2), (5, 3)),
    ((5,), (6,)),
    ((5,), (5, 2)),
    ((4, 1), (1, 4)),  # a transposed output: same values, but 1 row instead of 4
    ((4,), (1, 4)),
    ((2, 3), (3, 2)),
])
def test_different_shapes_fail_with_a_message(orig: tuple[int, ...],
                                              onnx: tuple[int, ...]) -> None:
    b = np.arange(math.prod(orig), dtype=np.float64).reshape(orig)
    a = np.arange(math.prod(onnx), dtype=np.float64).reshape(onnx)
    for kind in ("scores", "label"):
        d = compare("y", kind, b, a, Tolerance())
        assert not d.passed and not bool(d)
        assert d.message is not None
        assert str(list(orig)) in d.message and str(list(onnx)) in d.message
        assert d.summary() == d.message


# -- cosine similarity ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_cosine_similarity_is_reported_for_transformed(dtype: Any, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 20))
    k = data.draw(st.integers(2, 6))
    b = data.draw(hnp.arrays(dtype, (n, k), elements=values(dtype, -100, 100)))
    a = data.draw(hnp.arrays(dtype, (n, k), elements=values(dtype, -100, 100)))
    mix = data.draw(hnp.arrays(np.bool_, (n, k)))
    a = np.where(mix, b, a)
    b64, a64 = b.astype(np.float64), a.astype(np.float64)
    na, nb = np.sqrt((a64 ** 2).sum(axis=1)), np.sqrt((b64 ** 2).sum(axis=1))
    assume(bool(np.all(na > 1e-3)) and bool(np.all(nb > 1e-3)))
    cos = [float(np.dot(a64[i], b64[i]) / (na[i] * nb[i])) for i in range(n)]

    d = compare("z", "transformed", b, a, Tolerance())
    assert d.min_cosine == pytest.approx(min(cos), rel=1e-9, abs=1e-12)
    assert compare("z", "transformed", b, b.copy(), Tolerance()).min_cosine == pytest.approx(1.0)
    assert compare("z", "probabilities", b, a, Tolerance()).min_cosine is None


def test_worst_rows_with_zero_tolerance_are_ordered_by_error() -> None:
    expected = np.zeros((6, 1))
    actual = np.array([[1e-9], [5e-3], [1e-12], [2.0], [0.0], [3e-4]])
    diff = compare("y", "prediction", expected, actual, Tolerance(atol=0.0, rtol=0.0))
    assert [w.row for w in diff.worst] == [3, 1, 5, 0, 2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20),
       st.floats(1e-12, 1e3, allow_nan=False))
def test_printed_passing_tolerance_passes(values: list[float], shift: float) -> None:
    """The "passes at atol >= X" in the summary is a value that really passes."""
    import re

    b = np.asarray(values)
    diff = compare("y", "prediction", b, b + shift, Tolerance(atol=0.0, rtol=1e-4))
    if diff.passed:
        return
    printed = float(re.search(r"passes at atol >= (\S+)", diff.summary()).group(1))
    assert compare("y", "prediction", b, b + shift, Tolerance(atol=printed, rtol=1e-4)).passed
