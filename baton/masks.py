"""Attention masks: which inputs are masks, which positions they set, and the outputs that
are compared only at those positions.

A text model takes token ids and a mask saying which tokens are real; the others pad a
batch to one length (on the right, or on the left for a decoder). What a model gives at a
padded position is what its kernels make of a token that attends to nothing (torch's
scaled-dot-product attention gives NaN or one average, onnxruntime's another), and no one
reads it. So an output with one value per position (``[N, S, ...]``, aligned with a mask
``[N, S]``) is compared only where the mask sets the position; every other output (a
pooled vector, logits per row) is compared whole. A row that attends to no token at all is
outside the envelope (:mod:`baton.envelope`).

An input is a mask by its name, as transformers and PyTorch name them (``attention_mask``,
``decoder_attention_mask``, ``input_mask``: 1 marks a real token; ``key_padding_mask``,
``src_key_padding_mask``: True marks padding), when it holds 0s and 1s in ``[N, S]``, or
when the user declares it (``--mask-input NAME``, ``NAME:padding``).

A leaf of the package: numpy only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from baton.errors import UsageError

#: input names whose set values mark tokens to attend to
ATTEND_NAMES = ("attention_mask", "input_mask")
#: input names (suffixes) whose set values mark padding
PADDING_SUFFIX = "padding_mask"
MASK_FORMAT = "NAME (1 marks a token to attend to) or NAME:padding (1 marks padding)"


def mask_convention(name: str, values: Any) -> bool | None:
    """Whether ``values`` named ``name`` is a mask by convention: None when it is not, else
    whether its set values mark padding."""
    low = name.lower()
    if low.endswith(PADDING_SUFFIX):
        padding = True
    elif low in ATTEND_NAMES or low.endswith("_" + ATTEND_NAMES[0]):
        padding = False
    else:
        return None
    return padding if _zeros_and_ones(np.asarray(values), rank=2) else None


def _zeros_and_ones(arr: np.ndarray, rank: int | None = None) -> bool:
    if rank is not None and arr.ndim != rank:
        return False
    if arr.dtype.kind not in "biuf":
        return False
    return bool(np.isin(arr.astype(np.float64), (0.0, 1.0)).all())


def parse_masks(specs: Sequence[str] | Mapping[str, bool] | None) -> dict[str, bool]:
    """Declared masks (``NAME`` or ``NAME:padding``, or a mapping name -> padding) as
    name -> whether a set value marks padding."""
    if not specs:
        return {}
    if isinstance(specs, Mapping):
        return {str(k): bool(v) for k, v in specs.items()}
    out = {}
    for spec in specs:
        name, sep, how = str(spec).partition(":")
        if not name.strip() or (sep and how.strip() not in ("padding", "attend")):
            raise UsageError(f"cannot read the mask input {spec!r}", expected=MASK_FORMAT,
                             found=repr(spec), hint="e.g. --mask-input attention_mask or "
                             "--mask-input src_key_padding_mask:padding")
        out[name.strip()] = how.strip() == "padding"
    return out


def check_declared(declared: Mapping[str, bool], prepared: Any) -> None:
    """Every declared mask is a ``[N, S]`` input of 0s and 1s in ``prepared``."""
    arrays = prepared if isinstance(prepared, Mapping) else {"input": prepared}
    for name in declared:
        if name not in arrays:
            raise UsageError(f"no input {name!r} to take as a mask",
                             expected="one of " + ", ".join(map(repr, arrays)),
                             found=repr(name), hint="name one of the model's inputs")
        arr = np.asarray(arrays[name])
        if not _zeros_and_ones(arr, rank=2):
            raise UsageError(f"input {name!r} is not a mask",
                             expected="a [N, S] tensor of 0 and 1 (or booleans)",
                             found=f"{arr.dtype} of shape {list(arr.shape)}",
                             hint="declare only the attention mask as a mask input")


def attended(values: Any, padding: bool) -> np.ndarray:
    """The positions a mask sets (tokens that are attended to), as booleans."""
    set_ = np.asarray(values) != 0
    return ~set_ if padding else set_


def mask_problem(row: Any, padding: bool) -> str | None:
    """Why one row of a mask lies outside the envelope, or None when it lies inside."""
    arr = np.asarray(row)
    try:
        numeric = arr.astype(np.float64)
    except (TypeError, ValueError):
        return "not a mask of 0 and 1"
    bad = numeric[~np.isin(numeric, (0.0, 1.0))]
    if bad.size:
        return f"a mask value {float(bad[0]):g}, not 0 or 1"
    if not attended(numeric, padding).any():
        return "a row that attends to no token"
    return None


def aligned(mask_shape: Sequence[Any], output_shape: Sequence[Any]) -> bool:
    """Whether an output has one value per position of a mask: ``[N, S, ...]`` against
    ``[N, S]`` (a rank-2 output ``[N, S]`` may be a row of features that happens to be
    as long, so it is aligned only by its declared dims' names)."""
    return len(output_shape) >= 3 and tuple(output_shape[:2]) == tuple(mask_shape[:2])


@dataclass(frozen=True)
class Positions:
    """How many positions of an output were compared: those its mask sets."""

    mask: str
    compared: int
    total: int

    def describe(self) -> str:
        return (f"compared {self.compared:,} of {self.total:,} positions (where {self.mask} "
                "sets them)")


def _aligned_pairs(masks: Mapping[str, Any], data: Any, expected: Mapping[str, Any],
                   actual: Mapping[str, Any], names: Sequence[tuple[str, str]] | None
                   ) -> Iterator[tuple[str, str, str, np.ndarray]]:
    """(original output, ONNX output, mask name, the positions it sets, shaped to
    broadcast over the output) for every output aligned with a mask."""
    if not masks or not isinstance(data, Mapping):
        return
    for ref, out in names or [(k, k) for k in expected if k in actual]:
        shape, other = np.shape(expected[ref]), np.shape(actual[out])
        for name, region in masks.items():
            if name not in data:
                continue
            keep = attended(data[name], region.padding)
            listed = region.outputs
            if shape != other or keep.ndim != 2 or shape[:2] != keep.shape or (
                    out not in listed if listed is not None else not aligned(keep.shape,
                                                                             shape)):
                continue
            yield ref, out, name, keep.reshape(keep.shape + (1,) * (len(shape) - 2))
            break


def apply_masks(masks: Mapping[str, Any], data: Any, expected: Mapping[str, Any],
                actual: Mapping[str, Any], names: Sequence[tuple[str, str]] | None = None
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Positions]]:
    """``expected`` and ``actual`` with every position a mask does not set zeroed on both
    sides, in the outputs aligned with it; and, per ONNX output, what was compared.

    ``masks``: mask input name -> its envelope region (``padding``, ``outputs``: the aligned
    outputs, or None to decide by shape); ``data``: the inputs (a dict of arrays);
    ``names``: (original output, ONNX output) pairs (default: the same names)."""
    exp, act = dict(expected), dict(actual)
    positions: dict[str, Positions] = {}
    for ref, out, name, keep in _aligned_pairs(masks, data, expected, actual, names):
        e, a = np.asarray(exp[ref]), np.asarray(act[out])
        exp[ref] = np.where(keep, e, np.zeros((), dtype=e.dtype))
        act[out] = np.where(keep, a, np.zeros((), dtype=a.dtype))
        positions[out] = Positions(name, int(keep.sum()), int(keep.size))
    return exp, act, positions


def unset_from(masks: Mapping[str, Any], data: Any, expected: Mapping[str, Any],
               actual: Mapping[str, Any]) -> dict[str, Any]:
    """``expected`` with the positions no mask sets taken from ``actual``: the values a
    bundle's golden vectors hold there (what the graph gives, since nothing reads them)."""
    out = dict(expected)
    for ref, name, _, keep in _aligned_pairs(masks, data, expected, actual, None):
        out[ref] = np.where(keep, np.asarray(expected[ref]), np.asarray(actual[name]))
    return out


__all__ = ["ATTEND_NAMES", "MASK_FORMAT", "PADDING_SUFFIX", "Positions", "aligned",
           "apply_masks", "attended", "check_declared", "mask_convention", "mask_problem",
           "parse_masks", "unset_from"]
