"""The intermediate form of a tree ensemble, fed by each library's reader.

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

What turns the summed raw scores into outputs is the :class:`Head`; the emitter
(:mod:`baton.converters._trees.emit`) writes both as one ONNX graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Mode = Literal["LEQ", "LT", "MEMBER"]


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

    task: Literal["regression", "classification", "class_index", "isolation", "leaf_one_hot",
                  "samme", "weighted_median"]
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
    #: ``task="isolation"`` (scikit-learn's ``IsolationForest``): target ``t`` is tree
    #: ``t``'s path length; ``depths`` = their sum in tree order from 0 (float64),
    #: ``scores = -(2 ** -(depths / denominator)) - offset`` (the quotient is 1 where
    #: ``denominator`` is 0) and ``label`` (int64) -1 where ``scores < 0``, else 1; with
    #: ``label_threshold``, -1 where ``depths / denominator < label_threshold`` (the
    #: reader's exact form of the library's test, free of the graph's ``Pow`` rounding)
    denominator: float = 1.0
    offset: float = 0.0
    label_threshold: float | None = None
    #: ``task="leaf_one_hot"`` (``RandomTreesEmbedding``): target ``t`` of the trees' sum is
    #: the output column of the leaf tree ``t`` reached; output ``transformed`` float64
    #: ``[N, len(leaf_owner)]`` is 1.0 in column ``j`` where target ``leaf_owner[j]`` equals
    #: ``j``, else 0.0
    leaf_owner: Sequence[int] = ()
    #: ``task="samme"`` (``AdaBoostClassifier``): target ``i * n_classes + k`` is tree
    #: ``i``'s vote for class ``k``; ``decision`` = the votes added tree by tree from 0 per
    #: class (float64), divided by ``denominator`` (the sum of the trees' weights); two
    #: classes: ``d = decision[1] - decision[0]``, probabilities ``softmax([-d, d] / 2)``,
    #: label ``classes[d > 0]``; more: probabilities ``softmax(decision / (n_classes - 1))``,
    #: label the first largest decision
    #: ``task="weighted_median"`` (``AdaBoostRegressor``): target ``t`` is tree ``t``'s
    #: prediction; ``prediction`` is the first of them, in ascending order (ties by tree
    #: index), at which the running sum of their ``tree_weights`` reaches half the total
    tree_weights: Sequence[float] = ()


@dataclass(frozen=True)
class FrameColumn:
    """One DataFrame column that the graph takes as an input of its own (``[N, 1]``) and
    turns into the model's feature at the same position (:func:`~baton.converters._trees.
    emit.frame_inputs`).

    ``keys`` empty: a number, fed as float64 and passed on as it is. Otherwise the column
    holds categories: a value equal to ``keys[i]`` becomes the float64 code ``codes[i]``
    (``i`` when ``codes`` is empty), any other value (an unseen category, a missing value)
    becomes NaN, or what ``unseen`` says. Text keys (``str``) make a string input matched
    exactly; number keys a float64 input compared exactly as float64.
    """

    name: str
    keys: tuple[str, ...] | tuple[float, ...] = ()
    codes: tuple[float, ...] = ()
    #: the name of the graph input (the column's name unless that is taken in the graph)
    input_name: str = ""
    #: a category column without keys (no value reaches a split): whether it is text
    #: (``True``) or numbers (``False``); ``None``: a number passed on as it is
    categories_as_text: bool | None = None
    #: what a value that is no key becomes: ``"missing"``: NaN. ``"next"``: the code of the
    #: smallest key above it, NaN where no key is (XGBoost's re-coding of a DataFrame's
    #: categories, a binary search that takes the next training category); keys compare as
    #: numbers, text byte by byte with the bytes signed (ASCII keys only: a character beyond
    #: ASCII sorts below every ASCII one). NaN, and text that reads like a missing value,
    #: stay missing.
    unseen: Literal["missing", "next"] = "missing"

    @property
    def text(self) -> bool:
        if not self.keys:
            return bool(self.categories_as_text)
        return isinstance(self.keys[0], str)

    @property
    def is_category(self) -> bool:
        return bool(self.keys) or self.categories_as_text is not None

    def code_values(self) -> tuple[float, ...]:
        return self.codes or tuple(float(i) for i in range(len(self.keys)))
