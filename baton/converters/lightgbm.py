"""LightGBM: ``Booster``, ``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``.

Read from ``Booster.dump_model()`` (thresholds printed with 17 significant digits, so they
are the doubles LightGBM compares against) into baton's tree representation. LightGBM
compares features in float64, so no rounding is added.

Decision rules reproduced (LightGBM ``tree.h``):

* any value with ``|x| <= 1e-35f`` is read as 0.0 (LightGBM's predictor keeps only
  "non-zero" values);
* numerical: ``x <= threshold`` goes left; NaN goes the default way when the node's
  ``missing_type`` is ``NaN``; with ``None`` a NaN is compared as 0.0; with ``Zero`` a
  NaN or a zero goes the default way;
* categorical: ``int(x)`` in the node's category set goes left; NaN and negatives go right.

A model trained on a pandas DataFrame with ``category`` columns (``categorical_feature=
'auto'`` makes the unordered ones categorical features; ordered ones are numeric features
holding the codes) takes each column as an input of its own when the sample is such a
DataFrame: a category column as text (``string [N, 1]``) when its categories are text, or
as the category's value (``float64 [N, 1]``) when they are numbers; the other columns as
``float64 [N, 1]``. The graph maps a category to its training code, the position in the
model's ``pandas_categorical`` (as ``_data_from_pandas`` does with ``set_categories``, so
the order of the categories in the data's own dtype does not matter), and an unseen
category or a missing value to NaN, which LightGBM's categorical splits send right.
"""

from __future__ import annotations

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

EXTRA = "lightgbm"
ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal)


def _lgb() -> Any:
    return require("lightgbm", EXTRA, "Converting a LightGBM model")


def _booster(model: Any) -> Any:
    return model.booster_ if hasattr(model, "booster_") else model


class LightGBMConverter(FrameInputs, TreeConverter):
    name = "lightgbm"
    framework = "lightgbm"
    extra = EXTRA
    #: (the loader is defined below, hence the lambda)
    model_files = (ModelFile(".txt", lambda path, trust: _load_txt(path, trust),
                             framework="LightGBM", what="LightGBM model (booster.save_model)",
                             save="booster.save_model('model.txt')"),)

    def accepts(self, model: Any) -> bool:
        return type(model).__module__.split(".")[0] == "lightgbm" and (
            hasattr(model, "booster_") or type(model).__name__ == "Booster")

    def versions(self) -> dict[str, str]:
        return {"lightgbm": _lgb().__version__}

    def feature_names(self, model: Any) -> list[str] | None:
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        if hasattr(model, "feature_name"):  # a Booster: the names it was trained with,
            found = [str(n) for n in model.feature_name()]  # unless LightGBM made them up
            if found != [f"Column_{i}" for i in range(len(found))]:
                return found
        return None

    def _is_classifier(self, model: Any) -> bool:
        return hasattr(model, "classes_") and hasattr(model, "predict_proba")

    # -- a DataFrame with category columns ------------------------------------------------

    def _frame_note(self, categories: str) -> str:
        return (f"category columns {categories} mapped to their training codes (the model's "
                "pandas_categorical); an unseen category or a missing value reads as NaN, as "
                "LightGBM's DataFrame input does")

    def _frame_columns(self, model: Any, sample: Any) -> list[FrameColumn] | None:
        """One :class:`FrameColumn` per feature when ``sample`` is a DataFrame with
        ``category`` columns (paired, in order, with the model's ``pandas_categorical``,
        as LightGBM pairs them), else None."""
        from baton.schema import _column_dtype, is_dataframe

        if not is_dataframe(sample):
            return None
        import pandas as pd

        prepared = self.prepare(model, sample)
        names = [c for c in prepared.columns
                 if isinstance(prepared[c].dtype, pd.CategoricalDtype)]
        if not names:
            return None
        self.read_once(model)  # refuse what cannot be converted before looking further
        stored = getattr(_booster(model), "pandas_categorical", None)
        if not stored or len(stored) != len(names):
            raise SchemaError(
                "the sample's category columns are not the ones the LightGBM model was "
                "trained on",
                expected=f"{len(stored or [])} category columns (the model's "
                "pandas_categorical)",
                found=f"{len(names)} category columns: {', '.join(map(repr, names[:5]))}",
                hint="pass a DataFrame with the same columns and dtypes as the training "
                "data (a Parquet file keeps text categories but reads integer categories "
                "back as integers, a CSV file keeps neither: restore them with "
                "df[col].astype('category')), or, for a model trained on codes, the codes",
            )
        known = dict(zip(names, stored, strict=True))
        columns = []
        for c in prepared.columns:
            if c in known:
                columns.append(category_column(str(c), known[c], "LightGBM"))
                continue
            if _column_dtype(prepared[c]) == "string":
                raise SchemaError(
                    f"column {str(c)!r} holds text, which the LightGBM model cannot take",
                    expected="numeric, boolean or category columns",
                    found=f"{str(c)}: {prepared[c].dtype}",
                    hint="make it a pandas category column before training "
                    "(df[col].astype('category')), or encode it as numbers",
                )
            columns.append(FrameColumn(str(c)))
        ens, _ = self.read_once(model)
        if len(columns) != ens.n_features:
            raise SchemaError(
                "the sample does not have the number of features the model was trained on",
                expected=f"{ens.n_features} features", found=f"{len(columns)} columns",
                hint="pass rows of the same DataFrame the model was fitted on",
            )
        return columns

    def read(self, model: Any) -> tuple[Ensemble, Head]:
        if not hasattr(model, "booster_") and type(model).__name__ != "Booster":
            raise UnsupportedModelError(
                f"{self.describe(model)} is not a fitted LightGBM model",
                expected="a fitted Booster or LGBMClassifier/LGBMRegressor/LGBMRanker",
                found=self.describe(model), hint="fit the model before converting it",
            )
        try:
            booster = _booster(model)
        except Exception as exc:  # noqa: BLE001 - sklearn wrapper raises when unfitted
            raise UsageError(f"{self.describe(model)} is not fitted", expected="a fitted model",
                             found="no booster_", hint="call model.fit(X, y) first") from exc
        dump = booster.dump_model()
        objective = str(dump.get("objective", "regression")).split()
        per_iter = int(dump.get("num_tree_per_iteration", 1))
        trees = []
        categorical: set[int] = set()
        zero_missing: set[int] = set()
        for info in dump["tree_info"]:
            if info.get("is_linear"):
                raise _linear()
            target = int(info["tree_index"]) % per_iter
            trees.append(_read_tree(info["tree_structure"], target, categorical, zero_missing))
        n_iter = len(trees) // per_iter if per_iter else 0
        ens = Ensemble(
            n_features=int(dump["max_feature_idx"]) + 1, n_targets=per_iter, trees=trees,
            divisor=float(n_iter) if dump.get("average_output") and n_iter else 1.0,
            categorical=sorted(categorical),
            zero_band=ZERO_THRESHOLD, zero_as_missing=sorted(zero_missing),
        )
        return ens, self._head(model, objective, per_iter)

    def _head(self, model: Any, objective: list[str], per_iter: int) -> Head:
        name = objective[0]
        transform: Transform
        params = dict(p.split(":", 1) for p in objective[1:] if ":" in p)
        scale = float(params.get("sigmoid", 1.0))
        if name in ("binary", "cross_entropy", "xentropy"):
            transform, binary = "sigmoid", True
        elif name == "multiclass":
            transform, binary, scale = "softmax", False, 1.0
        elif name == "multiclassova":
            transform, binary = "sigmoid_each", False
        elif name in ("poisson", "gamma", "tweedie"):
            transform, binary, scale = "exp", False, 1.0
        elif name in ("regression", "regression_l1", "huber", "fair", "quantile", "mape",
                      "lambdarank", "rank_xendcg", "custom"):
            transform, binary, scale = "identity", False, 1.0
        else:
            raise UnsupportedModelError(
                f"baton does not know LightGBM's objective {name!r}",
                expected="binary, multiclass, multiclassova, cross_entropy, regression "
                "objectives, poisson, gamma, tweedie, lambdarank, rank_xendcg",
                found=" ".join(objective),
                hint="convert a model trained with one of the supported objectives",
            )
        if self._is_classifier(model):
            return Head("classification", transform, scale, np.asarray(model.classes_),
                        binary_margin=binary)
        return Head("regression", transform, scale, flatten=per_iter == 1)

    def native_predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        if self._is_classifier(model):
            raw = np.asarray(model.predict(data, raw_score=True), dtype=np.float64)
            return {
                "label": np.asarray(model.predict(data)),
                "probabilities": np.asarray(model.predict_proba(data)),
                "raw_scores": raw.reshape(len(raw), -1),
            }
        return {"prediction": np.asarray(model.predict(data))}


def _read_tree(root: dict[str, Any], target: int, categorical: set[int],
               zero_missing: set[int]) -> Tree:
    tree = Tree()
    if "leaf_value" in root:
        tree.root = Leaf.scalar(root["leaf_value"], target)
        return tree

    def child(node: dict[str, Any]) -> int | Leaf:
        if "leaf_value" in node:
            return Leaf.scalar(node["leaf_value"], target)
        return visit(node)

    def visit(node: dict[str, Any]) -> int:
        left, right = child(node["left_child"]), child(node["right_child"])
        feature = int(node["split_feature"])
        if node.get("decision_type") == "==":
            categorical.add(feature)
            members = tuple(float(v) for v in str(node["threshold"]).split("||"))
            return tree.add(Split(feature, "MEMBER", 0.0, left, right, False, members))
        threshold = float(node["threshold"])
        missing = node.get("missing_type", "None")
        if missing == "None":  # NaN is compared as 0.0
            return tree.add(Split(feature, "LEQ", threshold, left, right, 0.0 <= threshold))
        if missing == "Zero":  # zeros become NaN before the trees (Ensemble.zero_as_missing)
            zero_missing.add(feature)
        return tree.add(Split(feature, "LEQ", threshold, left, right,
                              bool(node.get("default_left", True))))

    tree.root = visit(root)
    return tree


def _linear() -> UnsupportedModelError:
    return UnsupportedModelError(
        "baton cannot convert LightGBM models with linear trees (linear_tree=True)",
        expected="a LightGBM model with constant leaves", found="linear leaves",
        hint="train with linear_tree=False",
    )


def _load_txt(path: Path, trust: bool) -> Any:
    lgb = _lgb()
    try:
        return lgb.Booster(model_file=str(path))
    except Exception as exc:  # noqa: BLE001 - LightGBM raises LightGBMError
        raise UsageError(
            f"cannot read {path} as a LightGBM model",
            expected="a model saved with booster.save_model('model.txt')",
            found=first_line(exc, 200, with_type=True),
            hint="save the model with model.booster_.save_model(path)",
        ) from exc
