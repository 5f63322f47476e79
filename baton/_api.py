"""The library API: ``convert``, ``load``, ``check``, ``verify``."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from typing import Any

import numpy as np

from baton.bundle import Bundle, cast_expected, golden_rows
from baton.errors import SchemaError
from baton.parity.report import Report
from baton.runtime._files import SCHEMA_VERSION
from baton.schema import n_rows, take_rows, to_feeds, to_jsonable
from baton.tolerance import ToleranceArg


def convert(model: Any, sample: Any, *, name: str | None = None, opset: int | None = None
            ) -> Bundle:
    """Convert a fitted model to an ONNX :class:`Bundle`, proving parity on ``sample``.

    ``sample`` holds real inputs (a numpy array or a pandas DataFrame); the input schema is
    inferred from it, golden vectors are drawn from it, and parity is checked on all of it
    (``bundle.report``).
    """
    import onnx
    import onnxruntime

    from baton import __version__
    from baton.converters import find_converter
    from baton.converters._graph import opset_of
    from baton.parity.check import parity_on

    converter = find_converter(model)
    if n_rows(sample) == 0:
        raise SchemaError("the sample is empty", expected="at least one row", found="0 rows",
                          hint="pass real rows of the data the model will see")
    inputs = converter.infer_inputs(model, sample)
    conv = converter.convert(model, sample, inputs, opset=opset)
    model_bytes = conv.model.SerializeToString()
    report, expected, actual = parity_on(model, converter, model_bytes, conv.inputs,
                                         conv.outputs, conv.tolerances, sample)
    for batch in getattr(converter, "parity_batches", ()):
        # every batch size the model must serve, from the sample's rows repeated as needed
        at_batch = take_rows(converter.prepare(model, sample), np.arange(batch) % n_rows(sample))
        extra, _, _ = parity_on(model, converter, model_bytes, conv.inputs, conv.outputs,
                                conv.tolerances, at_batch)
        for diff in extra.outputs:
            diff.name = f"{diff.name} @ batch {batch}"
            report.outputs.append(diff)
    rows = golden_rows(n_rows(sample))
    prepared = converter.prepare(model, sample)
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
        "golden": {"dir": "test_data_set_0", "rows": int(len(rows)),
                   "row_indices": to_jsonable(rows)},
        "files": {},
    }
    return Bundle(model_bytes, manifest, golden_in, golden_out, report)


def _default_name(class_path: str) -> str:
    return class_path.rsplit(".", 1)[-1]


def check(model: Any, bundle_or_onnx: Any, data: Any, *, tolerance: ToleranceArg = None
          ) -> Report:
    """Compare ``model`` with its converted form (a Bundle, bundle path or ``.onnx``) on
    ``data``; ``bool(report)`` is the verdict."""
    from baton.parity.check import check as _check

    return _check(model, bundle_or_onnx, data, tolerance=tolerance)


def verify(path: str | os.PathLike[str]) -> Report:
    """Check a bundle's hashes and golden vectors on this machine's onnxruntime."""
    from baton.parity.check import verify as _verify

    return _verify(path)


__all__ = ["convert", "check", "verify"]
