"""scikit-learn Pipelines that end in a tree model: preprocessing through skl2onnx in float64,
the trees through baton's own emitter, joined into one graph.

skl2onnx alone would convert such a Pipeline in float32 (its tree operators have no float64
kernel in onnxruntime), so a value the preprocessing leaves within float32 rounding of a
split threshold can take the other branch. Here the preprocessing runs in float64, as in
scikit-learn, and the final estimator (a scikit-learn tree ensemble, LightGBM, XGBoost or
CatBoost model) is read exactly by its tree reader. When the preprocessing has no float64
ONNX form, the whole Pipeline goes through skl2onnx as before, and the manifest says why.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from baton.converters._registry import Conversion, converters
from baton.converters._trees import TreeConverter
from baton.converters.sklearn import SklearnConverter, _AttemptFailed, _class_path
from baton.errors import SchemaError, first_line

if TYPE_CHECKING:
    import onnx

_SKLEARN = SklearnConverter()
#: the lowest default-domain opset the tree graph is written in (LessOrEqual needs 12)
MIN_TREE_OPSET = 12


class PipelineTreesConverter:
    name = "sklearn-pipeline-trees"
    framework = "scikit-learn"
    extra = "sklearn"
    #: scikit-learn's own converter takes every Pipeline: these are asked first
    before = "sklearn"

    def _tree_converter(self, model: Any) -> TreeConverter | None:
        steps = getattr(model, "steps", None)
        if type(model).__name__ != "Pipeline" or not steps or len(steps) < 2:
            return None
        final = steps[-1][1]
        for conv in converters():
            if isinstance(conv, TreeConverter) and conv.accepts(final):
                return conv
        return None

    def accepts(self, model: Any) -> bool:
        return (type(model).__module__.split(".")[0] == "sklearn"
                and self._tree_converter(model) is not None)

    def describe(self, model: Any) -> str:
        return _class_path(model)

    def prepare(self, model: Any, data: Any) -> Any:
        return _SKLEARN.prepare(model, data)

    def infer_inputs(self, model: Any, sample: Any) -> list[Any]:
        return _SKLEARN.infer_inputs(model, sample)

    def _transform(self, model: Any, X: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return model[:-1].transform(X)
        except (ValueError, TypeError, KeyError) as exc:
            raise SchemaError(
                f"the original model's preprocessing ({_class_path(model)}) rejected the data",
                expected="data shaped like the model's training data",
                found=first_line(exc, 300, with_type=True),
                hint="pass the same columns and types the model was trained on",
            ) from exc

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        tree = self._tree_converter(model)
        assert tree is not None
        Xt = self._transform(model, self.prepare(model, data))
        return tree.predict(model.steps[-1][1], Xt)

    def split_points(self, model: Any) -> dict[int, np.ndarray]:
        """The final trees' split thresholds mapped back through the preprocessing, by the
        position of the input column they test, where a transformed feature is an affine
        function of one numeric column (scalers, imputers, passthrough, also inside a
        ColumnTransformer); thresholds on other features (one-hot, derived) are left out.
        For the parity search (:mod:`baton.parity.search`)."""
        tree = self._tree_converter(model)
        assert tree is not None
        names = list(getattr(model, "feature_names_in_", []))
        width = len(names) or int(getattr(model, "n_features_in_", 0))
        origins = _origins(model[:-1], [(i, 1.0, 0.0) for i in range(width)], names)
        out: dict[int, list[float]] = {}
        for j, values in tree.split_points(model.steps[-1][1]).items():
            origin = origins[j] if origins is not None and j < len(origins) else None
            if origin is None or origin[1] == 0:
                continue
            col, a, b = origin
            out.setdefault(col, []).extend((np.asarray(values, np.float64) - b) / a)
        return {c: np.unique(np.asarray(v)) for c, v in out.items()}

    def convert(self, model: Any, sample: Any, inputs: list[Any], *,
                opset: int | None) -> Conversion:
        tree = self._tree_converter(model)
        assert tree is not None
        final = model.steps[-1][1]
        X = self.prepare(model, sample)
        specs = [dataclasses.replace(s, dtype="float64") if s.dtype.startswith("float") else s
                 for s in inputs]
        try:
            pre, notes = _SKLEARN._convert_once(model[:-1], specs, ["transformed"], opset,
                                                "float64")
            _SKLEARN._validate_in_ort(model[:-1], pre, specs, X, ["transformed"])
        except _AttemptFailed as exc:
            conv = _SKLEARN.convert(model, sample, inputs, opset=opset)
            conv.converter["notes"].append(
                f"the preprocessing has no float64 ONNX form ({exc}); the whole Pipeline went "
                "through skl2onnx, trees included")
            return conv
        Xt = self._transform(model, X)
        dense = np.asarray(Xt.toarray() if hasattr(Xt, "toarray") else Xt, dtype=np.float64)
        tree_inputs = tree.infer_inputs(final, dense)
        pre_opset = {o.domain: o.version for o in pre.opset_import}.get("", MIN_TREE_OPSET)
        tree_conv = tree.convert(final, dense, tree_inputs,
                                 opset=max(int(pre_opset), MIN_TREE_OPSET))
        merged = _join(pre, tree_conv.model, tree_inputs[0].name)
        notes += ["preprocessing through skl2onnx in float64, then the final "
                  f"{type(final).__name__} through baton's tree emitter"]
        notes += list(tree_conv.converter.get("notes", []))
        return Conversion(
            model=merged, inputs=specs, outputs=tree_conv.outputs,
            source={"framework": self.framework, "class": _class_path(model),
                    "final_estimator": _class_path(final),
                    "versions": {**_sklearn_versions(), **tree_conv.source.get("versions", {})}},
            converter={"name": "skl2onnx+baton.trees",
                       "version": tree_conv.converter.get("version", "1"),
                       "strategy": "skl2onnx (float64) for the preprocessing, baton tree "
                       f"emitter for {type(final).__name__}",
                       "attempts": ["float64: ok"], "notes": notes},
            precision="float64",
            tolerances=tree_conv.tolerances,
        )


#: a transformed feature as ``a * x + b`` of input column ``x`` (its position), or None
Origin = tuple[int, float, float] | None


def _origins(step: Any, inputs: list[Origin], names: list[str]) -> list[Origin] | None:
    """What each output feature of ``step`` is, in terms of the Pipeline's input columns,
    given what each of its input features is; None when ``step`` is not understood."""
    kind = type(step).__name__
    if step is None or step == "passthrough":
        return list(inputs)
    if kind == "Pipeline":
        for _, sub in step.steps:
            inputs = _origins(sub, inputs, names)  # type: ignore[assignment]
            if inputs is None:
                return None
        return inputs
    if kind == "ColumnTransformer":
        return _column_transformer(step, inputs, names)
    affine = _affine(step, len(inputs))
    if affine is not None:
        scale, shift = affine
        return [None if o is None else (o[0], o[1] * float(a), o[2] * float(a) + float(b))
                for o, a, b in zip(inputs, scale, shift)]
    if kind == "SimpleImputer" and not getattr(step, "add_indicator", False):
        stats = np.asarray(step.statistics_, dtype=object)
        kept = [o for o, v in zip(inputs, stats)
                if getattr(step, "keep_empty_features", False) or not _is_nan(v)]
        return kept  # scikit-learn drops features that were empty in training
    return None


def _affine(step: Any, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, shift) per feature of a fitted scikit-learn scaler: ``t = scale * x + shift``."""
    kind = type(step).__name__
    ones, zeros = np.ones(n), np.zeros(n)
    if kind == "StandardScaler":
        sd = np.asarray(step.scale_, np.float64) if step.scale_ is not None else ones
        mean = np.asarray(step.mean_, np.float64) if step.with_mean else zeros
        return 1.0 / sd, -mean / sd
    if kind == "MinMaxScaler" and not getattr(step, "clip", False):
        return np.asarray(step.scale_, np.float64), np.asarray(step.min_, np.float64)
    if kind == "MaxAbsScaler":
        return 1.0 / np.asarray(step.scale_, np.float64), zeros
    if kind == "RobustScaler":
        sd = np.asarray(step.scale_, np.float64) if step.scale_ is not None else ones
        center = np.asarray(step.center_, np.float64) if step.center_ is not None else zeros
        return 1.0 / sd, -center / sd
    return None


def _column_transformer(ct: Any, inputs: list[Origin], names: list[str]) -> list[Origin] | None:
    out: list[Origin] = []
    for _, trans, cols in ct.transformers_:
        if trans == "drop":
            continue
        idx = _column_indices(cols, names, len(inputs))
        if idx is None:
            return None
        sub = [inputs[i] for i in idx]
        mapped = _origins(trans, sub, names)
        if mapped is None:  # not affine: keep the positions, without an origin
            try:
                width = len(trans.get_feature_names_out())
            except Exception:  # noqa: BLE001 - a transformer without feature names
                return None
            mapped = [None] * width
        out += mapped
    return out


def _column_indices(cols: Any, names: list[str], n: int) -> list[int] | None:
    if isinstance(cols, slice):
        return list(range(n))[cols]
    items = list(np.atleast_1d(np.asarray(cols, dtype=object)))
    if all(isinstance(c, (bool, np.bool_)) for c in items):
        return [i for i, c in enumerate(items) if c]
    if all(isinstance(c, (int, np.integer)) for c in items):
        return [int(c) for c in items]
    if all(isinstance(c, str) for c in items) and all(c in names for c in items):
        return [names.index(c) for c in items]
    return None


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def _sklearn_versions() -> dict[str, str]:
    import skl2onnx
    import sklearn

    return {"scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__}


def _join(pre: onnx.ModelProto, trees: onnx.ModelProto, tree_input: str) -> onnx.ModelProto:
    """One graph: the preprocessing's ``transformed`` (cast to float64) feeds the trees."""

    from onnx import TensorProto, compose, helper

    pre = compose.add_prefix(pre, "pre_", rename_inputs=False)
    out = pre.graph.output[0]
    if out.type.tensor_type.elem_type != TensorProto.DOUBLE:
        pre.graph.node.append(helper.make_node("Cast", [out.name], ["pre_transformed_f64"],
                                               to=TensorProto.DOUBLE))
        out.name = "pre_transformed_f64"
        out.type.tensor_type.elem_type = TensorProto.DOUBLE
    versions: dict[str, int] = {}
    for m in (pre, trees):
        for o in m.opset_import:
            versions[o.domain] = max(versions.get(o.domain, 0), int(o.version))
    for m in (pre, trees):
        del m.opset_import[:]
        m.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
        m.ir_version = max(pre.ir_version, trees.ir_version)
    merged = compose.merge_models(pre, trees, io_map=[(out.name, tree_input)])
    merged.producer_name = "baton"
    return merged
