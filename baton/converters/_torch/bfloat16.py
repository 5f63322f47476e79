"""bfloat16 PyTorch models: exported in bfloat16, then run as float32 arithmetic rounded to
bfloat16 at every point the bfloat16 graph rounds.

onnxruntime's CPU has few bfloat16 kernels (no Gemm, MatMul, Conv: ``NOT_IMPLEMENTED``), and
numpy has no bfloat16 type to feed or compare. So the exported graph (typed bfloat16
throughout) is rewritten: its inputs and outputs become float32, its bfloat16 weights and
constants float32 (exact: every bfloat16 is a float32), and after every value the original
graph types bfloat16 a ``Cast(to=BFLOAT16)``, ``Cast(to=FLOAT)`` pair rounds it to
bfloat16 (round to nearest, ties to even: onnxruntime's Cast rounds bit for bit as torch
does; tests/converters/test_torch_bf16.py holds it). Each operator then computes in float32
on bfloat16 values and its result is rounded, as torch's CPU kernels for bfloat16 do
(they accumulate in float32); where torch fuses several steps into one kernel (GELU,
softmax, layer norm) it rounds once where the graph rounds after each step, which the
tolerance covers.

The bundle takes and returns float32; the original is called with its float inputs cast to
bfloat16, and its bfloat16 outputs compared as float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.tolerance import Tolerance

#: a bfloat16 output's default tolerance. bfloat16 keeps 8 significant bits: one step at
#: 1.0 is 2**-7 = 7.8e-3, so one rounding moves a value by up to 3.9e-3 of itself. torch
#: rounds once per fused kernel where the graph rounds after every step, and the two sides
#: accumulate in float32 in different orders, so results differ by a few steps of the
#: *intermediate* values' magnitude, which a cancellation (a residual sum) can leave beside
#: an output near 0. Measured (torch 2.13 CPU against onnxruntime 1.32 CPU, 4 seeds x 512
#: random rows, inputs scaled x1 to x4; the models of tests/converters/test_torch_bf16.py):
#:
#: - MLP with LayerNorm, GELU and softmax (outputs up to 0.47): worst abs 2.0e-3;
#: - small CNN, conv + batch norm + ReLU + max pool + linear (outputs up to 3.5): worst abs
#:   1.6e-2, worst rel 1.8e-2 where |output| > 0.1; atol 1e-2 needs rtol 3.0e-2, atol 2e-2
#:   needs none;
#: - attention block, multi-head attention + residual + LayerNorm + GELU MLP (outputs up to
#:   3.7): worst abs 3.5e-2, at outputs near 0 (atol 2e-2 would need rtol 0.69; atol 4e-2
#:   needs none).
#:
#: Chosen with a margin of about two: atol 8e-2, rtol 4e-2 (five steps).
BFLOAT16_TOLERANCE = Tolerance(atol=8e-2, rtol=4e-2)

#: the converter's note in the manifest
BFLOAT16_NOTE = ("a bfloat16 model: the graph takes and returns float32, computes in float32 "
                 "and rounds to bfloat16 wherever the bfloat16 model does (its inputs too); "
                 "the original is called with its float inputs cast to bfloat16")

_SUFFIX = "__baton_bf16"


def is_bfloat16(model: Any) -> bool:
    """Whether the module holds bfloat16 weights (parameters or buffers)."""
    tensors = [*getattr(model, "parameters", list)(), *getattr(model, "buffers", list)()]
    return any(str(t.dtype) == "torch.bfloat16" for t in tensors)


def to_bfloat16(torch: Any, tensors: Any) -> Any:
    """Float tensors (one, or a dict of them) as bfloat16; others as they are."""
    def cast(t: Any) -> Any:
        return t.to(torch.bfloat16) if t.is_floating_point() else t
    if isinstance(tensors, dict):
        return {k: cast(v) for k, v in tensors.items()}
    return cast(tensors)


class NotRewritable(ValueError):
    """A bfloat16 graph this rewrite does not handle (subgraphs, local functions, values
    of unknown type)."""


def round_like_bfloat16(onx: Any) -> Any:
    """The bfloat16 graph ``onx`` as float32 arithmetic rounded to bfloat16 wherever ``onx``
    holds a bfloat16 value (see the module's docstring); a new model."""
    import onnx
    from onnx import AttributeProto, TensorProto, helper

    bf, f32 = TensorProto.BFLOAT16, TensorProto.FLOAT
    if onx.functions:
        raise NotRewritable("the graph has local functions")
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
           for n in onx.graph.node for a in n.attribute):
        raise NotRewritable("the graph has subgraphs (If, Loop, Scan)")
    inferred = onnx.shape_inference.infer_shapes(onx, strict_mode=False)
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.input, *inferred.graph.value_info,
                       *inferred.graph.output)}
    types.update({t.name: t.data_type for t in onx.graph.initializer})
    model = onnx.ModelProto()
    model.CopyFrom(onx)
    g = model.graph
    for t in g.initializer:
        if t.data_type == bf:
            t.CopyFrom(_as_float32(t))
    nodes = []
    renamed: dict[str, str] = {}
    for i in g.input:
        if i.type.tensor_type.elem_type == bf:
            i.type.tensor_type.elem_type = f32
            renamed[i.name] = i.name + _SUFFIX
            nodes += _round(i.name, i.name + _SUFFIX)
    for node in g.node:
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]
        for a in node.attribute:
            if a.type == AttributeProto.TENSOR and a.t.data_type == bf:
                a.t.CopyFrom(_as_float32(a.t))
            elif a.name == "dtype" and a.type == AttributeProto.INT and a.i == bf:
                a.i = f32
        casts_to_bf = node.op_type == "Cast" and any(a.name == "to" and a.i == bf
                                                     for a in node.attribute)
        nodes.append(node)
        for k, name in enumerate(node.output):
            if not name:
                continue
            if name not in types:
                raise NotRewritable(f"the type of {name!r} ({node.op_type}) is unknown")
            if types[name] != bf:
                continue
            node.output[k] = name + _SUFFIX
            if casts_to_bf:
                nodes.append(helper.make_node("Cast", [name + _SUFFIX], [name], to=f32))
            else:
                nodes += _round(name + _SUFFIX, name)
    for o in g.output:
        if o.type.tensor_type.elem_type == bf:
            o.type.tensor_type.elem_type = f32
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return model


def _round(src: str, dst: str) -> list[Any]:
    """``dst`` = ``src`` (float32) rounded to the nearest bfloat16, as float32."""
    from onnx import TensorProto, helper

    mid = dst + "__bf16"
    return [helper.make_node("Cast", [src], [mid], to=TensorProto.BFLOAT16),
            helper.make_node("Cast", [mid], [dst], to=TensorProto.FLOAT)]


def _as_float32(t: Any) -> Any:
    """A bfloat16 TensorProto as float32 (exact: bfloat16 is float32's upper 16 bits)."""
    from onnx import TensorProto, numpy_helper

    if t.data_location == TensorProto.EXTERNAL:
        raise NotRewritable(f"the weight {t.name!r} is stored outside the graph")
    bits = (np.frombuffer(t.raw_data, dtype="<u2") if t.raw_data
            else np.asarray(t.int32_data, dtype=np.uint32).astype(np.uint16))
    values = (bits.astype(np.uint32) << 16).view(np.float32).reshape(tuple(t.dims))
    return numpy_helper.from_array(values, name=t.name)
