"""What a measurement runs: the converted model to time (:class:`Subject`), the rows it
is timed on (:class:`Workload`) and the timed callables of the ONNX model on each provider.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import SchemaError, UsageError, first_line
from baton.parity.latency.environment import threads_record
from baton.results.latency import PROVIDERS


@dataclass
class Subject:
    """The converted model to time: its bytes, input schema and golden inputs."""

    description: str
    model_bytes: bytes
    inputs: list[Any]
    golden: dict[str, np.ndarray]
    optimization: str = "all"  # the graph optimisation level the bundle was tuned to


def open_subject(bundle_or_onnx: Any) -> Subject:
    from baton.bundle import Bundle
    from baton.parity.check import open_target
    from baton.runtime._files import MODEL, BundleFiles
    from baton.runtime._golden import read_golden

    target = open_target(bundle_or_onnx)  # checks a bundle's hashes; reads a bare .onnx
    if isinstance(bundle_or_onnx, Bundle):
        return Subject(target.description, bundle_or_onnx.model_bytes, target.inputs,
                       dict(bundle_or_onnx.golden_inputs),
                       bundle_or_onnx.typed_manifest.optimization)
    path = Path(os.fspath(bundle_or_onnx))
    if path.suffix.lower() == ".onnx" and path.is_file():
        return Subject(target.description, path.read_bytes(), target.inputs, {})
    files = BundleFiles(path)
    manifest = files.manifest()
    golden, _ = read_golden(files, manifest)
    return Subject(target.description, files.read(MODEL), target.inputs, golden,
                   manifest.optimization)


def cycle_rows(data: Any, batch: int) -> Any:
    """``batch`` rows of ``data``, its rows repeated in order as often as needed."""
    from baton.schema import n_rows, take_rows

    n = n_rows(data)
    if n == 0:
        raise SchemaError("no rows to time the model on", expected="at least one row",
                          found="0 rows", hint="pass --data with real rows")
    return take_rows(data, np.arange(batch) % n)


def golden_as_data(golden: Mapping[str, np.ndarray], inputs: Sequence[Any]) -> Any:
    """The golden feeds in the form a model's ``prepare`` takes: a DataFrame when the
    inputs come from named columns, the array of a single input, else a dict by name."""
    if inputs and all(s.from_frame for s in inputs):
        import pandas as pd

        cols: dict[str, Any] = {}
        for s in inputs:
            arr = np.asarray(golden[s.name])
            names = list(s.columns) if s.columns is not None else [s.column]
            arr2 = arr.reshape(len(arr), -1)
            for i, c in enumerate(names):
                cols[c] = arr2[:, i]
        return pd.DataFrame(cols)
    if len(inputs) == 1:
        return np.asarray(golden[inputs[0].name])
    return {k: np.asarray(v) for k, v in golden.items()}


@dataclass
class Workload:
    """What one measurement runs: the ONNX feeds and, with the original, its prepared rows."""

    feeds: dict[str, np.ndarray]
    original: Callable[[], Any] | None


def make_workload(subject: Subject, batch: int, data: Any, model: Any, converter: Any
                  ) -> Workload:
    from baton.schema import to_feeds

    if data is None and not subject.golden:
        raise UsageError("no rows to time the model on",
                         expected="a bundle with golden vectors, or --data",
                         found=f"{subject.description} without golden vectors",
                         hint="pass --data FILE with rows the model takes")
    if data is None:
        feeds = {k: np.ascontiguousarray(v)
                 for k, v in cycle_rows(dict(subject.golden), batch).items()}
    else:
        prepared = converter.prepare(model, data) if converter is not None else data
        feeds = to_feeds(cycle_rows(prepared, batch), subject.inputs)
    if model is None:
        return Workload(feeds, None)
    if data is None:
        try:
            rows = converter.prepare(model, cycle_rows(golden_as_data(subject.golden,
                                                                       subject.inputs), batch))
            converter.predict(model, rows)
        except Exception as exc:  # noqa: BLE001 - each framework raises its own errors
            raise UsageError(
                "cannot rebuild the original model's input from the bundle's golden vectors",
                expected="golden vectors the original model takes",
                found=first_line(exc, 200, with_type=True),
                hint="pass --data FILE with rows in the original model's format",
            ) from exc
    else:
        rows = cycle_rows(converter.prepare(model, data), batch)
    return Workload(feeds, lambda: converter.predict(model, rows))


# -- the ONNX runners -------------------------------------------------------------------


@dataclass
class Runner:
    """A timed callable for the ONNX model on one provider, and what it records."""

    run: Callable[[], Any]
    environment: dict[str, Any]


def _settings(provider: str, threads: int | None, optimization: str, *, tf32: bool = False,
              cuda_graph: bool = False) -> Any:
    from baton.runtime.providers import RunSettings

    options = {PROVIDERS["cuda"]: {"enable_cuda_graph": "1"}} if cuda_graph else {}
    return RunSettings(providers=(provider,), tf32=tf32, optimization=optimization,
                       threads=threads or 0, provider_options=options)


def cpu_runner(subject: Subject, feeds: dict[str, np.ndarray], threads: int | None,
               env: Mapping[str, Any]) -> Runner:
    from baton.runtime.session import make_ort_session

    settings = _settings("cpu", threads, subject.optimization)
    sess = make_ort_session(subject.model_bytes, settings=settings)
    names = [o.name for o in sess.get_outputs()]
    return Runner(lambda: sess.run(names, feeds),
                  {**threads_record(threads, env), "session_providers": sess.get_providers(),
                   "graph_optimization_level": subject.optimization})


def cuda_runner(subject: Subject, feeds: dict[str, np.ndarray], threads: int | None,
                env: Mapping[str, Any], *, cuda_graph: bool = False, tf32: bool = False
                ) -> Runner:
    """The model on the CUDA provider with device-resident inputs and outputs (I/O binding);
    ``cuda_graph`` captures the run once and replays it (fixed shapes only); TF32 is off
    unless asked. onnxruntime synchronises the CUDA stream at the end of each run, so the
    wall time of ``run_with_iobinding`` includes the GPU's work.

    Not exercised on a GPU in baton's own test-suite (its CI machines have none)."""
    import onnxruntime as ort

    from baton.runtime.session import make_ort_session

    settings = _settings("cuda", threads, subject.optimization, tf32=tf32,
                         cuda_graph=cuda_graph)
    sess = make_ort_session(subject.model_bytes, settings=settings)
    names = [o.name for o in sess.get_outputs()]
    first = dict(zip(names, sess.run(names, feeds)))  # shapes and dtypes of the outputs
    io = sess.io_binding()
    keep: list[Any] = []  # device buffers must outlive the binding
    host_inputs = []
    for name, arr in feeds.items():
        if arr.dtype == object:  # strings cannot live on the device
            io.bind_cpu_input(name, arr)
            host_inputs.append(name)
            continue
        value = ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
        keep.append(value)
        io.bind_ortvalue_input(name, value)
    host_outputs = []
    for name in names:
        out = first[name]
        if not isinstance(out, np.ndarray) or out.dtype == object:
            io.bind_output(name, "cpu")
            host_outputs.append(name)
        elif cuda_graph:  # a replayed graph writes to fixed addresses
            value = ort.OrtValue.ortvalue_from_shape_and_type(out.shape, out.dtype, "cuda", 0)
            keep.append(value)
            io.bind_ortvalue_output(name, value)
        else:
            io.bind_output(name, "cuda", 0)
    io.synchronize_inputs()

    def run() -> None:
        sess.run_with_iobinding(io)

    return Runner(run, {
        **threads_record(threads, env), "session_providers": sess.get_providers(),
        "graph_optimization_level": subject.optimization, "io_binding": True,
        "cuda_graph": cuda_graph, "tf32": tf32, "device_id": 0,
        "inputs_on_host": host_inputs, "outputs_on_host": host_outputs,
    })


def onnx_runner(provider: str, subject: Subject, feeds: dict[str, np.ndarray],
                threads: int | None, env: Mapping[str, Any], *, cuda_graph: bool = False,
                tf32: bool = False) -> Runner:
    if provider == "cuda":
        return cuda_runner(subject, feeds, threads, env, cuda_graph=cuda_graph, tf32=tf32)
    return cpu_runner(subject, feeds, threads, env)
