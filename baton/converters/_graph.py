"""Graph edits shared by converters: renaming outputs, replacing operators onnxruntime lacks;
and the specs of a graph's outputs, read from the graph itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from baton.schema import BATCH, TensorSpec

if TYPE_CHECKING:
    import onnx


def rename_values(model: onnx.ModelProto, mapping: Mapping[str, str]) -> None:
    """Rename graph values (inputs, outputs, intermediate) in place."""
    if not mapping:
        return
    g = model.graph
    used = {n for node in g.node for n in (*node.input, *node.output)}
    used |= {i.name for i in g.initializer} | {i.name for i in g.input}
    clashes = {new: f"{new}_baton_internal" for old, new in mapping.items()
               if new in used and new not in mapping}
    mapping = {**clashes, **mapping}
    for node in g.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vi.name = mapping.get(vi.name, vi.name)
    for init in g.initializer:
        init.name = mapping.get(init.name, init.name)


def replace_imputers(model: onnx.ModelProto, float_dtype: type[np.floating[Any]],
                     exact_fills: Sequence[np.ndarray] = ()) -> int:
    """Replace ``ai.onnx.ml.Imputer`` nodes by ``IsNaN``/``Equal`` + ``Where``.

    onnxruntime implements ``Imputer`` for float32 and int64 only, so a float64 pipeline
    with a ``SimpleImputer`` converts but does not load (``NOT_IMPLEMENTED: Imputer(1)``).
    The replacement uses standard operators (opset 9 and later), which run in any
    precision; ``float_dtype`` is the graph's float type (the Imputer's input type).
    ``Imputer`` stores its fill values in float32; where one of ``exact_fills`` (e.g. a
    ``SimpleImputer``'s ``statistics_``) rounds to exactly those values, it is used instead,
    so a float64 graph fills in what scikit-learn fills in. Returns how many nodes were
    replaced.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    new_nodes: list[onnx.NodeProto] = []
    replaced = 0
    for node in g.node:
        if node.op_type != "Imputer" or node.domain != "ai.onnx.ml":
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, y = node.input[0], node.output[0]
        p = f"{node.name or 'imputer'}_{replaced}_baton"
        if "imputed_value_int64s" in attrs and len(attrs["imputed_value_int64s"]):
            fill = np.asarray(attrs["imputed_value_int64s"], dtype=np.int64)
            target = np.asarray(attrs.get("replaced_value_int64", 0), dtype=np.int64)
            is_nan = False
        else:
            stored = np.asarray(attrs.get("imputed_value_floats", []), dtype=np.float32)
            fill = _exact_fill(stored, exact_fills).astype(float_dtype)
            target = np.asarray(attrs.get("replaced_value_float", np.nan), dtype=float_dtype)
            is_nan = bool(np.isnan(target))
        g.initializer.append(numpy_helper.from_array(fill, f"{p}_fill"))
        if is_nan:
            new_nodes.append(helper.make_node("IsNaN", [x], [f"{p}_mask"]))
        else:
            g.initializer.append(numpy_helper.from_array(target, f"{p}_target"))
            new_nodes.append(helper.make_node("Equal", [x, f"{p}_target"], [f"{p}_mask"]))
        new_nodes.append(helper.make_node("Where", [f"{p}_mask", f"{p}_fill", x], [y]))
        replaced += 1
    if replaced:
        del g.node[:]
        g.node.extend(new_nodes)
    return replaced


def _exact_fill(stored: np.ndarray, candidates: Sequence[np.ndarray]) -> np.ndarray:
    for c in candidates:
        exact = np.asarray(c, dtype=np.float64).reshape(-1)
        if exact.shape == stored.shape and np.array_equal(
                exact.astype(np.float32), stored, equal_nan=True):
            return exact
    return stored.astype(np.float64)


def select_column(model: onnx.ModelProto, output: str, column: int) -> None:
    """Make graph output ``output`` (``[N, k]``) its column ``column`` alone (``[N]``)."""
    from onnx import helper, numpy_helper

    g = model.graph
    full = f"{output}_baton_all_columns"
    rename_values(model, {output: full})
    g.initializer.append(numpy_helper.from_array(np.asarray(column, dtype=np.int64),
                                                 f"{output}_baton_column"))
    g.node.append(helper.make_node("Gather", [full, f"{output}_baton_column"], [output], axis=1))
    for i, vi in enumerate(g.output):
        if vi.name == full:
            elem = vi.type.tensor_type.elem_type
            dim0 = vi.type.tensor_type.shape.dim[0] if vi.type.tensor_type.shape.dim else None
            new = helper.make_tensor_value_info(
                output, elem, [dim0.dim_param or (dim0.dim_value or None) if dim0 else None])
            g.output.remove(vi)
            g.output.insert(i, new)
            break


def flatten_output(model: onnx.ModelProto, output: str) -> None:
    """Make graph output ``output`` one-dimensional (``[N]``): skl2onnx gives some labels as
    ``[1, N]`` (QuadraticDiscriminantAnalysis's) or ``[N, 1]`` (LocalOutlierFactor's)."""
    from onnx import helper, numpy_helper

    g = model.graph
    full = f"{output}_baton_unflattened"
    rename_values(model, {output: full})
    g.initializer.append(numpy_helper.from_array(np.asarray([-1], dtype=np.int64),
                                                 f"{output}_baton_flat"))
    g.node.append(helper.make_node("Reshape", [full, f"{output}_baton_flat"], [output]))
    for i, vi in enumerate(g.output):
        if vi.name == full:
            new = helper.make_tensor_value_info(output, vi.type.tensor_type.elem_type, [None])
            g.output.remove(vi)
            g.output.insert(i, new)
            break


def normalise_opsets(model: onnx.ModelProto, minimum: Mapping[str, int]) -> None:
    """One opset import per domain (skl2onnx can write the default domain twice), at least
    ``minimum`` (keyed by domain, ``""`` for the default one)."""
    from onnx import helper

    versions: dict[str, int] = dict(minimum)
    for o in model.opset_import:
        versions[o.domain] = max(versions.get(o.domain, 0), int(o.version))
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))


def opset_of(model: onnx.ModelProto) -> dict[str, int]:
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}


def value_spec(value: onnx.ValueInfoProto, kind: str | None = None) -> TensorSpec:
    """The spec of a graph input or output (a tensor), as :func:`baton.schema.from_ort`
    gives it for the same value of an onnxruntime session: the dtype's name as onnxruntime
    writes it inside ``tensor(...)`` (``float32`` for ``float``, ``float64`` for
    ``double``), the first dimension the batch, a fixed dimension its size and any other
    one ``None``."""
    import onnx

    if value.type.WhichOneof("value") != "tensor_type":
        raise ValueError(f"graph value {value.name!r} is not a tensor")
    tensor = value.type.tensor_type
    inner = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
    dtype = {"float": "float32", "double": "float64"}.get(inner, inner)
    shape = tuple(BATCH if i == 0 else (d.dim_value if d.HasField("dim_value") else None)
                  for i, d in enumerate(tensor.shape.dim))
    return TensorSpec(name=value.name, dtype=dtype, shape=shape, kind=kind)


def output_specs(model: onnx.ModelProto, kinds: Mapping[str, str]) -> list[TensorSpec]:
    """The specs of ``model``'s outputs in graph order, each of the kind ``kinds`` gives for
    its name (every output must have one): what :func:`baton.schema.from_ort` gives for a
    session's outputs, without opening one."""
    return [value_spec(o, kinds[o.name]) for o in model.graph.output]
