"""Execution providers: CUDA when onnxruntime has it, an explicit skip when not, and
``--require-provider`` turning the skip into exit 2; TF32 off on both sides unless asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import baton
from baton.cli import app
from baton.runtime.providers import SKIPPED_NO_CUDA, RunSettings, available_providers

HAS_CUDA = "CUDAExecutionProvider" in available_providers()
no_cuda_here = pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA: see the GPU tests")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason=SKIPPED_NO_CUDA)


@pytest.fixture(scope="module")
def regression_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sklearn.linear_model import Ridge
    from skops.io import dump

    tmp = tmp_path_factory.mktemp("providers")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    model = Ridge().fit(X, X @ [1.0, -2.0, 0.5, 3.0])
    dump(model, tmp / "model.skops")
    np.save(tmp / "x.npy", X)
    return {"model": tmp / "model.skops", "data": tmp / "x.npy", "dir": tmp}


def test_cuda_settings_turn_tf32_off_unless_asked() -> None:
    off = RunSettings(providers=("cuda",)).ort_providers()
    on = RunSettings(providers=("cuda",), tf32=True).ort_providers()
    assert off == [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
    assert on[0] == ("CUDAExecutionProvider", {"use_tf32": "1"})
    assert RunSettings().ort_providers() == ["CPUExecutionProvider"]


def test_unknown_optimisation_level_is_a_usage_error() -> None:
    with pytest.raises(baton.UsageError, match="optimisation level"):
        RunSettings(optimization="fast")


@no_cuda_here
@pytest.mark.parametrize("command", ["convert", "check"])
def test_cuda_without_a_cuda_provider_is_skipped_explicitly(
        command: str, regression_files: dict[str, Path], tmp_path: Path) -> None:
    f = regression_files
    args = ([command, str(f["model"]), "--sample", str(f["data"]), "-o", str(tmp_path / "b")]
            if command == "convert" else
            [command, str(f["model"]), str(_bundle(f)), "--data", str(f["data"])])
    out = CliRunner().invoke(app, [*args, "--provider", "cuda"])
    assert out.exit_code == 0, out.output
    assert SKIPPED_NO_CUDA in out.output and "compared on the CPU instead" in out.output


@no_cuda_here
@pytest.mark.parametrize("command", ["convert", "check"])
def test_require_provider_cuda_without_one_exits_2(
        command: str, regression_files: dict[str, Path], tmp_path: Path) -> None:
    f = regression_files
    args = ([command, str(f["model"]), "--sample", str(f["data"]), "-o", str(tmp_path / "b")]
            if command == "convert" else
            [command, str(f["model"]), str(_bundle(f)), "--data", str(f["data"])])
    out = CliRunner().invoke(app, [*args, "--require-provider", "cuda"])
    assert out.exit_code == 2, out.output
    assert "CUDAExecutionProvider" in out.output and "onnxruntime-gpu" in out.output
    assert not (tmp_path / "b").exists()


def test_unknown_provider_is_a_usage_error(regression_files: dict[str, Path]) -> None:
    f = regression_files
    out = CliRunner().invoke(app, ["check", str(f["model"]), str(_bundle(f)), "--data",
                                   str(f["data"]), "--provider", "tpu"])
    assert out.exit_code == 2 and "unknown execution provider 'tpu'" in out.output


def test_report_says_where_each_side_ran(regression_files: dict[str, Path]) -> None:
    from skops.io import load

    f = regression_files
    model = load(f["model"], trusted=["sklearn.linear_model._ridge.Ridge"])
    report = baton.check(model, _bundle(f), np.load(f["data"]))
    assert report
    assert any("cpu execution provider" in n and "original on the CPU" in n
               for n in report.notes)


def _bundle(files: dict[str, Path]) -> Path:
    path = files["dir"] / "model.baton"
    if not path.exists():
        out = CliRunner().invoke(app, ["convert", str(files["model"]), "--sample",
                                       str(files["data"]), "-o", str(path)])
        assert out.exit_code == 0, out.output
    return path


# -- on a machine with a GPU -------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("tf32", [False, True])
def test_pytorch_cnn_on_cuda_both_sides(tf32: bool) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("onnxruntime has CUDA but this torch build does not")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(16, 4)).eval()
    x = torch.randn(8, 3, 32, 32)
    bundle = baton.convert(model, x, provider="cuda", require_provider=True, tf32=tf32)
    assert bundle.report is not None
    note = " ".join(bundle.report.notes)
    assert "cuda" in note and f"TF32 {'on' if tf32 else 'off'}" in note
    assert "original on the CUDA" in note
    assert bundle.manifest["parity_settings"]["tf32"] is tf32
    if not tf32:
        assert bundle.report, bundle.report.failures


