"""scikit-learn's tree models through baton's own tree emitter, exact on float64 data.

Bare fitted estimators only (a Pipeline still goes through skl2onnx):
``DecisionTree*``, ``ExtraTree*``, ``RandomForest*``, ``ExtraTrees*``,
``GradientBoosting*`` and ``HistGradientBoosting*``, classifiers and regressors.

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
SUPPORTED = SINGLE_TREES | FORESTS | BOOSTING | HIST_BOOSTING

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
        return cls.__module__.split(".")[0] == "sklearn" and cls.__name__ in SUPPORTED

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
        self.read(model)  # refuse what cannot be converted before looking at the sample
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

    def _read_forest(self, model: Any, trees: list[Any]) -> tuple[Ensemble, Head]:
        n_outputs = int(getattr(model, "n_outputs_", 1))
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
        for est in trees:
            value = np.asarray(est.tree_.value, dtype=np.float64)
            # classifiers: the leaf's class shares (predict_proba returns them as they are)
            table = value[:, 0, :n_targets] if classifier else value[:, :, 0]
            t = est.tree_
            out.append(_read_tree(t.children_left, t.children_right, t.feature, t.threshold,
                                  t.missing_go_to_left, _leaves(table)))
        ens = Ensemble(n_features=int(model.n_features_in_), n_targets=n_targets, trees=out,
                       divisor=float(len(trees)), round_to_float32=True)
        if classifier:
            # no margin: the sum is the class shares themselves (no decision_function)
            return ens, Head("classification", "identity", classes=self._classes(model),
                             raw_scores=False)
        return ens, Head("regression")

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
