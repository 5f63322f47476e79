"""The public API, pinned: a change here is a change users see."""

from __future__ import annotations

import inspect

import baton
import baton.runtime


def test_public_names() -> None:
    assert sorted(baton.__all__) == sorted([
        "BatonError", "Bundle", "BundleError", "BundleIntegrityError", "ConversionError",
        "InputValidationError", "MissingDependencyError", "OutputDiff", "ParityError", "Report",
        "SchemaError", "TensorSpec", "Tolerance", "UnsupportedModelError", "UsageError",
        "__version__", "check", "convert", "io", "load", "recheck", "verify",
    ])
    assert sorted(baton.runtime.__all__) == ["BundleFiles", "FileCheck", "Session",
                                             "available_providers"]


def test_signatures() -> None:
    assert str(inspect.signature(baton.convert)) == (
        "(model: 'Any', sample: 'Any', *, name: 'str | None' = None, "
        "opset: 'int | None' = None, dynamic: 'Mapping[str, Mapping[int, str]] | None' = None, "
        "provider: 'str' = 'cpu', require_provider: 'bool' = False, tf32: 'bool' = False, "
        "tune: 'bool' = True, envelope: 'EnvelopeArg' = None, "
        "mask_inputs: 'Sequence[str] | Mapping[str, bool] | None' = None, "
        "batch_dims: 'Mapping[str, int | None] | None' = None, "
        "tree_sum: 'str' = 'exact', optimize: 'bool' = True) -> 'Bundle'")
    assert str(inspect.signature(baton.check)) == (
        "(model: 'Any', bundle_or_onnx: 'Any', data: 'Any', *, "
        "tolerance: 'ToleranceArg' = None, provider: 'str' = 'cpu', "
        "require_provider: 'bool' = False, tf32: 'bool' = False, search: 'bool' = True, "
        "search_budget: 'SearchBudget | str | None' = None, seed: 'int' = 0, "
        "atol: 'float | None' = None, rtol: 'float | None' = None, "
        "budgets: 'Sequence[Budget | str]' = (), timing: 'TimingPlan | None' = None, "
        "threads: 'int | None' = None, strict_budgets: 'bool' = False, "
        "budget_config: 'str | os.PathLike[str] | None' = None, data_name: 'str | None' = None, "
        "reproduce: 'str | None' = None, progress: 'Progress | None' = None, "
        "envelope: 'EnvelopeArg' = None, search_scope: 'str' = 'envelope', "
        "strict_search: 'bool' = False, rows: 'int | None' = None) -> 'Report'")
    assert list(inspect.signature(baton.load).parameters) == ["path", "verify"]
    assert list(inspect.signature(baton.runtime.Session).parameters) == [
        "bundle", "providers", "verify", "tf32", "self_check", "digest"]
    assert str(inspect.signature(baton.verify)) == (
        "(path: 'str | os.PathLike[str]', *, digest: 'str | None' = None) -> 'Report'")


def test_errors_carry_exit_codes() -> None:
    assert baton.UsageError.exit_code == baton.SchemaError.exit_code == 2
    assert baton.UnsupportedModelError.exit_code == baton.BundleError.exit_code == 2
    assert baton.ParityError.exit_code == baton.BundleIntegrityError.exit_code == 1
    assert baton.BatonError.exit_code == 3
    assert issubclass(baton.UnsupportedModelError, baton.ConversionError)
    assert issubclass(baton.InputValidationError, baton.SchemaError)
