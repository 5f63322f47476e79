"""The ``baton`` command: parses, calls one library function, renders, maps errors to exit
codes (0 pass, 1 gate failed, 2 usage or input error, 3 internal error)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from baton.errors import BatonError

EXIT_PASS, EXIT_GATE, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

app = typer.Typer(
    name="baton",
    help="Convert notebook models to ONNX and prove the converted model gives the "
    "original's predictions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def handled(fn: F) -> F:
    """Map baton's errors to their exit codes and anything else to 3, without a traceback
    (set BATON_DEBUG=1 to see one)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BatonError as exc:
            _err().print(f"error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # the reader of our output went away (`baton inspect B --json | head`): quiet
            # exit 141, as a program killed by SIGPIPE; nothing more can be written there
            from baton._entry import EXIT_BROKEN_PIPE, quiet_stdout

            quiet_stdout()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if os.environ.get("BATON_DEBUG"):
                traceback.print_exc()
            _err().print(
                f"internal error: {type(exc).__name__}: {exc}\n"
                "  this is a bug in baton; set BATON_DEBUG=1 for the traceback and report it",
                markup=False, soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def _gate(report: Any, json_file: Path | None, junit: Path | None) -> None:
    """Write the requested report files, render the report, exit with its verdict."""
    from baton._render import render_report

    if json_file is not None:
        report.write_json(json_file)
    if junit is not None:
        report.write_junit(junit)
    render_report(report, _out())
    raise typer.Exit(EXIT_PASS if report else EXIT_GATE)


def _model_files_help() -> str:
    """What MODEL is, written from the registered converters' model files (loading them
    imports no framework)."""
    from baton.converters import model_file_help

    return model_file_help()


MODEL_FILES = _model_files_help()
TrustPickle = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Allow model files whose loading can run code from "
                 "the file: .pkl/.joblib (pickle), .pt2/.pt (PyTorch), and .skops files "
                 "naming types beyond scikit-learn's own classes. Only for files you trust."),
]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")]
JunitOut = Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here "
                                                "(a test case per output).")]
Provider = Annotated[str, typer.Option(
    "--provider", help="Where the ONNX side runs: cpu, or cuda (onnxruntime's CUDA execution "
    "provider; a PyTorch original then runs on the GPU too). Without a CUDA provider the CUDA "
    "check is skipped, and the report says so.")]
RequireProvider = Annotated[str | None, typer.Option(
    "--require-provider", help="Like --provider, but exit 2 when onnxruntime lacks it "
    "(e.g. --require-provider cuda on a GPU runner).")]
Tf32 = Annotated[bool, typer.Option(
    "--tf32", help="Allow TF32 on CUDA, on both sides (off by default: TF32 alone moves "
    "float32 results by ~1e-2).")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="onnxruntime's intra-op threads for the timed runs (default: "
    "onnxruntime's choice, one per physical core; recorded either way).")]
EnvelopeOpt = Annotated[list[str] | None, typer.Option(
    "--envelope", help="Widen or narrow the proven envelope of one input column, as "
    "NAME=LO..HI (either side may be open), NAME=a,b,c (its categories) or NAME=nan "
    "(missing values inside); repeatable; adds to [tool.baton.envelope] in pyproject.toml / "
    "baton.toml. A numpy matrix's columns are x0, x1, … (docs/search.md).")]
MinRunsOpt = Annotated[int, typer.Option(
    "--min-runs", help="Timed runs per measurement, at least (unless --max-seconds ends it "
    "first).")]
MinSecondsOpt = Annotated[float, typer.Option(
    "--min-seconds", help="Seconds of timed runs per measurement, at least (unless "
    "--max-seconds ends it first).")]
MaxSecondsOpt = Annotated[float, typer.Option(
    "--max-seconds", help="Time budget per measurement: timing stops here even with fewer "
    "runs (the intervals then say how much less is known).")]


@app.command()
@handled
def convert(
    model: Annotated[Path, typer.Argument(help=MODEL_FILES)],
    sample: Annotated[Path, typer.Option("--sample", help="Real input rows (.csv, .parquet, "
                                         ".npy, .npz); the input schema is inferred from them.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Bundle directory to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle.")] = False,
    trust_pickle: TrustPickle = False,
    name: Annotated[str | None, typer.Option("--name", help="Model name in the bundle.")] = None,
    opset: Annotated[int | None, typer.Option(
        "--opset", help="Highest ONNX opset to use (default 18; lower if the graph needs "
        "nothing newer).")] = None,
    dynamic: Annotated[list[str] | None, typer.Option(
        "--dynamic", help="PyTorch: a dimension besides the batch that varies, as "
        "INPUT:AXIS=NAME (e.g. ids:1=seq), or INPUT:AXIS=NAME>=MIN with the least size the "
        "model takes (quote it: 'input:2=height>=8'); repeat it, one NAME shared by inputs "
        "whose sizes move together.")] = None,
    no_batch: Annotated[list[str] | None, typer.Option(
        "--no-batch", help="PyTorch: an input whose dimension 0 is not the batch (such as "
        "EmbeddingBag's flat ids beside its offsets), fed whole; repeatable.")] = None,
    provider: Provider = "cpu",
    require_provider: RequireProvider = None,
    tf32: Tf32 = False,
    no_tune: Annotated[bool, typer.Option(
        "--no-tune", help="Keep onnxruntime's default graph optimisation level instead of "
        "timing the levels.")] = False,
    no_optimize: Annotated[bool, typer.Option(
        "--no-optimize", help="PyTorch: bundle the raw export instead of trying offline "
        "graph optimisation (kept only where it passes parity and is faster).")] = False,
    envelope: EnvelopeOpt = None,
    mask_input: Annotated[list[str] | None, typer.Option(
        "--mask-input", help="PyTorch: an attention mask input, as NAME (1 marks a token "
        "to attend to) or NAME:padding (1 marks padding); outputs with one value per "
        "position are compared only where it sets them. Inputs named attention_mask or "
        "…padding_mask are masks without it (docs/pytorch.md).")] = None,
    tree_sum: Annotated[str, typer.Option(
        "--tree-sum", help="Tree ensembles: 'exact' adds the trees as the library does "
        "(XGBoost's float32 sum, bit for bit); 'fast' lets onnxruntime add them in float64, "
        "within the library's float32 rounding, stated in the tolerances (docs/trees.md).")
    ] = "exact",
) -> None:
    """Convert MODEL to an ONNX bundle, checking parity on the sample."""
    import baton
    from baton._render import render_report
    from baton.converters import load_model_file
    from baton.errors import UsageError

    if output.exists() and not force:
        raise UsageError(f"{output} already exists", expected="a path that does not exist yet",
                         found="an existing " + ("directory" if output.is_dir() else "file"),
                         hint="choose another --output, or pass --force to replace it")
    loaded = load_model_file(model, trust_pickle=trust_pickle)
    data = baton.io.read_data(sample)
    bundle = baton.convert(loaded, data, name=name, opset=opset,
                           dynamic=_parse_dynamic(dynamic or []),
                           provider=require_provider or provider,
                           require_provider=require_provider is not None, tf32=tf32,
                           tune=not no_tune, envelope=_envelope_changes(envelope or []),
                           mask_inputs=mask_input or None,
                           batch_dims=dict.fromkeys(no_batch) if no_batch else None,
                           tree_sum=tree_sum, optimize=not no_optimize)
    assert bundle.report is not None
    bundle.report.data = str(sample)
    path = bundle.save(output, force=force)
    bundle.report.target = str(path)
    bundle.report.digest = bundle.digest
    console = _out()
    render_report(bundle.report, console)
    console.print(f"bundle written to {path}", markup=False)
    raise typer.Exit(EXIT_PASS if bundle.report else EXIT_GATE)


def _envelope_changes(cli: list[str]) -> list[str]:
    """The envelope's changes: those of the nearest ``baton.toml`` (``[envelope]`` or
    ``[tool.baton.envelope]``) or ``pyproject.toml`` (``[tool.baton.envelope]``), then the
    command line's (which win)."""
    from baton.parity.latency.budgets import find_config

    found, path = find_config("envelope")
    if path is None:
        return cli
    if not isinstance(found, dict):
        from baton.errors import UsageError

        raise UsageError(f"the envelope in {path} is not a table",
                         expected='[tool.baton.envelope] with x0 = "0..4.5", '
                         'city = ["paris", "lyon"], amount = "nan"',
                         found=repr(found)[:200], hint="fix the file")
    return [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in found.items()] + cli


def _parse_dynamic(specs: list[str]) -> dict[str, dict[int, str]]:
    """``INPUT:AXIS=NAME`` options as ``{input: {axis: name}}``."""
    import re

    from baton.errors import UsageError

    out: dict[str, dict[int, str]] = {}
    for spec in specs:
        m = re.fullmatch(r"(.+):(\d+)=(\w+(?:>=\d+)?)", spec.strip())
        if m is None:
            raise UsageError(f"cannot read --dynamic {spec!r}", expected="INPUT:AXIS=NAME "
                             "or INPUT:AXIS=NAME>=MIN, e.g. ids:1=seq or input:2=height>=8",
                             found=repr(spec),
                             hint="give the input's name, the axis (1 or more; 0 for an "
                             "input declared with --no-batch), a name, and optionally the "
                             "least size the model takes")
        out.setdefault(m[1], {})[int(m[2])] = m[3]
    return out


@app.command()
@handled
def check(
    model: Annotated[Path, typer.Argument(help="The original model. " + MODEL_FILES)],
    bundle: Annotated[Path, typer.Argument(help="A bundle directory, zipped .baton, or a "
                                           "bare .onnx file.")],
    data: Annotated[Path, typer.Option("--data", help="Input rows to compare on (.csv, "
                                       ".parquet, .npy, .npz).")],
    atol: Annotated[float | None, typer.Option("--atol", help="Absolute tolerance for every "
                                               "numeric output (default: the bundle's).")] = None,
    rtol: Annotated[float | None, typer.Option("--rtol", help="Relative tolerance for every "
                                               "numeric output (default: the bundle's).")] = None,
    json_file: JsonOut = None,
    junit: JunitOut = None,
    summary_md: Annotated[Path | None, typer.Option(
        "--summary-md", help="Write a Markdown summary here (also appended to "
        "$GITHUB_STEP_SUMMARY when that is set).")] = None,
    trust_pickle: TrustPickle = False,
    provider: Provider = "cpu",
    require_provider: RequireProvider = None,
    tf32: Tf32 = False,
    search_budget: Annotated[str | None, typer.Option(
        "--search-budget", help="How much the parity search beyond the data may try: "
        "examples and a time cap, e.g. 2000 or 2000,60s (default 1000,60s: which examples "
        "run depends on the seed alone; the time is a safety cap).")] = None,
    no_search: Annotated[bool, typer.Option(
        "--no-search", help="Compare on DATA only; skip the parity search.")] = False,
    envelope: EnvelopeOpt = None,
    search_scope: Annotated[str, typer.Option(
        "--search-scope", help="Which divergences the search finds fail the gate: "
        "'envelope' (those inside the proven envelope; the others are reported as "
        "warnings) or 'all'.")] = "envelope",
    strict_search: Annotated[bool, typer.Option(
        "--strict-search", help="Fail (exit 1) when the search's time cap cut it short "
        "(\"incomplete: N of M examples\").")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the parity search (and of "
                                      "--rows' sample).")] = 0,
    rows: Annotated[int | None, typer.Option(
        "--rows", min=1, help="Compare a seeded sample of this many rows of DATA (seed: "
        "--seed) instead of all of them. Without it, .csv and .parquet DATA is compared "
        "batch by batch in bounded memory.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="Where to compare: 'local' (this process) or 'spark' (Apache Spark: "
        "DATA is a .parquet or .csv path Spark reads; needs baton[spark] and Java 17+; no "
        "search, budgets, --rows, --seed, --envelope or GPU options).")] = "local",
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="The Spark master URL for --engine spark, e.g. "
        "spark://host:7077 (default local[*]: every core of this machine).")] = None,
    latency_budget: Annotated[list[str] | None, typer.Option(
        "--budget", help="A latency budget for the ONNX model, e.g. cpu:batch=1:p99<=2ms or "
        "cpu:batch=32:throughput>=5000/s; repeatable; adds to (or, for the same provider, "
        "batch and metric, replaces) the budgets of baton.toml / pyproject.toml "
        "[tool.baton].")] = None,
    strict_budgets: Annotated[bool, typer.Option(
        "--strict-budgets", help="Fail (exit 1) on an undecided or skipped budget too.")
        ] = False,
    threads: ThreadsOpt = None,
    min_runs: MinRunsOpt = 1000,
    min_seconds: MinSecondsOpt = 1.0,
    max_seconds: MaxSecondsOpt = 10.0,
) -> None:
    """Compare MODEL with its converted form on DATA, then search beyond DATA for inputs
    where they diverge; exit 1 when parity fails, a divergence is found or a latency
    budget is exceeded."""
    import baton
    from baton._render_latency import progress_bar
    from baton.converters import load_model_file
    from baton.errors import UsageError
    from baton.parity.latency import TimingPlan, resolve_budgets
    from baton.parity.search import SearchBudget

    if engine not in ("local", "spark") or (spark_master is not None and engine != "spark"):
        raise UsageError(f"unknown engine {engine!r}" if engine not in ("local", "spark") else
                         "--spark-master needs --engine spark", expected="--engine local or "
                         "--engine spark (with --spark-master)", found=f"--engine {engine}",
                         hint="pass --engine spark --spark-master URL, or neither")
    # the search, latency budgets and samples are not done on Spark: refused, not ignored
    local_only = [name for name, given in (
        ("--rows", rows is not None), ("--budget", bool(latency_budget)),
        ("--search-budget", search_budget is not None),
        ("--search-scope", search_scope != "envelope"), ("--strict-search", strict_search),
        ("--seed", seed != 0), ("--envelope", bool(envelope)),
        ("--provider", provider != "cpu" or require_provider is not None), ("--tf32", tf32),
    ) if given]
    if engine == "spark" and local_only:
        raise UsageError(
            f"--engine spark does not take {', '.join(local_only)}",
            expected="--engine spark with --atol/--rtol, --json/--junit/--summary-md, "
            "--spark-master", found=" ".join(local_only),
            hint="Spark compares every row on the CPU and runs no parity search, latency "
            "budget or sample: run 'baton check' locally (on a sample) for those")
    budgets, budget_file = resolve_budgets(latency_budget or [])
    budget = SearchBudget.parse(search_budget) if search_budget is not None else SearchBudget()
    reproduce = " ".join(
        ["baton check", str(model), str(bundle), "--data", str(data)]
        + [f"--{k} {v}" for k, v in (
            ("atol", atol), ("rtol", rtol), ("provider", require_provider or provider))
           if v is not None and (k != "provider" or v != "cpu")]
        + (["--trust-pickle"] if trust_pickle else [])
        + [f"--envelope {e!r}" for e in envelope or []]
        + ([f"--search-scope {search_scope}"] if search_scope != "envelope" else [])
        + ([f"--rows {rows}"] if rows is not None else [])
        + [f"--seed {seed}", f"--search-budget {budget}"])
    loaded = load_model_file(model, trust_pickle=trust_pickle)
    if engine == "spark":
        from baton import spark as on_spark
        from baton._render_md import write_summary

        # DATA as typed: the Path typer made of it folds a URI's '//' (s3a://b/k -> s3a:/b/k)
        argv = sys.argv[1:]
        where = next((v for k, v in zip(argv, argv[1:]) if k == "--data" and Path(v) == data),
                     next((a[7:] for a in argv if a.startswith("--data=")
                           and Path(a[7:]) == data), str(data)))
        with on_spark.running(spark_master) as spark:
            report = on_spark.check(loaded, bundle, on_spark.read(spark, where),
                                    atol=atol, rtol=rtol, data_name=where)
        if budgets:
            report.notes.append(f"latency budgets of {budget_file} not timed: --engine spark "
                                "times none (run 'baton check' locally for them)")
        write_summary(report, summary_md)
        _gate(report, json_file, junit)
    # .csv and .parquet stream (batch by batch, in bounded memory); the rest is read whole
    frame: Any = (data if data.suffix.lower() in baton.io.STREAMED_SUFFIXES
                  else baton.io.read_data(data))
    timing_bar = progress_bar(_out()) if budgets else contextlib.nullcontext(None)
    with timing_bar as progress:
        report = baton.check(
            loaded, bundle, frame, atol=atol, rtol=rtol, provider=require_provider or provider,
            require_provider=require_provider is not None, tf32=tf32, search=not no_search,
            search_budget=budget, seed=seed, budgets=budgets,
            timing=TimingPlan(min_runs=min_runs, min_seconds=min_seconds,
                              max_seconds=max_seconds),
            threads=threads, strict_budgets=strict_budgets, budget_config=budget_file,
            data_name=str(data), reproduce=reproduce, progress=progress,
            envelope=_envelope_changes(envelope or []), search_scope=search_scope,
            strict_search=strict_search, rows=rows)
    from baton._render_md import write_summary

    write_summary(report, summary_md)
    _gate(report, json_file, junit)


@app.command()
@handled
def recheck(
    model: Annotated[Path, typer.Argument(help="The original model. " + MODEL_FILES)],
    bundle: Annotated[Path, typer.Argument(help="A bundle directory or zipped .baton.")],
    data: Annotated[Path, typer.Option(
        "--data", help="Production rows: a records directory or .parquet of 'baton serve "
        "--record', or a data file (.csv, .parquet, .npy, .npz).")],
    max_outside: Annotated[str | None, typer.Option(
        "--max-outside", help="Fail an input when more than this share of rows lies outside "
        "the proven envelope: 1% or 0.01 (default: \\[tool.baton.recheck] max-outside, "
        "else 1%).")] = None,
    max_psi: Annotated[str | None, typer.Option(
        "--max-psi", help="Fail an input whose population stability index against the "
        "conversion sample exceeds this (default: \\[tool.baton.recheck] max-psi, else "
        "0.2).")
        ] = None,
    min_rows_psi: Annotated[int | None, typer.Option(
        "--min-rows-psi", help="PSI decides only from this many rows, here and in the "
        "conversion sample; below, it is reported (default 300).")] = None,
    atol: Annotated[float | None, typer.Option("--atol", help="Absolute tolerance for every "
                                               "numeric output (default: the bundle's).")] = None,
    rtol: Annotated[float | None, typer.Option("--rtol", help="Relative tolerance for every "
                                               "numeric output (default: the bundle's).")] = None,
    json_file: JsonOut = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here (a "
                                               "test case per output and per input's "
                                               "drift).")] = None,
    summary_md: Annotated[Path | None, typer.Option(
        "--summary-md", help="Write a Markdown summary here (also appended to "
        "$GITHUB_STEP_SUMMARY when that is set).")] = None,
    trust_pickle: TrustPickle = False,
) -> None:
    """Re-prove parity of MODEL against BUNDLE on production DATA (no search) and measure
    its drift from the proven envelope and the conversion sample; exit 1 when parity fails,
    an input drifted beyond the thresholds, or the outputs served differ from the bundle's."""
    import baton
    from baton._render_md import write_summary
    from baton.converters import load_model_file
    from baton.parity.recheck import thresholds

    outside, psi, min_rows, config = thresholds(max_outside, max_psi, min_rows_psi)
    loaded = load_model_file(model, trust_pickle=trust_pickle)
    report = baton.recheck(loaded, bundle, data, max_outside=outside, max_psi=psi,
                           min_rows_psi=min_rows, atol=atol, rtol=rtol, data_name=str(data))
    if config is not None and report.drift is not None:
        report.drift.notes.append(f"thresholds not given on the command line are those of "
                                  f"[tool.baton.recheck] in {config}")
    write_summary(report, summary_md)
    _gate(report, json_file, junit)


@app.command()
@handled
def verify(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory or zipped .baton.")],
    json_file: JsonOut = None,
    junit: JunitOut = None,
    digest: Annotated[str | None, typer.Option(
        "--digest", help="The digest the bundle must have (sha256:…, as convert, check and "
        "inspect print it): pins the bundle CI proved.")] = None,
) -> None:
    """Check every file's hash and re-run the golden vectors on this machine's onnxruntime."""
    import baton

    _gate(baton.verify(bundle, digest=digest), json_file, junit)


@app.command()
@handled
def inspect(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory or zipped .baton.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Show a bundle's digest, schema, versions and parity summary."""
    import json

    from baton._render import render_manifest
    from baton.runtime import BundleFiles

    files = BundleFiles(bundle)
    manifest = files.manifest()
    digest = files.digest(manifest)
    if as_json:
        sys.stdout.write(json.dumps({"digest": digest, **manifest.to_dict()}, indent=2) + "\n")
        return
    render_manifest(manifest, _out(), digest)


@app.command()
@handled
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the demo's "
                                         "files: new, empty, or an earlier demo's output "
                                         "(its files are replaced).")] = Path("baton-demo"),
    force: Annotated[bool, typer.Option(
        "--force", help="Write into a directory that holds other files too: only the demo's "
        "own files (model.skops, holdout.csv, breast-cancer.baton, check-report.json, "
        "check-junit.xml) are replaced; nothing else is touched.")] = False,
) -> None:
    """Train a scikit-learn pipeline on bundled data, convert it, check it on held-out rows.

    Writes five files into OUTPUT and never deletes anything else there; a directory that
    holds other files needs --force."""
    from baton._render import render_report
    from baton.demo import check_directory, run_demo

    check_directory(output, force)
    console = _out()
    console.print("training a scikit-learn pipeline on the breast-cancer data shipped with "
                  "scikit-learn ...", markup=False, soft_wrap=True)
    result = run_demo(output, force=force)
    render_report(result.report, console)
    console.print(
        "\nwritten:\n"
        f"  model (skops)       {result.model_file}\n"
        f"  held-out data       {result.data_file}\n"
        f"  bundle              {result.bundle}\n"
        f"  report (JSON)       {result.report_json}\n"
        f"  report (JUnit XML)  {result.junit}\n"
        "\nnext:\n"
        f"  baton inspect {result.bundle}\n"
        f"  baton verify {result.bundle}\n"
        f"  baton check {result.model_file} {result.bundle} --data {result.data_file}",
        markup=False, soft_wrap=True,
    )
    raise typer.Exit(EXIT_PASS if result.report else EXIT_GATE)


@app.command()
@handled
def bench(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory, zipped .baton, or a "
                                           "bare .onnx file.")],
    model: Annotated[Path | None, typer.Option(
        "--model", help="The original model, timed beside the converted one (interleaved). "
        + MODEL_FILES)] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Rows to time on, repeated or cut to each batch size (default: the "
        "bundle's golden vectors).")] = None,
    batch: Annotated[str, typer.Option("--batch", help="Batch sizes, comma-separated.")
                     ] = "1,32,1024",
    provider: Annotated[str, typer.Option(
        "--provider", help="cpu, cuda, or cpu,cuda. Without a CUDA execution provider the "
        "CUDA part is reported as skipped.")] = "cpu",
    threads: ThreadsOpt = None,
    min_runs: MinRunsOpt = 1000,
    min_seconds: MinSecondsOpt = 1.0,
    max_seconds: MaxSecondsOpt = 10.0,
    cuda_graph: Annotated[bool, typer.Option(
        "--cuda-graph", help="CUDA: capture the run as a CUDA graph and replay it (fixed "
        "shapes).")] = False,
    tf32: Annotated[bool, typer.Option("--tf32", help="CUDA: allow TF32 (off by default, as "
                                       "for parity; recorded).")] = False,
    json_file: Annotated[Path | None, typer.Option(
        "--json", help="Write the results (p50/p95/p99 with intervals, throughput, "
        "environment) as JSON here.")] = None,
    trust_pickle: TrustPickle = False,
) -> None:
    """Time the converted model (and the original beside it) per provider and batch size:
    p50/p95/p99 and throughput with 95 % bootstrap intervals, and the speed-up."""
    import baton
    from baton._api import bench as run_bench
    from baton._render_latency import progress_bar, render_bench
    from baton.converters import load_model_file
    from baton.parity.latency import TimingPlan

    batches = _int_list(batch, "--batch")
    providers = [p.strip().lower() for p in provider.split(",") if p.strip()]
    plan = TimingPlan(min_runs=min_runs, min_seconds=min_seconds, max_seconds=max_seconds)
    loaded = None if model is None else load_model_file(model, trust_pickle=trust_pickle)
    frame = None if data is None else baton.io.read_data(data)
    console = _out()
    with progress_bar(console) as progress:
        result = run_bench(bundle, model=loaded, data=frame, batches=batches,
                           providers=providers, threads=threads, plan=plan,
                           cuda_graph=cuda_graph, tf32=tf32, progress=progress,
                           data_name=None if data is None else str(data))
    if json_file is not None:
        result.write_json(json_file)
    render_bench(result, console)


@app.command()
@handled
def serve(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory or zipped .baton.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: "
                                      "every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free "
                                      "port, shown in the log).")] = 8000,
    name: Annotated[str | None, typer.Option(
        "--name", help="The model's name in the URLs (default: the bundle's name).")] = None,
    max_body: Annotated[int, typer.Option(
        "--max-body", help="Largest request body in bytes; larger ones get 413.")
                        ] = 16 * 1024 * 1024,
    max_concurrency: Annotated[int, typer.Option(
        "--max-concurrency", help="Inferences run at once, at most.")] = 4,
    max_queue: Annotated[int, typer.Option(
        "--max-queue", help="Requests waiting for a free slot, at most; beyond them 503.")
                         ] = 32,
    workers: Annotated[int, typer.Option(
        "--workers", help="Server processes sharing the port, each with its own copy of "
        "the model (e.g. one per core).")] = 1,
    record: Annotated[Path | None, typer.Option(
        "--record", help="Record the requests answered (inputs and outputs) as Parquet "
        "files under this directory, for 'baton recheck'.")] = None,
    record_rate: Annotated[float | None, typer.Option(
        "--record-rate", help="With --record: the share of requests recorded, from 0 to 1 "
        "[default: 1]")] = None,
    record_max_bytes: Annotated[str | None, typer.Option(
        "--record-max-bytes", help="With --record: the most the records may take on disk "
        "(e.g. 500MB, 5GB, 2GiB); the oldest files are deleted beyond it [default: 1GiB]")] = None,
    record_every: Annotated[float | None, typer.Option(
        "--record-every", help="With --record: seconds between two record files "
        "[default: 60]")] = None,
    refuse_outside_envelope: Annotated[bool, typer.Option(
        "--refuse-outside-envelope", help="Answer requests with rows outside the envelope "
        "the bundle was proven on 422 (naming them), instead of a prediction; without it "
        "they are answered and counted in /metrics.")] = False,
) -> None:
    r"""Serve BUNDLE over the Open Inference Protocol (v2) REST API until Ctrl-C
    (needs the serve extra: pip install 'baton\[serve]'); its metrics at /metrics."""
    from baton.serving import serve as run_server

    recording: dict[str, Any] = {}
    if record is None:
        given = [o for o, v in (("--record-rate", record_rate),
                                ("--record-max-bytes", record_max_bytes),
                                ("--record-every", record_every)) if v is not None]
        if given:
            from baton.errors import UsageError

            raise UsageError(f"{given[0]} needs --record", expected="--record DIR beside "
                             f"{' and '.join(given)}", found="no --record",
                             hint="pass --record DIR (the directory the records go to), or "
                             f"leave out {' and '.join(given)}")
    else:
        from baton.serving.record import parse_size

        recording = dict(record=record, record_rate=1.0 if record_rate is None else record_rate,
                         record_every=60.0 if record_every is None else record_every)
        if record_max_bytes is not None:
            recording["record_max_bytes"] = parse_size(record_max_bytes, "--record-max-bytes")
    run_server(bundle, host=host, port=port, name=name, max_body=max_body,
               max_concurrency=max_concurrency, max_queue=max_queue, workers=workers,
               refuse_outside_envelope=refuse_outside_envelope, **recording)


def _int_list(text: str, option: str) -> list[int]:
    from baton.errors import UsageError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise UsageError(f"cannot read {option} {text!r}", expected="positive integers "
                         "separated by commas, e.g. 1,32,1024", found=repr(text),
                         hint=f"pass e.g. {option} 1,32")
    return values


def main() -> None:
    app()


if __name__ == "__main__":
    main()
