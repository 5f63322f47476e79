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

Categorical features (``cat_features``) convert when CatBoost one-hot encodes every one of
them (``one_hot_max_size`` at least each column's number of categories): a one-hot split
is true where the category's hash (CatBoost's CityHash of its text, kept as a 32-bit value)
is the split's value. The graph takes such a column as text (``string [N, 1]``; an integer
column as ``float64 [N, 1]``) and the other columns as ``float64 [N, 1]``; it maps each
category of the sample whose hash the model's splits test (``features_info.
categorical_features[].values``; the sample's texts and hashes come from CatBoost's JSON
export with the sample as its pool) to that value's position, any other value to NaN,
which no one-hot split holds, as CatBoost finds no split value equal to an unseen
category's hash. (A text outside the sample whose 32-bit hash equals a trained category's
is the one case where the two would differ.) Every category the splits test must be in
the sample. CatBoost refuses missing values in categorical columns; so does the check.

Not supported, and refused with :class:`~baton.errors.UnsupportedModelError`:

* **CTR features** (the default encoding of categorical columns with more categories than
  ``one_hot_max_size``), **text and embedding features**: CatBoost turns them into
  statistics and estimated features computed inside its own runtime, which baton cannot
  express as ONNX tree splits. Train with ``one_hot_max_size`` at least the number of
  categories, encode such columns as numbers yourself, or use LightGBM's native
  categorical support, which baton converts exactly;
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
from baton.converters._trees.converter import FrameInputs
from baton.converters._trees.ir import FrameColumn
from baton.errors import SchemaError, UnsupportedModelError, UsageError, first_line, require

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


class CatBoostConverter(FrameInputs, TreeConverter):
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
        # refuse CTR/text features before the schema complains about their dtype
        if model.is_fitted():
            _refuse_ctr_features(model)
        return super().infer_inputs(model, sample)

    def _frame_note(self, categories: str) -> str:
        return (f"one-hot categorical columns {categories}: each category of the sample "
                "matched to the split values its CatBoost hash equals; any other value "
                "matches none")

    def _frame_columns(self, model: Any, sample: Any) -> list[FrameColumn] | None:
        """One :class:`FrameColumn` per feature for a model with categorical features,
        the categories' texts matched to the hashes the one-hot splits test (found with
        the sample as the JSON export's pool); None for a model without."""
        if not model.is_fitted() or not _cat_indices(model):
            return None
        from baton.schema import _column_dtype, is_dataframe

        self.read_once(model)  # refuse CTR features before looking at the sample
        if not is_dataframe(sample):
            raise SchemaError(
                "a CatBoost model with categorical features needs a DataFrame sample",
                expected="a pandas DataFrame with the training columns",
                found=type(sample).__name__,
                hint="pass the sample as a DataFrame (pd.DataFrame(X, columns=names))",
            )
        prepared = self.prepare(model, sample)
        cat_indices = _cat_indices(model)
        dump = _dump(model, prepared, cat_indices)
        texts = {int(h["hash"]) & 0xFFFFFFFF: str(h["value"])
                 for h in dump["features_info"].get("cat_features_hash", [])}
        by_column = {int(f.get("flat_feature_index", f["feature_index"])): f
                     for f in dump["features_info"].get("categorical_features", [])}
        columns = []
        for i, c in enumerate(prepared.columns):
            name = str(c)
            if i not in cat_indices:
                if _column_dtype(prepared[c]) == "string":
                    raise SchemaError(
                        f"column {name!r} holds text, but the CatBoost model takes it as a "
                        "number", expected="the columns and types the model was trained on",
                        found=f"{name}: {prepared[c].dtype}",
                        hint="pass the same columns as in training",
                    )
                columns.append(FrameColumn(name))
                continue
            hashes = [int(v) & 0xFFFFFFFF for v in by_column.get(i, {}).get("values", [])]
            lost = [h for h in hashes if h not in texts]
            if lost:
                raise UnsupportedModelError(
                    f"the sample lacks categories of column {name!r} that the CatBoost "
                    "model's one-hot splits test",
                    expected="a sample holding every category the model was trained on",
                    found=f"{len(lost)} of the {len(hashes)} categories the splits test are "
                    "not in the sample",
                    hint="convert with a sample that holds every category of the column "
                    "(e.g. the training data)",
                )
            as_text = _column_dtype(prepared[c]) == "string"
            keys: list[Any] = []
            codes: list[float] = []
            for code, h in enumerate(hashes):
                if as_text:
                    keys.append(texts[h])
                else:
                    keys.append(float(int(texts[h])))
                codes.append(float(code))
            columns.append(FrameColumn(name, tuple(keys), tuple(codes),
                                       categories_as_text=as_text))
        return columns

    def read(self, model: Any) -> tuple[Ensemble, Head]:
        if not model.is_fitted():
            raise UsageError(f"{self.describe(model)} is not fitted", expected="a fitted model",
                             found="an unfitted model", hint="call model.fit(X, y) first")
        _refuse_ctr_features(model)
        dump = _dump(model)
        _refuse_ctr_features(model, dump)
        onehot = _one_hot_features(dump)
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
            trees = [_oblivious(t, columns, nan_true, scale, len(bias), onehot)
                     for t in dump["oblivious_trees"]]
        else:
            trees = [_nonsymmetric(t, columns, nan_true, scale, len(bias), onehot)
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


def _dump(model: Any, pool_data: Any = None,
          cat_features: list[int] | None = None) -> dict[str, Any]:
    """CatBoost's JSON dump of the model (borders and leaves as CatBoost stores them); with
    ``pool_data``, CatBoost also lists the hash of every category text in it
    (``features_info.cat_features_hash``)."""
    with tempfile.TemporaryDirectory(prefix="baton-catboost-") as tmp:
        path = Path(tmp) / "model.json"
        try:
            if pool_data is None:
                model.save_model(str(path), format="json")
            else:
                pool = _cb().Pool(pool_data, cat_features=cat_features)
                model.save_model(str(path), format="json", pool=pool)
        except Exception as exc:  # noqa: BLE001 - CatBoostError
            if pool_data is not None:
                raise SchemaError(
                    "CatBoost cannot read the sample's categorical columns",
                    expected="text or integer categories, without missing values",
                    found=first_line(exc, 200, with_type=True),
                    hint="pass a sample CatBoost itself can predict on",
                ) from exc
            raise UnsupportedModelError(
                "CatBoost could not write this model as JSON, which baton reads it from",
                expected="a model CatBoost can save with format='json'",
                found=first_line(exc, 200, with_type=True),
                hint=_NO_CTR_HINT,
            ) from exc
        with open(path, encoding="utf-8") as fh:
            dump: dict[str, Any] = json.load(fh)
    return dump


def _cat_indices(model: Any) -> list[int]:
    try:
        return [int(i) for i in model.get_cat_feature_indices()]
    except Exception:  # noqa: BLE001 - CatBoostError on models without categorical features
        return []


def _refuse_ctr_features(model: Any, dump: dict[str, Any] | None = None) -> None:
    """Refuse text and embedding features, and categorical features that became CTRs
    (categorical features that are all one-hot encoded convert)."""
    found: list[str] = []
    for kind, getter in (("text", "get_text_feature_indices"),
                         ("embedding", "get_embedding_feature_indices")):
        try:
            indices = list(getattr(model, getter)()) if hasattr(model, getter) else []
        except Exception:  # noqa: BLE001 - CatBoostError on models without that feature kind
            indices = []
        if indices:
            found.append(f"{kind} features at columns {indices}")
    if dump is not None:
        info = dump.get("features_info", {})
        for key in ("text_features", "embedding_features"):
            if info.get(key) and not any(key.split("_")[0] in f for f in found):
                found.append(f"{key.replace('_', ' ')}: {len(info[key])}")
    if found:
        raise UnsupportedModelError(
            "baton cannot convert CatBoost models with text or embedding features: CatBoost "
            "turns them into estimated features computed in its own runtime, which baton "
            "cannot express as ONNX tree splits",
            expected="a CatBoost model trained on numeric and one-hot categorical features",
            found="; ".join(found), hint=_NO_CTR_HINT,
        )
    if dump is None:
        return
    info = dump.get("features_info", {})
    names = {int(f["feature_index"]): str(f.get("feature_id", f["feature_index"]))
             for f in info.get("categorical_features", [])}
    ctr = sorted({int(e["cat_feature_index"]) for c in info.get("ctrs", [])
                  for e in c.get("elements", []) if "cat_feature_index" in e})
    if ctr or dump.get("ctr_data"):
        columns = ", ".join(repr(names.get(i, str(i))) for i in ctr) or "categorical columns"
        try:
            limit = model.get_all_params().get("one_hot_max_size")
        except Exception:  # noqa: BLE001 - CatBoostError
            limit = None
        raise UnsupportedModelError(
            "baton cannot convert CatBoost CTR features: CatBoost encodes the categorical "
            f"column{'s' if len(ctr) > 1 else ''} {columns} as CTR statistics (target "
            "statistics of the category, and of combinations of categories) computed in its "
            "own runtime, which baton cannot express as ONNX tree splits",
            expected="categorical features that CatBoost one-hot encodes",
            found=f"CTR features on {columns}"
            + (f" (one_hot_max_size={limit})" if limit is not None else ""),
            hint=f"train with one_hot_max_size at least the number of categories of {columns} "
            "(e.g. one_hot_max_size=255), so that CatBoost one-hot encodes them, or encode "
            "the columns as numbers yourself before training",
        )


def _one_hot_features(dump: dict[str, Any]) -> dict[int, tuple[int, dict[int, float]]]:
    """Categorical feature index -> (its column, split value hash -> its code): the code
    of a hash is its position in the feature's ``values``, as the graph's input encoding
    gives it (:meth:`CatBoostConverter._frame_columns`)."""
    out = {}
    for f in dump.get("features_info", {}).get("categorical_features", []):
        hashes = [int(v) & 0xFFFFFFFF for v in f.get("values", [])]
        out[int(f["feature_index"])] = (int(f.get("flat_feature_index", f["feature_index"])),
                                        {h: float(i) for i, h in enumerate(hashes)})
    return out


def _scale_and_bias(dump: dict[str, Any]) -> tuple[float, list[float]]:
    scale, bias = dump.get("scale_and_bias", [1.0, [0.0]])
    if not isinstance(bias, list):
        bias = [bias]
    return float(scale), [float(b) for b in bias]


def _check_split(split: dict[str, Any]) -> None:
    kind = split.get("split_type", "FloatFeature")
    if kind not in ("FloatFeature", "OneHotFeature"):
        raise UnsupportedModelError(
            f"baton cannot convert CatBoost splits of type {kind}: they test CTR statistics "
            "of categorical, text or embedding features that baton cannot express",
            expected="splits on numeric features (FloatFeature) and one-hot categorical "
            "features (OneHotFeature)", found=kind,
            hint=_NO_CTR_HINT,
        )


OneHot = dict[int, tuple[int, dict[int, float]]]


def _split(s: dict[str, Any], columns: dict[int, int], nan_true: set[int],
           onehot: OneHot) -> Split:
    """A CatBoost split whose ``true`` side is where CatBoost's test is false (bit 0):
    ``float32(x) > border`` for a float feature, ``hash(x) == value`` for a one-hot one
    (baton's MEMBER split: the code of that value goes ``true``, so the children are
    swapped back by the caller, see :func:`_children`)."""
    _check_split(s)
    if s.get("split_type") == "OneHotFeature":
        column, codes = onehot[int(s["cat_feature_index"])]
        code = codes[int(s["value"]) & 0xFFFFFFFF]
        # members: the one code whose hash the split tests; NaN (any other value) is false
        return Split(column, "MEMBER", 0.0, true=0, false=0, missing_true=False,
                     members=(code,))
    feature = int(s["float_feature_index"])
    # CatBoost: bit = float32(x) > border; baton: x <= border goes to `true` (bit 0)
    return Split(columns.get(feature, feature), "LEQ", float(s["border"]), true=0, false=0,
                 missing_true=feature not in nan_true)


def _children(node: Split, when_false: int | Leaf, when_true: int | Leaf) -> None:
    """Attach the children of CatBoost's split: ``when_true`` where its test holds."""
    if node.mode == "MEMBER":  # the members are where the test holds
        node.true, node.false = when_true, when_false
    else:  # x <= border is where it does not
        node.true, node.false = when_false, when_true


def _leaf(values: list[float], scale: float) -> Leaf:
    if len(values) == 1:
        return Leaf.scalar(values[0] * scale)
    return Leaf(tuple((k, float(v) * scale) for k, v in enumerate(values)))


def _oblivious(info: dict[str, Any], columns: dict[int, int], nan_true: set[int],
               scale: float, dims: int, onehot: OneHot | None = None) -> Tree:
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
        node = _split(splits[level], columns, nan_true, onehot or {})
        _children(node, build(level + 1, index), build(level + 1, index | (1 << level)))
        return tree.add(node)

    root = build(0, 0)
    tree.root = root
    return tree


def _nonsymmetric(info: dict[str, Any], columns: dict[int, int], nan_true: set[int],
                  scale: float, dims: int, onehot: OneHot | None = None) -> Tree:
    """A Depthwise/Lossguide tree: ``left`` where CatBoost's test is false."""
    tree = Tree()

    def value(node: dict[str, Any]) -> Leaf:
        v = node["value"]
        return _leaf([float(x) for x in (v if isinstance(v, list) else [v])], scale)

    def build(node: dict[str, Any]) -> int | Leaf:
        if "split" not in node:
            return value(node)
        split = _split(node["split"], columns, nan_true, onehot or {})
        _children(split, build(node["left"]), build(node["right"]))
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
