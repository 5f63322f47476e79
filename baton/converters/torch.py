"""PyTorch ``nn.Module``: exported with torch.onnx with a dynamic batch dimension.

Capture strategies, tried in order; the first whose graph loads in onnxruntime and runs at
batch sizes 1, 2 and 7 wins, and every attempt is recorded in the manifest
(``converter.attempts``: strategy, ok, and torch's full message; see ``_torch/export.py``):

1. ``dynamo``: ``torch.onnx.export(..., dynamo=True)`` with the batch dimension declared
   dynamic, from an example of at least 2 rows. (From a batch-1 example torch.export may
   specialise the batch to 1 — ``nn.TransformerEncoder`` does — and onnxruntime then
   refuses a batch of 8; the sample is repeated to 2 rows to avoid that.)
2. ``torchscript``: the TorchScript-based exporter (``dynamo=False``) with ``dynamic_axes``.
   A trace that takes a Python boolean or number from a tensor's data (``if x.sum() > 0:``,
   the tracer's ``TracerWarning``) is refused: it would keep the branch the sample took.
   A model that branches on data is refused naming its line (from the tracer's warning or
   dynamo's error) and the fix (``torch.cond``, ``torch.where``).

Inputs: a tensor (input ``input``), a tuple of tensors (named after ``forward``'s
parameters), or a dict of tensors (passed as keyword arguments, named after the keys; to a
program loaded from ``.pt2``, matched to its inputs by name or position and passed as it
was exported: ``_torch/program.py``). Outputs: any nesting of tuples, lists and dicts of
tensors, flattened in torch.onnx's order to dotted names (``output``; ``output_0``,
``output_1.0``; ``logits``, ``aux.0``: ``_torch/outputs.py``). A bfloat16 model is exported
in bfloat16 and run as float32 rounded to bfloat16 (``_torch/bfloat16.py``).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from baton.contract import ModelFile
from baton.converters._registry import Conversion
from baton.converters._torch.bfloat16 import (
    BFLOAT16_NOTE,
    BFLOAT16_TOLERANCE,
    NotRewritable,
    is_bfloat16,
    round_like_bfloat16,
    to_bfloat16,
)
from baton.converters._torch.export import (
    attempt,
    cause,
    clip,
    describe_attempts,
    full_message,
)
from baton.converters._torch.optimize import describe as describe_optimization
from baton.converters._torch.optimize import optimize_graph
from baton.converters._torch.outputs import flatten_outputs, output_shape, to_numpy
from baton.converters._torch.program import (
    FILE_STEM,
    call,
    check_one_input,
    is_program,
    match_inputs,
    positional,
    program_class,
)
from baton.converters._torch.shapes import (
    _at_least_two_rows,
    _dim_names,
    _dynamic_dims,
    _rows,
    check_rows,
    dynamic_variants,
    least_sizes,
    no_batch,
    whole_shape,
)
from baton.errors import (
    ConversionError,
    SchemaError,
    UnsupportedModelError,
    UsageError,
    first_line,
    require,
)
from baton.schema import BATCH, TensorSpec, dtype_name, is_dataframe
from baton.tolerance import Tolerance

EXTRA = "torch"
DEFAULT_OPSET = 18
#: a float16 output's default tolerance: half precision has 11 significant bits (one step
#: at 1.0 is 9.8e-4), and torch and onnxruntime round their float32 accumulations to it at
#: different points: about ten steps
HALF_TOLERANCE = Tolerance(atol=1e-3, rtol=1e-2)
#: batch sizes every conversion is checked at (the sample's rows, repeated as needed)
PARITY_BATCHES = (1, 2, 7, 64)
_TORCH_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16",
                 "int64": "int64", "int32": "int32", "bool": "bool"}


def _torch() -> Any:
    return require("torch", EXTRA, "Converting a PyTorch model")


class TorchConverter:
    name = "torch"
    framework = "pytorch"
    extra = EXTRA
    parity_batches = PARITY_BATCHES
    #: both can run code from the file as they load (the loader is defined below, hence
    #: the lambdas)
    model_files = (
        ModelFile(".pt2", lambda path, trust: _load_program(path, trust), framework="PyTorch",
                  what="PyTorch program (torch.export.save)",
                  save="torch.export.save(torch.export.export(model, args), 'model.pt2')",
                  needs_trust=True),
        ModelFile(".pt", lambda path, trust: _load_program(path, trust), framework="PyTorch",
                  what="TorchScript (torch.jit.save)",
                  save="torch.jit.save(torch.jit.script(model), 'model.pt')", needs_trust=True),
    )

    def accepts(self, model: Any) -> bool:
        return any(c.__module__.split(".")[0] == "torch" and c.__name__ == "Module"
                   for c in type(model).__mro__)

    def describe(self, model: Any) -> str:
        """The module's class; for a program loaded from ``.pt2``, the class it was exported
        from (else the file's name)."""
        cls = type(model)
        named = program_class(model) if is_program(model) else None
        return named or f"{cls.__module__}.{cls.__qualname__}"

    # -- inputs -----------------------------------------------------------------------

    def _names(self, model: Any, sample: Any) -> list[str]:
        if isinstance(sample, Mapping):
            return [str(k) for k in sample]
        if isinstance(sample, (tuple, list)):
            params = [p for p in inspect.signature(model.forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            names = [p.name for p in params][:len(sample)]
            return names if len(names) == len(sample) else [f"input_{i}"
                                                             for i in range(len(sample))]
        return ["input"]

    def prepare(self, model: Any, data: Any) -> Any:
        """numpy arrays: one array, or a dict keyed by input name."""
        if is_dataframe(data):
            raise SchemaError(
                "a PyTorch model takes tensors, not a DataFrame",
                expected="a tensor, a tuple of tensors or a dict of tensors (or numpy arrays)",
                found="a pandas DataFrame",
                hint="pass torch.tensor(frame.to_numpy(), dtype=torch.float32)",
            )
        if isinstance(data, Mapping):
            # a program's inputs by name, else by position (an .npz file's arr_0, arr_1)
            return {k: to_numpy(v) for k, v in match_inputs(model, data)[0].items()}
        if isinstance(data, (tuple, list)):
            return {n: to_numpy(v) for n, v in zip(self._names(model, data), data)}
        check_one_input(model)
        return to_numpy(data)

    def infer_inputs(self, model: Any, sample: Any) -> list[TensorSpec]:
        arrays = self.prepare(model, sample)
        items = arrays.items() if isinstance(arrays, dict) else [("input", arrays)]
        specs = []
        for name, arr in items:
            if arr.ndim == 0:
                raise SchemaError(
                    f"input {name!r} has no batch dimension",
                    expected="tensors whose first dimension is the batch",
                    found="a scalar", hint="pass a batch of examples, e.g. x.unsqueeze(0)",
                )
            raw = ("float16" if arr.dtype.kind == "f" and arr.dtype.itemsize == 2 else
                   "int32" if arr.dtype == np.int32 else dtype_name(arr.dtype))
            dtype = _TORCH_DTYPES.get(raw)  # int32 ids stay int32: the graph takes them
            if dtype is None:
                raise SchemaError(f"input {name!r} has an unsupported dtype",
                                  expected="float, integer or bool tensors",
                                  found=str(arr.dtype), hint="cast it first")
            specs.append(TensorSpec(name=name, dtype=dtype, shape=(BATCH, *arr.shape[1:])))
        return specs

    # -- running the original ---------------------------------------------------------

    def _call(self, model: Any, arrays: Any, device: str | None = None) -> Any:
        """The model on the arrays as tensors (on ``device``); a bfloat16 model's float
        inputs cast to bfloat16."""
        torch = _torch()
        tensors = _tensors(torch, arrays)
        if is_bfloat16(model):
            tensors = to_bfloat16(torch, tensors)
        if device is not None:
            tensors = ({k: v.to(device) for k, v in tensors.items()}
                       if isinstance(tensors, dict) else tensors.to(device))
        with torch.no_grad():
            return call(model, tensors)

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        arrays = self.prepare(model, data)
        try:
            with _evaluating(model):
                out = self._call(model, arrays)
        except (RuntimeError, TypeError, ValueError, IndexError) as exc:
            raise SchemaError(
                f"the original model ({self.describe(model)}) rejected the data",
                expected="tensors shaped like the sample",
                found=first_line(exc, 300, with_type=True),
                hint="pass inputs with the sample's names, dtypes and shapes",
            ) from exc
        return flatten_outputs(out)

    def predict_on_device(self, model: Any, data: Any, device: str, *, tf32: bool = False
                          ) -> dict[str, np.ndarray]:
        """The original's outputs computed on ``device`` (e.g. ``cuda``), with TF32 matmuls
        and convolutions on or off for the call; the model is moved back afterwards."""
        torch = _torch()
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(
                "the original PyTorch model cannot run on CUDA here",
                expected="torch with a CUDA device (torch.cuda.is_available())",
                found=f"torch {torch.__version__} without CUDA",
                hint="install a CUDA build of torch, or check on the CPU (--provider cpu)",
            )
        arrays = self.prepare(model, data)
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        was = next((p.device for p in model.parameters()), torch.device("cpu"))
        try:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            model.to(device)
            with _evaluating(model):
                out = self._call(model, arrays, device)
            return flatten_outputs(out)
        finally:
            model.to(was)
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    def dynamic_variants(self, prepared: Any, dynamic: Mapping[str, Mapping[int, str]]
                         ) -> list[tuple[str, Any]]:
        """The sample at other sizes of each named dynamic dimension: parity must hold at
        sizes the sample did not have."""
        return dynamic_variants(prepared, dynamic)

    # -- conversion -------------------------------------------------------------------

    def convert(self, model: Any, sample: Any, inputs: list[TensorSpec], *,
                opset: int | None, dynamic: Mapping[str, Mapping[int, str]] | None = None,
                batch_dims: Mapping[str, int | None] | None = None,
                optimize: bool = True) -> Conversion:
        """Export in eval mode; the user's module gets its own modes back afterwards.
        ``batch_dims``: inputs without a batch dimension (``{"ids": None}``); ``optimize``:
        try offline graph optimisation (``_torch/optimize.py``), kept where it pays."""
        with _evaluating(model):
            return self._convert(model, sample, inputs, opset=opset, dynamic=dynamic,
                                 batch_dims=batch_dims, optimize=optimize)

    def _convert(self, model: Any, sample: Any, inputs: list[TensorSpec], *,
                 opset: int | None, dynamic: Mapping[str, Mapping[int, str]] | None,
                 batch_dims: Mapping[str, int | None] | None = None,
                 optimize: bool = True) -> Conversion:
        torch = _torch()
        arrays = self.prepare(model, sample)
        bf16 = is_bfloat16(model)
        matched = (match_inputs(model, sample)[1] if isinstance(sample, Mapping) else None)
        whole = no_batch(batch_dims, [s.name for s in inputs])
        check_rows(arrays, whole)
        dims = _dynamic_dims(inputs, arrays, dynamic or {}, whole)
        least = least_sizes(dynamic or {})
        inputs = [TensorSpec(s.name, s.dtype, tuple(dims.get(s.name, {}).get(i, d)
                                                    for i, d in enumerate(whole_shape(
                                                        s, arrays, whole))))
                  for s in inputs]
        reference = self.predict(model, arrays)
        output_names = list(reference)
        example = _at_least_two_rows(arrays, whole)
        attempts: list[dict[str, Any]] = []
        branch: _DataDependent | None = None
        for strategy in ("dynamo", "torchscript"):
            try:
                onx = _export(torch, model, example, inputs, output_names, strategy,
                              opset or DEFAULT_OPSET, dims, bfloat16=bf16, least=least)
                outputs = _validate(onx, inputs, arrays, output_names, reference, whole)
            except _DataDependent as exc:
                attempts.append(attempt(strategy, exc.full))
                branch = branch or exc
                continue
            except _Failed as exc:
                attempts.append(attempt(strategy, exc.full))
                continue
            attempts.append(attempt(strategy))
            optimization: dict[str, Any] = {"tried": None, "applied": None,
                                            "reason": "bfloat16 graphs are kept as rewritten"
                                            if bf16 else "turned off (optimize=False)"}
            if optimize and not bf16:
                onx, optimization = self._optimized(model, onx, arrays, inputs, outputs,
                                                    reference, whole, dynamic or {})
            return Conversion(
                model=onx, inputs=inputs, outputs=outputs,
                source={"framework": self.framework, "class": self.describe(model),
                        "versions": {"torch": torch.__version__}},
                converter={"name": "torch.onnx", "version": torch.__version__,
                           "strategy": strategy, "attempts": attempts,
                           "dynamic_dims": {k: {str(a): n for a, n in v.items()}
                                            for k, v in dims.items()},
                           "optimization": optimization,
                           "notes": [f"exported with a dynamic batch dimension, checked at "
                                     f"batch sizes {', '.join(map(str, PARITY_BATCHES))}"]
                           + ([f"dimensions {', '.join(sorted(_dim_names(dims)))} are dynamic "
                               "too, checked at the sample's size and at smaller and larger "
                               "ones the original takes"]
                              if _dim_names(dims) else [])
                           + ([BFLOAT16_NOTE] if bf16 else []) + ([matched] if matched else [])
                           + ([describe_optimization(optimization)]
                              if optimization["tried"] else [])},
                precision="bfloat16" if bf16 else "float64" if any(
                    s.dtype == "float64" for s in inputs) else "float32",
                tolerances={o.name: BFLOAT16_TOLERANCE if bf16 and o.kind != "label"
                            else HALF_TOLERANCE if o.dtype == "float16" else Tolerance()
                            for o in outputs},
            )
        if branch is not None:
            raise UnsupportedModelError(
                f"{self.describe(model)} branches on a tensor's value in Python at "
                f"{branch.where}: an exported graph would hold only the branch the sample "
                "took, and give wrong answers for inputs that take the other",
                expected="control flow the graph can hold: torch.cond, torch.where, or "
                "branches on shapes and constants only",
                found=describe_attempts(attempts),
                hint="write the branch as torch.cond(pred, true_fn, false_fn, (x,)) (both "
                "branches are exported and the graph chooses per call), or compute both and "
                "pick with torch.where(cond, a, b)",
            )
        raise UnsupportedModelError(
            f"torch.onnx could not export {self.describe(model)} with a dynamic batch",
            expected="a module torch.onnx exports (dynamo or TorchScript exporter)",
            found=describe_attempts(attempts),
            hint=("a program loaded from .pt2 keeps the shapes it was exported with: export "
                  "it with a dynamic batch, torch.export.export(model, args, dynamic_shapes="
                  "({0: torch.export.Dim('batch')},))" if is_program(model) else
                  "see docs/pytorch.md for the usual causes: data-dependent control flow, "
                  "unsupported operators, Python-side state in forward()")
            + ("; a bfloat16 model whose graph baton cannot rewrite converts as a float32 "
               "copy: copy.deepcopy(model).float(), with float32 inputs" if bf16 else ""),
        )


    def _optimized(self, model: Any, onx: Any, arrays: Any, inputs: list[TensorSpec],
                   outputs: list[TensorSpec], reference: dict[str, np.ndarray],
                   whole: tuple[str, ...], dynamic: Mapping[str, Mapping[int, str]]
                   ) -> tuple[Any, dict[str, Any]]:
        """The exported graph or its optimised copy, and the record of what was tried."""
        sized = dict(dynamic_variants(arrays, dynamic)) if dynamic else {}

        def rows_at(batch: int | str | None) -> Any:
            return (arrays if batch is None else sized[batch] if isinstance(batch, str)
                    else _rows(arrays, batch, whole))

        def feeds_at(batch: int | str | None) -> dict[str, np.ndarray]:
            rows = rows_at(batch)
            rows = rows if isinstance(rows, dict) else {inputs[0].name: rows}
            return {s.name: rows[s.name].astype(s.dtype) for s in inputs}

        def reference_at(batch: int | str | None) -> dict[str, np.ndarray] | None:
            if batch is None:
                return reference
            try:
                return self.predict(model, rows_at(batch))
            except SchemaError:  # a size the original rejects: not one it serves
                return None

        sample_batch = int(np.shape(next(iter(feeds_at(None).values())))[0]) if inputs else 1
        return optimize_graph(onx, feeds_at, reference_at, outputs,
                              {o.name: HALF_TOLERANCE if o.dtype == "float16" else Tolerance()
                               for o in outputs}, sample_batch, list(sized))


class _Failed(Exception):
    """An attempt that failed: a short reason, and the full text for the manifest."""

    def __init__(self, reason: str, full: str | None = None) -> None:
        super().__init__(reason)
        self.full = clip(full or reason)


class _DataDependent(_Failed):
    """The module decides on a tensor's value in Python (``if x.sum() > 0:``): the dynamo
    exporter cannot export it, and tracing would bake in the branch the sample took."""

    def __init__(self, where: str, how: str, full: str | None = None) -> None:
        reason = f"data-dependent control flow at {where} ({how})"
        super().__init__(reason, reason + (f"\n\n{full}" if full else ""))
        self.where = where


#: the TorchScript tracer's warnings for a Python value taken from a tensor's data: the
#: trace keeps the value the sample gave (a branch, a number), right for that sample only
_BAKED = ("Converting a tensor to a Python boolean", "Converting a tensor to a Python number",
          "Converting a tensor to a Python float")


def _source(filename: str, lineno: int) -> str:
    import linecache

    code = linecache.getline(filename, lineno).strip()
    return f"{filename}:{lineno}" + (f" `{code}`" if code else "")


def _data_dependent_in(exc: BaseException) -> _DataDependent | None:
    """The user's line that a dynamo export failed on for data-dependent control flow (the
    error names it as ``File "...", line N``), if that is why it failed."""
    import re

    text = str(exc)
    if "data-dependent" not in text and "GuardOnDataDependent" not in text:
        return None
    frames = re.findall(r'File "([^"]+)", line (\d+)', text)
    user = [(f, int(n)) for f, n in frames if "site-packages" not in f
            and "/torch/" not in f]
    where = _source(*user[-1]) if user else "a line of forward()"
    return _DataDependent(where, "dynamo: could not guard on a data-dependent expression",
                          full_message(exc))


@contextlib.contextmanager
def _evaluating(model: Any) -> Iterator[None]:
    """Eval mode for the block; each submodule's own mode (training or not) back after it,
    so that converting or checking leaves the user's module as it was."""
    modules = list(model.modules()) if hasattr(model, "modules") else []
    modes = [m.training for m in modules]
    _eval(model)
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.training = mode


def _eval(model: Any) -> None:
    """Inference mode (dropout off, batch-norm running statistics). A program loaded with
    torch.export.load was captured in its mode already and refuses eval()."""
    try:
        model.eval()
    except NotImplementedError:
        pass


def _export(torch: Any, model: Any, example: Any, inputs: list[TensorSpec],
            output_names: list[str], strategy: str, opset: int,
            dims: Mapping[str, Mapping[int, str]], *, bfloat16: bool = False,
            least: Mapping[str, int] | None = None) -> Any:
    """The ONNX graph of one capture strategy; a bfloat16 model's graph rewritten to
    float32 arithmetic rounded as bfloat16 (:mod:`baton.converters._torch.bfloat16`).
    ``least``: each dynamic dimension's least size."""
    onx = _capture(torch, model, example, inputs, output_names, strategy, opset, dims,
                   bfloat16=bfloat16, least=least)
    if not bfloat16:
        return onx
    try:
        return round_like_bfloat16(onx)
    except NotRewritable as exc:
        raise _Failed(f"the bfloat16 graph cannot be rewritten to float32: {exc}") from exc


def _tensors(torch: Any, arrays: Any) -> Any:
    if isinstance(arrays, dict):
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    return torch.from_numpy(np.ascontiguousarray(arrays))


def _capture(torch: Any, model: Any, example: Any, inputs: list[TensorSpec],
             output_names: list[str], strategy: str, opset: int,
             dims: Mapping[str, Mapping[int, str]], *, bfloat16: bool = False,
             least: Mapping[str, int] | None = None) -> Any:
    import onnx

    batched = {s.name for s in inputs if s.shape and s.shape[0] == BATCH}

    names = [s.name for s in inputs]
    tensors = _tensors(torch, example)
    if bfloat16:
        tensors = to_bfloat16(torch, tensors)
    # keyword arguments for a dict, except for a program exported with positional ones
    kwargs = (tensors if isinstance(tensors, dict) and names != ["input"]
              and not positional(model, names) else None)
    args: tuple[Any, ...] = () if kwargs is not None else (
        tuple(tensors.values()) if isinstance(tensors, dict) else (tensors,))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if strategy == "dynamo":
                batch = torch.export.Dim("batch", min=1)
                named = {d: torch.export.Dim(d, min=(least or {}).get(d, 1))
                         for d in _dim_names(dims)}

                def axes(n: str) -> dict[int, Any]:
                    return {**({0: batch} if n in batched else {}),
                            **{a: named[d] for a, d in dims.get(n, {}).items()}}
                shapes = ({n: axes(n) for n in names} if kwargs is not None
                          else tuple(axes(n) for n in names))
                program = torch.onnx.export(
                    model, args, kwargs=kwargs, dynamo=True, dynamic_shapes=shapes,
                    input_names=names, opset_version=opset, verbose=False, report=False)
                onx = program.model_proto
                # named afterwards: an output name may clash with a value inside the graph
                # (a module called "embedding"), which rename_values moves out of the way
                from baton.converters._graph import rename_values

                current = [o.name for o in onx.graph.output]
                if len(current) != len(output_names):
                    raise _Failed(f"outputs {current}, expected {len(output_names)}")
                rename_values(onx, {a: b for a, b in zip(current, output_names) if a != b})
                return onx
            buf = io.BytesIO()
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                torch.onnx.export(
                    model, args if kwargs is None else (kwargs,), buf, dynamo=False,
                    input_names=names, output_names=output_names,
                    opset_version=min(opset, 17),
                    dynamic_axes={n: {**({0: "N"} if n in batched or n in output_names
                                         else {}), **dict(dims.get(n, {}))}
                                  for n in names + output_names})
            baked = [w for w in seen if type(w.message).__name__ == "TracerWarning"
                     and str(w.message).startswith(_BAKED)]
            if baked:
                raise _DataDependent(_source(baked[0].filename, baked[0].lineno),
                                     "torchscript: the trace would keep the sample's branch")
            return onnx.load_from_string(buf.getvalue())
    except _Failed:
        raise
    except Exception as exc:  # noqa: BLE001 - exporters raise anything
        full = full_message(exc)
        raise (_data_dependent_in(exc) or _Failed(cause(full), full)) from exc


def _validate(onx: Any, inputs: list[TensorSpec], arrays: Any, output_names: list[str],
              reference: dict[str, np.ndarray], whole: tuple[str, ...] = ()
              ) -> list[TensorSpec]:
    from baton.runtime.session import make_ort_session
    from baton.schema import from_ort

    try:
        sess = make_ort_session(onx.SerializeToString())
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
        raise _Failed(f"onnxruntime cannot load it: {first_line(exc, 200)}",
                      f"onnxruntime cannot load it: {full_message(exc)}") from exc
    got = [o.name for o in sess.get_outputs()]
    if got != output_names:
        raise _Failed(f"outputs {got}, expected {output_names}")
    for batch in (1, 2, 7):
        feeds = _rows(arrays, batch, whole)
        feeds = feeds if isinstance(feeds, dict) else {inputs[0].name: feeds}
        try:
            sess.run(None, {s.name: feeds[s.name].astype(s.dtype if s.dtype != "string"
                                                         else object) for s in inputs})
        except Exception as exc:  # noqa: BLE001
            raise _Failed(f"onnxruntime rejects batch {batch}: {first_line(exc, 200)}",
                          f"onnxruntime rejects batch {batch}: {full_message(exc)}") from exc
    outs = []
    for o in sess.get_outputs():
        spec = from_ort(o)
        kind = "tensor" if spec.dtype.startswith("float") else "label"
        outs.append(TensorSpec(spec.name, spec.dtype, output_shape(o.shape), kind=kind))
    return outs


def _load_program(path: Path, trust: bool) -> Any:
    if not trust:
        # torch.export.load unpickles weights and constants it may not screen, and
        # torch.jit.load runs a TorchScript module's __setstate__: either can run code
        raise UsageError(
            f"refusing to load {path}: loading a PyTorch program file can run code from it "
            "(pickled weights or constants, TorchScript's __setstate__)",
            expected="--trust-pickle for a PyTorch file you trust",
            found=f"a {path.suffix} file",
            hint="if you made this file yourself (torch.export.save or torch.jit.save), pass "
            "--trust-pickle; from Python, pass the module itself: baton.convert(module, "
            "sample)",
        )
    torch = _torch()
    try:
        if path.suffix.lower() == ".pt2":
            program = torch.export.load(str(path)).module()
            # the bundle's name when the program's nodes do not record its class
            object.__setattr__(program, FILE_STEM, path.stem)
            return program
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise UsageError(
            f"cannot load {path} as a PyTorch program",
            expected="a file saved with torch.export.save (.pt2) or torch.jit.save (.pt)",
            found=first_line(exc, 200, with_type=True),
            hint="save the model with torch.export.save(torch.export.export(model, args), "
            "'model.pt2')",
        ) from exc


__all__ = ["TorchConverter", "ConversionError"]
