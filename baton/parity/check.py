"""``check`` (original model vs converted model on data) and ``verify`` (golden vectors)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from baton.parity.stream import CheckAccumulator
from baton.results.report import Report
from baton.results.search import SEARCH_SCOPES, SearchResult
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
    _check_scope(search_scope)
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
    region = _region(target, prepared, envelope)
    masks = region.masks()
    expected, actual, positions = apply_masks(masks, prepared, expected, actual, pairs)
    tolerances = _tolerances(pairs, tolerance, target, atol, rtol)
    for ref_name, onnx_name in pairs:
        tol = tolerances[onnx_name]
        diffs.append(compare(
            onnx_name, kinds.get(onnx_name) or ref_name, expected[ref_name], actual[onnx_name],
            tol, lambda r: row_values(prepared, r),
        ))
        _positions(diffs[-1], positions.get(onnx_name))
    whole = unbatched(target.inputs)
    found = _search(model, converter, target, run, prepared, pairs, tolerances, region, diffs,
                    notes, search=search, search_budget=search_budget, seed=seed,
                    reproduce=reproduce, search_scope=search_scope, strict_search=strict_search)
    return report_from(diffs, model=converter.describe(model), target=target,
                       rows=n_rows(prepared, whole), data_name=data_name, notes=notes,
                       search=found)


#: rows of the data a streamed check keeps (a seeded uniform sample) for the search
SEARCH_SAMPLE_ROWS = 10_000


def check_batches(
    model: Any,
    bundle_or_onnx: Any,
    batches: Iterable[Any],
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
    sample_rows: int = SEARCH_SAMPLE_ROWS,
) -> Report:
    """:func:`check` over ``batches`` of the data (DataFrames, arrays or dicts of arrays,
    e.g. :func:`baton.io.iter_batches`), one at a time: memory does not grow with the
    rows (:mod:`baton.parity.stream`). The report equals ``check``'s on all the rows at
    once (p99 beyond the exact buffer from a sketch, which the output says). The search,
    when on, starts from a seeded sample of ``sample_rows`` rows (all of them when there
    are fewer; the notes say so), which also gives a bare ``.onnx`` its envelope.

    Outputs compared under an attention mask, and inputs without a batch dimension, are
    not streamed: such a check is refused (load the data and call :func:`check`)."""
    from baton.io import Reservoir

    _check_scope(search_scope)
    run, notes = run_settings(provider, require_provider, tf32)
    target = open_target(bundle_or_onnx, run)
    whole = unbatched(target.inputs)
    if whole:
        raise UsageError(
            "this model cannot be checked in batches",
            expected="inputs with a batch dimension",
            found=f"{', '.join(whole)} without one (fed whole)",
            hint="load the data and call baton.check(model, bundle, data), or pass "
            "--rows N to check a sample in memory")
    reservoir = Reservoir(sample_rows, seed)
    acc: CheckAccumulator | None = None
    pairs: list[tuple[str, str]] = []
    tolerances: dict[str, Tolerance] = {}
    where, offset = "cpu", 0
    for batch in batches:
        prepared = converter.prepare(model, batch)
        if not n_rows(prepared):
            continue
        expected, where = reference_outputs(converter, model, prepared, run)
        actual = target.run(to_feeds(prepared, target.inputs))
        if acc is None:
            masks = (target.envelope or Envelope.observe(prepared)).masks()
            if masks:
                raise UsageError(
                    "outputs compared under an attention mask cannot be checked in batches",
                    expected="no mask inputs", found="mask inputs " + ", ".join(masks),
                    hint="load the data and call baton.check(model, bundle, data), or pass "
                    "--rows N to check a sample in memory")
            acc = accumulator_for(target, expected, tolerance=tolerance, atol=atol, rtol=rtol)
            pairs, tolerances = acc.pairs, {o: a.tolerance for o, a in acc.outputs.items()}
        acc.update(prepared, expected, actual, offset)
        offset += n_rows(prepared)
        if search:  # the search's sample (without one, nothing is kept)
            reservoir.add(prepared)
    if acc is None:
        raise UsageError("the data has no rows", expected="at least one row",
                         found="0 rows", hint="check the data file")
    notes += describe_run(run, where)
    diffs = acc.diffs()
    found = None
    if search:
        sample = reservoir.sample()
        found = _search(model, converter, target, run, sample, pairs, tolerances,
                        _region(target, sample, envelope), diffs, notes, search=search,
                        search_budget=search_budget, seed=seed, reproduce=reproduce,
                        search_scope=search_scope, strict_search=strict_search)
    if found is not None and reservoir.sampled:
        notes.append(f"parity search started from a seeded sample of {sample_rows:,} of the "
                     f"{acc.rows:,} rows" + ("" if target.envelope else
                                             ", which also gave the envelope"))
    return report_from(acc, model=converter.describe(model), target=target,
                       data_name=data_name, notes=notes, search=found)


def accumulator_for(target: Target, expected: Mapping[str, Any], *,
                    tolerance: ToleranceArg = None, atol: float | None = None,
                    rtol: float | None = None) -> CheckAccumulator:
    """An empty :class:`~baton.parity.stream.CheckAccumulator` for ``target``'s outputs
    against the original's (``expected``: its outputs on any batch, for their names), with
    the tolerances ``check`` would use."""
    from baton.parity.stream import CheckAccumulator

    pairs = _match_outputs(expected, target.outputs)
    return CheckAccumulator(pairs, {o.name: o.kind for o in target.outputs},
                            _tolerances(pairs, tolerance, target, atol, rtol))


def report_from(acc: CheckAccumulator | list[OutputDiff], *, model: str,
                target: Target | str, data_name: str | None = None,
                notes: Sequence[str] = (), rows: int | None = None,
                search: SearchResult | None = None) -> Report:
    """The check's :class:`Report` from a :class:`~baton.parity.stream.CheckAccumulator`
    (or the diffs themselves, with ``rows``): ``model`` the original's description
    (``converter.describe(model)``), ``target`` the converted side (a :class:`Target`,
    whose digest the report records, or its description)."""
    diffs = acc if isinstance(acc, list) else acc.diffs()
    if rows is None:
        rows = 0 if isinstance(acc, list) else acc.rows
    return Report(
        kind="check", model=model,
        target=target.description if isinstance(target, Target) else str(target),
        rows=int(rows), outputs=diffs, data=data_name,
        notes=list(notes), search=search,
        digest=target.digest if isinstance(target, Target) else None,
    )


def _check_scope(search_scope: str) -> None:
    if search_scope not in SEARCH_SCOPES:
        raise UsageError(f"unknown search scope {search_scope!r}",
                         expected=" or ".join(SEARCH_SCOPES), found=repr(search_scope),
                         hint="--search-scope envelope (the default) or --search-scope all")


def _region(target: Target, prepared: Any,
            envelope: Sequence[str] | Mapping[str, Any] | None) -> Envelope:
    """The envelope the search judges by: the bundle's, else observed on ``prepared``."""
    region = target.envelope or Envelope.observe(prepared)
    return region.with_overrides(envelope, "--envelope") if envelope else region


def _tolerances(pairs: list[tuple[str, str]], tolerance: ToleranceArg, target: Target,
                atol: float | None, rtol: float | None) -> dict[str, Tolerance]:
    return {o: with_overrides(resolve(tolerance, o, target.tolerances), atol, rtol)
            for _, o in pairs}


def _search(model: Any, converter: Converter, target: Target, run: RunSettings,
            prepared: Any, pairs: list[tuple[str, str]], tolerances: dict[str, Tolerance],
            region: Envelope, diffs: list[OutputDiff], notes: list[str], *, search: bool,
            search_budget: SearchBudget | None, seed: int, reproduce: str | None,
            search_scope: str, strict_search: bool) -> SearchResult | None:
    """The parity search from ``prepared``'s rows when parity holds (else a note why not)."""
    whole = unbatched(target.inputs)
    if search and all(diffs) and whole:
        notes.append(f"parity search not run: {', '.join(whole)} ha"
                     f"{'ve' if len(whole) > 1 else 's'} no batch dimension, and the search "
                     "changes inputs row by row; check on more data instead")
    elif search and all(diffs):
        from baton.parity.search import search as run_search

        return run_search(
            lambda rows: reference_outputs(converter, model, rows, run)[0], target, prepared,
            pairs, tolerances, envelope=region, scope=search_scope, strict=strict_search,
            split_points=converter.split_points(model) if isinstance(converter, SplitPoints)
            else None, seed=seed,
            budget=search_budget,
            reproduce=reproduce or f"baton.check(model, target, data, seed={seed}, "
            f"search_budget={str(search_budget or SearchBudget())!r})")
    elif search:
        notes.append("parity search not run: parity already fails on the data")
    return None


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
