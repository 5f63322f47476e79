"""``check`` (original model vs converted model on data) and ``verify`` (golden vectors)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton.contract import Converter, RunsOnDevice, SplitPoints
from baton.envelope import Envelope
from baton.errors import (
    BatonError,
    BundleError,
    SchemaError,
    UsageError,
    first_line,
    ort_error,
)
from baton.masks import Positions, apply_masks
from baton.parity.compare import OutputDiff, compare
from baton.parity.search import SearchBudget
from baton.results.report import Report
from baton.results.search import SEARCH_SCOPES
from baton.runtime._files import MODEL, BundleFiles, parse_digest
from baton.runtime._golden import read_golden
from baton.runtime.providers import RunSettings, resolve_providers
from baton.runtime.session import Session, make_ort_session
from baton.schema import TensorSpec, from_ort, n_rows, row_values, to_feeds, unbatched
from baton.tolerance import Tolerance, ToleranceArg, resolve, with_overrides

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
    #: the bundle's digest (``sha256:…``); None for a bare .onnx or an unsaved bundle
    digest: str | None = None
    #: the region of inputs the bundle's proof covers; None for a bare .onnx
    envelope: Envelope | None = None


def open_target(bundle_or_onnx: Any, settings: RunSettings | None = None) -> Target:
    """The converted side, run with ``settings`` (providers, TF32; by default the CPU and,
    for a bundle, the graph optimisation level recorded in it)."""
    from baton.bundle import Bundle

    if isinstance(bundle_or_onnx, Bundle):
        manifest = bundle_or_onnx.typed_manifest
        sess = make_ort_session(bundle_or_onnx.model_bytes,
                                settings=_with_tuning(settings, manifest.optimization))
        names = [o.name for o in sess.get_outputs()]
        return Target(
            str(bundle_or_onnx.path or f"<bundle {manifest.name}>"),
            manifest.inputs, manifest.outputs, manifest.tolerances,
            lambda feeds: dict(zip(names, sess.run(names, feeds))), bundle_or_onnx.digest,
            manifest.envelope,
        )
    path = Path(os.fspath(bundle_or_onnx))
    if path.suffix.lower() == ".onnx" and path.is_file():
        return _bare_onnx(path, settings)
    run = settings or RunSettings()
    session = Session(path, providers=run.providers, tf32=run.tf32)
    return Target(str(path), session.inputs, session.outputs, session.manifest.tolerances,
                  session.run, session.files.digest(session.manifest), session.manifest.envelope)


def _with_tuning(settings: RunSettings | None, level: str) -> RunSettings:
    return dataclasses.replace(settings or RunSettings(), optimization=level)


def _bare_onnx(path: Path, settings: RunSettings | None = None) -> Target:
    try:
        sess = make_ort_session(str(path), settings=settings)
    except BatonError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
        raise ort_error(exc, BundleError, f"onnxruntime cannot load {path}",
                        expected="an ONNX model this onnxruntime can run",
                        hint="check the file is a complete .onnx model") from exc
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
    converter: Converter,
    tolerance: ToleranceArg = None,
    atol: float | None = None,
    rtol: float | None = None,
    data_name: str | None = None,
    provider: str = "cpu",
    require_provider: bool = False,
    tf32: bool = False,
    search: bool = True,
    search_budget: SearchBudget | None = None,
    seed: int = 0,
    reproduce: str | None = None,
    envelope: Sequence[str] | Mapping[str, Any] | None = None,
    search_scope: str = "envelope",
    strict_search: bool = False,
) -> Report:
    """Compare the original ``model`` (run through its ``converter``) with its converted
    form on ``data``; then, when that passes and ``search`` is on, search beyond the data
    for inputs where they diverge (:mod:`baton.parity.search`; ``reproduce``: the command
    shown with its results). ``atol``/``rtol`` replace those of every output's tolerance
    (the caller's, else the bundle's). The search judges each divergence inside or outside
    the envelope (the bundle's, else ``data``'s, with the ``envelope`` changes); only those
    inside fail, unless ``search_scope`` is ``"all"``."""
    if search_scope not in SEARCH_SCOPES:
        raise UsageError(f"unknown search scope {search_scope!r}",
                         expected=" or ".join(SEARCH_SCOPES), found=repr(search_scope),
                         hint="--search-scope envelope (the default) or --search-scope all")
    run, notes = run_settings(provider, require_provider, tf32)
    target = open_target(bundle_or_onnx, run)
    prepared = converter.prepare(model, data)
    expected, where = reference_outputs(converter, model, prepared, run)
    notes += describe_run(run, where)
    feeds = to_feeds(prepared, target.inputs)
    actual = target.run(feeds)
    kinds = {o.name: o.kind for o in target.outputs}
    diffs: list[OutputDiff] = []
    pairs = _match_outputs(expected, target.outputs)
    region = target.envelope or Envelope.observe(prepared)
    if envelope:
        region = region.with_overrides(envelope, "--envelope")
    masks = region.masks()
    expected, actual, positions = apply_masks(masks, prepared, expected, actual, pairs)
    tolerances = {o: with_overrides(resolve(tolerance, o, target.tolerances), atol, rtol)
                  for _, o in pairs}
    for ref_name, onnx_name in pairs:
        tol = tolerances[onnx_name]
        diffs.append(compare(
            onnx_name, kinds.get(onnx_name) or ref_name, expected[ref_name], actual[onnx_name],
            tol, lambda r: row_values(prepared, r),
        ))
        _positions(diffs[-1], positions.get(onnx_name))
    found = None
    whole = unbatched(target.inputs)
    if search and all(diffs) and whole:
        notes.append(f"parity search not run: {', '.join(whole)} ha"
                     f"{'ve' if len(whole) > 1 else 's'} no batch dimension, and the search "
                     "changes inputs row by row; check on more data instead")
    elif search and all(diffs):
        from baton.parity.search import search as run_search

        found = run_search(
            lambda rows: reference_outputs(converter, model, rows, run)[0], target, prepared,
            pairs, tolerances, envelope=region, scope=search_scope, strict=strict_search,
            split_points=converter.split_points(model) if isinstance(converter, SplitPoints)
            else None, seed=seed,
            budget=search_budget,
            reproduce=reproduce or f"baton.check(model, target, data, seed={seed}, "
            f"search_budget={str(search_budget or SearchBudget())!r})")
    elif search:
        notes.append("parity search not run: parity already fails on the data")
    return Report(
        kind="check", model=converter.describe(model), target=target.description,
        rows=n_rows(prepared, whole), outputs=diffs, data=data_name, notes=notes, search=found,
        digest=target.digest,
    )


def run_settings(provider: str, require: bool, tf32: bool) -> tuple[RunSettings, list[str]]:
    """Settings for ``provider``; a provider this onnxruntime lacks is skipped with a note,
    or, when ``require`` is set, refused (exit 2)."""
    providers, notes = resolve_providers([provider], require=[provider] if require else [])
    return RunSettings(providers=providers, tf32=tf32), notes


def original_on(converter: Converter, run: RunSettings) -> str:
    """Where the original model runs beside ``run``: on the GPU when the ONNX side runs on
    CUDA and the converter can put the original there (PyTorch); otherwise on the CPU."""
    return "cuda" if run.uses_cuda and isinstance(converter, RunsOnDevice) else "cpu"


def reference_outputs(converter: Converter, model: Any, prepared: Any, run: RunSettings
                      ) -> tuple[dict[str, np.ndarray], str]:
    """The original model's outputs, and where they ran (:func:`original_on`)."""
    if original_on(converter, run) == "cuda" and isinstance(converter, RunsOnDevice):
        return converter.predict_on_device(model, prepared, "cuda", tf32=run.tf32), "cuda"
    return converter.predict(model, prepared), "cpu"


def describe_run(run: RunSettings, original_on: str) -> list[str]:
    names = ", ".join(run.to_dict()["providers"])
    if not run.uses_cuda:
        return [f"ONNX side ran on onnxruntime's {names} execution provider; the original "
                f"on the {original_on.upper()}"]
    return [f"ONNX side ran on onnxruntime's {names} execution provider with TF32 "
            f"{'on' if run.tf32 else 'off'}; the original on the {original_on.upper()}"
            + (f" with TF32 {'on' if run.tf32 else 'off'}" if original_on == "cuda" else "")]


def parity_on(model: Any, converter: Converter, model_bytes: bytes, inputs: list[TensorSpec],
              outputs: list[TensorSpec], tolerances: Mapping[str, Tolerance], data: Any,
              settings: RunSettings | None = None, envelope: Envelope | None = None,
              ) -> tuple[Report, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Parity of a fresh conversion on its sample; also returns expected and actual outputs
    (unmasked). Outputs aligned with a mask of ``envelope`` are compared where it is set."""
    run = settings or RunSettings()
    sess = make_ort_session(model_bytes, settings=run)
    prepared = converter.prepare(model, data)
    expected, _ = reference_outputs(converter, model, prepared, run)
    names = [o.name for o in outputs]
    try:
        actual = dict(zip(names, sess.run(names, to_feeds(prepared, inputs))))
    except BatonError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
        # a size the original takes and the graph does not: parity fails there
        why = f"onnxruntime rejects this input: {first_line(exc, 300)}"
        return Report(kind="convert", model=converter.describe(model), target="<new bundle>",
                      rows=n_rows(prepared), data="sample", outputs=[
                          OutputDiff(o.name, o.kind or "tensor", n_rows(prepared), False,
                                     tolerances.get(o.name, Tolerance()), message=why)
                          for o in outputs]), expected, {}
    want, got, positions = apply_masks(envelope.masks() if envelope else {}, prepared,
                                       expected, actual)
    diffs = [
        _positions(compare(o.name, o.kind or "tensor", want[o.name], got[o.name],
                           tolerances.get(o.name, Tolerance()),
                           lambda r: row_values(prepared, r)), positions.get(o.name))
        for o in outputs
    ]
    report = Report(kind="convert", model=converter.describe(model), target="<new bundle>",
                    rows=n_rows(prepared), outputs=diffs, data="sample")
    return report, expected, actual


def _positions(diff: OutputDiff, positions: Positions | None) -> OutputDiff:
    """``diff`` with the positions its mask let it compare, if one did."""
    if positions is not None:
        diff.positions = {"mask": positions.mask, "compared": positions.compared,
                          "total": positions.total}
    return diff


def verify(path: str | os.PathLike[str], digest: str | None = None) -> Report:
    """Check every file's hash and re-run the golden vectors on this machine's onnxruntime;
    with ``digest`` (``sha256:…``), the bundle must also be the one that digest pins."""
    files = BundleFiles(path)
    manifest = files.manifest()
    checks = files.integrity(manifest)
    found_digest = files.digest(manifest)
    notes: list[str] = []
    problems = []
    if digest is not None and found_digest != parse_digest(digest):
        problems.append(f"the bundle's digest is {found_digest}, not the pinned "
                        f"{parse_digest(digest)}: this is not the bundle that was proven")
    damaged = [c.name for c in checks if not c.ok and c.name.startswith("test_data_set_")]
    try:
        golden_in, golden_out = read_golden(files, manifest)
    except BundleError:
        if not damaged:
            raise
        # a golden file changed since conversion and no longer parses: the hash check
        # above already fails the bundle and names it
        golden_in, golden_out = {}, {}
    diffs: list[OutputDiff] = []
    model_ok = all(c.ok for c in checks if c.name == MODEL)
    if damaged and not golden_in:
        notes.append(f"{', '.join(damaged)} changed and cannot be read; golden vectors not run")
    elif not golden_in or not golden_out:
        notes.append("the bundle holds no golden vectors")
    elif not model_ok:
        notes.append(f"{MODEL} differs from its hash; golden vectors not run on it")
    else:
        session = Session(path, verify=False)
        actual = session.run(golden_in)
        for o in manifest.outputs:
            if o.name in golden_out:
                diffs.append(compare(o.name, o.kind or "tensor", golden_out[o.name],
                                     actual[o.name], manifest.tolerance(o.name),
                                     lambda r: row_values(golden_in, r)))
    if manifest.parity_passed is False:
        problems.append("the bundle failed parity when it was converted (see 'baton inspect' "
                        "and report.json): it reproduces here, but it is not a proven model")
    rows = len(next(iter(golden_in.values()))) if golden_in else 0
    report = Report(kind="verify", model=manifest.source_class,
                    target=str(path), rows=rows, outputs=diffs, files=checks,
                    data="golden vectors", notes=notes, problems=problems,
                    digest=found_digest)
    return report
