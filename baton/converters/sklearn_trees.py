"""scikit-learn's tree models through baton's own tree emitter, exact on float64 data.

Bare fitted estimators (a Pipeline ending in one goes through
:mod:`baton.converters.pipeline_trees`): ``DecisionTree*``, ``ExtraTree*``,
``RandomForest*``, ``ExtraTrees*``, ``GradientBoosting*`` and ``HistGradientBoosting*``,
classifiers and regressors; ``Bagging*`` of decision or extra trees; ``IsolationForest``;
``RandomTreesEmbedding``; ``AdaBoost*`` of decision or extra trees.

Decision rules reproduced (scikit-learn 1.9, ``tree/_tree.pyx``,
``ensemble/_gradient_boosting.pyx``, ``ensemble/_hist_gradient_boosting/_predictor.pyx``):

* ``DecisionTree``-based models cast ``X`` to float32 and compare ``x_f32 <= threshold``
  against a float64 threshold (a midpoint between two float32 values): the ensemble rounds
  its input to float32 and keeps the thresholds as float64. NaN follows the node's
  ``missing_go_to_left``, which ``predict`` reads on every node (whether or not the node
  saw NaN when it was fitted).
* Classifier trees hold class shares per leaf (``predict_proba`` returns them as they
  are); a forest adds its trees' shares and divides by the number of trees.
* ``GradientBoosting``: raw = init + ``learning_rate * value`` added stage by stage in
  float64; the product is baked into the leaves (it is the same product sklearn forms) and
  the init prediction is a first, constant tree, so onnxruntime adds the same numbers in
  the same order. scikit-learn refuses NaN here; the graph sends NaN right, as the Cython
  routine would. The label comes from the raw score as in ``predict`` (``raw >= 0`` with
  one margin, the first largest raw score with more), not from the probabilities: a raw
  score of exactly 0 is class 1, and two raw scores whose softmax rounds to a tie still
  pick the larger (``Head.label_rule``).
* ``HistGradientBoosting``: float64 ``x <= num_threshold``, NaN by ``missing_go_to_left``;
  raw = 0 + baseline + each tree (the baseline is a first, constant tree again); the label
  is ``raw > 0`` with one margin (a raw score of 0 is class 0, a positive one class 1 even
  where its sigmoid rounds to 0.5), the first largest raw score with more.
  Categorical features pass through an ``OrdinalEncoder`` first (exact value match: an
  unseen value, a negative one, a non-integer such as ``7.5`` or ``-0.5``, or NaN becomes
  NaN and goes the missing way), then a bitset of the encoded categories that go left.
  The graph tests the raw category values (``MEMBER``, on the side that is not the
  missing side, so any unknown integer goes the missing way); the emitter's exact
  categorical mode (``Ensemble.categorical_values="exact"``) turns a value that is no
  integer into NaN before the trees instead of truncating it like ``int(x)``.
* ``Bagging*`` (``ensemble/_bagging.py``): member ``i`` reads ``X[:, estimators_features_
  [i]]`` (its split features are mapped back to the input's columns); a member fitted on a
  bootstrap sample without some classes adds its shares to the classes it has
  (``_parallel_predict_proba``); the sum is divided by the number of members, the label is
  the first largest probability. Bagging of other members goes through skl2onnx.
* ``IsolationForest`` (``ensemble/_iforest.py``): each leaf holds the path length sklearn
  adds for it; one output column per tree, added in tree order from 0 (CumSum), then
  ``-(2 ** -(depths / (n_trees * c(max_samples_)))) - offset_``. The label is -1 below the
  ratio ``depths / denominator`` where numpy's ``-(2 ** -r) - offset_ < 0`` stops holding
  (found at conversion), so it does not depend on how onnxruntime's ``Pow`` rounds; the
  scores may differ from numpy's power by an ulp.
* ``RandomTreesEmbedding``: each leaf holds its column of ``one_hot_encoder_``'s output;
  ``transformed`` is the dense one-hot (sklearn's is a sparse matrix).
* ``AdaBoostClassifier`` (SAMME, ``ensemble/_weight_boosting.py``): each leaf holds its
  tree's votes (``w`` for the class the tree predicts, ``-1 / (K - 1) * w`` for the others),
  one output column per (tree, class), added tree by tree from 0 (CumSum) and divided by the
  sum of the weights: ``decision_function`` exactly; ``predict`` from it (``d > 0`` with
  two classes, the first largest with more), ``predict_proba`` its softmax.
* ``AdaBoostRegressor``: one output column per tree, sorted (TopK, ties by tree index),
  the weights' running sum in that order; the first prediction where it reaches half the
  total (``_get_median_predict``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from baton.converters._trees import (
    Ensemble,
    Head,
    LabelRule,
    Leaf,
    Split,
    Transform,
    Tree,
    TreeConverter,
)
from baton.errors import UnsupportedModelError, UsageError, require

EXTRA = "sklearn"

SINGLE_TREES = frozenset({"DecisionTreeClassifier", "DecisionTreeRegressor",
                          "ExtraTreeClassifier", "ExtraTreeRegressor"})
FORESTS = frozenset({"RandomForestClassifier", "RandomForestRegressor",
                     "ExtraTreesClassifier", "ExtraTreesRegressor"})
BOOSTING = frozenset({"GradientBoostingClassifier", "GradientBoostingRegressor"})
HIST_BOOSTING = frozenset({"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"})
ISOLATION = frozenset({"IsolationForest"})
BAGGING = frozenset({"BaggingClassifier", "BaggingRegressor"})
EMBEDDING = frozenset({"RandomTreesEmbedding"})
ADABOOST = frozenset({"AdaBoostClassifier", "AdaBoostRegressor"})
SUPPORTED = SINGLE_TREES | FORESTS | BOOSTING | HIST_BOOSTING | ISOLATION | EMBEDDING

#: scikit-learn's link functions -> the head's transform and scale
_LINKS: dict[str, tuple[Transform, float]] = {
    "IdentityLink": ("identity", 1.0),
    "LogLink": ("exp", 1.0),
    "LogitLink": ("sigmoid", 1.0),
    "HalfLogitLink": ("sigmoid", 2.0),  # exponential loss: p = expit(2 * raw)
    "MultinomialLogit": ("softmax", 1.0),
}
# onnxruntime's membership values are int32, and a set holding -2**31 also catches NaN and
# values outside int32 (they are cast to int32 first): codes must lie strictly above it
_INT32 = (-(2**31) + 1, 2**31 - 1)


def _sklearn() -> Any:
    return require("sklearn", EXTRA, "Converting a scikit-learn model")


class SklearnTreesConverter(TreeConverter):
    name = "sklearn-trees"
    framework = "scikit-learn"
    extra = EXTRA
    #: scikit-learn's own converter takes every estimator: these are asked first
    before = "sklearn"

    def accepts(self, model: Any) -> bool:
        cls = type(model)
        if cls.__module__.split(".")[0] != "sklearn":
            return False
        if cls.__name__ in BAGGING | ADABOOST:  # trees only; other members: skl2onnx
            return _bags_trees(model)
        return cls.__name__ in SUPPORTED

    def versions(self) -> dict[str, str]:
        return {"scikit-learn": _sklearn().__version__}

    def feature_names(self, model: Any) -> list[str] | None:
        names = getattr(model, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else None

    def _is_classifier(self, model: Any) -> bool:
        return bool(_sklearn().base.is_classifier(model))

    def _has_raw_scores(self, model: Any) -> bool:
        return type(model).__name__ in BOOSTING | HIST_BOOSTING

    def infer_inputs(self, model: Any, sample: Any) -> list[Any]:
        self.forget()  # a new conversion: read the model afresh
        self.read_once(model)  # refuse what cannot be converted before looking at the sample
        return super().infer_inputs(model, sample)

    # -- reading ------------------------------------------------------------------------

    def read(self, model: Any) -> tuple[Ensemble, Head]:
        sk = _sklearn()
        try:
            sk.utils.validation.check_is_fitted(model)
        except sk.exceptions.NotFittedError as exc:
            raise UsageError(
                f"{self.describe(model)} is not fitted",
                expected="a fitted model", found="an estimator without fitted attributes",
                hint="call model.fit(X, y) before converting",
            ) from exc
        kind = type(model).__name__
        if kind in HIST_BOOSTING:
            return self._read_hist(model)
        if kind in BOOSTING:
            return self._read_boosting(model)
        if kind in ISOLATION:
            return self._read_isolation(model)
        if kind in EMBEDDING:
            return self._read_embedding(model)
        if kind in ADABOOST:
            return (self._read_samme(model) if self._is_classifier(model) else
                    self._read_median(model))
        if kind in BAGGING:
            return self._read_forest(model, list(model.estimators_),
                                     [list(f) for f in model.estimators_features_])
        return self._read_forest(model, [model] if kind in SINGLE_TREES else
                                 list(model.estimators_))

    def _classes(self, model: Any) -> np.ndarray:
        classes = np.asarray(model.classes_)
        if classes.dtype.kind == "f" and not np.all(classes == np.round(classes)):
            raise UnsupportedModelError(
                f"{self.describe(model)} has fractional class labels",
                expected="integer or string class labels",
                found=f"classes {classes[:5].tolist()}",
                hint="encode the target as integers or strings before fitting",
            )
        return classes

    def _read_forest(self, model: Any, trees: list[Any],
                     features: list[list[int]] | None = None) -> tuple[Ensemble, Head]:
        """Trees averaged (forests, bagging); ``features``: the columns each tree sees
        (a bagged tree reads ``X[:, features]``), by default all of them."""
        n_outputs = int(getattr(model, "n_outputs_", getattr(trees[0], "n_outputs_", 1)))
        classifier = self._is_classifier(model)
        if classifier and n_outputs > 1:
            raise UnsupportedModelError(
                f"baton cannot convert a multi-output {type(model).__name__}",
                expected="a classifier fitted on one target column",
                found=f"{n_outputs} outputs",
                hint="fit one classifier per target column",
            )
        n_targets = int(model.n_classes_) if classifier else n_outputs
        out = []
        for i, est in enumerate(trees):
            value = np.asarray(est.tree_.value, dtype=np.float64)
            # classifiers: the leaf's class shares (predict_proba returns them as they are)
            table = value[:, 0, :n_targets] if classifier else value[:, :, 0]
            leaf = _leaves(table)
            if classifier and features is not None:
                # a bagged tree fitted on a bootstrap sample may lack classes: its k-th
                # share adds to the ensemble's class classes_[k] (_parallel_predict_proba)
                leaf = _class_leaves(value[:, 0, :], np.asarray(est.classes_, dtype=np.int64))
            t = est.tree_
            out.append(_read_tree(t.children_left, t.children_right,
                                  _columns(t.feature, None if features is None else
                                           features[i]),
                                  t.threshold, t.missing_go_to_left, leaf))
        ens = Ensemble(n_features=int(model.n_features_in_), n_targets=n_targets, trees=out,
                       divisor=float(len(trees)), round_to_float32=True)
        if classifier:
            # no margin: the sum is the class shares themselves (no decision_function)
            return ens, Head("classification", "identity", classes=self._classes(model),
                             raw_scores=False)
        return ens, Head("regression")

    def _read_isolation(self, model: Any) -> tuple[Ensemble, Head]:
        """``IsolationForest``: each leaf holds the path length sklearn adds for it,
        ``decision_path_length + average_path_length - 1.0`` (``_parallel_compute_tree_
        depths``), summed tree by tree from 0 in float64; the head turns the sum into
        ``decision_function`` and ``predict`` (``_compute_score_samples``)."""
        from sklearn.ensemble._iforest import _average_path_length

        every = int(model._max_features) == int(model.n_features_in_)  # then X as it is
        out: list[Tree] = []
        for est, feats, lengths, average in zip(
                model.estimators_, model.estimators_features_,
                model._decision_path_lengths, model._average_path_length_per_tree):
            t = est.tree_
            path = (np.asarray(lengths, dtype=np.float64)
                    + np.asarray(average, dtype=np.float64)) - 1.0
            out.append(_read_tree(t.children_left, t.children_right,
                                  _columns(t.feature, None if every else list(feats)),
                                  t.threshold, t.missing_go_to_left,
                                  _leaves(path[:, None], target=len(out))))
        denominator = len(model.estimators_) * float(
            _average_path_length([model._max_samples])[0])
        offset = float(model.offset_)
        # one target per tree: the head adds them in sklearn's order
        ens = Ensemble(n_features=int(model.n_features_in_), n_targets=len(out), trees=out,
                       round_to_float32=True)
        return ens, Head("isolation", denominator=denominator, offset=offset,
                         label_threshold=_outlier_below(offset))

    def _read_embedding(self, model: Any) -> tuple[Ensemble, Head]:
        """``RandomTreesEmbedding``: tree ``t``'s leaves hold their column in the one-hot
        output (``one_hot_encoder_`` over ``apply(X)``: per tree, its leaf ids sorted, the
        trees one after another)."""
        categories = model.one_hot_encoder_.categories_
        out: list[Tree] = []
        owner: list[int] = []
        for k, (est, cats) in enumerate(zip(model.estimators_, categories)):
            t = est.tree_
            leaves = np.flatnonzero(np.asarray(t.children_left) == -1)
            cats = np.asarray(cats, dtype=np.int64)
            unseen = np.setdiff1d(leaves, cats)
            if len(unseen):
                raise UnsupportedModelError(
                    f"{self.describe(model)} has leaves its one-hot encoder never saw",
                    expected="every leaf of every tree among the encoder's categories",
                    found=f"tree {k}: leaves {unseen[:5].tolist()} unknown to the encoder "
                    "(scikit-learn raises on rows that reach them)",
                    hint="refit the embedding with fit or fit_transform on the training data",
                )
            column = np.full(t.node_count, -1.0)
            column[cats] = len(owner) + np.arange(len(cats), dtype=np.float64)
            owner += [k] * len(cats)
            out.append(_read_tree(t.children_left, t.children_right, t.feature, t.threshold,
                                  t.missing_go_to_left, _leaves(column[:, None], target=k)))
        ens = Ensemble(n_features=int(model.n_features_in_), n_targets=len(out), trees=out,
                       round_to_float32=True)
        return ens, Head("leaf_one_hot", leaf_owner=tuple(owner))

    def _read_samme(self, model: Any) -> tuple[Ensemble, Head]:
        """``AdaBoostClassifier`` (SAMME): member ``i`` votes ``w_i`` for the class it
        predicts (the first largest share of its leaf) and ``-1 / (K - 1) * w_i`` for the
        others, the products sklearn forms; one target per (member, class)."""
        classes = self._classes(model)
        k = len(classes)
        if k < 2:
            raise UnsupportedModelError(
                f"baton cannot convert {type(model).__name__} fitted on one class",
                expected="two classes or more", found=f"classes {classes.tolist()}",
                hint="fit on a target with two classes or more")
        out: list[Tree] = []
        weights = np.asarray(model.estimator_weights_, dtype=np.float64)
        for i, (est, w) in enumerate(zip(model.estimators_, weights)):
            t = est.tree_
            value = np.asarray(t.value, dtype=np.float64)[:, 0, :]
            voted = np.asarray(est.classes_)[np.argmax(value, axis=1)]
            votes = np.where(voted[:, None] == classes[None, :], w, -1 / (k - 1) * w)
            out.append(_read_tree(t.children_left, t.children_right, t.feature, t.threshold,
                                  t.missing_go_to_left, _class_leaves(
                                      votes, np.arange(k, dtype=np.int64) + i * k)))
        ens = Ensemble(n_features=int(model.n_features_in_), n_targets=len(out) * k,
                       trees=out, round_to_float32=True)
        return ens, Head("samme", classes=classes, denominator=float(weights.sum()))

    def _read_median(self, model: Any) -> tuple[Ensemble, Head]:
        """``AdaBoostRegressor``: one target per tree, its prediction; the head picks the
        weighted median (``_get_median_predict``)."""
        trees = [_read_tree(t.children_left, t.children_right, t.feature, t.threshold,
                            t.missing_go_to_left, _leaves(np.asarray(
                                t.value, dtype=np.float64)[:, 0, :1], target=i))
                 for i, t in enumerate(e.tree_ for e in model.estimators_)]
        weights = np.asarray(model.estimator_weights_, dtype=np.float64)[:len(trees)]
        return (Ensemble(n_features=int(model.n_features_in_), n_targets=len(trees),
                         trees=trees, round_to_float32=True),
                Head("weighted_median", tree_weights=tuple(weights.tolist())))

    def _read_boosting(self, model: Any) -> tuple[Ensemble, Head]:
        sk = _sklearn()
        init = model.init_
        constant_init = (isinstance(init, sk.dummy.DummyRegressor) or (
            isinstance(init, sk.dummy.DummyClassifier) and init.strategy != "stratified"))
        if not (isinstance(init, str) and init == "zero") and not constant_init:
            raise UnsupportedModelError(
                f"baton cannot convert {type(model).__name__} with init={type(init).__name__}",
                expected="init=None (the default prior), 'zero' or a constant Dummy estimator",
                found=f"init estimator {type(init).__module__}.{type(init).__qualname__}",
                hint="refit with the default init, or convert the init model separately",
            )
        stages = np.asarray(model.estimators_)
        n_targets = int(stages.shape[1])
        # the init prediction: constant, so the raw score of any one row
        base = np.asarray(model._raw_predict_init(
            np.zeros((1, int(model.n_features_in_)), dtype=np.float32)), dtype=np.float64)[0]
        trees = [Tree(root=Leaf.scalar(float(base[k]), k)) for k in range(n_targets)
                 if base[k] != 0.0]
        rate = float(model.learning_rate)
        for stage in stages:
            for k, est in enumerate(stage):
                t = est.tree_
                value = np.asarray(t.value, dtype=np.float64)[:, 0, 0]
                # sklearn adds learning_rate * value: the same double product, baked in
                trees.append(_read_tree(
                    t.children_left, t.children_right, t.feature, t.threshold,
                    np.zeros(len(value), dtype=bool),  # NaN <= t is false: right
                    _leaves((rate * value)[:, None], target=k)))
        ens = Ensemble(n_features=int(model.n_features_in_), n_targets=n_targets,
                       trees=trees, round_to_float32=True)
        return ens, self._boosting_head(model, n_targets, positive="raw>=0")

    def _boosting_head(self, model: Any, n_targets: int, *,
                       positive: LabelRule) -> Head:
        """The loss's link as transform and scale; a classifier's label as its ``predict``
        decides it from the raw scores: ``positive`` with one margin (``raw >= 0`` for
        ``GradientBoostingClassifier``, ``raw > 0`` for ``HistGradientBoostingClassifier``),
        the first largest raw score with more."""
        link = type(model._loss.link).__name__
        if link not in _LINKS:
            raise UnsupportedModelError(
                f"baton does not know the link function of {type(model).__name__}'s loss",
                expected="a loss with link " + ", ".join(sorted(_LINKS)),
                found=f"{type(model._loss).__name__} with {link}",
                hint="convert a model trained with one of the standard losses",
            )
        transform, scale = _LINKS[link]
        if self._is_classifier(model):
            return Head("classification", transform, scale, self._classes(model),
                        binary_margin=n_targets == 1,
                        label_rule=positive if n_targets == 1 else "raw_argmax")
        return Head("regression", transform, scale)

    def _read_hist(self, model: Any) -> tuple[Ensemble, Head]:
        n_features = int(model.n_features_in_)
        is_cat = model.is_categorical_
        # the model sees [encoded categorical columns..., numeric columns...]
        if is_cat is None:
            columns = np.arange(n_features)
            categories: list[np.ndarray] = []
        else:
            is_cat = np.asarray(is_cat, dtype=bool)
            if getattr(model, "_preprocessor", None) is None:
                raise UnsupportedModelError(
                    f"{type(model).__name__} has categorical features but no encoder",
                    expected="a model fitted with scikit-learn >= 1.6",
                    found="is_categorical_ without a preprocessor",
                    hint="refit the model with the installed scikit-learn",
                )
            columns = np.concatenate([np.flatnonzero(is_cat), np.flatnonzero(~is_cat)])
            encoder = model._preprocessor.named_transformers_["encoder"]
            categories = [_integer_categories(model, c, int(f)) for c, f in
                          zip(encoder.categories_, np.flatnonzero(is_cat))]
        trees: list[Tree] = []
        base = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
        n_targets = int(model.n_trees_per_iteration_)
        # raw = 0 + baseline, then each tree: a first constant tree adds in that order
        trees += [Tree(root=Leaf.scalar(float(base[k]), k)) for k in range(n_targets)
                  if base[k] != 0.0]
        for iteration in model._predictors:
            for k, predictor in enumerate(iteration):
                trees.append(_read_hist_tree(predictor, k, columns, categories))
        # OrdinalEncoder: a value equal to no category (7.5 too) is unknown, i.e. missing
        ens = Ensemble(n_features=n_features, n_targets=n_targets, trees=trees,
                       categorical=sorted(int(f) for f in columns[:len(categories)]),
                       categorical_values="exact")
        return ens, self._boosting_head(model, n_targets, positive="raw>0")

    # -- the original -------------------------------------------------------------------

    def native_predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        kind = type(model).__name__
        if kind in ISOLATION:
            return {"label": np.asarray(model.predict(data)),
                    "scores": np.asarray(model.decision_function(data), dtype=np.float64)}
        if kind in EMBEDDING:
            t = model.transform(data)
            return {"transformed": np.asarray(t.toarray() if hasattr(t, "toarray") else t,
                                              dtype=np.float64)}
        if not self._is_classifier(model):
            return {"prediction": np.asarray(model.predict(data))}
        out = {"label": np.asarray(model.predict(data)),
               "probabilities": np.asarray(model.predict_proba(data), dtype=np.float64)}
        if self._has_raw_scores(model):  # gradient boosting: decision_function as [N, k]
            raw = np.asarray(model.decision_function(data), dtype=np.float64)
            out["raw_scores"] = raw.reshape(len(raw), -1)
        return out


def _leaves(table: np.ndarray, target: int | None = None) -> Callable[[int], Leaf]:
    """Leaf of node ``n``: row ``n`` of ``table`` [nodes, targets], or its one column for
    ``target``."""
    def leaf(n: int) -> Leaf:
        if target is not None:
            return Leaf.scalar(float(table[n, 0]), target)
        return Leaf(tuple((k, float(v)) for k, v in enumerate(table[n])))
    return leaf


def _is_outlier(ratio: np.ndarray, offset: float) -> np.ndarray:
    """``IsolationForest.predict``'s test on ``depths / denominator``, in numpy as sklearn
    computes it: ``-(2 ** -ratio) - offset_ < 0``."""
    return (-(2 ** (-ratio)) - offset) < 0


def _outlier_below(offset: float) -> float:
    """The smallest ratio ``depths / denominator >= 0`` that ``predict`` calls an inlier:
    outliers are exactly the ratios below it (``2 ** -ratio`` falls as the ratio grows, and
    numpy's power is monotone), found by bisection over the float64 bit patterns, so the
    label does not depend on how the graph's ``Pow`` rounds."""
    bits = np.asarray([0.0, np.inf]).view(np.int64)
    lo, hi = int(bits[0]), int(bits[1])  # outlier at lo, inlier at hi (else: the bound)
    if not _is_outlier(np.asarray([0.0]), offset)[0]:
        return 0.0
    if _is_outlier(np.asarray([np.inf]), offset)[0]:
        return float("inf")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _is_outlier(np.asarray([mid], dtype=np.int64).view(np.float64), offset)[0]:
            lo = mid
        else:
            hi = mid
    return float(np.asarray([hi], dtype=np.int64).view(np.float64)[0])


def _class_leaves(value: np.ndarray, classes: np.ndarray) -> Callable[[int], Leaf]:
    """Leaf of node ``n``: its class shares ``value[n]``, share ``k`` for target
    ``classes[k]``."""
    def leaf(n: int) -> Leaf:
        return Leaf(tuple((int(c), float(v)) for c, v in zip(classes, value[n])))
    return leaf


def _columns(feature: np.ndarray, features: list[int] | None) -> np.ndarray:
    """A tree's split features as columns of the ensemble's input: ``features[f]`` for a
    tree fitted on ``X[:, features]``; leaves (``-2``) stay as they are."""
    feature = np.asarray(feature)
    if features is None:
        return feature
    cols = np.asarray(features, dtype=np.int64)
    return np.where(feature >= 0, cols[np.clip(feature, 0, None)], feature)


def _bags_trees(model: Any) -> bool:
    """A Bagging or AdaBoost ensemble whose members are scikit-learn decision or extra
    trees (the default member); unfitted, whose member would be one."""
    members = getattr(model, "estimators_", None)
    if members is None:
        base = getattr(model, "estimator", None)
        members = [base] if base is not None else []
    return all(type(m).__module__.split(".")[0] == "sklearn"
               and type(m).__name__ in SINGLE_TREES for m in members)


def _read_tree(left: np.ndarray, right: np.ndarray, feature: np.ndarray,
               threshold: np.ndarray, missing_left: np.ndarray,
               leaf: Callable[[int], Leaf]) -> Tree:
    """A ``sklearn.tree._tree.Tree`` (``x <= threshold`` goes left)."""
    left, right = np.asarray(left), np.asarray(right)
    internal = np.flatnonzero(left != -1)
    if not len(internal):
        return Tree(root=leaf(0))
    index = {int(n): i for i, n in enumerate(internal)}

    def child(n: int) -> int | Leaf:
        return index[n] if n in index else leaf(n)

    tree = Tree()
    for n in internal:
        tree.add(Split(int(feature[n]), "LEQ", float(threshold[n]), child(int(left[n])),
                       child(int(right[n])), bool(missing_left[n])))
    tree.root = index[0]
    return tree


def _read_hist_tree(predictor: Any, target: int, columns: np.ndarray,
                    categories: list[np.ndarray]) -> Tree:
    """A ``TreePredictor``: numeric ``x <= num_threshold``; categorical: the encoded
    category's bit in ``raw_left_cat_bitsets`` sends it left, another known category
    right, anything else (unknown, negative, NaN) the missing way."""
    nodes = predictor.nodes
    bitsets = np.asarray(predictor.raw_left_cat_bitsets)
    internal = np.flatnonzero(nodes["is_leaf"] == 0)
    if not len(internal):
        return Tree(root=Leaf.scalar(float(nodes["value"][0]), target))
    index = {int(n): i for i, n in enumerate(internal)}
    tree = Tree()

    def child(n: int) -> int | Leaf:
        if n in index:
            return index[n]
        return Leaf.scalar(float(nodes["value"][n]), target)

    for n in internal:
        node = nodes[n]
        left, right = child(int(node["left"])), child(int(node["right"]))
        missing_left = bool(node["missing_go_to_left"])
        f = int(node["feature_idx"])
        if not node["is_categorical"]:
            tree.add(Split(int(columns[f]), "LEQ", float(node["num_threshold"]), left,
                           right, missing_left))
            continue
        cats = categories[f]
        goes_left = _bits(bitsets[int(node["bitset_idx"])], len(cats))
        # MEMBER sends members to ``true`` and everything else (unknown values too) to
        # ``false``: the side that is not the missing side holds the members
        if missing_left:
            members, true, false = cats[~goes_left], right, left
        else:
            members, true, false = cats[goes_left], left, right
        if not len(members):  # every value goes ``false``: a split that never holds
            tree.add(Split(int(columns[f]), "LT", -np.inf, true, false, False))
            continue
        tree.add(Split(int(columns[f]), "MEMBER", 0.0, true, false, False,
                       tuple(float(v) for v in members)))
    tree.root = index[0]
    return tree


def _bits(bitset: np.ndarray, n: int) -> np.ndarray:
    """Which of the values ``0..n-1`` a scikit-learn bitset (uint32 words) holds."""
    words = np.asarray(bitset, dtype=np.uint64)
    codes = np.arange(n)
    return ((words[codes // 32] >> (codes % 32).astype(np.uint64)) & 1).astype(bool)


def _integer_categories(model: Any, categories: np.ndarray, feature: int) -> np.ndarray:
    """A categorical feature's known values, which must be integer codes (NaN dropped)."""
    cats = np.asarray(categories)
    if cats.dtype.kind not in "iuf":
        raise UnsupportedModelError(
            f"{type(model).__name__} was fitted on a non-numeric categorical column "
            f"(feature {feature}, e.g. a pandas 'category' column)",
            expected="categorical features given as integer codes "
            "(categorical_features=[...] on a numeric matrix)",
            found=f"categories of dtype {cats.dtype}: {cats[:5].tolist()}",
            hint="encode the categories as integers (e.g. column.cat.codes) and fit with "
            "categorical_features=[column indices]",
        )
    cats = cats.astype(np.float64)
    cats = cats[~np.isnan(cats)]
    ok = (cats == np.trunc(cats)) & (cats >= _INT32[0]) & (cats <= _INT32[1])
    if not ok.all():
        raise UnsupportedModelError(
            f"{type(model).__name__}'s categorical feature {feature} has values that are "
            "not 32-bit integers",
            expected="integer category codes between -2**31+1 and 2**31-1",
            found=f"categories {cats[~ok][:5].tolist()}",
            hint="map the categories to small integer codes before fitting",
        )
    return cats


__all__ = ["SklearnTreesConverter"]
