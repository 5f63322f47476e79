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


OUTPUT_KINDS = {"label": "label", "probabilities": "probabilities", "raw_scores": "scores",
                "prediction": "prediction"}
