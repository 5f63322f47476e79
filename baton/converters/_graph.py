"""Graph edits shared by converters: renaming outputs, replacing operators onnxruntime lacks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper


def rename_values(model: onnx.ModelProto, mapping: Mapping[str, str]) -> None:
    """Rename graph values (inputs, outputs, intermediate) in place."""
    if not mapping:
        return
    g = model.graph
    for node in g.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vi.name = mapping.get(vi.name, vi.name)


def replace_imputers(model: onnx.ModelProto) -> int:
    """Replace ``ai.onnx.ml.Imputer`` nodes by ``IsNaN``/``Equal`` + ``Where``.

    onnxruntime implements ``Imputer`` for float32 and int64 only, so a float64 pipeline
    with a ``SimpleImputer`` converts but does not load (``NOT_IMPLEMENTED: Imputer(1)``).
    The replacement uses standard operators, which run in any precision; ``CastLike`` gives
    the fill values the input's type.  Returns how many nodes were replaced.
    """
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
            fill = np.asarray(attrs.get("imputed_value_floats", []), dtype=np.float32)
            target = np.asarray(attrs.get("replaced_value_float", np.nan), dtype=np.float32)
            is_nan = bool(np.isnan(target))
        g.initializer.append(numpy_helper.from_array(fill, f"{p}_fill"))
        new_nodes.append(helper.make_node("CastLike", [f"{p}_fill", x], [f"{p}_fill_t"]))
        if is_nan:
            new_nodes.append(helper.make_node("IsNaN", [x], [f"{p}_mask"]))
        else:
            g.initializer.append(numpy_helper.from_array(target, f"{p}_target"))
            new_nodes.append(helper.make_node("CastLike", [f"{p}_target", x], [f"{p}_target_t"]))
            new_nodes.append(helper.make_node("Equal", [x, f"{p}_target_t"], [f"{p}_mask"]))
        new_nodes.append(helper.make_node("Where", [f"{p}_mask", f"{p}_fill_t", x], [y]))
        replaced += 1
    if replaced:
        del g.node[:]
        g.node.extend(new_nodes)
    return replaced


def normalise_opsets(model: onnx.ModelProto, minimum: Mapping[str, int]) -> None:
    """One opset import per domain (skl2onnx can write the default domain twice), at least
    ``minimum`` (keyed by domain, ``""`` for the default one)."""
    versions: dict[str, int] = dict(minimum)
    for o in model.opset_import:
        versions[o.domain] = max(versions.get(o.domain, 0), int(o.version))
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))


def opset_of(model: onnx.ModelProto) -> dict[str, int]:
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}
