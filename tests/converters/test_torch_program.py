"""PyTorch programs and export attempts: a ``.pt2`` program exported with positional
arguments converts from an ``.npz`` sample (arrays by name or by position) through the
CLI and is named after its module; every export attempt is recorded with torch's full
message, and ``baton inspect`` lists them with the line that states the cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
nn = torch.nn
typer_testing = pytest.importorskip("typer.testing")


def _cli(*args: str) -> Any:
    from baton.cli import app

    return typer_testing.CliRunner().invoke(app, list(args))


class Two(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, a: Any, b: Any) -> Any:
        return self.lin(a) * b


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """``Two`` exported positionally, torch.export.export(m, (a, b), ...), saved to .pt2."""
    path = tmp_path_factory.mktemp("pt2") / "two_inputs.pt2"
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(24, 4, generator=g), torch.randn(24, 3, generator=g)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(Two().eval(), (a, b), dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(program, str(path))
    return path, a.numpy(), b.numpy()


@pytest.mark.parametrize("layout", ["by-name", "by-position"])
def test_a_positional_two_input_program_converts_and_checks_from_an_npz(
        two: tuple[Path, Any, Any], layout: str, tmp_path: Path) -> None:
    path, a, b = two
    sample = tmp_path / "s.npz"
    if layout == "by-name":
        np.savez(sample, b=b, a=a)  # in another order than the program's
    else:
        np.savez(sample, a, b)  # arr_0, arr_1
    out = _cli("convert", str(path), "--trust-pickle", "--sample", str(sample),
               "-o", str(tmp_path / "m.baton"), "--no-tune")
    assert out.exit_code == 0, out.output
    manifest = json.loads((tmp_path / "m.baton" / "baton.json").read_text())
    assert [i["name"] for i in manifest["inputs"]] == ["a", "b"]
    assert manifest["name"] == "Two"
    assert manifest["source"]["class"].endswith(".Two")
    by_position = [n for n in manifest["converter"]["notes"] if "by position" in n]
    assert bool(by_position) == (layout == "by-position"), manifest["converter"]["notes"]
    out = _cli("check", str(path), "--trust-pickle", str(tmp_path / "m.baton"),
               "--data", str(sample))
    assert out.exit_code == 0, out.output
    # the bundle computes the program's function
    from baton.runtime import Session

    got = Session(tmp_path / "m.baton").run({"a": a[:5], "b": b[:5]})["output"]
    program = torch.export.load(str(path)).module()
    with torch.no_grad():
        ref = program(torch.from_numpy(a[:5]), torch.from_numpy(b[:5])).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_one_array_for_a_two_input_program_is_refused_naming_the_inputs(
        two: tuple[Path, Any, Any], tmp_path: Path) -> None:
    path, a, _ = two
    np.save(tmp_path / "a.npy", a)
    out = _cli("convert", str(path), "--trust-pickle", "--sample", str(tmp_path / "a.npy"),
               "-o", str(tmp_path / "m.baton"))
    assert out.exit_code == 2, out.output
    assert "takes 2 inputs (a, b)" in out.output and "np.savez" in out.output


def test_convert_help_lists_the_pytorch_files() -> None:
    out = _cli("convert", "--help")
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    assert ".pt2/.pt (PyTorch)" in text, text


# -- export attempts ----------------------------------------------------------------------


class Prototypes(nn.Module):
    """Distances to learned prototypes: torch.cdist has no ONNX function in the dynamo
    exporter (aten._cdist_forward), while the TorchScript exporter has one. (From more than
    25 rows cdist computes through a matrix product, which dynamo exports: the sample has
    16.)"""

    def __init__(self) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(5, 4))

    def forward(self, x: Any) -> Any:
        return torch.cdist(x, self.centers)


def test_every_export_attempt_is_recorded_with_torchs_full_message(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Prototypes().eval()
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))  # not the centers
    bundle = baton.convert(model, x, tune=False)
    conv = bundle.manifest["converter"]
    assert conv["strategy"] == "torchscript"
    dynamo, torchscript = conv["attempts"]
    assert torchscript == {"strategy": "torchscript", "ok": True}
    assert dynamo["strategy"] == "dynamo" and dynamo["ok"] is False
    error = dynamo["error"]
    assert "\x1b[" not in error and error == error.strip()
    assert "step 3/3" in error  # the banner is kept in the record, and the cause too
    assert "No ONNX function found" in error and "_cdist_forward" in error
    assert baton.check(model, bundle, x).passed
    bundle.save(tmp_path / "m.baton")
    shown = _cli("inspect", str(tmp_path / "m.baton"))
    assert shown.exit_code == 0, shown.output
    lines = [ln for ln in shown.output.splitlines() if ln.startswith("attempt:")]
    assert len(lines) == 2, shown.output
    assert "dynamo failed" in lines[0] and "DispatchError: No ONNX function found" in lines[0]
    assert "step 3/3" not in lines[0]
    assert lines[1].split() == ["attempt:", "torchscript", "ok"]
    as_json = json.loads(_cli("inspect", "--json", str(tmp_path / "m.baton")).output)
    assert as_json["converter"]["attempts"] == conv["attempts"]


def test_a_failed_export_names_each_strategys_cause_not_its_banner() -> None:
    class Neither(nn.Module):  # torch.special.i0: neither exporter has it
        def forward(self, x: Any) -> Any:
            return torch.special.i0(x)

    with pytest.raises(baton.UnsupportedModelError) as info:
        baton.convert(Neither().eval(), torch.rand(8, 4))
    found = info.value.found
    assert found.startswith("dynamo: ") and "; torchscript: " in found, found
    assert "This is step" not in found and "Next steps" not in found and "\x1b[" not in found
    assert "i0" in found.split("; torchscript: ")[0]  # dynamo's cause names the operator
    assert "aten::i0" in found.split("; torchscript: ")[1]


def test_the_cause_of_a_message_is_picked_by_its_shape() -> None:
    from baton.converters._torch.export import cause, full_message

    assert cause("TorchExportError: Failed ... \x1b[96mThis is step 1/3\x1b[0m\n"
                 "## Exception summary\n\n<class 'a.b.GuardOnDataDependentSymNode'>: "
                 "Could not guard on Eq(u0, 1)\n\n(Refer to ...)") == (
        "GuardOnDataDependentSymNode: Could not guard on Eq(u0, 1)")
    assert cause("X: something went wrong\nError message:\nthe real cause\nmore") == (
        "the real cause")
    assert cause("RuntimeError: outer\n  File x\nValueError: inner reason") == (
        "ValueError: inner reason")
    assert cause("onnxruntime rejects batch 1: INVALID_ARGUMENT : Got invalid dimensions\n"
                 " index: 0 Got: 1 Expected: 16\n\nunrelated") == (
        "onnxruntime rejects batch 1: INVALID_ARGUMENT : Got invalid dimensions "
        "index: 0 Got: 1 Expected: 16")
    long = full_message(RuntimeError("\x1b[31m" + "y" * 9000 + "\x1b[0m  "))
    assert "\x1b[" not in long and long.startswith("RuntimeError: yyy")
    assert "[cut: the message had 9014 characters]" in long and len(long) < 8100
