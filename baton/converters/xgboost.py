"""XGBoost: ``Booster``, ``XGBClassifier``, ``XGBRegressor`` (and the ``XGBRF*`` and
``XGBRanker`` wrappers).

Read from the model's own JSON (``booster.save_raw("json")``: float32 thresholds and leaf
values printed so that they read back exactly) into baton's tree representation.

Decision rules reproduced (XGBoost's CPU predictor, 3.x):

* every feature is rounded to float32 first (``Ensemble.round_to_float32``);
* NaN, and the ``missing`` value of a scikit-learn wrapper (compared after the float32
  rounding: ``Ensemble.missing_value``), go the node's default way;
* numerical: ``x < split_condition`` goes left (``Split(mode="LT")``);
* categorical (``enable_categorical`` with integer codes): a code in the node's category set
  goes right; a code that is negative or ``>= 2**24`` goes left
  (``Ensemble.category_range``), and otherwise ``int(x)`` is looked up (truncation after
  the float32 rounding);
* the margin is ``base margin + leaf, + leaf, ...`` added tree after tree in float32
  (``Ensemble.accumulate="float32"``), over the trees up to ``best_iteration`` when a
  scikit-learn wrapper was early-stopped (what its ``predict`` uses); a plain ``Booster``
  uses every tree, like ``Booster.predict``; DART scales each tree by its ``weight_drop``;
* a ``Booster`` trained with ``multi:softmax`` predicts the index of the largest margin
  (``Head("class_index")``).

``learner_model_param.base_score`` is stored in the objective's output space (a vector string
such as ``"[5E-1]"`` in XGBoost 3.x); the margin is ``logit`` of it for the logistic
objectives, ``log`` for poisson/gamma/tweedie/survival, and the value itself otherwise
(``binary:logitraw``, softmax and ranking included: checked against XGBoost 3.2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from baton.contract import ModelFile
from baton.converters._trees import (
    Ensemble,
    Head,
    Leaf,
    Split,
    Transform,
    Tree,
    TreeConverter,
)
from baton.errors import UnsupportedModelError, UsageError, first_line, require

EXTRA = "xgboost"
#: XGBoost's largest category code + 1 (``OutOfRangeCat``): codes from here on go left
OUT_OF_RANGE_CAT = 16777216.0
#: the codes XGBoost looks up in a category set; the others go left
CATEGORY_RANGE = (0.0, OUT_OF_RANGE_CAT)

#: objective -> (output transform, link from base_score to the base margin)
_OBJECTIVES: dict[str, tuple[Transform, str]] = {
    "reg:squarederror": ("identity", "identity"),
    "reg:linear": ("identity", "identity"),
    "reg:squaredlogerror": ("identity", "identity"),
    "reg:absoluteerror": ("identity", "identity"),
    "reg:pseudohubererror": ("identity", "identity"),
    "reg:quantileerror": ("identity", "identity"),
    "reg:logistic": ("sigmoid", "logit"),
    "binary:logistic": ("sigmoid", "logit"),
    "binary:logitraw": ("identity", "identity"),
    "multi:softprob": ("softmax", "identity"),
    "multi:softmax": ("softmax", "identity"),
    "count:poisson": ("exp", "log"),
    "reg:gamma": ("exp", "log"),
    "reg:tweedie": ("exp", "log"),
    "survival:cox": ("exp", "log"),
    "survival:aft": ("exp", "log"),
    "rank:pairwise": ("identity", "identity"),
    "rank:ndcg": ("identity", "identity"),
    "rank:map": ("identity", "identity"),
}
_CLASSIFIER_OBJECTIVES = ("binary:logistic", "reg:logistic", "binary:logitraw",
                          "multi:softprob", "multi:softmax")


def _xgb() -> Any:
    return require("xgboost", EXTRA, "Converting an XGBoost model")


class XGBoostConverter(TreeConverter):
    name = "xgboost"
    framework = "xgboost"
    extra = EXTRA
    #: scikit-learn's converter accepts any estimator; XGBoost's wrappers are XGBoost's
    before = "sklearn"
    #: (the loader is defined below, hence the lambdas)
    model_files = (
        ModelFile(".json", lambda path, trust: _load(path, trust), framework="XGBoost",
                  what="XGBoost model (booster.save_model('model.json'))",
                  save="model.save_model('model.json')"),
        ModelFile(".ubj", lambda path, trust: _load(path, trust), framework="XGBoost",
                  what="XGBoost model (booster.save_model('model.ubj'))",
                  save="model.save_model('model.ubj')"),
    )

    def accepts(self, model: Any) -> bool:
        return type(model).__module__.split(".")[0] == "xgboost" and (
            hasattr(model, "get_booster") or type(model).__name__ == "Booster")

    def versions(self) -> dict[str, str]:
        return {"xgboost": _xgb().__version__}

    def feature_names(self, model: Any) -> list[str] | None:
        if _is_booster(model):
            names = model.feature_names
        else:
            names = getattr(model, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    # -- reading ----------------------------------------------------------------------

    def read(self, model: Any) -> tuple[Ensemble, Head]:
        booster = self._booster(model)
        doc = json.loads(bytes(booster.save_raw("json")))
        learner = doc["learner"]
        objective = str(learner["objective"]["name"])
        if objective not in _OBJECTIVES:
            raise UnsupportedModelError(
                f"baton does not know XGBoost's objective {objective!r}",
                expected="one of " + ", ".join(sorted(_OBJECTIVES)),
                found=objective,
                hint="convert a model trained with one of the supported objectives",
            )
        transform, link = _OBJECTIVES[objective]
        gb = learner["gradient_booster"]
        weights: list[float] | None = None
        if gb["name"] == "dart":
            weights = [float(w) for w in gb["weight_drop"]]
            gb = gb["gbtree"]
        elif gb["name"] != "gbtree":
            raise UnsupportedModelError(
                f"baton converts XGBoost tree boosters, not {gb['name']!r}",
                expected="booster='gbtree' or 'dart'", found=f"booster={gb['name']!r}",
                hint="train with booster='gbtree'",
            )
        params = learner["learner_model_param"]
        n_features = int(params["num_feature"])
        n_targets = max(int(params.get("num_class", 0)), int(params.get("num_target", 1)), 1)
        tree_docs = gb["model"]["trees"]
        info = [int(t) for t in gb["model"]["tree_info"]]
        n_used = self._n_trees(model, gb["model"], len(tree_docs))
        cats = gb["model"].get("cats") or {}
        if cats.get("enc"):
            raise UnsupportedModelError(
                "baton cannot convert an XGBoost model that re-codes pandas categories",
                expected="categorical features given as integer codes (a numeric matrix "
                "with feature_types 'c')",
                found="a model trained on a DataFrame with category columns",
                hint="train on the integer codes (df[col].cat.codes) with "
                "feature_types=['q', ..., 'c'] and enable_categorical=True",
            )
        categorical: set[int] = set()
        trees = []
        for i, tree_doc in enumerate(tree_docs[:n_used]):
            scale = np.float32(weights[i]) if weights is not None else None
            trees.append(_read_tree(tree_doc, info[i], scale, categorical))
        base = _base_margin(params.get("base_score", "0"), link, n_targets)
        ens = Ensemble(n_features=n_features, n_targets=n_targets, trees=trees, base=base,
                       round_to_float32=True, categorical=sorted(categorical),
                       category_range=CATEGORY_RANGE, missing_value=self._missing(model),
                       accumulate="float32")
        return ens, self._head(model, objective, transform, n_targets,
                               multi_label=int(params.get("num_target", 1)) > 1)

    def _booster(self, model: Any) -> Any:
        if _is_booster(model):
            return model
        try:
            return model.get_booster()
        except Exception as exc:  # noqa: BLE001 - sklearn's NotFittedError and friends
            raise UsageError(
                f"{self.describe(model)} is not fitted",
                expected="a fitted XGBoost model", found="no booster (fit was not called)",
                hint="call model.fit(X, y) first",
            ) from exc

    def _n_trees(self, model: Any, gbtree: dict[str, Any], n_trees: int) -> int:
        """The trees ``predict`` uses: up to ``best_iteration`` for an early-stopped
        scikit-learn wrapper (its ``predict`` passes that ``iteration_range``), else all."""
        if _is_booster(model):
            return n_trees
        try:
            best = int(model.best_iteration)
        except AttributeError:
            return n_trees
        indptr = gbtree.get("iteration_indptr") or []
        if best + 1 >= len(indptr):
            return n_trees
        return int(indptr[best + 1])

    def _missing(self, model: Any) -> float | None:
        if _is_booster(model):
            return None  # Booster.predict / inplace_predict read NaN as missing
        missing = getattr(model, "missing", float("nan"))
        value = float("nan") if missing is None else float(missing)
        return None if math.isnan(value) else value

    def _head(self, model: Any, objective: str, transform: Transform, n_targets: int, *,
              multi_label: bool) -> Head:
        if _is_classifier(model):
            if multi_label:
                raise UnsupportedModelError(
                    "baton cannot convert a multi-label XGBClassifier",
                    expected="one label per row (binary or multi-class)",
                    found=f"{n_targets} labels per row",
                    hint="convert one classifier per label",
                )
            if objective not in _CLASSIFIER_OBJECTIVES:
                raise UnsupportedModelError(
                    f"baton cannot convert an XGBClassifier trained with {objective!r}",
                    expected="binary:logistic, binary:logitraw, multi:softprob or "
                    "multi:softmax", found=objective,
                    hint="train the classifier with one of those objectives",
                )
            return Head("classification", transform, classes=np.asarray(model.classes_),
                        binary_margin=n_targets == 1)
        if objective == "multi:softmax":  # a Booster predicts the class index
            return Head("class_index")
        return Head("regression", transform, flatten=n_targets == 1)

    # -- running the original ----------------------------------------------------------

    def native_predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        if _is_booster(model):
            # what Booster.predict(DMatrix(data)) returns, without the DMatrix (which
            # refuses infinite values that the predictor itself handles)
            return {"prediction": np.asarray(model.inplace_predict(data))}
        if _is_classifier(model):
            raw = np.asarray(model.predict(data, output_margin=True), dtype=np.float64)
            return {
                "label": np.asarray(model.predict(data)),
                "probabilities": np.asarray(model.predict_proba(data)),
                "raw_scores": raw.reshape(len(raw), -1),
            }
        return {"prediction": np.asarray(model.predict(data))}

def _is_booster(model: Any) -> bool:
    return type(model).__name__ == "Booster" and not hasattr(model, "get_booster")


def _is_classifier(model: Any) -> bool:
    return hasattr(model, "get_booster") and hasattr(type(model), "predict_proba")


def _f32(value: Any) -> float:
    return float(np.float32(value))


def _base_margin(text: Any, link: str, n_targets: int) -> list[float]:
    """``base_score`` (``"[5E-1]"``, ``"[a,b,c]"`` or a plain number) as margins."""
    values = [float(v) for v in str(text).strip().strip("[]").split(",") if v.strip()]
    if not values:
        values = [0.0]
    if len(values) == 1 and n_targets > 1:
        values = values * n_targets
    if (link == "logit" and not all(0.0 < v < 1.0 for v in values)) or (
            link == "log" and not all(v > 0.0 for v in values)):
        raise UnsupportedModelError(
            "the model's base_score has no margin under its objective",
            expected="a probability in (0, 1)" if link == "logit" else "a positive value",
            found=f"base_score={text}", hint="train with a base_score in the objective's range",
        )
    if link == "logit":
        values = [-math.log(1.0 / v - 1.0) for v in values]
    elif link == "log":
        values = [math.log(v) for v in values]
    return [_f32(v) for v in values]  # XGBoost keeps the base margin as a float32


def _read_tree(doc: dict[str, Any], target: int, scale: np.float32 | None,
               categorical: set[int]) -> Tree:
    left = doc["left_children"]
    right = doc["right_children"]
    feature = doc["split_indices"]
    condition = doc["split_conditions"]
    default_left = doc["default_left"]
    split_type = doc.get("split_type") or [0] * len(left)
    width = int(doc.get("tree_param", {}).get("size_leaf_vector", "1") or 1)
    leaf_vectors = doc.get("leaf_weights") or []
    cat_nodes = doc.get("categories_nodes") or []
    segments = doc.get("categories_segments") or []
    sizes = doc.get("categories_sizes") or []
    categories = doc.get("categories") or []
    members = {int(n): tuple(float(c) for c in categories[int(s):int(s) + int(z)])
               for n, s, z in zip(cat_nodes, segments, sizes, strict=False)}

    def weight(value: Any) -> float:
        w = np.float32(value)
        return float(w * scale) if scale is not None else float(w)

    def leaf(n: int) -> Leaf:
        if width > 1:  # a multi-output tree: the leaf's vector sits in leaf_weights
            start = int(right[n]) * width
            return Leaf(tuple((k, weight(leaf_vectors[start + k])) for k in range(width)))
        return Leaf.scalar(weight(condition[n]), target)

    tree = Tree()

    def child(n: int) -> int | Leaf:
        return leaf(n) if int(left[n]) == -1 else visit(n)

    def visit(n: int) -> int:
        yes, no = child(int(left[n])), child(int(right[n]))
        f = int(feature[n])
        if int(split_type[n]) == 1:  # categorical: a code in the set goes right
            categorical.add(f)
            return tree.add(Split(f, "MEMBER", 0.0, no, yes, not bool(default_left[n]),
                                  members.get(n, ())))
        return tree.add(Split(f, "LT", _f32(condition[n]), yes, no, bool(default_left[n])))

    tree.root = leaf(0) if int(left[0]) == -1 else visit(0)
    return tree


def _load(path: Path, trust: bool) -> Any:
    xgb = _xgb()
    try:
        return xgb.Booster(model_file=str(path))
    except Exception as exc:  # noqa: BLE001 - XGBoost raises XGBoostError
        raise UsageError(
            f"cannot read {path} as an XGBoost model",
            expected="a model saved with booster.save_model('model.json' or 'model.ubj')",
            found=first_line(exc, 200, with_type=True),
            hint="save the model with model.save_model(path)",
        ) from exc
