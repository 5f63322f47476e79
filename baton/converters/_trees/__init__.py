"""One tree-ensemble representation and one emitter, fed by each library's reader.

Readers (LightGBM, XGBoost, CatBoost, scikit-learn) translate a fitted model into one
intermediate form, an :class:`Ensemble` of binary trees whose splits, missing-value
routing and preprocessing say exactly what the library computes (documented in
:mod:`~baton.converters._trees.ir`), and a :class:`Head`.

The emitter writes ``ai.onnx.ml`` opset 5 ``TreeEnsemble`` with float64 splits and float64
inputs, which onnxruntime evaluates in double precision: a threshold is never rounded, so no
row takes a branch the original would not take. (XGBoost's exact float32 sum: a float32
TreeEnsemble on the float32-rounded rows, whose split values are float32 already: the same
comparisons, :func:`~baton.converters._trees.emit._float32_sum`.) The head (sigmoid,
softmax, exp, class labels, class index) is standard ONNX operators in float64; a
classifier's label is the argmax of its probabilities or, as the library decides it, a rule
on the raw scores (``Head.label_rule``).

The package, by room: :mod:`~baton.converters._trees.ir` (the intermediate form),
:mod:`~baton.converters._trees.emit` (the emitter), :mod:`~baton.converters._trees.heads`
(the output heads) and :mod:`~baton.converters._trees.converter` (the converter the readers
share). Every name is importable from ``baton.converters._trees`` itself.
"""

from __future__ import annotations

from baton.converters._trees.converter import RANGE_FRACTION, TreeConverter
from baton.converters._trees.converter import _notes as _notes
from baton.converters._trees.emit import _MODE_CODE as _MODE_CODE
from baton.converters._trees.emit import DEFAULT_OPSET, ML_OPSET, emit
from baton.converters._trees.emit import _Builder as _Builder
from baton.converters._trees.emit import _float32_sum as _float32_sum
from baton.converters._trees.emit import _float64_sum as _float64_sum
from baton.converters._trees.emit import _leaves as _leaves
from baton.converters._trees.emit import _no_category as _no_category
from baton.converters._trees.emit import _preprocess as _preprocess
from baton.converters._trees.emit import _single_target_trees as _single_target_trees
from baton.converters._trees.emit import _snap_zeros as _snap_zeros
from baton.converters._trees.emit import _tree_ensemble_node as _tree_ensemble_node
from baton.converters._trees.emit import _truncate_columns as _truncate_columns
from baton.converters._trees.heads import OUTPUT_KINDS
from baton.converters._trees.heads import _head as _head
from baton.converters._trees.heads import _label_index as _label_index
from baton.converters._trees.heads import _transform as _transform
from baton.converters._trees.ir import (
    Ensemble,
    Head,
    LabelRule,
    Leaf,
    Mode,
    Split,
    Transform,
    Tree,
)

__all__ = [
    "DEFAULT_OPSET",
    "ML_OPSET",
    "OUTPUT_KINDS",
    "RANGE_FRACTION",
    "Ensemble",
    "Head",
    "LabelRule",
    "Leaf",
    "Mode",
    "Split",
    "Transform",
    "Tree",
    "TreeConverter",
    "emit",
]
