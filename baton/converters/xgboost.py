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

A model trained on a pandas DataFrame with ``category`` columns (``enable_categorical=True``)
keeps each column's training categories in its JSON (``gradient_booster.model.cats.enc``,
in the training dtype's order: a category's position is its code). With such a DataFrame
as the sample, the graph takes each column as an input of its own: a category column as
text (``string [N, 1]``) when its categories are text, as the category's value
(``float64 [N, 1]``) when they are integers; the other columns as ``float64 [N, 1]``. A
category becomes its training code (XGBoost re-codes the data's own dtype by value, so
its order does not matter), a missing value NaN (the node's default way). A category the
model was not trained on: XGBoost 3.2's re-coding (``Recode`` in ``encoder/ordinal.h``) is
a binary search (``std::lower_bound``) in the sorted training categories that takes the
first one not below it, without testing equality: ``"bb"`` is read as ``"c"`` when the
training categories are ``a..e`` (text compared byte by byte as signed bytes, numbers as
numbers). The graph does the same (``FrameColumn.unseen="next"``; for text one
``RegexFullMatch`` per category, so the graph uses opset 20). Above every training
category XGBoost refuses the whole DataFrame ("Found a category not in the training set");
the graph reads such a value as missing. A dtype built from the training categories
(``pd.Categorical(values, categories=...)``) turns an unseen value into NaN: missing for
both. With a numeric matrix of codes as the sample, the codes are fed as they are.

A model file saved by ``XGBClassifier.save_model`` records the scikit-learn class
(``learner.attributes.scikit_learn``): it is loaded as an ``XGBClassifier`` and gives
``label`` and ``probabilities`` like the fitted classifier.

``learner_model_param.base_score`` is stored in the objective's output space (a vector string
such as ``"[5E-1]"`` in XGBoost 3.x); the margin is ``logit`` of it for the logistic
objectives, ``log`` for poisson/gamma/tweedie/survival, and the value itself otherwise
(``binary:logitraw``, softmax and ranking included: checked against XGBoost 3.2).
"""

from __future__ import annotations

import dataclasses
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
from baton.converters._trees.converter import FrameInputs
from baton.converters._trees.emit import category_column
from baton.converters._trees.ir import FrameColumn
from baton.errors import SchemaError, UnsupportedModelError, UsageError, first_line, require

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


class XGBoostConverter(FrameInputs, TreeConverter):
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

    # -- a DataFrame with category columns ------------------------------------------------

    def _frame_note(self, categories: str) -> str:
        return (f"category columns {categories} mapped to their training codes (the model's "
                "cats.enc); a category the model was not trained on takes the code of the next "
                "training category in sorted order, as XGBoost's re-coding does (NaN past the "
                "last one, where XGBoost refuses the data); a missing value reads as missing")

    def _frame_columns(self, model: Any, sample: Any) -> list[FrameColumn] | None:
        """One :class:`FrameColumn` per feature when ``sample`` is a DataFrame with
        ``category`` columns, from the training categories the model keeps; else None."""
        from baton.schema import _column_dtype, is_dataframe

        if not is_dataframe(sample):
            return None
        import pandas as pd

        prepared = self.prepare(model, sample)
        is_cat = [isinstance(prepared[c].dtype, pd.CategoricalDtype) for c in prepared.columns]
        if not any(is_cat):
            return None
        self.read_once(model)  # refuse what cannot be converted before looking further
        doc = json.loads(bytes(self._booster(model).save_raw("json")))
        enc = (doc["learner"]["gradient_booster"].get("gbtree", doc["learner"][
            "gradient_booster"])["model"].get("cats") or {}).get("enc") or []
        categories = [_categories(e) for e in enc]
        if len(categories) != len(is_cat):
            raise SchemaError(
                "the XGBoost model keeps no training categories for the sample's category "
                "columns",
                expected="a model trained on a DataFrame with category columns "
                "(enable_categorical=True), with the same columns",
                found=f"{len(prepared.columns)} columns, {sum(is_cat)} of them category; "
                f"categories for {len(categories)} features in the model",
                hint="pass the category codes as numbers (df[col].cat.codes) for a model "
                "trained on codes, or retrain on the DataFrame with XGBoost >= 3.1",
            )
        columns = []
        for c, cat, cats in zip(prepared.columns, is_cat, categories, strict=True):
            if cat != (cats is not None):
                raise SchemaError(
                    f"column {str(c)!r} is {'a' if cat else 'no'} category column in the "
                    f"sample but {'no' if cat else 'a'} categorical feature of the model",
                    expected="the columns and dtypes the model was trained on",
                    found=f"{str(c)}: {prepared[c].dtype}",
                    hint="pass a DataFrame with the same dtypes as the training data (a "
                    "Parquet file keeps text categories but reads integer categories back "
                    "as integers, a CSV file keeps neither: restore them with "
                    "df[col].astype('category'))",
                )
            if cats is not None:  # an unseen category: XGBoost takes the next one up
                columns.append(dataclasses.replace(
                    category_column(str(c), cats, "XGBoost"), unseen="next"))
            elif _column_dtype(prepared[c]) == "string":
                raise SchemaError(
                    f"column {str(c)!r} holds text, which the XGBoost model cannot take",
                    expected="numeric, boolean or category columns",
                    found=f"{str(c)}: {prepared[c].dtype}",
                    hint="make it a pandas category column and train with "
                    "enable_categorical=True, or encode it as numbers",
                )
            else:
                columns.append(FrameColumn(str(c)))
        return columns

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
    # XGBoost computes the margin in float32 (``-logf(1.0f / base_score - 1.0f)``,
    # ``logf(base_score)``): the division and subtraction rounded to float32 as there,
    # the logarithm taken in float64 and rounded once (as a correctly rounded logf does)
    f = [np.float32(v) for v in values]
    if link == "logit":
        f = [np.float32(-math.log(float(np.float32(np.float32(1.0) / v) - np.float32(1.0))))
             for v in f]
    elif link == "log":
        f = [np.float32(math.log(float(v))) for v in f]
    return [float(v) for v in f]  # XGBoost keeps the base margin as a float32


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


def _categories(enc: dict[str, Any]) -> list[Any] | None:
    """A feature's training categories from ``cats.enc`` (None: a numeric feature): text as
    UTF-8 bytes split at ``offsets``, or numbers in ``values``."""
    values = list(enc.get("values") or [])
    if "offsets" in enc:
        offsets = [int(o) for o in enc["offsets"]]
        if not offsets:
            return None
        if any(not 0 <= int(v) < 0x80 for v in values):
            # XGBoost 3.2 writes a text category's characters, one byte each: beyond ASCII
            # the JSON no longer holds the text (checked: "é" is kept as one byte 0xC3)
            raise UnsupportedModelError(
                "the XGBoost model's text categories are not all ASCII, and its JSON does "
                "not keep such text whole",
                expected="ASCII category names",
                found="category bytes beyond ASCII in the model's cats.enc",
                hint="rename the categories to ASCII before training "
                "(df[col].cat.rename_categories(...)), or train on the codes",
            )
        raw = bytes(int(v) for v in values)
        return [raw[a:b].decode("ascii") for a, b in zip(offsets, offsets[1:])]
    return values or None


def _load(path: Path, trust: bool) -> Any:
    xgb = _xgb()
    try:
        booster = xgb.Booster(model_file=str(path))
        meta = json.loads(booster.attr("scikit_learn") or "{}")
        if isinstance(meta, dict) and meta.get("_estimator_type") == "classifier":
            # saved by XGBClassifier.save_model: its classes and predict_proba come back
            classifier = xgb.XGBClassifier()
            classifier.load_model(str(path))
            return classifier
        return booster
    except Exception as exc:  # noqa: BLE001 - XGBoost raises XGBoostError
        raise UsageError(
            f"cannot read {path} as an XGBoost model",
            expected="a model saved with booster.save_model('model.json' or 'model.ubj')",
            found=first_line(exc, 200, with_type=True),
            hint="save the model with model.save_model(path)",
        ) from exc
