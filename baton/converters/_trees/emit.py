"""The emitter: an :class:`~baton.converters._trees.ir.Ensemble` and its
:class:`~baton.converters._trees.ir.Head` as one ONNX graph.

The emitter writes ``ai.onnx.ml`` opset 5 ``TreeEnsemble`` with float64 splits and float64
inputs, which onnxruntime evaluates in double precision: a threshold is never rounded, so no
row takes a branch the original would not take. Before the trees, the graph reads the row
as the library does (:func:`_preprocess`, in the order the :mod:`~baton.converters._trees.ir`
docstring gives); the trees are summed in float64 or, as XGBoost does, in float32 one after
another (:func:`_float64_sum`, :func:`_float32_sum`); the head
(:mod:`~baton.converters._trees.heads`) turns the sum into the outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from baton.converters._trees.heads import _head
from baton.converters._trees.ir import Ensemble, Head, Leaf, Split, Tree

if TYPE_CHECKING:
    import onnx

_MODE_CODE = {"LEQ": 0, "LT": 1, "MEMBER": 6}
ML_OPSET = 5
DEFAULT_OPSET = 18


def emit(ens: Ensemble, head: Head, *, input_name: str = "input", name: str = "trees",
         opset: int | None = None) -> onnx.ModelProto:
    """The ONNX model for an ensemble and its head: input ``float64 [N, n_features]``."""
    import onnx
    from onnx import TensorProto, helper

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
        from onnx import TensorProto

        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, ins: list[str], outs: list[str], **attrs: Any) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, ins, outs, **attrs))


def _preprocess(b: _Builder, ens: Ensemble, x: str) -> str:
    """The row as the library reads it before its trees (see the docstring of
    :mod:`baton.converters._trees.ir`)."""
    from onnx import TensorProto

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
    from onnx import TensorProto

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
    from onnx import helper, numpy_helper

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
