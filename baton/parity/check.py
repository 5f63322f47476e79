"""``check`` (original model vs converted model on data) and ``verify`` (golden vectors)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import BundleError, SchemaError
from baton.parity.compare import OutputDiff, compare
from baton.parity.report import Report
from baton.runtime._files import MODEL, BundleFiles
from baton.runtime.session import Session, make_ort_session
from baton.schema import TensorSpec, from_ort, n_rows, row_values, to_feeds
from baton.tolerance import Tolerance, ToleranceArg, resolve

#: Names other tools give the outputs baton calls label/probabilities/prediction.
OUTPUT_ALIASES = {
    "output_label": "label",
    "output_probability": "probabilities",
    "probability": "probabilities",
    "variable": "prediction",
    "predictions": "prediction",
}


@dataclass
class Target:
    """The converted side of a comparison: what it takes, gives, and how to run it."""

    description: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    tolerances: dict[str, Tolerance]
    run: Callable[[dict[str, np.ndarray]], dict[str, Any]]


def open_target(bundle_or_onnx: Any) -> Target:
    from baton.bundle import Bundle

    if isinstance(bundle_or_onnx, Bundle):
        sess = make_ort_session(bundle_or_onnx.model_bytes)
        names = [o.name for o in sess.get_outputs()]
        return Target(
            str(bundle_or_onnx.path or f"<bundle {bundle_or_onnx.name}>"),
            bundle_or_onnx.inputs, bundle_or_onnx.outputs, bundle_or_onnx.tolerances,
            lambda feeds: dict(zip(names, sess.run(names, feeds))),
        )
    path = Path(os.fspath(bundle_or_onnx))
    if path.suffix.lower() == ".onnx" and path.is_file():
        return _bare_onnx(path)
    session = Session(path)
    tolerances = {k: Tolerance.from_dict(v)
                  for k, v in session.manifest.get("tolerances", {}).items()}
    return Target(str(path), session.inputs, session.outputs, tolerances, session.run)


def _bare_onnx(path: Path) -> Target:
    try:
        sess = make_ort_session(str(path))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
        raise BundleError(
            f"onnxruntime cannot load {path}",
            expected="an ONNX model this onnxruntime can run",
            found=str(exc).strip().splitlines()[0][:300],
            hint="check the file is a complete .onnx model",
        ) from exc
    ins = sess.get_inputs()
    inputs = [from_ort(i) for i in ins]
    if len(ins) > 1:  # several inputs: each from the data column of its name
        inputs = [dataclasses.replace(s, column=s.name) for s in inputs]
    outputs = [from_ort(o) for o in sess.get_outputs()]
    names = [o.name for o in outputs]
    return Target(str(path), inputs, outputs, {},
                  lambda feeds: dict(zip(names, sess.run(names, feeds))))


def _match_outputs(expected: Mapping[str, Any], outputs: list[TensorSpec]) -> list[tuple[str, str]]:
    """Pairs (original output, ONNX output): by name, then known aliases, then position."""
    onnx_names = [o.name for o in outputs]
    by_alias = {OUTPUT_ALIASES.get(n, n): n for n in onnx_names}
    pairs = [(k, by_alias[k]) for k in expected if k in by_alias]
    if len(pairs) == len(expected):
        return pairs
    if len(onnx_names) == len(expected):
        return list(zip(expected, onnx_names))
    raise SchemaError(
        "cannot tell which ONNX output matches which prediction of the original model",
        expected="outputs " + ", ".join(expected),
        found="outputs " + ", ".join(onnx_names),
        hint="name the ONNX outputs like the original's predictions, or convert with "
        "'baton convert', which does",
    )


def check(
    model: Any,
    bundle_or_onnx: Any,
    data: Any,
    *,
    tolerance: ToleranceArg = None,
    data_name: str | None = None,
) -> Report:
    """Compare the original ``model`` with its converted form on ``data``."""
    from baton.converters import find_converter

    converter = find_converter(model)
    target = open_target(bundle_or_onnx)
    prepared = converter.prepare(model, data)
    expected = converter.predict(model, prepared)
    feeds = to_feeds(prepared, target.inputs)
    actual = target.run(feeds)
    kinds = {o.name: o.kind for o in target.outputs}
    diffs: list[OutputDiff] = []
    for ref_name, onnx_name in _match_outputs(expected, target.outputs):
        tol = resolve(tolerance, onnx_name, target.tolerances)
        diffs.append(compare(
            onnx_name, kinds.get(onnx_name) or ref_name, expected[ref_name], actual[onnx_name],
            tol, lambda r: row_values(prepared, r),
        ))
    return Report(
        kind="check", model=converter.describe(model), target=target.description,
        rows=n_rows(prepared), outputs=diffs, data=data_name,
    )


def parity_on(model: Any, converter: Any, model_bytes: bytes, inputs: list[TensorSpec],
              outputs: list[TensorSpec], tolerances: Mapping[str, Tolerance], data: Any
              ) -> tuple[Report, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Parity of a fresh conversion on its sample; also returns expected and actual outputs."""
    sess = make_ort_session(model_bytes)
    prepared = converter.prepare(model, data)
    expected = converter.predict(model, prepared)
    names = [o.name for o in outputs]
    actual = dict(zip(names, sess.run(names, to_feeds(prepared, inputs))))
    diffs = [
        compare(o.name, o.kind or "tensor", expected[o.name], actual[o.name],
                tolerances.get(o.name, Tolerance()), lambda r: row_values(prepared, r))
        for o in outputs
    ]
    report = Report(kind="convert", model=converter.describe(model), target="<new bundle>",
                    rows=n_rows(prepared), outputs=diffs, data="sample")
    return report, expected, actual


def verify(path: str | os.PathLike[str]) -> Report:
    """Check every file's hash and re-run the golden vectors on this machine's onnxruntime."""
    from baton.bundle import read_golden

    files = BundleFiles(path)
    manifest = files.manifest()
    checks = files.integrity(manifest)
    golden_in, golden_out = read_golden(files, manifest)
    outputs = [TensorSpec.from_dict(d) for d in manifest["outputs"]]
    tolerances = {k: Tolerance.from_dict(v) for k, v in manifest.get("tolerances", {}).items()}
    notes: list[str] = []
    diffs: list[OutputDiff] = []
    model_ok = all(c.ok for c in checks if c.name == MODEL)
    if not golden_in or not golden_out:
        notes.append("the bundle holds no golden vectors")
    elif not model_ok:
        notes.append(f"{MODEL} differs from its hash; golden vectors not run on it")
    else:
        session = Session(path, verify=False)
        actual = session.run(golden_in)
        for o in outputs:
            if o.name in golden_out:
                diffs.append(compare(o.name, o.kind or "tensor", golden_out[o.name],
                                     actual[o.name], tolerances.get(o.name, Tolerance()),
                                     lambda r: row_values(golden_in, r)))
    problems = []
    if manifest.get("parity", {}).get("passed") is False:
        problems.append("the bundle failed parity when it was converted (see 'baton inspect' "
                        "and report.json): it reproduces here, but it is not a proven model")
    rows = len(next(iter(golden_in.values()))) if golden_in else 0
    report = Report(kind="verify", model=str(manifest.get("source", {}).get("class", "?")),
                    target=str(path), rows=rows, outputs=diffs, files=checks,
                    data="golden vectors", notes=notes, problems=problems)
    return report
