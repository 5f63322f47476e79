"""The shared tree emitter's options on small hand-built ensembles, each checked against
values worked out by hand (float32 has 24 significant bits: from 2**24 = 16777216 to 2**25
its values are 2 apart, and a tie rounds to the even one: 16777217 -> 16777216,
16777219 -> 16777220)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from baton.converters._trees import Ensemble, Head, Leaf, Split, Tree, emit

BIG = 16777216.0  # 2**24


def _run(ens: Ensemble, head: Head, rows: list[list[float]]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(emit(ens, head).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"input": np.asarray(rows, dtype=np.float64)}),
                    strict=True))


def _const(value: float, target: int = 0) -> Tree:
    """A tree without splits."""
    return Tree(root=Leaf.scalar(value, target))


def _lt(value: float, below: float, above: float, target: int = 0, *,
        missing_true: bool = False, feature: int = 0) -> Tree:
    """``x < value``: ``below``, else ``above``."""
    tree = Tree()
    tree.add(Split(feature, "LT", value, Leaf.scalar(below, target), Leaf.scalar(above, target),
                   missing_true))
    return tree


def _member(members: tuple[float, ...], *, missing_true: bool = False) -> Tree:
    """A category in ``members``: 1.0, else 0.0."""
    tree = Tree()
    tree.add(Split(0, "MEMBER", 0.0, Leaf.scalar(1.0), Leaf.scalar(0.0), missing_true, members))
    return tree


def _prediction(ens: Ensemble, rows: list[list[float]], head: Head | None = None) -> np.ndarray:
    return _run(ens, head or Head("regression"), rows)["prediction"]


# -- accumulate ---------------------------------------------------------------------------


def test_float32_sum_starts_from_the_base_and_rounds_every_step() -> None:
    ens = Ensemble(1, 1, [_const(1.0), _const(1.0)], base=[BIG], accumulate="float32")
    # 2**24 + 1 -> 2**24 (tie to even), twice; in float64 the sum is 2**24 + 2
    assert _prediction(ens, [[0.0]]).tolist() == [BIG]
    assert _prediction(dataclasses.replace(ens, accumulate="float64"), [[0.0]]).tolist() == [
        BIG + 2]


def test_float32_sum_follows_the_tree_order() -> None:
    small_first = Ensemble(1, 1, [_const(1.0), _const(1.0), _const(BIG)], accumulate="float32")
    big_first = Ensemble(1, 1, [_const(BIG), _const(1.0), _const(1.0)], accumulate="float32")
    assert _prediction(small_first, [[0.0]]).tolist() == [BIG + 2]  # 1 + 1 = 2, + 2**24
    assert _prediction(big_first, [[0.0]]).tolist() == [BIG]


def test_float32_sum_per_target_in_each_targets_tree_order() -> None:
    """Trees alternate targets (as XGBoost's multi-class rounds do) and the two targets
    have different numbers of trees; the split picks the row's leaf."""
    trees = [_const(BIG, 0), _lt(0.5, 1.0, 3.0, target=1), _const(1.0, 0), _const(1.0, 0),
             _const(BIG, 1)]
    ens = Ensemble(1, 2, trees, accumulate="float32")
    got = _run(ens, Head("regression", flatten=False), [[0.0], [1.0]])["prediction"]
    # target 0: 2**24, +1, +1 -> 2**24 each time. target 1: 1 + 2**24 = 16777217 -> 2**24
    # (tie to even), 3 + 2**24 = 16777219 -> 16777220 (tie to even)
    assert got.tolist() == [[BIG, BIG], [BIG, BIG + 4]]
    exact = _run(dataclasses.replace(ens, accumulate="float64"), Head("regression", flatten=False),
                 [[0.0], [1.0]])["prediction"]
    assert exact.tolist() == [[BIG + 2, BIG + 1], [BIG + 2, BIG + 3]]


def test_float32_sum_with_vector_leaves_and_a_base_per_target() -> None:
    def vector(a: float, b: float) -> Tree:
        return Tree(root=Leaf(((0, a), (1, b))))

    ens = Ensemble(1, 2, [vector(BIG, 1.0), vector(1.0, BIG), vector(1.0, 1.0)],
                   base=[0.0, 1.0], accumulate="float32")
    got = _run(ens, Head("regression", flatten=False), [[0.0]])["prediction"]
    # target 0: 0 + 2**24, +1 -> 2**24, +1 -> 2**24
    # target 1: 1 + 1 = 2, + 2**24 = 16777218, + 1 = 16777219 -> 16777220
    assert got.tolist() == [[BIG, BIG + 4]]


def test_float32_sum_of_float64_leaves_rounds_each_leaf() -> None:
    ens = Ensemble(1, 1, [_const(0.1), _const(0.2)], accumulate="float32")
    (got,) = _prediction(ens, [[0.0]]).tolist()
    assert got == float(np.float32(np.float32(0.1) + np.float32(0.2)))  # 0.30000001192...
    assert got != 0.1 + 0.2


def test_float32_sum_with_a_divisor_is_refused() -> None:
    ens = Ensemble(1, 1, [_const(1.0), _const(2.0)], divisor=2.0, accumulate="float32")
    with pytest.raises(ValueError, match="divisor"):
        emit(ens, Head("regression"))


def test_float32_sum_feeds_a_classifier_head() -> None:
    ens = Ensemble(1, 1, [_lt(0.5, -1.0, 1.0)], base=[0.0], accumulate="float32")
    out = _run(ens, Head("classification", "sigmoid", classes=np.asarray([0, 1]),
                         binary_margin=True), [[0.0], [1.0]])
    assert out["label"].tolist() == [0, 1]
    assert out["raw_scores"].tolist() == [[-1.0], [1.0]]


# -- float32 rounding before the categorical truncation ------------------------------------


def test_rounding_comes_before_the_truncation() -> None:
    ens = Ensemble(1, 1, [_member((3.0,))], categorical=[0], round_to_float32=True)
    # float32(2.9999999999) = 3.0, then int -> 3; float32(2.9999) is below 3 -> 2
    assert _prediction(ens, [[2.9999999999], [2.9999], [3.7]]).tolist() == [1.0, 0.0, 1.0]
    unrounded = dataclasses.replace(ens, round_to_float32=False)  # LightGBM: int(x) only
    assert _prediction(unrounded, [[2.9999999999], [2.9999], [3.7]]).tolist() == [0.0, 0.0, 1.0]


def test_lightgbm_order_truncation_then_zeros() -> None:
    """Without rounding the categorical truncation still comes before the zero band: 0.5
    becomes 0, which is then missing on a zero_as_missing column (NaN goes false)."""
    ens = Ensemble(1, 1, [_member((0.0,))], categorical=[0], zero_band=1e-35,
                   zero_as_missing=[0])
    assert _prediction(ens, [[0.5], [1.0], [np.nan]]).tolist() == [0.0, 0.0, 0.0]
    kept = dataclasses.replace(ens, zero_as_missing=[])
    assert _prediction(kept, [[0.5], [1e-40], [1.0]]).tolist() == [1.0, 1.0, 0.0]


# -- category_range -------------------------------------------------------------------------


def test_codes_outside_the_range_take_the_false_branch() -> None:
    ens = Ensemble(1, 1, [_member((0.0, 5.0), missing_true=True)], categorical=[0],
                   round_to_float32=True, category_range=(0.0, BIG))
    rows = [[-0.5], [-1e-30], [-1e-300], [-0.0], [0.9], [5.7], [-5.0], [BIG], [BIG - 0.1],
            [np.nan]]
    # -0.5 and -1e-30 are below 0 (int() would make them 0); -1e-300 rounds to float32 -0.0
    # first, which like -0.0 is code 0; 2**24 - 0.1 rounds to 2**24; NaN stays missing
    # (true here)
    assert _prediction(ens, rows).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0,
                                               1.0]
    no_range = dataclasses.replace(ens, category_range=None)
    assert _prediction(no_range, rows[:3]).tolist() == [1.0, 1.0, 1.0]


def test_a_range_with_only_an_upper_bound() -> None:
    ens = Ensemble(1, 1, [_member((12.0, -3.0))], categorical=[0],
                   category_range=(-np.inf, 10.0))
    assert _prediction(ens, [[12.0], [-3.0], [9.9], [10.0]]).tolist() == [0.0, 1.0, 0.0, 0.0]


# -- missing_value --------------------------------------------------------------------------


def test_missing_value_is_compared_after_the_rounding() -> None:
    # x < 0: 1.0, else 2.0; missing goes the false way (2.0)
    ens = Ensemble(1, 1, [_lt(0.0, 1.0, 2.0)], round_to_float32=True, missing_value=-999.0)
    rows = [[-999.0], [float(np.nextafter(-999.0, 0.0))], [-999.0001], [np.nan], [-1.0]]
    assert _prediction(ens, rows).tolist() == [2.0, 2.0, 1.0, 2.0, 1.0]


def test_missing_value_that_float32_cannot_hold() -> None:
    tenth32 = float(np.float32(0.1))  # 0.10000000149...
    ens = Ensemble(1, 1, [_lt(1.0, 1.0, 2.0)], round_to_float32=True, missing_value=0.1)
    assert _prediction(ens, [[0.1], [tenth32], [0.5]]).tolist() == [2.0, 2.0, 1.0]
    exact = dataclasses.replace(ens, round_to_float32=False)
    assert _prediction(exact, [[0.1], [tenth32], [0.5]]).tolist() == [2.0, 1.0, 1.0]


def test_missing_value_comes_before_the_categories() -> None:
    # -1 is missing (true), not a code below the range (false)
    ens = Ensemble(1, 1, [_member((1.0,), missing_true=True)], categorical=[0],
                   round_to_float32=True, category_range=(0.0, BIG), missing_value=-1.0)
    assert _prediction(ens, [[-1.0], [-2.0], [1.0], [2.0]]).tolist() == [1.0, 0.0, 1.0, 0.0]


# -- class_index head -----------------------------------------------------------------------


def test_class_index_head_is_the_first_largest_raw_score() -> None:
    ens = Ensemble(1, 3, [_lt(0.5, 5.0, 0.0, target=0)], base=[1.0, 3.0, 3.0])
    out = _run(ens, Head("class_index"), [[0.0], [1.0]])
    assert list(out) == ["prediction"]
    assert out["prediction"].dtype == np.float64
    assert out["prediction"].tolist() == [0.0, 1.0]  # (6, 3, 3) and (1, 3, 3): first max


def test_class_index_head_takes_no_transform() -> None:
    ens = Ensemble(1, 2, [_const(1.0)], base=[0.0, 0.0])
    with pytest.raises(ValueError, match="class_index"):
        emit(ens, Head("class_index", "softmax"))


@pytest.mark.parametrize("accumulate", ["float64", "float32"])
def test_class_index_with_either_sum(accumulate: Any) -> None:
    # target 1: 1 + 2**24 is 2**24 in float32, not above target 0's 2**24
    ens = Ensemble(1, 2, [_const(BIG, 0), _const(1.0, 1), _const(BIG, 1)],
                   accumulate=accumulate)
    expected = 0.0 if accumulate == "float32" else 1.0
    assert _prediction(ens, [[0.0]], Head("class_index")).tolist() == [expected]


# -- label_rule -----------------------------------------------------------------------------


def _binary(accumulate: Any = "float64") -> Ensemble:
    """Raw scores by row ``x = 0, 1, 2, 3``: 0, 1e-17, 1e-17 - 2e-17 (about -1e-17), NaN;
    the sigmoid of each finite one rounds to 0.5."""
    return Ensemble(1, 1, [_lt(0.5, 0.0, 1e-17), _lt(1.5, 0.0, -2e-17), _lt(2.5, 0.0, np.nan)],
                    accumulate=accumulate)


@pytest.mark.parametrize("accumulate", ["float64", "float32"])
@pytest.mark.parametrize(("rule", "labels"), [("argmax", ["no", "no", "no", "no"]),
                                              ("raw>=0", ["yes", "yes", "no", "no"]),
                                              ("raw>0", ["no", "yes", "no", "no"])])
def test_binary_label_rules_read_the_raw_score(rule: Any, labels: list[str],
                                               accumulate: Any) -> None:
    head = Head("classification", "sigmoid", classes=np.asarray(["no", "yes"]),
                binary_margin=True, label_rule=rule)
    out = _run(_binary(accumulate), head, [[0.0], [1.0], [2.0], [3.0]])
    raw = out["raw_scores"][:, 0]
    assert raw[0] == 0.0 and raw[1] > 0.0 > raw[2] and np.isnan(raw[3])
    assert out["probabilities"][:3].tolist() == [[0.5, 0.5]] * 3  # argmax: the first, "no"
    assert out["label"].tolist() == labels


def test_binary_label_rule_reads_the_raw_score_before_the_scale() -> None:
    # p = sigmoid(2 * raw) (scikit-learn's exponential loss); the label still reads raw
    ens = Ensemble(1, 1, [_lt(0.5, -1e-17, 0.0)])
    head = Head("classification", "sigmoid", 2.0, np.asarray([3, 8]), binary_margin=True,
                label_rule="raw>=0")
    assert _run(ens, head, [[0.0], [1.0]])["label"].tolist() == [3, 8]


@pytest.mark.parametrize(("rule", "labels"), [("argmax", [0, 0]), ("raw_argmax", [1, 0])])
def test_raw_argmax_is_the_first_largest_raw_score(rule: Any, labels: list[int]) -> None:
    # x = 0: raw (0, 1e-17, -1); x = 1: raw (1e-17, 1e-17, -1), a tie: the first
    ens = Ensemble(1, 3, [_lt(0.5, 0.0, 1e-17, target=0)], base=[0.0, 1e-17, -1.0])
    head = Head("classification", "softmax", classes=np.asarray([0, 1, 2]), label_rule=rule)
    out = _run(ens, head, [[0.0], [1.0]])
    assert out["probabilities"][0, 0] == out["probabilities"][0, 1]  # exp(-1e-17) == 1
    assert out["label"].tolist() == labels


@pytest.mark.parametrize(("head", "n_targets"), [
    (Head("classification", "sigmoid", classes=np.asarray([0, 1]), label_rule="raw>0"), 1),
    (Head("classification", "softmax", classes=np.asarray([0, 1, 2]), label_rule="raw>=0"), 3),
    (Head("classification", "sigmoid", classes=np.asarray([0, 1]), binary_margin=True,
          label_rule="raw_argmax"), 1),
    (Head("classification", classes=np.asarray([0, 1, 2]), label_rule="raw_argmax"), 2),
    (Head("classification", classes=np.asarray([0, 1]), label_rule="raw"), 2),  # type: ignore[arg-type]
    (Head("regression", label_rule="raw>0"), 1),
])
def test_label_rules_that_do_not_fit_the_head_are_refused(head: Head, n_targets: int) -> None:
    ens = Ensemble(1, n_targets, [_const(1.0)])
    with pytest.raises(ValueError, match="label_rule"):
        emit(ens, head)


# -- categorical_values="exact" -------------------------------------------------------------


def _member_or_missing(members: tuple[float, ...]) -> Tree:
    """Feature 0: 9.0 when missing (NaN; ``+inf`` too), else 1.0 for a member, 0.0 for
    another value."""
    tree = Tree()
    tree.add(Split(0, "LT", np.inf, 1, Leaf.scalar(9.0), False))
    tree.add(Split(0, "MEMBER", 0.0, Leaf.scalar(1.0), Leaf.scalar(0.0), False, members))
    return tree


def test_exact_categories_read_non_integers_as_missing() -> None:
    # feature 1 is numeric: x < 7.25 gives 100, else 200, missing 100; it is left alone
    ens = Ensemble(2, 1, [_member_or_missing((0.0, 7.0)),
                          _lt(7.25, 100.0, 200.0, feature=1, missing_true=True)],
                   categorical=[0], categorical_values="exact")
    values = [7.0, 7.5, -0.5, 0.0, -0.0, 3.0, 7 + 2.0**-50, 1e-300, 2.0**51 + 0.5, 1e300,
              np.inf, -np.inf, np.nan]
    rows = [[v, 7.5] for v in values]
    assert (_prediction(ens, rows) - 200.0).tolist() == [1.0, 9.0, 9.0, 1.0, 1.0, 0.0, 9.0,
                                                         9.0, 9.0, 0.0, 9.0, 9.0, 9.0]
    # int(x): 7.5 -> 7, -0.5 -> 0, 7 + 2**-50 -> 7, 1e-300 -> 0 are members, 2**51 + 0.5
    # not; -inf stays -inf, no member
    truncated = dataclasses.replace(ens, categorical_values="truncate")
    assert (_prediction(truncated, rows) - 200.0).tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
                                                               1.0, 1.0, 0.0, 0.0, 9.0, 0.0,
                                                               9.0]


def test_exact_categories_after_the_rounding_and_the_missing_value() -> None:
    ens = Ensemble(1, 1, [_member_or_missing((7.0,))], categorical=[0],
                   categorical_values="exact", round_to_float32=True, missing_value=-1.0)
    # float32(6.9999999999) = 7.0 and float32(7.0000001) = 7.0 (float32 steps are 2**-21
    # there): members; float32(7.000001) = 7.00000095... is no integer: missing;
    # -1 is the missing value, and float32(-1.0000000001) = -1 too; -2 is another code
    rows = [[6.9999999999], [7.0000001], [7.000001], [-1.0], [-1.0000000001], [-2.0]]
    assert _prediction(ens, rows).tolist() == [1.0, 1.0, 9.0, 9.0, 9.0, 0.0]


def test_exact_categories_outside_the_range_are_no_category_not_missing() -> None:
    """The range is tested first, on the value as read: -0.5 and 10.5 are outside it (the
    false branch), 3.5 inside and no integer (missing)."""
    ens = Ensemble(1, 1, [_member_or_missing((0.0, 7.0))], categorical=[0],
                   categorical_values="exact", category_range=(0.0, 10.0))
    rows = [[-0.5], [10.5], [10.0], [3.5], [7.0], [0.0], [np.nan]]
    assert _prediction(ens, rows).tolist() == [0.0, 0.0, 0.0, 9.0, 1.0, 1.0, 9.0]


def test_exact_categories_then_zeros_as_missing() -> None:
    """The zero band comes last: on a zero_as_missing column a code 0 is missing, and a
    non-integer was already missing."""
    ens = Ensemble(1, 1, [_member_or_missing((0.0, 7.0))], categorical=[0],
                   categorical_values="exact", zero_band=1e-35, zero_as_missing=[0])
    assert _prediction(ens, [[0.0], [0.5], [1e-40], [7.0], [3.0]]).tolist() == [
        9.0, 9.0, 9.0, 1.0, 0.0]
    kept = dataclasses.replace(ens, zero_as_missing=[])
    assert _prediction(kept, [[0.0], [0.5], [1e-40]]).tolist() == [1.0, 9.0, 9.0]


def test_unknown_categorical_values_are_refused() -> None:
    ens = Ensemble(1, 1, [_member((1.0,))], categorical=[0],
                   categorical_values="round")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="categorical_values"):
        emit(ens, Head("regression"))
