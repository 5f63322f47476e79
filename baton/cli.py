"""The ``baton`` command: parses, calls one library function, renders, maps errors to exit
codes (0 pass, 1 gate failed, 2 usage or input error, 3 internal error)."""

from __future__ import annotations

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


MODEL_FILES = ("Model file: .skops (scikit-learn), .txt (LightGBM), .json/.ubj (XGBoost), "
               ".cbm (CatBoost), or .pkl/.joblib with --trust-pickle.")
TrustPickle = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Allow .pkl/.joblib model files (loading a pickle "
                 "runs arbitrary code: only for files you trust)."),
]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")]
JunitOut = Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here "
                                                "(a test case per output).")]


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
    bundle = baton.convert(loaded, data, name=name, opset=opset)
    assert bundle.report is not None
    bundle.report.data = str(sample)
    path = bundle.save(output, force=force)
    bundle.report.target = str(path)
    console = _out()
    render_report(bundle.report, console)
    console.print(f"bundle written to {path}", markup=False)
    raise typer.Exit(EXIT_PASS if bundle.report else EXIT_GATE)


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
    trust_pickle: TrustPickle = False,
) -> None:
    """Compare MODEL with its converted form on DATA; exit 1 when parity fails."""
    import baton
    from baton.converters import load_model_file
    from baton.parity.check import open_target

    loaded = load_model_file(model, trust_pickle=trust_pickle)
    frame = baton.io.read_data(data)
    tolerance = None
    if atol is not None or rtol is not None:
        from baton.tolerance import resolve, with_overrides

        target = open_target(bundle)
        tolerance = {o.name: with_overrides(resolve(None, o.name, target.tolerances), atol, rtol)
                     for o in target.outputs}
    report = baton.check(loaded, bundle, frame, tolerance=tolerance)
    report.data = str(data)
    _gate(report, json_file, junit)


@app.command()
@handled
def verify(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory or zipped .baton.")],
    json_file: JsonOut = None,
    junit: JunitOut = None,
) -> None:
    """Check every file's hash and re-run the golden vectors on this machine's onnxruntime."""
    import baton

    _gate(baton.verify(bundle), json_file, junit)


@app.command()
@handled
def inspect(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory or zipped .baton.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Show a bundle's schema, versions and parity summary."""
    import json

    from baton._render import render_manifest
    from baton.runtime import BundleFiles

    manifest = BundleFiles(bundle).manifest()
    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
        return
    render_manifest(manifest, _out())


@app.command()
@handled
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the demo's "
                                         "files (replaced if it exists).")] = Path("baton-demo"),
) -> None:
    """Train a scikit-learn pipeline on bundled data, convert it, check it on held-out rows."""
    from baton._render import render_report
    from baton.demo import run_demo

    console = _out()
    console.print("training a scikit-learn pipeline on the breast-cancer data shipped with "
                  "scikit-learn ...", markup=False, soft_wrap=True)
    result = run_demo(output)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
