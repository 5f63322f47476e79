"""The pieces every own converter uses: the registration record and a small graph writer
over skl2onnx's scope/operator/container (so each converter reads as the formula it
computes)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: what a converter is handed: skl2onnx's (scope, operator, container)
ConvertFn = Callable[[Any, Any, Any], None]
ShapeFn = Callable[[Any], None]


@dataclasses.dataclass(frozen=True)
class Own:
    """One estimator class and baton's converter for it.

    ``cls`` is the class's import path (``sklearn.dummy.DummyRegressor``); ``shape`` sets
    the operator's output types (see ``transformer_shape``, ``classifier_shape``...);
    ``convert`` writes the nodes; ``parser`` (optional) declares the outputs where
    skl2onnx's default parser would declare the wrong ones; ``options`` are the skl2onnx
    options the converter accepts (a classifier's ``zipmap``...).
    """

    cls: str
    shape: ShapeFn
    convert: ConvertFn
    parser: Callable[..., Any] | None = None
    options: dict[str, list[Any]] | None = None
    #: one line for docs/coverage.md: what the graph computes
    note: str = ""

    def resolve(self) -> type:
        module, _, name = self.cls.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def register(self) -> None:
        from skl2onnx import update_registered_converter

        cls = self.resolve()
        update_registered_converter(
            cls, f"Baton{cls.__name__}", self.shape, self.convert, overwrite=True,
            parser=self.parser, options=self.options)


class Emit:
    """Writes nodes for one operator. Values are names (str); ``const`` adds an initializer
    in the operator's float precision unless a dtype is given."""

    def __init__(self, scope: Any, operator: Any, container: Any) -> None:
        self.scope, self.operator, self.container = scope, operator, container
        self.model = operator.raw_operator
        first = operator.inputs[0].type
        # an integer input computes in float64 (it holds more than float32's 24 bits)
        self.dtype = np.float32 if type(first).__name__ == "FloatTensorType" else np.float64
        self._x: str | None = None

    @property
    def x(self) -> str:
        """The operator's (first) input, cast to the float precision where it is an integer
        tensor (computed once per operator)."""
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        if self._x is None:
            first = self.operator.inputs[0]
            if isinstance(first.type, (DoubleTensorType, FloatTensorType)):
                self._x = str(first.full_name)
            else:
                self._x = self.to_float(first.full_name)
        return self._x

    def output(self, i: int = 0) -> str:
        return self.operator.outputs[i].full_name

    def const(self, value: Any, dtype: Any = None) -> str:
        from onnx import numpy_helper

        arr = np.asarray(value, dtype=dtype if dtype is not None else self.dtype)
        name = self.scope.get_unique_variable_name("baton_c")
        if arr.dtype.kind in "UOS":  # text: a value list (a string tensor has no raw data)
            from onnx import TensorProto

            self.container.add_initializer(name, TensorProto.STRING, list(arr.shape),
                                           [str(v).encode("utf-8") for v in arr.flat])
        else:
            tensor = numpy_helper.from_array(arr, name)
            self.container.add_initializer(name, tensor.data_type, list(arr.shape), tensor)
        return name

    def op(self, op_type: str, *inputs: str, out: str | Sequence[str] | None = None,
           domain: str = "", version: int | None = None, **attrs: Any) -> str:
        """Add one node; its (first) output's name. ``out`` names the outputs (an operator
        output, typically); otherwise fresh names. ``domain="ai.onnx.ml"`` for ML ops."""
        if out is None:
            outs = [self.scope.get_unique_variable_name(f"baton_{op_type.lower()}")]
        elif isinstance(out, str):
            outs = [out]
        else:
            outs = list(out)
        kwargs: dict[str, Any] = {"op_domain": domain} if domain else {}
        if version is not None:
            kwargs["op_version"] = version
        elif domain == "ai.onnx.ml":
            kwargs["op_version"] = 3
        else:
            kwargs["op_version"] = self.container.target_opset
        self.container.add_node(op_type, list(inputs), outs,
                                name=self.scope.get_unique_operator_name(f"Baton{op_type}"),
                                **kwargs, **attrs)
        return outs[0]

    def per_row(self, row: Any, out: str | None = None) -> str:
        """A constant row [1, K] repeated for every input row: [N, K] (NaN in the input
        does not reach it)."""
        row = np.asarray(row)
        n = self.op("Shape", self.operator.inputs[0].full_name, end=1)
        shape = self.op("Concat", n, self.const([row.shape[-1]], np.int64), axis=0)
        return self.op("Expand", self.const(row.reshape(1, -1), dtype=row.dtype), shape,
                       out=out)

    def to_float(self, name: str) -> str:
        from onnx import helper

        return self.op("Cast", name, to=helper.np_dtype_to_tensor_dtype(np.dtype(self.dtype)))

    def matmul(self, a: str, b: Any) -> str:
        return self.op("MatMul", a, b if isinstance(b, str) else self.const(b))

    def sq_distances(self, x: str, centres: np.ndarray) -> str:
        """Squared euclidean distances [N, K] from the rows of ``x`` to ``centres`` [K, F],
        as scikit-learn's ``euclidean_distances`` forms them (``x·x - 2 x·c + c·c``,
        clipped at 0)."""
        c: np.ndarray = np.asarray(centres, dtype=np.float64).astype(self.dtype)
        xx = self.op("ReduceSum", self.op("Mul", x, x), self.const([1], np.int64), keepdims=1)
        xc = self.matmul(x, (-2 * c).T)
        cc = self.const((c * c).sum(axis=1)[None, :])
        d = self.op("Add", self.op("Add", xx, xc), cc)
        return self.op("Max", d, self.const(0.0))


def _set(variable: Any, tensor_type: Any) -> None:
    variable.type = tensor_type


def transformer_shape(n_out: Callable[[Any], int]) -> ShapeFn:
    """One output [N, n_out(model)] in the input's float precision."""

    def shape(operator: Any) -> None:
        from skl2onnx.common.data_types import guess_tensor_type

        n = operator.inputs[0].get_first_dimension()
        t = guess_tensor_type(operator.inputs[0].type)
        t.shape = [n, int(n_out(operator.raw_operator))]
        _set(operator.outputs[0], t)

    return shape


def regressor_shape(operator: Any) -> None:
    """One output [N, 1] (or [N, targets]) in the input's float precision."""
    from skl2onnx.common.data_types import guess_tensor_type

    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    t = guess_tensor_type(operator.inputs[0].type)
    targets = getattr(model, "n_outputs_", 1) or 1
    t.shape = [n, int(targets)]
    _set(operator.outputs[0], t)


def labelled_shape(n_scores: Callable[[Any], int]) -> ShapeFn:
    """Two outputs: an int64 (or string) label [N] and float scores [N, n_scores(model)]
    (probabilities, distances or decision scores, by the estimator)."""

    def shape(operator: Any) -> None:
        from skl2onnx.common.data_types import (
            Int64TensorType,
            StringTensorType,
            guess_tensor_type,
        )

        model = operator.raw_operator
        n = operator.inputs[0].get_first_dimension()
        classes = getattr(model, "classes_", None)
        text = classes is not None and np.asarray(classes).dtype.kind in "UOS"
        operator.outputs[0].type = StringTensorType([n]) if text else Int64TensorType([n])
        if len(operator.outputs) > 1:
            t = guess_tensor_type(operator.inputs[0].type)
            k = int(n_scores(model))
            t.shape = [n, k] if k else [n]
            _set(operator.outputs[1], t)

    return shape


def n_classes(model: Any) -> int:
    return len(model.classes_)


#: the skl2onnx options a classifier accepts (baton asks for ``zipmap=False``)
CLASSIFIER_OPTIONS: dict[str, list[Any]] = {"zipmap": [True, False, "columns"],
                                            "nocl": [True, False]}


def label_from_index(e: Emit, index: str, classes: np.ndarray, out: str) -> str:
    """``classes[index]`` (int64 or string classes) into ``out``."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "UOS":
        table = e.const(classes.astype(str).astype(object), dtype=object)
    else:
        table = e.const(classes.astype(np.int64), dtype=np.int64)
    return e.op("Gather", table, index, out=out, axis=0)
