"""The emitter: an :class:`~baton.converters._trees.ir.Ensemble` and its
:class:`~baton.converters._trees.ir.Head` as one ONNX graph.

The emitter writes ``ai.onnx.ml`` opset 5 ``TreeEnsemble`` with float64 splits and float64
inputs, which onnxruntime evaluates in double precision: a threshold is never rounded, so no
row takes a branch the original would not take. (XGBoost's exact float32 sum: a float32
TreeEnsemble on the float32-rounded rows, whose split values are float32 already: the same
comparisons, :func:`~baton.converters._trees.emit._float32_sum`.)
Before the trees, the graph reads the row
as the library does (:func:`_preprocess`, in the order the :mod:`~baton.converters._trees.ir`
docstring gives); the trees are summed in float64 or, as XGBoost does, in float32 one after
another (:func:`_float64_sum`, :func:`_float32_sum`); the head
(:mod:`~baton.converters._trees.heads`) turns the sum into the outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from baton.converters._trees.heads import _head
from baton.converters._trees.ir import Ensemble, FrameColumn, Head, Leaf, Split, Tree

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
    grid ``[N, k, targets]`` (``k``: the most trees any target has; step ``j`` holds each
    target's ``j``-th tree, unused cells stay 0.0). Each row of the input reaches one leaf
    per tree, so a cell holds exactly that leaf's value. CumSum adds along the trees in
    order (axis 1) and its last step is the margin. The base margin is folded into the
    leaves of each target's first tree, added to them in float32 (``float32(base) +
    float32(leaf)``: the library's first addition, done once here); a target without trees
    gets its base added after the sum. Adding 0.0 leaves a float32 sum unchanged, so the
    padding changes nothing.

    Where the rows and the splits are float32 values already (``round_to_float32``, every
    split value, member and leaf weight a float32: XGBoost), the TreeEnsemble itself is
    float32, on the float32 rows: the same comparisons, and no cast of the grid (measured
    1.15-1.3x faster at 10,000 rows than the float64 grid, cast and transpose). Otherwise
    the float64 grid is cast to float32."""
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
    base = np.zeros(n_targets, dtype=np.float32)
    if len(ens.base):
        base[:] = np.broadcast_to(np.asarray(ens.base, dtype=np.float64), (n_targets,))
    first = {target: i for (i, target), p in position.items() if p == 0}
    folded = [_with_base(tree, {t: base[t] for t, j in first.items() if j == i})
              if i in first.values() else tree for i, tree in enumerate(trees)]
    as_f32 = _float32_exact(ens, folded)
    values = "tree_values_f32"
    if as_f32:
        b.node("Cast", [x], ["x_trees_f32"], to=TensorProto.FLOAT)
        b.nodes.append(_tree_ensemble_node(
            folded, k * n_targets, "x_trees_f32", values, dtype=np.float32,
            column=lambda i, target: position[(i, target)] * n_targets + target))
    else:
        b.nodes.append(_tree_ensemble_node(
            folded, k * n_targets, x, "tree_values",
            column=lambda i, target: position[(i, target)] * n_targets + target))
        b.node("Cast", ["tree_values"], [values], to=TensorProto.FLOAT)
    b.const("tree_grid", np.asarray([-1, k, n_targets], dtype=np.int64))
    b.node("Reshape", [values, "tree_grid"], ["tree_grid_values"])
    # trees first: CumSum then adds whole [N, targets] slices (along axis 1 it adds one
    # number at a time, measured 2.5x slower at 100 rows)
    b.node("Transpose", ["tree_grid_values"], ["tree_steps"], perm=[1, 0, 2])
    b.const("tree_axis", np.asarray(0, dtype=np.int64))
    b.node("CumSum", ["tree_steps", "tree_axis"], ["running_sums"])
    b.const("last_tree", np.asarray(k - 1, dtype=np.int64))
    raw = "raw_f32"
    b.node("Gather", ["running_sums", "last_tree"], [raw], axis=0)
    rest = np.asarray([0.0 if t in first else base[t] for t in range(n_targets)],
                      dtype=np.float32)
    if rest.any():
        b.const("base_rest_f32", rest.reshape(1, -1))
        b.node("Add", [raw, "base_rest_f32"], ["raw_f32_based"])
        raw = "raw_f32_based"
    b.node("Cast", [raw], [out], to=TensorProto.DOUBLE)


def _with_base(tree: Tree, base: dict[int, np.float32]) -> Tree:
    """``tree`` with ``base[target]`` added to its leaves for that target, in float32."""
    def fold(c: int | Leaf) -> int | Leaf:
        if not isinstance(c, Leaf):
            return c
        return Leaf(tuple((t, float(np.float32(base[t]) + np.float32(w)) if t in base
                           else w) for t, w in c.weights))
    return Tree([dataclasses.replace(s, true=fold(s.true), false=fold(s.false))
                 for s in tree.nodes], fold(tree.root))


def _float32_exact(ens: Ensemble, trees: list[Tree]) -> bool:
    """Whether a float32 TreeEnsemble on the float32 rows compares and adds exactly what
    the float64 one does: the rows are float32 values (``round_to_float32``, and what the
    preprocessing makes of them too), and so is every split value, member and leaf."""
    if not ens.round_to_float32:
        return False

    def f32(v: float) -> bool:
        with np.errstate(over="ignore"):
            return bool(np.isnan(v) or float(np.float32(v)) == v)

    if ens.categorical and not f32(_no_category(ens)):
        return False
    for tree in trees:
        for s in tree.nodes:
            if not f32(s.value) or not all(f32(m) for m in s.members):
                return False
        if not all(f32(w) for leaf in _leaves(tree) for _, w in leaf.weights):
            return False
    return True


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
                        column: Callable[[int, int], int] | None = None,
                        dtype: type[np.floating[Any]] = np.float64) -> onnx.NodeProto:
    """One TreeEnsemble over single-target trees, summing into ``n_outputs`` columns: a
    leaf of tree ``i`` for target ``t`` adds to column ``column(i, t)`` (default ``t``).
    ``dtype``: of the split values, members and leaf weights (the input's type)."""
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
        nodes_splits=numpy_helper.from_array(np.asarray(splits, dtype=dtype)),
        nodes_truenodeids=true_ids, nodes_trueleafs=true_leaf,
        nodes_falsenodeids=false_ids, nodes_falseleafs=false_leaf,
        nodes_missing_value_tracks_true=missing,
        leaf_targetids=leaf_targets,
        leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=dtype)),
    )
    if members:
        attrs["membership_values"] = numpy_helper.from_array(
            np.asarray(members, dtype=dtype))
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


def frame_inputs(model: onnx.ModelProto, input_name: str,
                 columns: Sequence[FrameColumn]) -> tuple[onnx.ModelProto, list[FrameColumn]]:
    """The emitted ``model`` with its matrix input ``input_name`` (float64 ``[N, k]``)
    replaced by one ``[N, 1]`` input per column, in the matrix's column order: numbers as
    they are, categories through their table (:class:`~baton.converters._trees.ir.
    FrameColumn`: the key's code, NaN for any other value), concatenated into the matrix.

    Text goes through ``ai.onnx.ml`` ``LabelEncoder`` (exact string match, codes as float32,
    which holds every code below 2**24 exactly, then cast to float64); numbers are compared
    with every key (``Equal``, float64) and the one match picks its code (a 0/1 row times
    the codes: one product, exact); ``unseen="next"`` columns through
    :func:`_next_key_nodes`. Returns the model and the columns with the input
    names they were given (a column's own name unless the graph already uses it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if any(len(c.codes) not in (0, len(c.keys)) for c in columns):
        raise ValueError("a FrameColumn's codes must match its keys")
    graph = model.graph
    taken = {n for node in graph.node for n in (*node.input, *node.output)}
    taken |= {i.name for i in graph.initializer} | {o.name for o in graph.output}
    named: list[FrameColumn] = []
    for c in columns:
        name = c.name
        if name in taken or name == input_name or not name:
            stem = f"column_{c.name}"
            name, k = stem, 1
            while name in taken:
                k += 1
                name = f"{stem}_{k}"
        taken.add(name)
        named.append(dataclasses.replace(c, input_name=name))
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    parts: list[str] = []
    inputs = []
    for i, c in enumerate(named):
        elem = TensorProto.STRING if c.text else TensorProto.DOUBLE
        inputs.append(helper.make_tensor_value_info(c.input_name, elem, ["N", 1]))
        if not c.is_category:
            parts.append(c.input_name)
            continue
        code = f"frame_code_{i}"
        if c.unseen == "next" and c.keys:
            nodes += _next_key_nodes(c, i, code, inits)
            parts.append(code)
            continue
        # a category column without keys: every value is NaN (a key that maps to NaN too)
        keys, codes = (c.keys, c.code_values()) if c.keys else (
            ("",) if c.text else (0.0,), (float("nan"),))
        if c.text:
            nodes.append(helper.make_node(
                "LabelEncoder", [c.input_name], [f"frame_code32_{i}"], domain="ai.onnx.ml",
                keys_strings=list(keys), values_floats=[float(v) for v in codes],
                default_float=float("nan")))
            nodes.append(helper.make_node("Cast", [f"frame_code32_{i}"], [code],
                                          to=TensorProto.DOUBLE))
        else:
            key_row = np.asarray(keys, dtype=np.float64).reshape(1, -1)
            values = np.asarray(codes, dtype=np.float64).reshape(-1, 1)
            inits += [numpy_helper.from_array(key_row, f"frame_keys_{i}"),
                      numpy_helper.from_array(values, f"frame_codes_{i}"),
                      numpy_helper.from_array(np.ones_like(values), f"frame_ones_{i}")]
            nodes += [
                helper.make_node("Equal", [c.input_name, f"frame_keys_{i}"],
                                 [f"frame_is_key_{i}"]),
                helper.make_node("Cast", [f"frame_is_key_{i}"], [f"frame_match_{i}"],
                                 to=TensorProto.DOUBLE),
                helper.make_node("MatMul", [f"frame_match_{i}", f"frame_codes_{i}"],
                                 [f"frame_found_code_{i}"]),
                helper.make_node("MatMul", [f"frame_match_{i}", f"frame_ones_{i}"],
                                 [f"frame_matches_{i}"]),
                helper.make_node("Greater", [f"frame_matches_{i}", "frame_zero"],
                                 [f"frame_known_{i}"]),
                helper.make_node("Where", [f"frame_known_{i}", f"frame_found_code_{i}",
                                           "frame_nan"], [code]),
            ]
        parts.append(code)
    if any(c.is_category and not c.text and not (c.unseen == "next" and c.keys)
           for c in named):
        inits += [numpy_helper.from_array(np.asarray(0.0), "frame_zero"),
                  numpy_helper.from_array(np.asarray(np.nan), "frame_nan")]
    nodes.append(helper.make_node("Concat", parts, [input_name], axis=1))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept = [i for i in out.graph.input if i.name != input_name]
    del out.graph.input[:]
    out.graph.input.extend(inputs + kept)
    old = list(out.graph.node)
    del out.graph.node[:]
    out.graph.node.extend(nodes + old)
    out.graph.initializer.extend(inits)
    if any(c.text and c.unseen == "next" and c.keys for c in named):
        for o in out.opset_import:  # RegexFullMatch is an opset 20 operator
            if o.domain in ("", "ai.onnx"):
                o.version = max(int(o.version), REGEX_OPSET)
    onnx.checker.check_model(out)
    return out, named


#: the default-domain opset that has ``RegexFullMatch``
REGEX_OPSET = 20


def _next_key_nodes(c: FrameColumn, i: int, code: str,
                    inits: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    """``unseen="next"``: the code of the first key (in sorted order) that is not below the
    value, i.e. ``sorted_codes[count of keys below the value]``; NaN past the last key and
    for a missing value. Text compares with a ``RegexFullMatch`` per key (``value >
    key``); numbers with ``Less``."""
    from onnx import TensorProto, helper, numpy_helper

    x = c.input_name
    codes = c.code_values()
    order = sorted(range(len(c.keys)), key=lambda j: _sort_key(c.keys[j]))
    padded = np.asarray([codes[j] for j in order] + [np.nan], dtype=np.float64)
    inits += [numpy_helper.from_array(padded, f"frame_sorted_codes_{i}"),
              numpy_helper.from_array(np.ones((len(order), 1)), f"frame_ones_{i}"),
              numpy_helper.from_array(np.asarray(np.nan), f"frame_nan_{i}")]
    nodes = []
    if c.text:
        for j in order:
            nodes.append(helper.make_node("RegexFullMatch", [x], [f"frame_above_{i}_{j}"],
                                          pattern=_above_pattern(str(c.keys[j]))))
        nodes.append(helper.make_node("Concat", [f"frame_above_{i}_{j}" for j in order],
                                      [f"frame_below_{i}"], axis=1))
        missing = "|".join("".join(f"\\x{{{ord(ch):02x}}}" for ch in t)
                           for t in sorted(MISSING_TEXT))
        nodes.append(helper.make_node("RegexFullMatch", [x], [f"frame_missing_{i}"],
                                      pattern=missing))
    else:
        keys = np.asarray([c.keys[j] for j in order], dtype=np.float64).reshape(1, -1)
        inits.append(numpy_helper.from_array(keys, f"frame_keys_{i}"))
        nodes += [helper.make_node("Less", [f"frame_keys_{i}", x], [f"frame_below_{i}"]),
                  helper.make_node("IsNaN", [x], [f"frame_missing_{i}"])]
    nodes += [
        helper.make_node("Cast", [f"frame_below_{i}"], [f"frame_below_d_{i}"],
                         to=TensorProto.DOUBLE),
        helper.make_node("MatMul", [f"frame_below_d_{i}", f"frame_ones_{i}"],
                         [f"frame_count_{i}"]),
        helper.make_node("Cast", [f"frame_count_{i}"], [f"frame_index_{i}"],
                         to=TensorProto.INT64),
        helper.make_node("Gather", [f"frame_sorted_codes_{i}", f"frame_index_{i}"],
                         [f"frame_next_{i}"], axis=0),
        helper.make_node("Where", [f"frame_missing_{i}", f"frame_nan_{i}", f"frame_next_{i}"],
                         [code]),
    ]
    return nodes


def _sort_key(key: str | float) -> Any:
    """XGBoost's order: numbers as numbers, text as its bytes read as signed int8."""
    if isinstance(key, str):
        return [b - 256 if b >= 0x80 else b for b in key.encode("utf-8")]
    return key


def _above_pattern(key: str) -> str:
    """An RE2 pattern that matches exactly the texts above ``key`` (an ASCII text) when
    compared byte by byte as signed bytes: ``key`` and more, or ``key``'s first ``i``
    characters and then a character above its ``i``-th in ASCII (characters beyond ASCII
    begin with a byte that is negative as int8, below every ASCII one)."""
    def lit(ch: str) -> str:
        return f"\\x{{{ord(ch):02x}}}"

    parts = ["".join(map(lit, key)) + ".+"]
    for n, ch in enumerate(key):
        if ord(ch) < 0x7F:
            parts.append("".join(map(lit, key[:n])) + f"[\\x{{{ord(ch) + 1:02x}}}-\\x{{7f}}].*")
    return "(?s)" + "|".join(f"(?:{p})" for p in parts)


def frame_specs(columns: Sequence[FrameColumn]) -> list[Any]:
    """The inputs' specs (:class:`baton.schema.TensorSpec`) of columns named by
    :func:`frame_inputs`: ``string [N, 1]`` for text categories, else ``float64 [N, 1]``."""
    from baton.schema import TensorSpec

    return [TensorSpec(c.input_name or c.name, "string" if c.text else "float64", ("N", 1),
                       column=c.name) for c in columns]


def with_frame_inputs(conv: Any, columns: Sequence[FrameColumn], note: str) -> Any:
    """A tree converter's :class:`~baton.contract.Conversion` (one matrix input) with one
    input per DataFrame column instead (:func:`frame_inputs`), and ``note`` in its notes."""
    model, named = frame_inputs(conv.model, conv.inputs[0].name, columns)
    conv.model = model
    conv.inputs = frame_specs(named)
    conv.converter.setdefault("notes", []).append(note)
    return conv


#: the text baton feeds for a missing value in a text column (``str`` of NaN, None, pd.NA)
MISSING_TEXT = frozenset({"nan", "None", "<NA>", "NaT"})


def category_column(name: str, categories: Sequence[Any], library: str) -> FrameColumn:
    """The :class:`FrameColumn` of a pandas ``category`` column whose training categories,
    in code order, are ``categories``: text categories make a string input, number
    categories a float64 one. Raises :class:`~baton.errors.UnsupportedModelError` for
    categories baton cannot feed exactly."""
    import numbers

    from baton.errors import UnsupportedModelError

    cats = list(categories)
    if cats and all(isinstance(v, str) for v in cats):
        missing = [v for v in cats if v in MISSING_TEXT]
        if missing:
            raise UnsupportedModelError(
                f"the {library} model's category column {name!r} has a category that reads "
                "like a missing value",
                expected="categories other than " + ", ".join(sorted(MISSING_TEXT)),
                found=f"category {missing[0]!r}",
                hint="baton feeds a missing value of a text column as that text: rename the "
                "category (e.g. 'missing') before training",
            )
        return FrameColumn(name, tuple(cats))
    if cats and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                    for v in cats):
        values = [float(v) for v in cats]
        exact = all(np.isfinite(f) and (not isinstance(v, numbers.Integral)
                                        or abs(int(v)) <= 2**53)
                    for v, f in zip(cats, values))
        if exact:
            return FrameColumn(name, tuple(values))
    raise UnsupportedModelError(
        f"baton cannot feed the {library} model's category column {name!r}",
        expected="categories that are all text, or all numbers (integers up to 2**53)",
        found=f"categories {cats[:5]!r}" if cats else "no categories",
        hint="make the column's categories text (df[col].astype(str).astype('category')) "
        "or integers before training",
    )
