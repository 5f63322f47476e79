"""Shapes of a PyTorch model's inputs: the batch, the other dynamic dimensions (with the
least size each may take), the inputs that have no batch dimension, and the sample at the
sizes parity is checked at."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from baton.errors import UsageError
from baton.schema import TensorSpec

#: a dynamic dimension's name, with the least size it may take: ``height`` or ``height>=8``
_DIM = re.compile(r"\s*(\w+)\s*(?:>=\s*(\d+))?\s*")


def dim_name(spec: Any) -> tuple[str, int]:
    """``"height>=8"`` as ``("height", 8)``; a bare name may take any size from 1."""
    m = _DIM.fullmatch(str(spec))
    if m is None:
        raise UsageError(f"cannot read the dynamic dimension {spec!r}",
                         expected="NAME or NAME>=MIN, e.g. seq or height>=8",
                         found=repr(spec), hint="name the dimension with letters, digits "
                         "and _, and give its least size after >=")
    return m[1], int(m[2] or 1)


def dynamic_variants(prepared: Any, dynamic: Mapping[str, Mapping[int, str]]
                     ) -> list[tuple[str, Any]]:
    """The sample at other sizes of each named dynamic dimension (every input sharing the
    name changed alike): cut to 1, half and one less, and grown to one more and twice (the
    sample repeated along the axis), each at least the dimension's least size. Parity must
    hold at sizes the sample did not have; a size the original model itself rejects is
    skipped by the caller."""
    arrays = prepared if isinstance(prepared, dict) else {"input": prepared}
    least = least_sizes(dynamic)
    out = []
    for name in sorted(least):
        axes = {k: [int(a) for a, d in dynamic.get(k, {}).items() if dim_name(d)[0] == name]
                for k in arrays}
        size = next(arrays[k].shape[a[0]] for k, a in axes.items() if a)
        sizes = {1, size // 2, size - 1, size + 1, 2 * size}
        for other in sorted(s for s in sizes if s != size and s >= least[name]):
            index = np.arange(other) % size
            moved = {k: np.take(v, index, axis=axes[k][0]) if axes[k] else v
                     for k, v in arrays.items()}
            for k, ax in axes.items():  # a second axis of the same name (a square image)
                for a in ax[1:]:
                    moved[k] = np.take(moved[k], index, axis=a)
            out.append((f"{name}={other}",
                        moved if isinstance(prepared, dict) else moved["input"]))
    return out


def _dim_names(dims: Mapping[str, Mapping[int, str]]) -> set[str]:
    return {d for m in dims.values() for d in m.values()}


def _dynamic_dims(inputs: list[TensorSpec], arrays: Any, dynamic: Mapping[str, Any],
                  whole: Sequence[str] = ()) -> dict[str, dict[int, str]]:
    """``dynamic`` checked against the inputs: known names, axes past the batch (axis 0
    too for an input in ``whole``, which has no batch), and sizes of at least 2 in the
    sample (from size 1 torch.export specialises the dimension). Names lose their least
    sizes (:func:`dim_name`)."""
    by_name = {s.name: s for s in inputs}
    found = arrays if isinstance(arrays, dict) else {"input": arrays}
    out: dict[str, dict[int, str]] = {}
    for name, axes in dynamic.items():
        if name not in by_name:
            raise UsageError(
                f"dynamic dimensions given for an unknown input {name!r}",
                expected="inputs " + ", ".join(repr(n) for n in by_name),
                found=repr(name), hint="name the dimensions of one of the model's inputs",
            )
        rank = len(by_name[name].shape)
        first = 0 if name in whole else 1
        for axis, dim in axes.items():
            axis = int(axis)
            if not first <= axis < rank:
                raise UsageError(
                    f"input {name!r} has no dimension {axis} that could be dynamic",
                    expected=f"an axis between {first} and {rank - 1}" + (
                        " (0 is the batch, always dynamic)" if first else ""),
                    found=str(axis), hint="count axes from 0, the batch" if first else
                    "count axes from 0",
                )
            label, low = dim_name(dim)
            size = found[name].shape[axis]
            if size < max(2, low):
                raise UsageError(
                    f"dimension {axis} of input {name!r} has size {size} in the sample",
                    expected=f"a size of at least {max(2, low)} for a dynamic dimension",
                    found=f"shape {list(found[name].shape)}",
                    hint="pass a sample whose dynamic dimensions have at least 2 elements "
                    "(from size 1 the exporter bakes the size into the graph)" if low <= 2
                    else f"pass a sample whose {label} is at least {low}, or lower the "
                    "least size",
                )
            out.setdefault(name, {})[axis] = label
    return out


def least_sizes(dynamic: Mapping[str, Mapping[int, str]]) -> dict[str, int]:
    """Each dynamic dimension's least size, by name."""
    out: dict[str, int] = {}
    for axes in dynamic.values():
        for spec in axes.values():
            name, low = dim_name(spec)
            out[name] = max(out.get(name, 1), low)
    return out


def no_batch(spec: Mapping[str, int | None] | None, names: Sequence[str]) -> tuple[str, ...]:
    """The inputs that have no batch dimension (``batch_dims={"ids": None}``: EmbeddingBag's
    flat ids, a table every row shares): they are fed whole, never cut into rows."""
    whole = []
    for name, axis in (spec or {}).items():
        if name not in names:
            raise UsageError(f"batch_dims names an unknown input {name!r}",
                             expected="inputs " + ", ".join(map(repr, names)),
                             found=repr(name), hint="name one of the model's inputs")
        if axis not in (None, 0):
            raise UsageError(f"input {name!r}: a batch on axis {axis} is not supported",
                             expected="0 (the batch first) or None (no batch dimension)",
                             found=repr(axis), hint="move the batch first with "
                             "x.transpose(0, axis) in forward(), or pass None")
        if axis is None:
            whole.append(name)
    if whole and len(whole) == len(names):
        raise UsageError("every input is declared without a batch dimension",
                         expected="at least one input whose dimension 0 is the batch",
                         found="batch_dims=" + repr(dict(spec or {})),
                         hint="leave the input that holds one entry per example (such as "
                         "EmbeddingBag's offsets) out of batch_dims")
    return tuple(whole)


def check_rows(arrays: Any, whole: Sequence[str]) -> None:
    """The inputs with a batch dimension have as many rows each; inputs of other lengths
    must be declared without one."""
    if not isinstance(arrays, dict):
        return
    lengths = {k: (len(v) if np.ndim(v) else 0) for k, v in arrays.items() if k not in whole}
    if len(set(lengths.values())) > 1:
        longest = max(lengths, key=lengths.__getitem__)
        raise UsageError(
            "the inputs have different numbers of rows: "
            + ", ".join(f"{k} {n}" for k, n in lengths.items()),
            expected="the batch first in every input, one row per example",
            found="dimension 0 of different sizes",
            hint=f"if {longest!r} has no batch dimension (EmbeddingBag's flat ids, a table "
            f"every example shares), declare it: batch_dims={{{longest!r}: None}} "
            f"(--no-batch {longest}), with dynamic={{{longest!r}: {{0: 'tokens'}}}} if its "
            "length varies")


def whole_shape(spec: TensorSpec, arrays: Any, whole: Sequence[str]) -> tuple[Any, ...]:
    """An input's shape: the batch first, or for an input without one its own sizes."""
    if spec.name not in whole:
        return spec.shape
    found = arrays[spec.name] if isinstance(arrays, dict) else arrays
    return tuple(int(d) for d in np.shape(found))


def _at_least_two_rows(arrays: Any, whole: Sequence[str] = ()) -> Any:
    def grow(a: np.ndarray) -> np.ndarray:
        return a if len(a) >= 2 else np.concatenate([a, a])
    if isinstance(arrays, dict):
        if whole:  # rows that index into a whole input cannot be repeated
            short = [k for k, v in arrays.items() if k not in whole and len(v) < 2]
            if short:
                raise UsageError(
                    f"input {short[0]!r} has fewer than 2 rows in the sample",
                    expected="a batch of at least 2 rows beside inputs without a batch",
                    found=f"{len(arrays[short[0]])} row", hint="pass a sample of 2 or "
                    "more examples (from 1 the exporter bakes the batch size in)")
            return arrays
        return {k: grow(v) for k, v in arrays.items()}
    return grow(arrays)


def _rows(arrays: Any, n: int, whole: Sequence[str] = ()) -> Any:
    """``n`` rows from the sample, repeating it as needed; beside inputs without a batch
    (``whole``, fed as they are) the first ``n`` rows, at most all of them."""
    def take(a: np.ndarray) -> np.ndarray:
        return a[np.arange(min(n, len(a)))] if whole else a[np.arange(n) % len(a)]
    if isinstance(arrays, dict):
        return {k: v if k in whole else take(v) for k, v in arrays.items()}
    return take(arrays)
