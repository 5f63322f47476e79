"""One tree-ensemble representation and one emitter, fed by each library's reader.

Readers (LightGBM, XGBoost, CatBoost, scikit-learn) translate a fitted model into an
:class:`Ensemble` of binary trees whose splits say exactly what the library computes:

* ``LEQ``: ``x <= value`` goes to ``true`` (LightGBM, scikit-learn, CatBoost with its
  children swapped); ``LT``: ``x < value`` (XGBoost); ``MEMBER``: ``x`` is one of
  ``members`` (categorical splits);
* ``missing_true``: where NaN goes.

What the library does to a row before its trees, in this order (each step only where the
ensemble asks for it):

1. ``round_to_float32``: every feature rounded to float32 (scikit-learn's trees, XGBoost,
   CatBoost); the graph does the same cast and compares the rounded value in float64;
2. ``missing_value``: one more value read as missing (NaN), compared after the rounding;
3. ``categorical`` columns: a code outside ``category_range`` takes the false branch of
   every ``MEMBER`` split; any other value is truncated like ``int(x)``
   (``categorical_values="truncate"``) or, when it is no integer, read as missing
   (``"exact"``);
4. ``zero_band`` / ``zero_as_missing``: LightGBM's zeros.

How the trees are added (``accumulate``): in float64 by onnxruntime (``"float64"``, the
default), or one tree after another in float32 starting from the base margin, as XGBoost
does (``"float32"``).

The emitter writes ``ai.onnx.ml`` opset 5 ``TreeEnsemble`` with float64 splits and float64
inputs, which onnxruntime evaluates in double precision: a threshold is never rounded, so no
row takes a branch the original would not take. The head (sigmoid, softmax, exp, class
labels, class index) is standard ONNX operators in float64; a classifier's label is the
argmax of its probabilities or, as the library decides it, a rule on the raw scores
(``Head.label_rule``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Mode = Literal["LEQ", "LT", "MEMBER"]
_MODE_CODE = {"LEQ": 0, "LT": 1, "MEMBER": 6}
ML_OPSET = 5
DEFAULT_OPSET = 18


@dataclass(frozen=True)
class Leaf:
    """A leaf: one weight per target it contributes to."""

    weights: tuple[tuple[int, float], ...]

    @classmethod
    def scalar(cls, value: float, target: int = 0) -> Leaf:
        return cls(((target, float(value)),))


@dataclass
class Split:
    feature: int
    mode: Mode
    value: float
    true: int | Leaf
    false: int | Leaf
    missing_true: bool
    members: tuple[float, ...] = ()


@dataclass
class Tree:
    """``nodes[root]`` is the root when ``root`` is an int; a bare :class:`Leaf` is a tree
    without splits."""

    nodes: list[Split] = field(default_factory=list)
    root: int | Leaf = 0

    def add(self, split: Split) -> int:
        self.nodes.append(split)
        return len(self.nodes) - 1


@dataclass
class Ensemble:
    n_features: int
    n_targets: int
    trees: list[Tree]
    base: Sequence[float] = ()
    #: divide the sum of the trees by this (a random forest's average); 1 = plain sum
    divisor: float = 1.0
    round_to_float32: bool = False
    #: features that hold integer category codes, truncated like ``int(x)`` before comparing
    #: (after the float32 rounding when ``round_to_float32`` is on)
    categorical: Sequence[int] = ()
    #: ``(low, high)``: on the ``categorical`` features a value ``x < low`` or ``x >= high``
    #: (before truncation, after the rounding) is no category and takes the false branch
    #: of every ``MEMBER`` split (XGBoost: ``(0, 2**24)``); NaN stays missing. ``None``: the
    #: truncated value is looked up as it is
    category_range: tuple[float, float] | None = None
    #: what becomes of a value on the ``categorical`` features (inside ``category_range``
    #: where there is one, after the rounding and ``missing_value``). ``"truncate"``: it is
    #: truncated like ``int(x)`` and looked up (LightGBM, XGBoost: ``7.5`` is category 7).
    #: ``"exact"``: a value that is no finite integer (``7.5``, ``-0.5``, ``inf``) is no
    #: category at all and is read as missing (NaN), so every split sends it the missing
    #: way; integers are looked up as they are (scikit-learn's HistGradientBoosting, whose
    #: ``OrdinalEncoder`` matches values exactly and encodes an unknown one as NaN)
    categorical_values: Literal["truncate", "exact"] = "truncate"
    #: values with ``|x| <= zero_band`` are read as 0.0 (LightGBM drops them as zeros), and
    #: as missing on the ``zero_as_missing`` features (LightGBM's Zero missing type)
    zero_band: float = 0.0
    zero_as_missing: Sequence[int] = ()
    #: a value read as missing like NaN on every feature (XGBoost's ``missing=``); compared
    #: with the rounded input and ``float32(missing_value)`` when ``round_to_float32`` is on
    missing_value: float | None = None
    #: how the trees' values are added. ``"float64"``: onnxruntime's float64 sum, then
    #: ``/ divisor``, then ``+ base``. ``"float32"``: each tree's value rounded to float32
    #: and added one tree after another, in the order of ``trees``, in float32, starting
    #: from ``float32(base)``, separately per target (XGBoost's predictor); the result is
    #: cast back to float64. Not with a ``divisor``.
    accumulate: Literal["float64", "float32"] = "float64"

    def thresholds(self) -> dict[int, np.ndarray]:
        """Every numeric split value per feature (for tests and the parity search)."""
        out: dict[int, list[float]] = {}
        for t in self.trees:
            for s in t.nodes:
                if s.mode != "MEMBER":
                    out.setdefault(s.feature, []).append(s.value)
        return {k: np.unique(np.asarray(v, dtype=np.float64)) for k, v in out.items()}


Transform = Literal["identity", "exp", "sigmoid", "softmax", "sigmoid_each"]
LabelRule = Literal["argmax", "raw_argmax", "raw>=0", "raw>0"]


@dataclass
class Head:
    """What turns the summed raw scores into outputs.

    ``task``: ``regression`` (output ``prediction``), ``classification`` (``label``,
    ``probabilities`` and the margin ``raw_scores``) or ``class_index`` (output
    ``prediction``, float64 ``[N]``: the index of the first largest raw score, as an
    XGBoost ``Booster`` with ``multi:softmax`` predicts; no transform or scale applies).
    ``binary_margin``: a binary classifier with one raw score per row
    (``p = transform(score)``, probabilities ``[1-p, p]``).
    """

    task: Literal["regression", "classification", "class_index"]
    transform: Transform = "identity"
    scale: float = 1.0
    classes: np.ndarray | None = None
    binary_margin: bool = False
    #: regression with one target: output [N] like the library's predict (else [N, targets])
    flatten: bool = True
    #: classifiers: also output the margin ``raw_scores`` (not for averaged class shares)
    raw_scores: bool = True
    #: classifiers: how the label is picked. ``"argmax"``: the first largest probability
    #: (LightGBM, XGBoost, CatBoost, scikit-learn's forests). The others read the summed
    #: raw scores (before ``scale`` and ``transform``), where rounding in the transform
    #: cannot tie them: ``"raw_argmax"``: the first largest raw score, one per class
    #: (raw scores ``[0, 1e-17]`` give equal softmax probabilities, so ``"argmax"`` would
    #: pick class 0); ``"raw>=0"`` / ``"raw>0"``: with ``binary_margin``, class 1 where the
    #: raw score is ``>= 0`` (a score of 0 is class 1) / ``> 0`` (a score of 0 is class 0,
    #: and any positive one, however small, class 1, although its sigmoid may round to 0.5).
    #: scikit-learn's ``GradientBoostingClassifier`` predicts with ``raw >= 0``,
    #: ``HistGradientBoostingClassifier`` with ``raw > 0``, both ``argmax(raw)`` for more
    #: classes. NaN raw scores are class 0 under both binary rules.
    label_rule: LabelRule = "argmax"


def emit(ens: Ensemble, head: Head, *, input_name: str = "input", name: str = "trees",
         opset: int | None = None) -> onnx.ModelProto:
    """The ONNX model for an ensemble and its head: input ``float64 [N, n_features]``."""
    if ens.accumulate == "float32" and ens.divisor != 1.0:
        raise ValueError("accumulate='float32' with a divisor is not supported: no library "
                         "averages its trees in float32, so the order of that division "
                         "would be a guess")
    if ens.accumulate not in ("float64", "float32"):
        raise ValueError(f"unknown accumulate {ens.accumulate!r}")
    b = _Builder()
    x = _preprocess(b, ens, input_name)
    if ens.accumulate == "float32":
        _float32_sum(b, ens, x, "raw_scores")
    else:
        _float64_sum(b, ens, x, "raw_scores")
    outputs = _head(b, head, ens.n_targets)
    graph = helper.make_graph(
        b.nodes, name,
        [helper.make_tensor_value_info(input_name, TensorProto.DOUBLE, ["N", ens.n_features])],
        outputs, initializer=b.inits,
    )
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", opset or DEFAULT_OPSET),
        helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    model.ir_version = 10
    model.producer_name = "baton"
    onnx.checker.check_model(model)
    return model


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, ins: list[str], outs: list[str], **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op, ins, outs, **attrs))


def _preprocess(b: _Builder, ens: Ensemble, x: str) -> str:
    """The row as the library reads it before its trees (see the module docstring)."""
    if ens.round_to_float32:
        b.node("Cast", [x], ["x_f32"], to=TensorProto.FLOAT)
        b.node("Cast", ["x_f32"], ["x_rounded"], to=TensorProto.DOUBLE)
        x = "x_rounded"
    if ens.missing_value is not None and not np.isnan(ens.missing_value):
        value = ens.missing_value
        if ens.round_to_float32:
            with np.errstate(over="ignore"):
                value = float(np.float32(value))
        b.const("missing_value", np.asarray(value, dtype=np.float64))
        b.const("missing_nan", np.asarray(np.nan, dtype=np.float64))
        b.node("Equal", [x, "missing_value"], ["x_is_missing"])
        b.node("Where", ["x_is_missing", "missing_nan", x], ["x_missing"])
        x = "x_missing"
    if ens.categorical_values not in ("truncate", "exact"):
        raise ValueError(f"unknown categorical_values {ens.categorical_values!r}")
    if ens.categorical:
        x = _truncate_columns(b, x, ens.n_features, list(ens.categorical),
                              ens.category_range, _no_category(ens),
                              exact=ens.categorical_values == "exact")
    if ens.zero_band > 0 or ens.zero_as_missing:
        x = _snap_zeros(b, x, ens.n_features, ens.zero_band, list(ens.zero_as_missing))
    return x


def _float64_sum(b: _Builder, ens: Ensemble, x: str, out: str) -> None:
    b.nodes.append(_tree_ensemble_node(_single_target_trees(ens), ens.n_targets, x,
                                       "raw_sum"))
    raw = "raw_sum"
    if ens.divisor != 1.0:
        b.const("divisor", np.asarray(ens.divisor, dtype=np.float64))
        b.node("Div", [raw, "divisor"], ["raw_avg"])
        raw = "raw_avg"
    if len(ens.base) and any(v != 0.0 for v in ens.base):
        b.const("base", np.asarray(ens.base, dtype=np.float64).reshape(1, -1))
        b.node("Add", [raw, "base"], [out])
    else:
        b.node("Identity", [raw], [out])


def _float32_sum(b: _Builder, ens: Ensemble, x: str, out: str) -> None:
    """``base, tree 1, tree 2, ...`` added one after another in float32, per target.

    The TreeEnsemble gives every (tree, target) pair its own output column, laid out as a
    grid ``[k, targets]`` (``k``: the most trees any target has; row ``j`` holds each
    target's ``j``-th tree, unused cells stay 0.0). Each row of the input reaches one leaf
    per tree, so a cell holds exactly that leaf's value. The grid is cast to float32 and
    turned trees-first (``[k, N, targets]``, so CumSum adds whole slices), the base margin
    is added to step 0 (the first addition of the running sum), CumSum adds along the trees
    in order and its last step is the margin. Adding 0.0 leaves a float32 sum unchanged,
    so the padding changes nothing."""
    trees = _single_target_trees(ens)
    n_targets = ens.n_targets
    count = [0] * n_targets
    position: dict[tuple[int, int], int] = {}
    for i, tree in enumerate(trees):
        for target in sorted({t for leaf in _leaves(tree) for t, _ in leaf.weights}):
            position[(i, target)] = count[target]
            count[target] += 1
    k = max([1, *count])
    b.nodes.append(_tree_ensemble_node(
        trees, k * n_targets, x, "tree_values",
        column=lambda i, target: position[(i, target)] * n_targets + target))
    b.node("Cast", ["tree_values"], ["tree_values_f32"], to=TensorProto.FLOAT)
    b.const("tree_grid", np.asarray([-1, k, n_targets], dtype=np.int64))
    b.node("Reshape", ["tree_values_f32", "tree_grid"], ["tree_grid_values"])
    b.node("Transpose", ["tree_grid_values"], ["tree_steps"], perm=[1, 0, 2])
    start = np.zeros((k, 1, n_targets), dtype=np.float32)
    if len(ens.base):
        start[0, 0, :] = np.broadcast_to(np.asarray(ens.base, dtype=np.float64), (n_targets,))
    b.const("base_f32", start)
    b.node("Add", ["tree_steps", "base_f32"], ["tree_steps_from_base"])
    b.const("tree_axis", np.asarray(0, dtype=np.int64))
    b.node("CumSum", ["tree_steps_from_base", "tree_axis"], ["running_sums"])
    b.const("last_tree", np.asarray(k - 1, dtype=np.int64))
    b.node("Gather", ["running_sums", "last_tree"], ["raw_f32"], axis=0)
    b.node("Cast", ["raw_f32"], [out], to=TensorProto.DOUBLE)


def _no_category(ens: Ensemble) -> float:
    """A value below (or, with no lower bound, above) every category and every member, so
    a ``MEMBER`` split sends it the false way."""
    if ens.category_range is None:
        return float("nan")
    low, high = (float(v) for v in ens.category_range)
    columns = set(ens.categorical)
    members = [m for tree in ens.trees for s in tree.nodes
               if s.mode == "MEMBER" and s.feature in columns for m in s.members
               if not np.isnan(m)]
    if np.isfinite(low):
        edge = min([low, *members])
        value = float(np.floor(edge) - 1.0)
        return value if value < edge else float(np.nextafter(edge, -np.inf))
    if np.isfinite(high):
        edge = max([high, *members])
        value = float(np.ceil(edge) + 1.0)
        return value if value > edge else float(np.nextafter(edge, np.inf))
    raise ValueError(f"category_range {ens.category_range!r} has no finite bound")


def _truncate_columns(b: _Builder, x: str, n: int, columns: list[int],
                      valid: tuple[float, float] | None, no_category: float, *,
                      exact: bool = False) -> str:
    """``int(x)`` (truncation toward zero) on the categorical columns, as the libraries do
    before looking a value up in a category set; NaN stays NaN. ``exact``: no truncation;
    a value that is no finite integer becomes NaN instead (``x - floor(x)`` is 0 exactly
    for the finite integers, NaN for ``±inf`` and NaN). With ``valid`` = ``(low, high)``,
    a value outside ``[low, high)`` becomes ``no_category`` (either way: the range is
    tested on the value before the truncation or the integer test)."""
    mask = np.zeros((1, n), dtype=bool)
    mask[0, columns] = True
    b.const("cat_mask", mask)
    if exact:
        b.const("cat_zero", np.asarray(0.0, dtype=np.float64))
        b.const("cat_nan", np.asarray(np.nan, dtype=np.float64))
        b.node("Floor", [x], ["x_floor"])
        b.node("Sub", [x, "x_floor"], ["x_fraction"])
        b.node("Equal", ["x_fraction", "cat_zero"], ["x_is_integer"])
        b.node("Where", ["x_is_integer", x, "cat_nan"], ["x_integer"])
        code = "x_integer"
    else:
        b.node("Abs", [x], ["x_abs"])
        b.node("Floor", ["x_abs"], ["x_abs_floor"])
        b.node("Sign", [x], ["x_sign"])
        b.node("Mul", ["x_abs_floor", "x_sign"], ["x_trunc"])
        code = "x_trunc"
    if valid is not None:
        b.const("cat_low", np.asarray(valid[0], dtype=np.float64))
        b.const("cat_high", np.asarray(valid[1], dtype=np.float64))
        b.const("cat_none", np.asarray(no_category, dtype=np.float64))
        b.node("Less", [x, "cat_low"], ["cat_below"])
        b.node("GreaterOrEqual", [x, "cat_high"], ["cat_above"])
        b.node("Or", ["cat_below", "cat_above"], ["cat_outside"])
        b.node("Where", ["cat_outside", "cat_none", code], ["x_code"])
        code = "x_code"
    b.node("Where", ["cat_mask", code, x], ["x_cat"])
    return "x_cat"


def _snap_zeros(b: _Builder, x: str, n: int, band: float, missing: list[int]) -> str:
    """``|x| <= band`` becomes 0.0, or NaN on the ``missing`` columns (whose splits then
    send it the missing way)."""
    fill = np.zeros((1, n), dtype=np.float64)
    fill[0, missing] = np.nan
    b.const("zero_fill", fill)
    b.const("zero_band", np.asarray(band, dtype=np.float64))
    b.node("Abs", [x], ["x_abs_z"])
    b.node("LessOrEqual", ["x_abs_z", "zero_band"], ["x_is_zero"])
    b.node("Where", ["x_is_zero", "zero_fill", x], ["x_zeros"])
    return "x_zeros"


def _tree_ensemble_node(trees: list[Tree], n_outputs: int, x: str, out: str, *,
                        column: Callable[[int, int], int] | None = None) -> onnx.NodeProto:
    """One TreeEnsemble over single-target trees, summing into ``n_outputs`` columns: a
    leaf of tree ``i`` for target ``t`` adds to column ``column(i, t)`` (default ``t``)."""
    modes: list[int] = []
    features: list[int] = []
    splits: list[float] = []
    true_ids: list[int] = []
    true_leaf: list[int] = []
    false_ids: list[int] = []
    false_leaf: list[int] = []
    missing: list[int] = []
    members: list[float] = []
    roots: list[int] = []
    leaf_targets: list[int] = []
    leaf_weights: list[float] = []

    def leaf_index(leaf: Leaf, i: int) -> int:
        # one ONNX leaf per (target, weight): the trees here are single-target
        (target, weight), = leaf.weights
        leaf_targets.append(target if column is None else column(i, target))
        leaf_weights.append(weight)
        return len(leaf_targets) - 1

    for i, tree in enumerate(trees):
        offset = len(modes)
        root = tree.root
        nodes = tree.nodes
        if isinstance(root, Leaf):  # a tree without splits: one split whose sides agree
            nodes = [Split(0, "LEQ", 0.0, root, root, True)]
            root = 0
        roots.append(offset + root)
        for s in nodes:
            modes.append(_MODE_CODE[s.mode])
            features.append(s.feature)
            splits.append(s.value if s.mode != "MEMBER" else 0.0)
            if s.mode == "MEMBER":
                members.extend(s.members)
                members.append(np.nan)
            for child, ids, is_leaf in ((s.true, true_ids, true_leaf),
                                        (s.false, false_ids, false_leaf)):
                if isinstance(child, Leaf):
                    ids.append(leaf_index(child, i))
                    is_leaf.append(1)
                else:
                    ids.append(offset + child)
                    is_leaf.append(0)
            missing.append(int(s.missing_true))
    attrs: dict[str, Any] = dict(
        n_targets=n_outputs, aggregate_function=1, post_transform=0, tree_roots=roots,
        nodes_modes=numpy_helper.from_array(np.asarray(modes, dtype=np.uint8)),
        nodes_featureids=features,
        nodes_splits=numpy_helper.from_array(np.asarray(splits, dtype=np.float64)),
        nodes_truenodeids=true_ids, nodes_trueleafs=true_leaf,
        nodes_falsenodeids=false_ids, nodes_falseleafs=false_leaf,
        nodes_missing_value_tracks_true=missing,
        leaf_targetids=leaf_targets,
        leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
    )
    if members:
        attrs["membership_values"] = numpy_helper.from_array(
            np.asarray(members, dtype=np.float64))
    return helper.make_node("TreeEnsemble", [x], [out], domain="ai.onnx.ml", **attrs)


def _single_target_trees(ens: Ensemble) -> list[Tree]:
    """Trees whose leaves each feed one target: a tree with multi-target leaves (a random
    forest classifier's class shares) becomes one copy per target."""
    out = []
    for tree in ens.trees:
        leaves = _leaves(tree)
        targets = sorted({t for leaf in leaves for t, _ in leaf.weights})
        if all(len(leaf.weights) == 1 for leaf in leaves):
            out.append(tree)
            continue
        for target in targets:
            def pick(c: int | Leaf, target: int = target) -> int | Leaf:
                if isinstance(c, Leaf):
                    return Leaf(((target, dict(c.weights).get(target, 0.0)),))
                return c
            out.append(Tree([Split(s.feature, s.mode, s.value, pick(s.true), pick(s.false),
                                   s.missing_true, s.members) for s in tree.nodes],
                            pick(tree.root)))
    return out


def _leaves(tree: Tree) -> list[Leaf]:
    leaves = [c for s in tree.nodes for c in (s.true, s.false) if isinstance(c, Leaf)]
    if isinstance(tree.root, Leaf):
        leaves.append(tree.root)
    return leaves


def _transform(b: _Builder, head: Head, score: str) -> str:
    """The library's output function on the raw scores, in float64."""
    if head.scale != 1.0:
        b.const("scale", np.asarray(head.scale, dtype=np.float64))
        b.node("Mul", [score, "scale"], ["raw_scaled"])
        score = "raw_scaled"
    if head.transform == "identity":
        return score
    if head.transform == "exp":
        b.node("Exp", [score], ["score_exp"])
        return "score_exp"
    if head.transform in ("sigmoid", "sigmoid_each"):
        b.node("Sigmoid", [score], ["score_sigmoid"])
        return "score_sigmoid"
    if head.transform == "softmax":
        b.node("Softmax", [score], ["score_softmax"], axis=1)
        return "score_softmax"
    raise ValueError(f"unknown transform {head.transform!r}")


def _head(b: _Builder, head: Head, n_targets: int) -> list[onnx.ValueInfoProto]:
    def vi(name: str, elem: int, shape: list[Any]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, elem, shape)

    if head.task != "classification" and head.label_rule != "argmax":
        raise ValueError(f"label_rule {head.label_rule!r} is for classification heads")
    if head.task == "class_index":
        if head.transform != "identity" or head.scale != 1.0:
            raise ValueError("a class_index head takes the raw scores as they are: no "
                             "transform or scale")
        b.node("ArgMax", ["raw_scores"], ["class_index"], axis=1, keepdims=0,
               select_last_index=0)
        b.node("Cast", ["class_index"], ["prediction"], to=TensorProto.DOUBLE)
        return [vi("prediction", TensorProto.DOUBLE, ["N"])]
    score = _transform(b, head, "raw_scores")
    if head.task == "regression":
        if head.flatten and n_targets == 1:
            b.const("flat_shape", np.asarray([-1], dtype=np.int64))
            b.node("Reshape", [score, "flat_shape"], ["prediction"])
            return [vi("prediction", TensorProto.DOUBLE, ["N"])]
        b.node("Identity", [score], ["prediction"])
        return [vi("prediction", TensorProto.DOUBLE, ["N", n_targets])]

    if head.classes is None:
        raise ValueError("a classification head needs its classes")
    n_classes = len(head.classes)
    if head.binary_margin:
        b.const("one", np.asarray(1.0, dtype=np.float64))
        b.node("Sub", ["one", score], ["p0"])
        b.node("Concat", ["p0", score], ["probabilities"], axis=1)
    else:
        b.node("Identity", [score], ["probabilities"])
    _label_index(b, head, n_targets, n_classes)
    classes = np.asarray(head.classes)
    if classes.dtype.kind in "USO":
        b.const("classes", np.asarray([str(c).encode() for c in classes], dtype=object))
        label_type = TensorProto.STRING
    else:
        b.const("classes", classes.astype(np.int64))
        label_type = TensorProto.INT64
    b.node("Gather", ["classes", "label_index"], ["label"], axis=0)
    outputs = [vi("label", label_type, ["N"]),
               vi("probabilities", TensorProto.DOUBLE, ["N", n_classes])]
    if head.raw_scores:
        outputs.append(vi("raw_scores", TensorProto.DOUBLE, ["N", n_targets]))
    return outputs


def _label_index(b: _Builder, head: Head, n_targets: int, n_classes: int) -> None:
    """``label_index`` (int64 ``[N]``) by ``head.label_rule``."""
    rule = head.label_rule
    if rule == "argmax":
        b.node("ArgMax", ["probabilities"], ["label_index"], axis=1, keepdims=0)
    elif rule == "raw_argmax":
        if head.binary_margin or n_targets != n_classes:
            raise ValueError(f"label_rule 'raw_argmax' needs one raw score per class, not "
                             f"{n_targets} for {n_classes} classes")
        b.node("ArgMax", ["raw_scores"], ["label_index"], axis=1, keepdims=0,
               select_last_index=0)
    elif rule in ("raw>=0", "raw>0"):
        if not head.binary_margin or n_targets != 1 or n_classes != 2:
            raise ValueError(f"label_rule {rule!r} is for a binary classifier with one "
                             "margin (binary_margin)")
        b.const("label_zero", np.asarray(0.0, dtype=np.float64))
        b.node("GreaterOrEqual" if rule == "raw>=0" else "Greater",
               ["raw_scores", "label_zero"], ["raw_positive"])
        b.node("Cast", ["raw_positive"], ["raw_positive_index"], to=TensorProto.INT64)
        b.const("label_shape", np.asarray([-1], dtype=np.int64))
        b.node("Reshape", ["raw_positive_index", "label_shape"], ["label_index"])
    else:
        raise ValueError(f"unknown label_rule {rule!r}")


OUTPUT_KINDS = {"label": "label", "probabilities": "probabilities", "raw_scores": "scores",
                "prediction": "prediction"}
#: How close a tree model's numbers must be: 1e-6 of the range the outputs span on the
#: sample (the splits themselves are exact; what is left is the order of summation).
RANGE_FRACTION = 1e-6


class TreeConverter(ABC):
    """Shared by the tree readers: schema, emission, validation, tolerances.

    A reader subclass sets ``name``, ``framework``, ``extra`` and implements ``accepts``,
    ``read`` (model -> :class:`Ensemble`, :class:`Head`), ``native_predict`` (the
    library's own outputs, keyed like the ONNX outputs), ``feature_names`` and
    ``versions``.
    """

    name = "trees"
    framework = "trees"
    extra = "all"

    @abstractmethod
    def accepts(self, model: Any) -> bool: ...

    @abstractmethod
    def read(self, model: Any) -> tuple[Ensemble, Head]: ...

    @abstractmethod
    def native_predict(self, model: Any, data: Any) -> dict[str, np.ndarray]: ...

    def feature_names(self, model: Any) -> list[str] | None:
        return None

    def versions(self) -> dict[str, str]:
        return {}

    def describe(self, model: Any) -> str:
        cls = type(model)
        return f"{cls.__module__}.{cls.__qualname__}"

    # -- shared -----------------------------------------------------------------------

    def split_points(self, model: Any) -> dict[int, np.ndarray]:
        """Every numeric split threshold of the original model, by the position of its
        feature in the prepared data (for the parity search, :mod:`baton.parity.search`)."""
        ens, _ = self.read(model)
        return ens.thresholds()

    def prepare(self, model: Any, data: Any) -> Any:
        from baton.schema import is_dataframe

        names = self.feature_names(model)
        if is_dataframe(data) and names is not None:
            from baton.schema import _require_columns

            _require_columns(data, names)
            return data[names]
        return data

    def infer_inputs(self, model: Any, sample: Any) -> list[Any]:
        import dataclasses

        from baton.errors import SchemaError
        from baton.schema import infer_inputs

        prepared = self.prepare(model, sample)
        (spec,) = infer_inputs(prepared, one_matrix=True)
        ens, _ = self.read(model)
        if spec.shape[1] != ens.n_features:
            raise SchemaError(
                "the sample does not have the number of features the model was trained on",
                expected=f"{ens.n_features} features", found=f"{spec.shape[1]} columns",
                hint="pass rows of the same feature matrix the model was fitted on",
            )
        # splits are compared in float64: every numeric input is fed as float64
        return [dataclasses.replace(spec, dtype="float64")]

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        import warnings

        from baton.errors import SchemaError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.native_predict(model, self.prepare(model, data))
        except (ValueError, TypeError, KeyError) as exc:
            raise SchemaError(
                f"the original model ({self.describe(model)}) rejected the data",
                expected="data shaped like the model's training data",
                found=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                hint="pass the same columns and types the model was trained on",
            ) from exc

    def convert(self, model: Any, sample: Any, inputs: list[Any], *,
                opset: int | None) -> Any:
        from baton.converters._registry import Conversion
        from baton.runtime.session import make_ort_session
        from baton.schema import from_ort
        from baton.tolerance import Tolerance

        ens, head = self.read(model)
        onx = emit(ens, head, input_name=inputs[0].name, name=type(model).__name__,
                   opset=opset)
        sess = make_ort_session(onx.SerializeToString())
        outputs = [from_ort(o, OUTPUT_KINDS[o.name]) for o in sess.get_outputs()]
        reference = self.predict(model, sample)
        tolerances = {}
        for o in outputs:
            if o.kind == "label":
                tolerances[o.name] = Tolerance()
                continue
            ref = np.asarray(reference[o.name], dtype=np.float64)
            finite = ref[np.isfinite(ref)]
            span = float(finite.max() - finite.min()) if finite.size else 0.0
            atol = RANGE_FRACTION * (span if span > 0 else max(1.0, float(np.abs(finite).max(
                initial=0.0))))
            tolerances[o.name] = Tolerance(atol=atol, rtol=0.0)
        notes = _notes(ens, head)
        return Conversion(
            model=onx, inputs=inputs, outputs=outputs,
            source={"framework": self.framework, "class": self.describe(model),
                    "versions": self.versions()},
            converter={"name": "baton.trees", "version": "1",
                       "strategy": f"baton tree emitter from the {self.framework} reader",
                       "attempts": ["float64: ok"], "notes": notes},
            precision="float64",
            tolerances=tolerances,
        )


def _notes(ens: Ensemble, head: Head) -> list[str]:
    """What the manifest says about how the graph reads the library (first: the tree count)."""
    notes = [f"{len(ens.trees)} trees, float64 splits (ai.onnx.ml TreeEnsemble opset 5)"]
    if ens.round_to_float32:
        notes.append("inputs rounded to float32 before the splits, as the library does")
    if ens.missing_value is not None and not np.isnan(ens.missing_value):
        notes.append(f"{ens.missing_value!r} read as missing, as the model's missing= says")
    if ens.categorical and ens.category_range is not None:
        low, high = ens.category_range
        notes.append(f"categorical codes outside [{low:.17g}, {high:.17g}) are no category; the "
                     + ("others are read as missing unless they are integers"
                        if ens.categorical_values == "exact" else
                        "others are truncated like int(x)")
                     + (" after the float32 rounding" if ens.round_to_float32 else ""))
    elif ens.categorical and ens.categorical_values == "exact":
        notes.append("categorical values that are not integers are no category and read as "
                     "missing, as the library's exact category match does")
    if ens.accumulate == "float32":
        notes.append("trees added one after another in float32 from the base margin, as "
                     "the library does")
    if head.task == "class_index":
        notes.append("prediction is the index of the largest margin")
    if head.task == "classification" and head.label_rule != "argmax":
        notes.append({"raw_argmax": "label: the class of the largest raw score",
                      "raw>=0": "label: class 1 where the raw score is >= 0",
                      "raw>0": "label: class 1 where the raw score is > 0"}[head.label_rule]
                     + ", as the library decides it")
    return notes
