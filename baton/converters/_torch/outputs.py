"""A PyTorch model's outputs as named numpy arrays: any nesting of tuples, lists and dicts
(Hugging Face's ``ModelOutput`` is a dict) flattened in the order torch.onnx emits the
graph's outputs (torch's pytree order: a dict's insertion order, then a tuple's order)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from baton.errors import UnsupportedModelError


def flatten_outputs(out: Any) -> dict[str, np.ndarray]:
    """``output`` for one tensor; ``output_0``, ``output_1.0`` … under a top-level tuple or
    list; a dict's keys, joined with dots below them (``aux.0``). ``None`` values are
    skipped, as torch.onnx (and Hugging Face's ``ModelOutput``) skip them."""
    if isinstance(out, Mapping):
        leaves = _leaves(out, "")
    elif isinstance(out, (tuple, list)):
        leaves = (leaf for i, v in enumerate(out) for leaf in _leaves(v, f"output_{i}"))
    else:
        leaves = _leaves(out, "output")
    return {path: to_numpy(v, path) for path, v in leaves}


def _leaves(v: Any, path: str) -> Iterator[tuple[str, Any]]:
    def under(key: Any) -> str:
        return f"{path}.{key}" if path else str(key)
    if v is None:
        return
    if isinstance(v, Mapping):
        for k, x in v.items():
            yield from _leaves(x, under(k))
    elif isinstance(v, (tuple, list)):
        for i, x in enumerate(v):
            yield from _leaves(x, under(i))
    else:
        yield path, v


def is_tensor(v: Any) -> bool:
    return hasattr(v, "detach") and hasattr(v, "dtype") and hasattr(v, "numpy")


def to_numpy(v: Any, path: str | None = None) -> np.ndarray:
    """A tensor's values on the CPU; a bfloat16 tensor as float32 (exact: every bfloat16 is
    a float32). ``path`` names an output: anything there but a tensor is refused."""
    if is_tensor(v):
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        return v.detach().cpu().numpy()
    if path is not None:
        cls = type(v)
        raise UnsupportedModelError(
            f"output {path!r} of the model is a {cls.__module__}.{cls.__qualname__}, not a "
            "tensor: an ONNX graph returns tensors only",
            expected="outputs that are tensors, or tuples, lists and dicts of tensors",
            found=f"{path}: {cls.__module__}.{cls.__qualname__}",
            hint="return only tensors from forward(); for a Hugging Face model whose output "
            "holds a cache (past_key_values, a DynamicCache), turn it off with "
            "model.config.use_cache = False (or use_cache=False in from_pretrained)",
        )
    return np.asarray(v)


def output_shape(dims: Any) -> tuple[int | str, ...]:
    """An output's shape as the exported graph declares it (onnxruntime's ``NodeArg.shape``):
    the batch first (``N``), sizes as numbers, dynamic dimensions by the graph's names
    (``seq`` where the input declared it); one the graph leaves unnamed is named after its
    axis (``d2``), never frozen at the sample's size."""
    from baton.schema import BATCH

    dims = list(dims or [])
    return tuple(BATCH if i == 0 else d if isinstance(d, int) else str(d) if d else f"d{i}"
                 for i, d in enumerate(dims)) or (BATCH,)
