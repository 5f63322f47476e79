"""PyTorch ``nn.Module``: exported with torch.onnx with a dynamic batch dimension.

Capture strategies, tried in order; the first whose graph loads in onnxruntime and runs at
batch sizes 1, 2 and 7 wins, and every attempt is recorded in the manifest:

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
parameters), or a dict of tensors (passed as keyword arguments, named after the keys).
Outputs: a tensor (``output``), a tuple (``output_0``, ...) or a dict (its keys).
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
        cls = type(model)
        return f"{cls.__module__}.{cls.__qualname__}"

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
            return {str(k): _to_numpy(v) for k, v in data.items()}
        if isinstance(data, (tuple, list)):
            return {n: _to_numpy(v) for n, v in zip(self._names(model, data), data)}
        return _to_numpy(data)

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

    def _call(self, model: Any, arrays: Any) -> Any:
        torch = _torch()
        with torch.no_grad():
            if isinstance(arrays, dict):
                kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
                return model(**kwargs)
            return model(torch.from_numpy(np.ascontiguousarray(arrays)))

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
        return _flatten_outputs(out)

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
            with _evaluating(model), torch.no_grad():
                if isinstance(arrays, dict):
                    out = model(**{k: torch.from_numpy(np.ascontiguousarray(v)).to(device)
                                   for k, v in arrays.items()})
                else:
                    out = model(torch.from_numpy(np.ascontiguousarray(arrays)).to(device))
            return _flatten_outputs(out)
        finally:
            model.to(was)
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    def dynamic_variants(self, prepared: Any, dynamic: Mapping[str, Mapping[int, str]]
                         ) -> list[tuple[str, Any]]:
        """The sample cut to smaller sizes of each named dynamic dimension (every input
        sharing the name cut alike): parity must hold at sizes the sample did not have."""
        arrays = prepared if isinstance(prepared, dict) else {"input": prepared}
        out = []
        for name in sorted(_dim_names(dynamic)):
            axes = {k: [int(a) for a, d in dynamic.get(k, {}).items() if d == name]
                    for k in arrays}
            size = next(arrays[k].shape[a[0]] for k, a in axes.items() if a)
            for smaller in sorted({1, max(1, size // 2), size - 1} - {size, 0}):
                cut = {k: v[tuple(slice(0, smaller) if i in axes[k] else slice(None)
                                  for i in range(v.ndim))] for k, v in arrays.items()}
                out.append((f"{name}={smaller}",
                            cut if isinstance(prepared, dict) else cut["input"]))
        return out

    # -- conversion -------------------------------------------------------------------

    def convert(self, model: Any, sample: Any, inputs: list[TensorSpec], *,
                opset: int | None, dynamic: Mapping[str, Mapping[int, str]] | None = None
                ) -> Conversion:
        """Export in eval mode; the user's module gets its own modes back afterwards."""
        with _evaluating(model):
            return self._convert(model, sample, inputs, opset=opset, dynamic=dynamic)

    def _convert(self, model: Any, sample: Any, inputs: list[TensorSpec], *,
                 opset: int | None, dynamic: Mapping[str, Mapping[int, str]] | None
                 ) -> Conversion:
        torch = _torch()
        arrays = self.prepare(model, sample)
        dims = _dynamic_dims(inputs, arrays, dynamic or {})
        inputs = [TensorSpec(s.name, s.dtype, tuple(dims.get(s.name, {}).get(i, d)
                                                    for i, d in enumerate(s.shape)))
                  for s in inputs]
        reference = self.predict(model, arrays)
        output_names = list(reference)
        example = _at_least_two_rows(arrays)
        attempts: list[str] = []
        branch: _DataDependent | None = None
        for strategy in ("dynamo", "torchscript"):
            try:
                onx = _export(torch, model, example, inputs, output_names, strategy,
                              opset or DEFAULT_OPSET, dims)
                outputs = _validate(onx, inputs, arrays, output_names, reference)
            except _DataDependent as exc:
                attempts.append(f"{strategy}: {exc}")
                branch = branch or exc
                continue
            except _Failed as exc:
                attempts.append(f"{strategy}: {exc}")
                continue
            attempts.append(f"{strategy}: ok")
            return Conversion(
                model=onx, inputs=inputs, outputs=outputs,
                source={"framework": self.framework, "class": self.describe(model),
                        "versions": {"torch": torch.__version__}},
                converter={"name": "torch.onnx", "version": torch.__version__,
                           "strategy": strategy, "attempts": attempts,
                           "dynamic_dims": {k: {str(a): n for a, n in v.items()}
                                            for k, v in dims.items()},
                           "notes": [f"exported with a dynamic batch dimension, checked at "
                                     f"batch sizes {', '.join(map(str, PARITY_BATCHES))}"]
                           + ([f"dimensions {', '.join(sorted(_dim_names(dims)))} are dynamic "
                               "too, checked at the sample's size and smaller"]
                              if _dim_names(dims) else [])},
                precision="float64" if any(s.dtype == "float64" for s in inputs)
                else "float32",
                tolerances={o.name: HALF_TOLERANCE if o.dtype == "float16" else Tolerance()
                            for o in outputs},
            )
        if branch is not None:
            raise UnsupportedModelError(
                f"{self.describe(model)} branches on a tensor's value in Python at "
                f"{branch.where}: an exported graph would hold only the branch the sample "
                "took, and give wrong answers for inputs that take the other",
                expected="control flow the graph can hold: torch.cond, torch.where, or "
                "branches on shapes and constants only",
                found="; ".join(attempts)[:1500],
                hint="write the branch as torch.cond(pred, true_fn, false_fn, (x,)) (both "
                "branches are exported and the graph chooses per call), or compute both and "
                "pick with torch.where(cond, a, b)",
            )
        raise UnsupportedModelError(
            f"torch.onnx could not export {self.describe(model)} with a dynamic batch",
            expected="a module torch.onnx exports (dynamo or TorchScript exporter)",
            found="; ".join(attempts)[:1500],
            hint=("a program loaded from .pt2 keeps the shapes it was exported with: export "
                  "it with a dynamic batch, torch.export.export(model, args, dynamic_shapes="
                  "({0: torch.export.Dim('batch')},))" if _is_program(model) else
                  "see docs/pytorch.md for the usual causes: data-dependent control flow, "
                  "unsupported operators, Python-side state in forward()"),
        )


class _Failed(Exception):
    pass


class _DataDependent(_Failed):
    """The module decides on a tensor's value in Python (``if x.sum() > 0:``): the dynamo
    exporter cannot export it, and tracing would bake in the branch the sample took."""

    def __init__(self, where: str, how: str) -> None:
        super().__init__(f"data-dependent control flow at {where} ({how})")
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
    return _DataDependent(where, "dynamo: could not guard on a data-dependent expression")


def _is_program(model: Any) -> bool:
    return "GraphModule" in type(model).__qualname__


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


def _to_numpy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        if str(getattr(v, "dtype", "")) == "torch.bfloat16":
            raise UnsupportedModelError(
                "baton does not convert bfloat16 tensors: numpy has no bfloat16 type to "
                "feed or compare them, and onnxruntime's CPU kernels for it are few",
                expected="float32, float64, float16, integer or bool tensors",
                found="a torch.bfloat16 tensor",
                hint="convert a float32 copy (copy.deepcopy(model).float(), with float32 "
                "inputs), or a float16 one (.half()): baton converts both, float16 within "
                "half precision's tolerance")
        return v.detach().cpu().numpy()
    return np.asarray(v)


def _flatten_outputs(out: Any) -> dict[str, np.ndarray]:
    if isinstance(out, Mapping):
        return {str(k): _to_numpy(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return {f"output_{i}": _to_numpy(v) for i, v in enumerate(out)}
    return {"output": _to_numpy(out)}


def _dim_names(dims: Mapping[str, Mapping[int, str]]) -> set[str]:
    return {d for m in dims.values() for d in m.values()}


def _dynamic_dims(inputs: list[TensorSpec], arrays: Any, dynamic: Mapping[str, Any]
                  ) -> dict[str, dict[int, str]]:
    """``dynamic`` checked against the inputs: known names, axes past the batch, and sizes
    of at least 2 in the sample (from size 1 torch.export specialises the dimension)."""
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
        for axis, dim in axes.items():
            axis = int(axis)
            if not 0 < axis < rank:
                raise UsageError(
                    f"input {name!r} has no dimension {axis} that could be dynamic",
                    expected=f"an axis between 1 and {rank - 1} (0 is the batch, always "
                    "dynamic)", found=str(axis), hint="count axes from 0, the batch",
                )
            if found[name].shape[axis] < 2:
                raise UsageError(
                    f"dimension {axis} of input {name!r} has size "
                    f"{found[name].shape[axis]} in the sample",
                    expected="a size of at least 2 for a dynamic dimension",
                    found=f"shape {list(found[name].shape)}",
                    hint="pass a sample whose dynamic dimensions have at least 2 elements "
                    "(from size 1 the exporter bakes the size into the graph)",
                )
            out.setdefault(name, {})[axis] = str(dim)
    return out


def _at_least_two_rows(arrays: Any) -> Any:
    def grow(a: np.ndarray) -> np.ndarray:
        return a if len(a) >= 2 else np.concatenate([a, a])
    if isinstance(arrays, dict):
        return {k: grow(v) for k, v in arrays.items()}
    return grow(arrays)


def _export(torch: Any, model: Any, example: Any, inputs: list[TensorSpec],
            output_names: list[str], strategy: str, opset: int,
            dims: Mapping[str, Mapping[int, str]]) -> Any:
    import onnx

    names = [s.name for s in inputs]
    tensors = ({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in example.items()}
               if isinstance(example, dict) else torch.from_numpy(np.ascontiguousarray(example)))
    kwargs = tensors if isinstance(tensors, dict) and names != ["input"] else None
    args: tuple[Any, ...] = () if kwargs is not None else (
        tuple(tensors.values()) if isinstance(tensors, dict) else (tensors,))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if strategy == "dynamo":
                batch = torch.export.Dim("batch", min=1)
                named = {d: torch.export.Dim(d, min=1) for d in _dim_names(dims)}

                def axes(n: str) -> dict[int, Any]:
                    return {0: batch, **{a: named[d] for a, d in dims.get(n, {}).items()}}
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
                    dynamic_axes={n: {0: "N", **dict(dims.get(n, {}))}
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
        raise (_data_dependent_in(exc) or _Failed(first_line(exc, 300, with_type=True))
               ) from exc


def _validate(onx: Any, inputs: list[TensorSpec], arrays: Any, output_names: list[str],
              reference: dict[str, np.ndarray]) -> list[TensorSpec]:
    from baton.runtime.session import make_ort_session
    from baton.schema import from_ort

    try:
        sess = make_ort_session(onx.SerializeToString())
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
        raise _Failed(f"onnxruntime cannot load it: {first_line(exc, 200)}") from exc
    got = [o.name for o in sess.get_outputs()]
    if got != output_names:
        raise _Failed(f"outputs {got}, expected {output_names}")
    for batch in (1, 2, 7):
        feeds = _rows(arrays, batch)
        feeds = feeds if isinstance(feeds, dict) else {inputs[0].name: feeds}
        try:
            sess.run(None, {s.name: feeds[s.name].astype(s.dtype if s.dtype != "string"
                                                         else object) for s in inputs})
        except Exception as exc:  # noqa: BLE001
            raise _Failed(f"onnxruntime rejects batch {batch}: "
                          f"{first_line(exc, 200)}") from exc
    outs = []
    for o in sess.get_outputs():
        spec = from_ort(o)
        kind = "tensor" if spec.dtype.startswith("float") else "label"
        outs.append(TensorSpec(spec.name, spec.dtype, (BATCH, *reference[o.name].shape[1:]),
                               kind=kind))
    return outs


def _rows(arrays: Any, n: int) -> Any:
    """``n`` rows from the sample, repeating it as needed."""
    def take(a: np.ndarray) -> np.ndarray:
        return a[np.arange(n) % len(a)]
    if isinstance(arrays, dict):
        return {k: take(v) for k, v in arrays.items()}
    return take(arrays)


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
            return torch.export.load(str(path)).module()
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
