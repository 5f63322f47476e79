"""The library API: ``convert``, ``load``, ``check``, ``verify``."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from baton.bundle import Bundle, cast_expected, golden_rows
from baton.contract import DynamicDimensions, ParityBatches
from baton.envelope import Envelope
from baton.errors import SchemaError, UsageError, require
from baton.manifest import Golden, Manifest, Tuning
from baton.masks import check_declared, parse_masks, unset_from
from baton.parity.latency import BenchResult, Budget, Progress, TimingPlan
from baton.parity.search import SearchBudget
from baton.profile import Profile
from baton.results.report import Report
from baton.runtime._files import GOLDEN_DIR
from baton.schema import n_rows, take_rows, to_feeds, to_jsonable, unbatched
from baton.tolerance import ToleranceArg


def convert(model: Any, sample: Any, *, name: str | None = None, opset: int | None = None,
            dynamic: Mapping[str, Mapping[int, str]] | None = None, provider: str = "cpu",
            require_provider: bool = False, tf32: bool = False, tune: bool = True,
            envelope: EnvelopeArg = None,
            mask_inputs: Sequence[str] | Mapping[str, bool] | None = None,
            batch_dims: Mapping[str, int | None] | None = None,
            tree_sum: str = "exact", optimize: bool = True) -> Bundle:
    """Convert a fitted model to an ONNX :class:`Bundle`, proving parity on ``sample``.

    ``sample`` holds real inputs (a numpy array or a pandas DataFrame; tensors for
    PyTorch); the input schema is inferred from it, golden vectors are drawn from it, and
    parity is checked on all of it (``bundle.report``).

    ``dynamic`` (PyTorch) names dimensions other than the batch that vary, e.g.
    ``{"ids": {1: "seq"}, "mask": {1: "seq"}}``, or ``{"input": {2: "height>=8"}}`` with
    the least size the model takes; ``batch_dims`` (PyTorch) declares inputs without a
    batch dimension (``{"ids": None}``: EmbeddingBag's flat ids), fed whole.
    ``provider="cuda"`` checks parity on onnxruntime's CUDA execution provider (TF32 off
    unless ``tf32``); without one the CUDA check is skipped with a note, or refused when
    ``require_provider``. ``tune`` picks the graph optimisation level (see
    :mod:`baton.parity.tuning`). The bundle records the region of inputs the proof
    covers, observed from ``sample`` (its *envelope*, docs/search.md); ``envelope`` widens
    or narrows columns (``["x0=0..4.5", "city=a,b"]`` or ``{"x0": "0..4.5"}``).

    Attention masks (inputs named ``attention_mask`` or ``…padding_mask``, or declared in
    ``mask_inputs``: ``["mask"]``, ``["pad:padding"]``) are recognised: the outputs with one
    value per position are compared where the mask sets them (:mod:`baton.masks`).

    ``tree_sum`` (tree ensembles): ``"exact"`` adds the trees as the library does
    (XGBoost's float32 running sum, bit for bit); ``"fast"`` lets onnxruntime add them in
    float64 in its own order, across threads, and states the library's float32 rounding
    bound in the tolerances (docs/trees.md).

    ``optimize`` (PyTorch): try offline graph optimisation, kept only where it passes
    parity and is faster (docs/pytorch.md); ``optimize=False`` bundles the raw export.
    """
    onnx = require("onnx", "cli", "baton.convert")
    import onnxruntime

    from baton._version import __version__
    from baton.converters import find_converter
    from baton.converters._graph import opset_of
    from baton.parity.check import describe_run, original_on, parity_on, run_settings
    from baton.parity.tuning import tune_session

    converter = find_converter(model)
    run, run_notes = run_settings(provider, require_provider, tf32)
    if n_rows(sample) == 0:
        raise SchemaError("the sample is empty", expected="at least one row", found="0 rows",
                          hint="pass real rows of the data the model will see")
    inputs = converter.infer_inputs(model, sample)
    # PyTorch's offline graph optimisation (on by default): off only when asked
    import inspect

    opt_out: dict[str, Any] = {} if optimize or "optimize" not in inspect.signature(
        converter.convert).parameters else {"optimize": False}
    if dynamic or batch_dims:
        if not isinstance(converter, DynamicDimensions):
            what = "dynamic" if dynamic else "batch_dims"
            raise UsageError(
                "dynamic dimensions and batch_dims apply to PyTorch models only",
                expected=f"no {what!r} argument for a " + converter.framework + " model",
                found=f"{what}=" + repr(dict(dynamic or batch_dims or {})),
                hint="drop it: tabular models take rows of fixed width, with a dynamic batch",
            )
        conv = converter.convert(model, sample, inputs, opset=opset, dynamic=dynamic,
                                 batch_dims=batch_dims, **opt_out)
    elif tree_sum != "exact":
        choices = tuple(getattr(converter, "tree_sums", ()))
        if tree_sum not in choices:
            raise UsageError(
                f"tree_sum={tree_sum!r} does not apply here",
                expected=("tree_sum one of " + ", ".join(map(repr, choices))) if choices
                else f"no tree_sum for a {converter.framework} model",
                found=f"tree_sum={tree_sum!r}",
                hint="drop it" if not choices else "pass tree_sum='exact' or 'fast'",
            )
        trees: Any = converter  # a tree converter (its tree_sums say so)
        conv = trees.convert(model, sample, inputs, opset=opset, tree_sum=tree_sum)
    else:
        conv = converter.convert(model, sample, inputs, opset=opset, **opt_out)
    model_bytes = conv.model.SerializeToString()
    prepared = converter.prepare(model, sample)
    declared = parse_masks(mask_inputs)
    check_declared(declared, prepared)
    observed = Envelope.observe(prepared, masks=declared)
    report, expected, actual = parity_on(model, converter, model_bytes, conv.inputs,
                                         conv.outputs, conv.tolerances, sample, run, observed)
    # the outputs each mask was found aligned with, recorded for every later comparison
    observed = observed.with_mask_outputs({m: tuple(
        d.name for d in report.outputs if d.positions and d.positions["mask"] == m)
        for m in observed.masks()})
    whole = unbatched(conv.inputs)  # inputs without a batch: fed whole, never cut
    n = n_rows(prepared, whole)
    batches = converter.parity_batches if isinstance(converter, ParityBatches) else ()
    # beside a whole input, rows index into it and cannot repeat: the first rows only
    variants = [(f"batch {b}", take_rows(prepared, np.arange(b) % n, whole))
                for b in batches if not whole or b < n]
    sized = []
    if dynamic and isinstance(converter, DynamicDimensions):
        sized = converter.dynamic_variants(prepared, dynamic)
    skipped = []
    for label, variant in variants + sized:
        # every batch size (and dynamic size) the model must serve
        try:
            extra, _, _ = parity_on(model, converter, model_bytes, conv.inputs, conv.outputs,
                                    conv.tolerances, variant, run, observed)
        except SchemaError as exc:
            if not any(label == s for s, _ in sized):
                raise
            # a size the original model cannot take either is not one it serves
            skipped.append(f"{label} ({exc.found or exc.message})"[:200])
            continue
        for diff in extra.outputs:
            diff.name = f"{diff.name} @ {label}"
            report.outputs.append(diff)
    if skipped:
        report.notes.append("not checked at sizes the original model rejects: "
                            + "; ".join(skipped))
    if whole:
        report.notes.append(f"{', '.join(whole)} ha{'ve' if len(whole) > 1 else 's'} no batch "
                            f"dimension: fed whole, beside the first 1 to {n} rows of the "
                            "other inputs")
    report.notes += run_notes + describe_run(run, original_on(converter, run))
    # beside a whole input every row counts: the golden vectors hold the whole sample
    rows = np.arange(n) if whole else golden_rows(n)
    golden_in = to_feeds(take_rows(prepared, rows, whole), conv.inputs)
    # where no mask sets a position, the golden vectors hold what the graph gives there
    expected = unset_from(observed.masks(), prepared, expected, actual)
    # the graph's own shape where it has one row per sample row (a failing conversion's
    # output may not: its report says so)
    golden_out = {o.name: cast_expected(
        expected[o.name][rows], o,
        actual[o.name][rows] if np.shape(actual[o.name])[:1] == (n,) else expected[o.name][rows])
        for o in conv.outputs}
    bundle_name = name or _default_name(conv.source.get("final_estimator") or conv.source["class"])
    report.target = bundle_name
    runtime = (tune_session(model_bytes, to_feeds(prepared, conv.inputs), expected, conv.outputs,
                            conv.tolerances, run, masks=observed.masks())
               if tune and report else Tuning())
    manifest = Manifest(
        inputs=conv.inputs, outputs=conv.outputs, name=bundle_name,
        tolerances=dict(conv.tolerances),
        runtime=runtime,
        golden=Golden(GOLDEN_DIR, int(len(rows)), to_jsonable(rows)),
        envelope=with_envelope(observed, envelope),
        profile=Profile.observe(prepared, masks=observed.masks()),
        info={
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
            "parity": report.summary(),
            "parity_settings": run.to_dict(),
        },
    )
    return Bundle(model_bytes, manifest.to_dict(), golden_in, golden_out, report)


#: an envelope's changes: ``["x0=0..4.5", ...]`` or ``{"x0": "0..4.5", "city": ["a", "b"]}``
EnvelopeArg = Sequence[str] | Mapping[str, Any] | None


def with_envelope(base: Envelope, changes: EnvelopeArg, source: str = "envelope") -> Envelope:
    """``base`` with the caller's changes (none: ``base`` itself)."""
    return base.with_overrides(changes, source) if changes else base


def _default_name(class_path: str) -> str:
    return class_path.rsplit(".", 1)[-1]


def check(model: Any, bundle_or_onnx: Any, data: Any, *, tolerance: ToleranceArg = None,
          provider: str = "cpu", require_provider: bool = False, tf32: bool = False,
          search: bool = True, search_budget: SearchBudget | str | None = None, seed: int = 0,
          atol: float | None = None, rtol: float | None = None,
          budgets: Sequence[Budget | str] = (), timing: TimingPlan | None = None,
          threads: int | None = None, strict_budgets: bool = False,
          budget_config: str | os.PathLike[str] | None = None, data_name: str | None = None,
          reproduce: str | None = None, progress: Progress | None = None,
          envelope: EnvelopeArg = None, search_scope: str = "envelope",
          strict_search: bool = False, rows: int | None = None) -> Report:
    """Compare ``model`` with its converted form (a Bundle, bundle path or ``.onnx``) on
    ``data``; ``bool(report)`` is the verdict. ``provider``, ``require_provider`` and
    ``tf32`` as for :func:`convert`.

    ``data`` is the rows (a DataFrame, array or dict of arrays), a data file's path, or an
    iterator of batches of rows. A ``.csv`` or ``.parquet`` path, and batches, are
    compared batch by batch in bounded memory (:func:`baton.parity.check.check_batches`;
    the search starts from a seeded sample of 10,000 rows); other files are read whole.
    ``rows=N`` compares a seeded sample of N rows instead (seeded by ``seed``; the report's
    notes say "a sample of N of M rows").

    When parity holds on ``data`` and ``search`` is on, a seeded search beyond the data
    (edge cases, split thresholds, schema samples, a shrinking property search) looks for
    inputs where the two diverge, within ``search_budget`` (a ``SearchBudget`` or text such
    as ``"2000,60s"``; default 1000 examples, 60 s as a safety cap); its findings are
    ``report.search``
    (docs/search.md). ``atol``/``rtol`` replace those of every output's tolerance.

    Only divergences inside the proof's *envelope* (the bundle's, observed at conversion;
    for a bare ``.onnx``, ``data``'s) fail the gate; ``envelope`` widens or narrows columns
    (as for :func:`convert`), ``search_scope="all"`` fails every divergence. With a seed and
    an example budget the search is the same on any machine; its time limit is a safety cap,
    and a search it cut short fails the gate with ``strict_search``.

    ``budgets`` (``"cpu:batch=1:p99<=2ms"`` or :class:`Budget`) are latency budgets of the
    converted model, timed on ``data`` by ``timing`` (a :class:`TimingPlan`) with ``threads``
    intra-op threads and decided in ``report.latency`` (docs/latency.md); ``strict_budgets``
    fails an undecided or skipped budget too; ``budget_config`` names the file they came
    from. ``data_name`` and ``reproduce`` are recorded in the report; ``progress`` is called
    as timing advances."""
    require("onnx", "cli", "baton.check")  # every converter builds an ONNX graph
    if search:
        require("hypothesis", "cli", "The parity search of baton.check (search=False skips it)")
    from baton.converters import find_converter
    from baton.parity.check import check as _check
    from baton.parity.latency import check_budgets

    converter = find_converter(model)
    budget = SearchBudget.parse(search_budget) if isinstance(search_budget, str) else (
        search_budget)
    parsed = [Budget.parse(b, "budgets") if isinstance(b, str) else b for b in budgets]
    data, batches, data_name, sampled = _check_data(data, rows, seed, data_name)
    options: dict[str, Any] = dict(
        converter=converter, tolerance=tolerance, atol=atol, rtol=rtol, data_name=data_name,
        provider=provider, require_provider=require_provider, tf32=tf32, search=search,
        search_budget=budget, seed=seed, reproduce=reproduce, envelope=envelope,
        search_scope=search_scope, strict_search=strict_search)
    if batches is not None:
        from baton.parity.check import check_batches

        first: list[Any] = []  # latency budgets are timed on the first batch
        report = check_batches(model, bundle_or_onnx,
                               _remember_first(batches, first) if parsed else batches,
                               **options)
        data = first[0] if first else None
        if parsed and data is not None and report.rows > n_rows(data):
            report.notes.append(f"latency timed on the first {n_rows(data):,} rows")
    else:
        report = _check(model, bundle_or_onnx, data, **options)
    if sampled:
        report.notes.append(sampled)
    if parsed:
        report.latency = check_budgets(
            bundle_or_onnx, data, parsed, model=model, converter=converter, threads=threads,
            plan=timing, strict=strict_budgets, config=budget_config, tf32=tf32,
            progress=progress)
    return report


def _check_data(data: Any, rows: int | None, seed: int, data_name: str | None
                ) -> tuple[Any, Any, str | None, str | None]:
    """What ``check`` compares on: (rows in memory, or None), (batches, or None), the
    data's name, and the note of a ``rows`` sample (None without one)."""
    from collections.abc import Iterator
    from pathlib import Path

    from baton.io import STREAMED_SUFFIXES, Reservoir, iter_batches, read_data, sample_rows

    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)
                             or rows < 1):
        raise UsageError("rows must be a whole number of rows >= 1", expected="rows >= 1",
                         found=repr(rows), hint="pass e.g. rows=10000 (--rows 10000)")
    total: int | None = None
    if isinstance(data, (str, os.PathLike)):
        data_name = data_name or os.fspath(data)
        if Path(data).suffix.lower() in STREAMED_SUFFIXES:
            if rows is None:
                return None, iter_batches(data), data_name, None
            data, total = sample_rows(data, rows, seed)
        else:
            data = read_data(data)
    elif isinstance(data, Iterator):
        if rows is None:
            return None, data, data_name, None
        reservoir = Reservoir(rows, seed)
        for batch in data:
            reservoir.add(batch)
        data, total = reservoir.sample(), reservoir.seen
    if rows is None:
        return data, None, data_name, None
    if total is None:  # rows in memory
        reservoir = Reservoir(rows, seed)
        reservoir.add(data)
        data, total = reservoir.sample(), reservoir.seen
    n = n_rows(data) if data is not None else 0
    note = (f"compared a seeded sample of {n:,} of {total:,} rows (seed {seed})"
            if total > n else f"asked for a sample of {rows:,} rows: the data holds "
            f"{total:,}, all compared")
    return data, None, data_name, note


def _remember_first(batches: Any, first: list[Any]) -> Any:
    """``batches``, keeping the first in ``first``."""
    for batch in batches:
        if not first:
            first.append(batch)
        yield batch


def recheck(model: Any, bundle: Any, data: Any, *, max_outside: float = 0.01,
            max_psi: float = 0.2, min_rows_psi: int | None = None,
            tolerance: ToleranceArg = None, atol: float | None = None,
            rtol: float | None = None, provider: str = "cpu",
            data_name: str | None = None) -> Report:
    """Re-prove parity of ``model`` against ``bundle`` on production ``data`` and measure
    its drift from what the bundle was proven on (:mod:`baton.parity.recheck`).

    ``data`` is a path (a records directory or ``.parquet`` of ``baton serve --record``,
    or any data file :func:`baton.io.read_data` reads), a :class:`baton.records.Records`,
    or the rows themselves. ``report.drift`` holds, per input, the share of rows outside
    the envelope (fails above ``max_outside``), the PSI against the conversion sample's
    profile (fails above ``max_psi``, from ``min_rows_psi`` rows on; default 300) and the
    unseen categories; on records, ``report.served`` compares the outputs served with the
    bundle's. ``bool(report)`` is parity and drift and served. No parity search runs."""
    require("onnx", "cli", "baton.recheck")
    from baton.converters import find_converter
    from baton.parity.recheck import MIN_ROWS_PSI
    from baton.parity.recheck import recheck as _recheck

    served: dict[str, Any] | None = None
    digests: list[str] = []
    if isinstance(data, (str, os.PathLike)):
        data_name = data_name or os.fspath(data)
        data = _read_path(data)
    if hasattr(data, "served") and hasattr(data, "data") and hasattr(data, "digests"):
        served, digests, data = dict(data.served), list(data.digests), data.data
    return _recheck(model, bundle, data, converter=find_converter(model), served=served,
                    served_digests=digests, max_outside=max_outside, max_psi=max_psi,
                    min_rows_psi=MIN_ROWS_PSI if min_rows_psi is None else min_rows_psi,
                    tolerance=tolerance, atol=atol, rtol=rtol, data_name=data_name,
                    provider=provider)


def _read_path(path: str | os.PathLike[str]) -> Any:
    """Records (``baton serve --record``) at ``path``, else the data file there."""
    from pathlib import Path

    from baton import records
    from baton.io import read_data

    if not Path(path).exists():
        raise UsageError(f"nothing at {path}", expected="a directory of records written by "
                         "'baton serve --record' (or a day's folder in it, YYYY-MM-DD), a "
                         "records .parquet, or a data file (.csv, .parquet, .npy, .npz)",
                         found="no file or directory at that path",
                         hint="check the path; a day's folder appears with its first "
                         "records file, written every --record-every seconds and when the "
                         "server stops")
    if records.is_records(path):
        return records.read_records(path)
    if Path(path).is_dir():
        raise UsageError(f"{path} holds no records", expected="a directory of records "
                         "written by 'baton serve --record' (records-*.parquet), or a data "
                         "file (.csv, .parquet, .npy, .npz)", found="a directory without "
                         "records", hint="point --data at the --record directory, a day's "
                         "folder in it, or a data file")
    return read_data(path)


def bench(bundle_or_onnx: Any, *, model: Any = None, data: Any = None,
          batches: Sequence[int] = (1, 32, 1024), providers: Sequence[str] = ("cpu",),
          threads: int | None = None, plan: TimingPlan | None = None, cuda_graph: bool = False,
          tf32: bool = False, progress: Progress | None = None, data_name: str | None = None
          ) -> BenchResult:
    """Time the converted model (and, given ``model``, the original beside it) for each
    provider and batch size, on ``data`` rows or the bundle's golden vectors
    (:func:`baton.parity.latency.bench`, handed the model's converter)."""
    from baton.converters import find_converter
    from baton.parity.latency import bench as _bench

    return _bench(bundle_or_onnx, model=model,
                  converter=None if model is None else find_converter(model), data=data,
                  batches=batches, providers=providers, threads=threads, plan=plan,
                  cuda_graph=cuda_graph, tf32=tf32, progress=progress, data_name=data_name)


def verify(path: str | os.PathLike[str], *, digest: str | None = None) -> Report:
    """Check a bundle's hashes and golden vectors on this machine's onnxruntime; with
    ``digest`` (``sha256:…``, as ``baton inspect`` prints it), also that it is the bundle
    that digest pins. ``report.digest`` is the bundle's digest either way."""
    from baton.parity.check import verify as _verify

    return _verify(path, digest)


__all__ = ["bench", "check", "convert", "recheck", "verify"]
