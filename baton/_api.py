"""The library API: ``convert``, ``load``, ``check``, ``verify``."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np

from baton.bundle import Bundle, cast_expected, golden_rows
from baton.errors import SchemaError, UsageError
from baton.parity.report import Report
from baton.parity.search import SearchBudget
from baton.runtime._files import SCHEMA_VERSION
from baton.schema import n_rows, take_rows, to_feeds, to_jsonable
from baton.tolerance import ToleranceArg


def convert(model: Any, sample: Any, *, name: str | None = None, opset: int | None = None,
            dynamic: Mapping[str, Mapping[int, str]] | None = None, provider: str = "cpu",
            require_provider: bool = False, tf32: bool = False, tune: bool = True
            ) -> Bundle:
    """Convert a fitted model to an ONNX :class:`Bundle`, proving parity on ``sample``.

    ``sample`` holds real inputs (a numpy array or a pandas DataFrame; tensors for
    PyTorch); the input schema is inferred from it, golden vectors are drawn from it, and
    parity is checked on all of it (``bundle.report``).

    ``dynamic`` (PyTorch) names dimensions other than the batch that vary, e.g.
    ``{"ids": {1: "seq"}, "mask": {1: "seq"}}``. ``provider="cuda"`` checks parity on
    onnxruntime's CUDA execution provider (TF32 off unless ``tf32``); without one the CUDA
    check is skipped with a note, or refused when ``require_provider``. ``tune`` picks the
    graph optimisation level (see :mod:`baton.parity.tuning`).
    """
    import onnx
    import onnxruntime

    from baton import __version__
    from baton.converters import find_converter
    from baton.converters._graph import opset_of
    from baton.parity.check import describe_run, parity_on, run_settings
    from baton.parity.tuning import tune_session

    converter = find_converter(model)
    run, run_notes = run_settings(provider, require_provider, tf32)
    if n_rows(sample) == 0:
        raise SchemaError("the sample is empty", expected="at least one row", found="0 rows",
                          hint="pass real rows of the data the model will see")
    inputs = converter.infer_inputs(model, sample)
    dyn: Any = converter  # a converter with dynamic dimensions (PyTorch)
    if dynamic:
        if not hasattr(dyn, "dynamic_variants"):
            raise UsageError(
                "dynamic dimensions other than the batch apply to PyTorch models only",
                expected="no 'dynamic' argument for a " + converter.framework + " model",
                found="dynamic=" + repr(dict(dynamic)),
                hint="drop it: tabular models take rows of fixed width, with a dynamic batch",
            )
        conv = dyn.convert(model, sample, inputs, opset=opset, dynamic=dynamic)
    else:
        conv = converter.convert(model, sample, inputs, opset=opset)
    model_bytes = conv.model.SerializeToString()
    report, expected, actual = parity_on(model, converter, model_bytes, conv.inputs,
                                         conv.outputs, conv.tolerances, sample, run)
    prepared = converter.prepare(model, sample)
    variants = [(f"batch {b}", take_rows(prepared, np.arange(b) % n_rows(sample)))
                for b in getattr(converter, "parity_batches", ())]
    if dynamic:
        variants += dyn.dynamic_variants(prepared, dynamic)
    for label, variant in variants:
        # every batch size (and dynamic size) the model must serve
        extra, _, _ = parity_on(model, converter, model_bytes, conv.inputs, conv.outputs,
                                conv.tolerances, variant, run)
        for diff in extra.outputs:
            diff.name = f"{diff.name} @ {label}"
            report.outputs.append(diff)
    report.notes += run_notes + describe_run(run, "cuda" if run.uses_cuda and hasattr(
        converter, "predict_on_device") else "cpu")
    rows = golden_rows(n_rows(sample))
    golden_in = to_feeds(take_rows(prepared, rows), conv.inputs)
    golden_out = {o.name: cast_expected(expected[o.name][rows], o, actual[o.name][rows])
                  for o in conv.outputs}
    bundle_name = name or _default_name(conv.source.get("final_estimator") or conv.source["class"])
    report.target = bundle_name
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": bundle_name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "baton_version": __version__,
        "source": {**conv.source, "python": platform.python_version()},
        "converter": conv.converter,
        "onnx": {
            "ir_version": int(conv.model.ir_version),
            "opsets": opset_of(conv.model),
            "onnx_version": onnx.__version__,
            "onnxruntime_version": onnxruntime.__version__,
        },
        "precision": conv.precision,
        "inputs": [s.to_dict() for s in conv.inputs],
        "outputs": [s.to_dict() for s in conv.outputs],
        "tolerances": {k: t.to_dict() for k, t in conv.tolerances.items()},
        "parity": report.summary(),
        "runtime": (tune_session(model_bytes, to_feeds(prepared, conv.inputs), expected,
                                 conv.outputs, conv.tolerances, run) if tune and report
                    else {"graph_optimization_level": "all"}),
        "parity_settings": run.to_dict(),
        "golden": {"dir": "test_data_set_0", "rows": int(len(rows)),
                   "row_indices": to_jsonable(rows)},
        "files": {},
    }
    return Bundle(model_bytes, manifest, golden_in, golden_out, report)


def _default_name(class_path: str) -> str:
    return class_path.rsplit(".", 1)[-1]


def check(model: Any, bundle_or_onnx: Any, data: Any, *, tolerance: ToleranceArg = None,
          provider: str = "cpu", require_provider: bool = False, tf32: bool = False,
          search: bool = True, search_budget: SearchBudget | str | None = None, seed: int = 0
          ) -> Report:
    """Compare ``model`` with its converted form (a Bundle, bundle path or ``.onnx``) on
    ``data``; ``bool(report)`` is the verdict. ``provider``, ``require_provider`` and
    ``tf32`` as for :func:`convert`.

    When parity holds on ``data`` and ``search`` is on, a seeded search beyond the data
    (edge cases, split thresholds, schema samples, a shrinking property search) looks for
    inputs where the two diverge, within ``search_budget`` (a ``SearchBudget`` or text such
    as ``"2000,5s"``; default 1000 examples or 5 s); its findings are ``report.search``
    (docs/search.md)."""
    from baton.parity.check import check as _check

    budget = SearchBudget.parse(search_budget) if isinstance(search_budget, str) else (
        search_budget)
    return _check(model, bundle_or_onnx, data, tolerance=tolerance, provider=provider,
                  require_provider=require_provider, tf32=tf32, search=search,
                  search_budget=budget, seed=seed)


def verify(path: str | os.PathLike[str], *, digest: str | None = None) -> Report:
    """Check a bundle's hashes and golden vectors on this machine's onnxruntime; with
    ``digest`` (``sha256:…``, as ``baton inspect`` prints it), also that it is the bundle
    that digest pins. ``report.digest`` is the bundle's digest either way."""
    from baton.parity.check import verify as _verify

    return _verify(path, digest)


__all__ = ["convert", "check", "verify"]
