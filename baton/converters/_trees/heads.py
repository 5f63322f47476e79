"""The output heads: what turns the summed raw scores (``raw_scores``, float64
``[N, targets]``) into a model's outputs, in standard ONNX operators in float64.

The head (sigmoid, softmax, exp, class labels, class index) follows
:class:`~baton.converters._trees.ir.Head`; a classifier's label is the argmax of its
probabilities or, as the library decides it, a rule on the raw scores
(``Head.label_rule``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from baton.converters._trees.ir import Head

if TYPE_CHECKING:  # the emitter imports this module
    import onnx

    from baton.converters._trees.emit import _Builder


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
    from onnx import TensorProto, helper

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
    if head.task == "isolation":
        return _isolation(b, head, n_targets)
    if head.task == "leaf_one_hot":
        return _leaf_one_hot(b, head, n_targets)
    if head.task == "samme":
        return _samme(b, head, n_targets)
    if head.task == "weighted_median":
        return _weighted_median(b, head, n_targets)
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
    label_type = _gather_label(b, head)
    outputs = [vi("label", label_type, ["N"]),
               vi("probabilities", TensorProto.DOUBLE, ["N", n_classes])]
    if head.raw_scores:
        outputs.append(vi("raw_scores", TensorProto.DOUBLE, ["N", n_targets]))
    return outputs


def _label_index(b: _Builder, head: Head, n_targets: int, n_classes: int) -> None:
    """``label_index`` (int64 ``[N]``) by ``head.label_rule``."""
    from onnx import TensorProto

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


def _isolation(b: _Builder, head: Head, n_targets: int) -> list[onnx.ValueInfoProto]:
    """scikit-learn's ``IsolationForest`` (``ensemble/_iforest.py``). The raw scores hold
    one column per tree (its leaf's path length); ``depths`` adds them one after another
    from 0 in float64 (CumSum, the order of sklearn's ``depths += ...``), then
    ``score_samples = -(2 ** -(depths / denominator))`` (the quotient is 1 where the
    denominator is 0), ``scores = score_samples - offset`` (``decision_function``) and
    ``label`` -1 where ``scores < 0``, else 1 (``predict``) or, with ``label_threshold``,
    -1 where ``depths / denominator < label_threshold``."""
    from onnx import TensorProto, helper

    if head.transform != "identity" or head.scale != 1.0:
        raise ValueError("an isolation head takes the path lengths as they are: no "
                         "transform or scale")
    b.const("iso_tree_axis", np.asarray(1, dtype=np.int64))
    b.node("CumSum", ["raw_scores", "iso_tree_axis"], ["iso_running_depths"])
    b.const("iso_last_tree", np.asarray(n_targets - 1, dtype=np.int64))
    b.node("Gather", ["iso_running_depths", "iso_last_tree"], ["iso_depths"], axis=1)
    if head.denominator != 0.0:
        b.const("iso_denominator", np.asarray(head.denominator, dtype=np.float64))
        b.node("Div", ["iso_depths", "iso_denominator"], ["iso_ratio"])
    else:  # np.divide(..., out=np.ones_like(depths), where=denominator != 0)
        b.const("iso_zero", np.asarray(0.0, dtype=np.float64))
        b.const("iso_one", np.asarray(1.0, dtype=np.float64))
        b.node("Mul", ["iso_depths", "iso_zero"], ["iso_zeros"])
        b.node("Add", ["iso_zeros", "iso_one"], ["iso_ratio"])
    b.node("Neg", ["iso_ratio"], ["iso_exponent"])
    b.const("iso_two", np.asarray(2.0, dtype=np.float64))
    b.node("Pow", ["iso_two", "iso_exponent"], ["iso_power"])
    b.node("Neg", ["iso_power"], ["iso_score_samples"])
    b.const("iso_offset", np.asarray(head.offset, dtype=np.float64))
    b.node("Sub", ["iso_score_samples", "iso_offset"], ["scores"])
    if head.label_threshold is None:
        b.const("iso_zero_score", np.asarray(0.0, dtype=np.float64))
        b.node("Less", ["scores", "iso_zero_score"], ["iso_outlier"])
    else:
        b.const("iso_threshold", np.asarray(head.label_threshold, dtype=np.float64))
        b.node("Less", ["iso_ratio", "iso_threshold"], ["iso_outlier"])
    b.const("iso_minus", np.asarray(-1, dtype=np.int64))
    b.const("iso_plus", np.asarray(1, dtype=np.int64))
    b.node("Where", ["iso_outlier", "iso_minus", "iso_plus"], ["label"])
    return [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("scores", TensorProto.DOUBLE, ["N"])]


def _leaf_one_hot(b: _Builder, head: Head, n_targets: int) -> list[onnx.ValueInfoProto]:
    """The one-hot of the leaf each tree reaches (``RandomTreesEmbedding.transform``): the
    raw scores hold, per tree, the output column of its leaf; column ``j`` is 1.0 where its
    tree's score equals ``j``."""
    from onnx import TensorProto, helper

    owner = np.asarray(head.leaf_owner, dtype=np.int64)
    if not len(owner) or owner.min() < 0 or owner.max() >= n_targets:
        raise ValueError("a leaf_one_hot head needs one tree (target) per output column")
    b.const("leaf_owner", owner)
    b.node("Gather", ["raw_scores", "leaf_owner"], ["leaf_of_owner"], axis=1)
    b.const("leaf_columns", np.arange(len(owner), dtype=np.float64).reshape(1, -1))
    b.node("Equal", ["leaf_of_owner", "leaf_columns"], ["leaf_hit"])
    b.node("Cast", ["leaf_hit"], ["transformed"], to=TensorProto.DOUBLE)
    return [helper.make_tensor_value_info("transformed", TensorProto.DOUBLE,
                                          ["N", len(owner)])]


def _samme(b: _Builder, head: Head, n_targets: int) -> list[onnx.ValueInfoProto]:
    """scikit-learn's ``AdaBoostClassifier`` (``ensemble/_weight_boosting.py``,
    ``decision_function``, ``predict``, ``_compute_proba_from_decision``) from per-tree
    votes: the raw scores are ``[N, trees * n_classes]``, tree-major."""
    from onnx import TensorProto, helper

    if head.classes is None or len(head.classes) < 2:
        raise ValueError("a samme head needs two classes or more")
    k = len(head.classes)
    if n_targets % k or head.transform != "identity" or head.scale != 1.0:
        raise ValueError("a samme head takes n_classes votes per tree, without transform")
    b.const("samme_grid", np.asarray([0, n_targets // k, k], dtype=np.int64))
    b.node("Reshape", ["raw_scores", "samme_grid"], ["samme_votes"])
    b.const("samme_tree_axis", np.asarray(1, dtype=np.int64))
    b.node("CumSum", ["samme_votes", "samme_tree_axis"], ["samme_running"])
    b.const("samme_last", np.asarray(n_targets // k - 1, dtype=np.int64))
    b.node("Gather", ["samme_running", "samme_last"], ["samme_sum"], axis=1)
    b.const("samme_weights", np.asarray(head.denominator, dtype=np.float64))
    b.node("Div", ["samme_sum", "samme_weights"], ["samme_decision"])
    if k == 2:
        b.const("samme_first", np.asarray([0], dtype=np.int64))
        b.const("samme_second", np.asarray([1], dtype=np.int64))
        b.node("Gather", ["samme_decision", "samme_first"], ["samme_d0"], axis=1)
        b.node("Gather", ["samme_decision", "samme_second"], ["samme_d1"], axis=1)
        b.node("Sub", ["samme_d1", "samme_d0"], ["samme_margin"])  # -d0 + d1, exactly
        b.node("Neg", ["samme_margin"], ["samme_negative"])
        b.node("Concat", ["samme_negative", "samme_margin"], ["samme_pair"], axis=1)
        b.const("samme_half", np.asarray(2.0, dtype=np.float64))
        b.node("Div", ["samme_pair", "samme_half"], ["samme_logits"])
        b.const("samme_zero", np.asarray(0.0, dtype=np.float64))
        b.node("Greater", ["samme_margin", "samme_zero"], ["samme_positive"])
        b.node("Cast", ["samme_positive"], ["samme_positive_index"], to=TensorProto.INT64)
        b.const("samme_flat", np.asarray([-1], dtype=np.int64))
        b.node("Reshape", ["samme_positive_index", "samme_flat"], ["label_index"])
    else:
        b.const("samme_classes_less_one", np.asarray(k - 1.0, dtype=np.float64))
        b.node("Div", ["samme_decision", "samme_classes_less_one"], ["samme_logits"])
        b.node("ArgMax", ["samme_decision"], ["label_index"], axis=1, keepdims=0,
               select_last_index=0)
    b.node("Softmax", ["samme_logits"], ["probabilities"], axis=1)
    label_type = _gather_label(b, head)
    return [helper.make_tensor_value_info("label", label_type, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, ["N", k])]


def _weighted_median(b: _Builder, head: Head, n_targets: int) -> list[onnx.ValueInfoProto]:
    """scikit-learn's ``AdaBoostRegressor._get_median_predict``: the trees' predictions
    sorted (TopK, ascending), their weights' running sum in that order (CumSum), the first
    prediction where it reaches ``0.5 *`` the total."""
    from onnx import TensorProto, helper

    weights = np.asarray(head.tree_weights, dtype=np.float64)
    if len(weights) != n_targets or head.transform != "identity" or head.scale != 1.0:
        raise ValueError("a weighted_median head takes one weight per tree, no transform")
    b.const("median_k", np.asarray([n_targets], dtype=np.int64))
    b.node("TopK", ["raw_scores", "median_k"], ["median_sorted", "median_order"], axis=1,
           largest=0, sorted=1)
    b.const("median_weights", weights)
    b.node("Gather", ["median_weights", "median_order"], ["median_sorted_weights"], axis=0)
    b.const("median_axis", np.asarray(1, dtype=np.int64))
    b.node("CumSum", ["median_sorted_weights", "median_axis"], ["median_cdf"])
    b.const("median_last", np.asarray([n_targets - 1], dtype=np.int64))
    b.node("Gather", ["median_cdf", "median_last"], ["median_total"], axis=1)
    b.const("median_half", np.asarray(0.5, dtype=np.float64))
    b.node("Mul", ["median_half", "median_total"], ["median_half_total"])
    b.node("GreaterOrEqual", ["median_cdf", "median_half_total"], ["median_or_above"])
    b.node("Cast", ["median_or_above"], ["median_or_above_int"], to=TensorProto.INT32)
    b.node("ArgMax", ["median_or_above_int"], ["median_index"], axis=1, keepdims=1,
           select_last_index=0)
    b.node("GatherElements", ["median_sorted", "median_index"], ["median_value"], axis=1)
    b.const("median_flat", np.asarray([-1], dtype=np.int64))
    b.node("Reshape", ["median_value", "median_flat"], ["prediction"])
    return [helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, ["N"])]


OUTPUT_KINDS = {"label": "label", "probabilities": "probabilities", "raw_scores": "scores",
                "prediction": "prediction", "scores": "scores", "transformed": "transformed"}


def _gather_label(b: Any, head: Head) -> int:
    """``label`` = ``classes[label_index]`` (text or int64 classes); the label's ONNX type."""
    from onnx import TensorProto

    classes = np.asarray(head.classes)
    if classes.dtype.kind in "USO":
        b.const("classes", np.asarray([str(c).encode() for c in classes], dtype=object))
        label_type = TensorProto.STRING
    else:
        b.const("classes", classes.astype(np.int64))
        label_type = TensorProto.INT64
    b.node("Gather", ["classes", "label_index"], ["label"], axis=0)
    return int(label_type)

