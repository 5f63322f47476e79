"""CatBoost: ``CatBoostClassifier``, ``CatBoostRegressor`` and a loaded ``CatBoost`` model.

Read from CatBoost's own JSON dump (``model.save_model(path, format="json")``) into baton's
tree representation, and exact on float64 data: CatBoost's borders are float32 values and
every feature is rounded to float32 before it is compared, so the graph does the same cast
and then compares in float64 against the borders as they are.

Decision rules reproduced (found by experiment against ``calc_leaf_indexes`` and checked by
the tests on every border and its float32/float64 neighbours):

* a split is ``float32(x) > border``; baton writes it as ``x <= border`` with its children
  swapped;
* an oblivious (symmetric) tree of depth ``d`` has ``2**d`` leaves; split ``i`` of its
  ``splits`` list sets bit ``i`` of the leaf index (split 0 is the least significant bit);
  baton expands it into a plain binary tree (no shared nodes);
* non-symmetric trees (``grow_policy`` Depthwise or Lossguide): ``left`` is the side where
  the split is false, ``right`` where it is true;
* NaN: a feature's ``nan_value_treatment`` ``AsTrue`` (``nan_mode="Max"``) makes every split
  on it true, ``AsFalse`` (``nan_mode="Min"``) and ``AsIs`` (a feature that had no NaN in
  training) false;
* ``leaf_values`` holds ``leaves x dimensions`` (leaf-major); the raw score is
  ``scale * sum(leaves) + bias`` (``scale_and_bias``): baton multiplies the leaves by the
  scale and adds the bias as the ensemble's base.

Heads: RMSE-like losses give ``prediction``; Poisson and Tweedie ``exp`` of the raw score (as
``CatBoostRegressor.predict`` does); Logloss/CrossEntropy a sigmoid on the margin; MultiClass
a softmax; MultiClassOneVsAll a sigmoid per class. Classifiers output ``label``,
``probabilities`` and ``raw_scores`` (CatBoost's ``RawFormulaVal``).

Not supported, and refused with :class:`~baton.errors.UnsupportedModelError`:

* **categorical, text and embedding features** (``cat_features``, ``text_features``,
  ``embedding_features``): CatBoost turns them into CTR statistics and estimated features
  computed inside its own runtime, which baton cannot express as ONNX tree splits. Encode
  such columns as numbers yourself before training, or use LightGBM's native categorical
  support, which baton converts exactly;
* other losses (ranking, RMSEWithUncertainty, MultiQuantile, ...), and a binary classifier
  whose probability threshold is not 0.5.
"""

from __future__ import annotations

import json
import tempfile
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

EXTRA = "catboost"

#: loss -> (task, transform); the binary losses have one raw score per row (the margin)
_BINARY = ("Logloss", "CrossEntropy")
_HEADS: dict[str, tuple[str, Transform]] = {
    **{loss: ("classification", "sigmoid") for loss in _BINARY},
    "MultiClass": ("classification", "softmax"),
    "MultiClassOneVsAll": ("classification", "sigmoid_each"),
    **{loss: ("regression", "identity") for loss in (
        "RMSE", "MAE", "Quantile", "MAPE", "LogLinQuantile", "Huber", "Expectile", "Lq",
        "LogCosh", "MultiRMSE")},
    **{loss: ("regression", "exp") for loss in ("Poisson", "Tweedie")},
}
#: CatBoost's prediction type that gives a regressor's ``predict`` for each transform
_REGRESSION_PREDICTION = {"identity": "RawFormulaVal", "exp": "Exponent"}
_NO_CTR_HINT = ("encode categorical, text or embedding columns as numbers yourself before "
                "training (e.g. ordinal or target encoding in your pipeline), or use "
                "LightGBM's native categorical support, which baton converts exactly")


def _cb() -> Any:
    return require("catboost", EXTRA, "Converting a CatBoost model")


def _loss_name(model: Any) -> str:
    """The loss function's name without its parameters (``Quantile:alpha=0.3`` -> Quantile)."""
    try:
        params: dict[str, Any] = model.get_all_params()
    except Exception:  # noqa: BLE001 - CatBoost raises CatBoostError on odd models
        params = {}
    loss = params.get("loss_function") or model.get_params().get("loss_function") or ""
    return str(loss).split(":")[0]


class CatBoostConverter(TreeConverter):
    name = "catboost"
    framework = "catboost"
    extra = EXTRA
    #: (the loader is defined below, hence the lambda)
    model_files = (ModelFile(".cbm", lambda path, trust: _load_cbm(path, trust),
                             framework="CatBoost",
                             what="CatBoost model (model.save_model, binary format)",
                             save="model.save_model('model.cbm')"),)

    def accepts(self, model: Any) -> bool:
        return type(model).__module__.split(".")[0] == "catboost" and hasattr(
            model, "is_fitted")

    def versions(self) -> dict[str, str]:
        return {"catboost": _cb().__version__}

    def feature_names(self, model: Any) -> list[str] | None:
        names = [str(n) for n in (getattr(model, "feature_names_", None) or [])]
        # CatBoost names the columns "0", "1", ... when it was fitted on an array
        if not names or names == [str(i) for i in range(len(names))]:
            return None
        return names

    def infer_inputs(self, model: Any, sample: Any) -> list[Any]:
        # refuse categorical/text columns before the schema complains about their dtype
        if model.is_fitted():
            _refuse_ctr_features(model)
        return super().infer_inputs(model, sample)

    def read(self, model: Any) -> tuple[Ensemble, Head]:
        if not model.is_fitted():
            raise UsageError(f"{self.describe(model)} is not fitted", expected="a fitted model",
                             found="an unfitted model", hint="call model.fit(X, y) first")
        _refuse_ctr_features(model)
        dump = _dump(model)
        _refuse_ctr_features(model, dump)
        loss = _loss_name(model) or str(
            dump.get("model_info", {}).get("params", {}).get("loss_function", {}).get("type", ""))
        if loss not in _HEADS:
            raise UnsupportedModelError(
                f"baton does not know CatBoost's loss function {loss!r}",
                expected="one of " + ", ".join(_HEADS),
                found=loss or "no loss function in the model",
                hint="convert a model trained with one of the supported loss functions",
            )
        task, transform = _HEADS[loss]
        scale, bias = _scale_and_bias(dump)
        columns = {int(f["feature_index"]): int(f.get("flat_feature_index", f["feature_index"]))
                   for f in dump["features_info"].get("float_features", [])}
        nan_true = {int(f["feature_index"]) for f in dump["features_info"].get(
            "float_features", []) if f.get("nan_value_treatment") == "AsTrue"}
        if "oblivious_trees" in dump:
            trees = [_oblivious(t, columns, nan_true, scale, len(bias))
                     for t in dump["oblivious_trees"]]
        else:
            trees = [_nonsymmetric(t, columns, nan_true, scale, len(bias))
                     for t in dump.get("trees", [])]
        n_features = len(getattr(model, "feature_names_", None) or []) or (
            max(columns.values(), default=-1) + 1)
        ens = Ensemble(n_features=n_features, n_targets=len(bias), trees=trees, base=bias,
                       round_to_float32=True)
        if task == "regression":
            return ens, Head("regression", transform, flatten=len(bias) == 1)
        threshold = (getattr(model, "get_probability_threshold", lambda: 0.5)()
                     if loss in _BINARY else 0.5)
        if threshold not in (None, 0.5):
            raise UnsupportedModelError(
                "baton cannot convert a CatBoost classifier with a probability threshold "
                "other than 0.5",
                expected="probability threshold 0.5", found=str(threshold),
                hint="call model.set_probability_threshold(0.5) before converting, and apply "
                "your threshold to the 'probabilities' output",
            )
        return ens, Head("classification", transform, classes=_classes(model, dump, len(bias)),
                         binary_margin=loss in _BINARY)

    def native_predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        loss = _loss_name(model)
        task, transform = _HEADS.get(loss, ("regression", "identity"))
        if task == "classification":
            raw = np.asarray(model.predict(data, prediction_type="RawFormulaVal"),
                             dtype=np.float64)
            label = np.asarray(model.predict(data, prediction_type="Class"))
            return {
                "label": label.reshape(-1),  # [N, 1] for multi-class, [N] for binary
                "probabilities": np.asarray(model.predict(data, prediction_type="Probability"),
                                            dtype=np.float64),
                "raw_scores": raw.reshape(len(raw), -1),
            }
        if type(model).__name__ == "CatBoostRegressor":
            return {"prediction": np.asarray(model.predict(data))}
        return {"prediction": np.asarray(model.predict(
            data, prediction_type=_REGRESSION_PREDICTION[transform]))}


def _dump(model: Any) -> dict[str, Any]:
    """CatBoost's JSON dump of the model (borders and leaves as CatBoost stores them)."""
    with tempfile.TemporaryDirectory(prefix="baton-catboost-") as tmp:
        path = Path(tmp) / "model.json"
        try:
            model.save_model(str(path), format="json")
        except Exception as exc:  # noqa: BLE001 - CatBoostError
            raise UnsupportedModelError(
                "CatBoost could not write this model as JSON, which baton reads it from",
                expected="a model CatBoost can save with format='json'",
                found=first_line(exc, 200, with_type=True),
                hint=_NO_CTR_HINT,
            ) from exc
        with open(path, encoding="utf-8") as fh:
            dump: dict[str, Any] = json.load(fh)
    return dump


def _refuse_ctr_features(model: Any, dump: dict[str, Any] | None = None) -> None:
    found: list[str] = []
    for kind, getter in (("categorical", "get_cat_feature_indices"),
                         ("text", "get_text_feature_indices"),
                         ("embedding", "get_embedding_feature_indices")):
        try:
            indices = list(getattr(model, getter)()) if hasattr(model, getter) else []
        except Exception:  # noqa: BLE001 - CatBoostError on models without that feature kind
            indices = []
        if indices:
            found.append(f"{kind} features at columns {indices}")
    if dump is not None:
        info = dump.get("features_info", {})
        for key in ("categorical_features", "text_features", "embedding_features"):
            if info.get(key) and not any(key.split("_")[0] in f for f in found):
                found.append(f"{key.replace('_', ' ')}: {len(info[key])}")
        if dump.get("ctr_data"):
            found.append("CTR tables")
    if found:
        raise UnsupportedModelError(
            "baton cannot convert CatBoost models with categorical, text or embedding "
            "features: CatBoost turns them into CTR statistics and estimated features "
            "computed in its own runtime, which baton cannot express as ONNX tree splits",
            expected="a CatBoost model trained on numeric features only",
            found="; ".join(found), hint=_NO_CTR_HINT,
        )


def _scale_and_bias(dump: dict[str, Any]) -> tuple[float, list[float]]:
    scale, bias = dump.get("scale_and_bias", [1.0, [0.0]])
    if not isinstance(bias, list):
        bias = [bias]
    return float(scale), [float(b) for b in bias]


def _check_split(split: dict[str, Any]) -> None:
    kind = split.get("split_type", "FloatFeature")
    if kind != "FloatFeature":
        raise UnsupportedModelError(
            f"baton cannot convert CatBoost splits of type {kind}: they test CTR statistics "
            "of categorical, text or embedding features that baton cannot express",
            expected="splits on numeric features only (FloatFeature)", found=kind,
            hint=_NO_CTR_HINT,
        )


def _leaf(values: list[float], scale: float) -> Leaf:
    if len(values) == 1:
        return Leaf.scalar(values[0] * scale)
    return Leaf(tuple((k, float(v) * scale) for k, v in enumerate(values)))


def _oblivious(info: dict[str, Any], columns: dict[int, int], nan_true: set[int],
               scale: float, dims: int) -> Tree:
    """An oblivious tree as a binary tree: split ``i`` sets bit ``i`` of the leaf index."""
    splits = info.get("splits", [])
    for s in splits:
        _check_split(s)
    values = [float(v) for v in info["leaf_values"]]
    tree = Tree()
    if not splits:
        tree.root = _leaf(values[:dims], scale)
        return tree

    def build(level: int, index: int) -> int | Leaf:
        if level == len(splits):
            return _leaf(values[index * dims:(index + 1) * dims], scale)
        s = splits[level]
        feature = int(s["float_feature_index"])
        # CatBoost: bit = float32(x) > border; baton: x <= border goes to `true` (bit 0)
        node = Split(columns.get(feature, feature), "LEQ", float(s["border"]),
                     true=0, false=0, missing_true=feature not in nan_true)
        node.true = build(level + 1, index)
        node.false = build(level + 1, index | (1 << level))
        return tree.add(node)

    root = build(0, 0)
    tree.root = root
    return tree


def _nonsymmetric(info: dict[str, Any], columns: dict[int, int], nan_true: set[int],
                  scale: float, dims: int) -> Tree:
    """A Depthwise/Lossguide tree: ``left`` where ``float32(x) > border`` is false."""
    tree = Tree()

    def value(node: dict[str, Any]) -> Leaf:
        v = node["value"]
        return _leaf([float(x) for x in (v if isinstance(v, list) else [v])], scale)

    def build(node: dict[str, Any]) -> int | Leaf:
        if "split" not in node:
            return value(node)
        s = node["split"]
        _check_split(s)
        feature = int(s["float_feature_index"])
        split = Split(columns.get(feature, feature), "LEQ", float(s["border"]), true=0,
                      false=0, missing_true=feature not in nan_true)
        split.true = build(node["left"])
        split.false = build(node["right"])
        return tree.add(split)

    tree.root = build(info)
    return tree


def _classes(model: Any, dump: dict[str, Any], dims: int) -> np.ndarray:
    classes = getattr(model, "classes_", None)
    if classes is not None and len(classes):
        return np.asarray(classes)
    names = dump.get("model_info", {}).get("class_params", {}).get("class_names")
    if names:
        return np.asarray(names)
    return np.arange(max(dims, 2))


def _load_cbm(path: Path, trust: bool) -> Any:
    """A ``.cbm`` file, loaded into CatBoostClassifier or CatBoostRegressor as its loss says
    (the file itself does not say which class saved it)."""
    cb = _cb()
    try:
        base = cb.CatBoost().load_model(str(path))
    except Exception as exc:  # noqa: BLE001 - CatBoostError
        raise UsageError(
            f"cannot read {path} as a CatBoost model",
            expected="a model saved with model.save_model('model.cbm')",
            found=first_line(exc, 200, with_type=True),
            hint="save the model with model.save_model(path) (CatBoost's binary format)",
        ) from exc
    task = _HEADS.get(_loss_name(base), ("", "identity"))[0]
    cls = {"classification": cb.CatBoostClassifier, "regression": cb.CatBoostRegressor}.get(task)
    if cls is None:  # an unsupported loss: read() names it
        return base
    return cls().load_model(str(path))
