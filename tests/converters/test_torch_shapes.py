"""Dynamic shapes a practitioner's models take: a UNet whose height and width vary (it takes
only multiples of 2), an EmbeddingBag whose flat ids have no batch dimension; both convert
and pass at sizes beyond the sample, and the manifest keeps dynamic dims symbolic."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")
nn = torch.nn

from baton.errors import UsageError  # noqa: E402


class UNet(nn.Module):
    """One level down and up with a skip connection: height and width must be even (a max
    pool halves them, a transposed convolution doubles them back, and the skip is
    concatenated)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.down = nn.Conv2d(3, 8, 3, padding=1)
        self.mid = nn.Conv2d(8, 16, 3, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.out = nn.Conv2d(16, 2, 1)

    def forward(self, image: Any) -> Any:
        skip = torch.relu(self.down(image))
        deep = torch.relu(self.mid(nn.functional.max_pool2d(skip, 2)))
        return self.out(torch.cat([skip, self.up(deep)], dim=1))


class Bags(nn.Module):
    """EmbeddingBag over flat ids with offsets (one bag per example), then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.bag = nn.EmbeddingBag(100, 8, mode="mean")
        self.head = nn.Linear(8, 3)

    def forward(self, ids: Any, offsets: Any) -> Any:
        return self.head(self.bag(ids, offsets))


#: the bundle directories the command-line tests write (made absolute under tmp_path)
OUT = ("b", "x")


def _images(n: int, h: int, w: int, seed: int) -> Any:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _bags(n: int, seed: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 8, (n,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)[:-1]])
    ids = torch.randint(0, 100, (int(lengths.sum()),), generator=g)
    return {"ids": ids, "offsets": offsets}


@pytest.fixture(scope="module")
def unet() -> tuple[Any, Any]:
    model = UNet().eval()
    bundle = baton.convert(model, _images(3, 16, 16, 0), tune=False,
                           dynamic={"input": {2: "height", 3: "width"}})
    return model, bundle


def test_a_unet_with_dynamic_height_and_width(unet: tuple[Any, Any]) -> None:
    model, bundle = unet
    assert bundle.report.passed, bundle.report
    names = [d.name for d in bundle.report.outputs]
    # checked smaller and beyond the sample's 16 where the model takes the size
    for size in ("height=8", "height=32", "width=8", "width=32"):
        assert f"output @ {size}" in names
    # 1, 15 and 17 the UNet itself cannot take: skipped, and said so
    note = next(n for n in bundle.report.notes if "sizes the original model rejects" in n)
    assert "height=1 (" in note and "height=15 (" in note and "width=17 (" in note
    assert "output @ height=1" not in names
    inputs = bundle.typed_manifest.inputs
    assert inputs[0].shape == ("N", 3, "height", "width")
    out = bundle.typed_manifest.outputs[0].shape
    assert out[0] == "N" and out[1] == 2
    assert all(isinstance(d, str) for d in out[2:])  # symbolic, not the sample's 16
    # beyond the sample: taller and wider than any size it had, with the default search
    report = baton.check(model, bundle, _images(4, 24, 40, 1))
    assert report.passed, report


def test_the_least_size_of_a_dimension() -> None:
    model = UNet().eval()
    bundle = baton.convert(model, _images(2, 16, 16, 0), tune=False,
                           dynamic={"input": {2: "height>=8", 3: "width>=8"}})
    assert bundle.report.passed, bundle.report
    note = " ".join(bundle.report.notes)
    assert "height=1 (" not in note and "height=15 (" in note  # below 8: not tried
    assert bundle.typed_manifest.inputs[0].shape == ("N", 3, "height", "width")
    with pytest.raises(UsageError, match="at least 20"):
        baton.convert(model, _images(2, 16, 16, 0), dynamic={"input": {2: "height>=20"}})
    with pytest.raises(UsageError, match="cannot read the dynamic dimension"):
        baton.convert(model, _images(2, 16, 16, 0), dynamic={"input": {2: "height>8"}})


def test_a_wrong_unet_fails_at_the_new_size(unet: tuple[Any, Any]) -> None:
    model, bundle = unet
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        wrong.up.bias += 0.1
    assert not baton.check(wrong, bundle, _images(2, 24, 40, 2), search=False).passed


@pytest.fixture(scope="module")
def bags() -> tuple[Any, Any]:
    model = Bags().eval()
    bundle = baton.convert(model, _bags(6, 0), tune=False, batch_dims={"ids": None},
                           dynamic={"ids": {0: "tokens"}})
    return model, bundle


def test_an_embedding_bag_with_offsets(bags: tuple[Any, Any]) -> None:
    model, bundle = bags
    assert bundle.report.passed, bundle.report
    inputs = {s.name: s for s in bundle.typed_manifest.inputs}
    assert inputs["ids"].shape == ("tokens",)
    assert inputs["offsets"].shape == ("N",)
    assert any("ids has no batch dimension" in n for n in bundle.report.notes)
    # more bags and more tokens than the sample had
    data = _bags(40, 1)
    assert len(data["ids"]) > 100
    report = baton.check(model, bundle, data)
    assert report.passed, report
    assert report.rows == 40
    assert any("parity search not run" in n for n in report.notes)
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        wrong.bag.weight[:50] += 0.05
    assert not baton.check(wrong, bundle, data).passed


def test_the_golden_vectors_of_a_whole_input(bags: tuple[Any, Any], tmp_path: Any) -> None:
    _, bundle = bags
    path = bundle.save(tmp_path / "bags")
    assert baton.verify(path).passed
    session = baton.runtime.Session(path, self_check=True)
    data = _bags(9, 3)
    got = session.run({k: v.numpy() for k, v in data.items()})["output"]
    with torch.no_grad():
        want = Bags().eval()(**data).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_inputs_of_different_lengths_need_batch_dims() -> None:
    with pytest.raises(UsageError, match="batch_dims") as err:
        baton.convert(Bags().eval(), _bags(6, 0))
    assert "--no-batch ids" in str(err.value)
    with pytest.raises(UsageError, match="unknown input"):
        baton.convert(Bags().eval(), _bags(6, 0), batch_dims={"tokens": None})
    with pytest.raises(UsageError, match="every input"):
        baton.convert(Bags().eval(), _bags(6, 0), batch_dims={"ids": None, "offsets": None})


def test_no_batch_on_the_command_line(tmp_path: Any) -> None:
    """``--no-batch ids --dynamic ids:0=tokens`` converts an EmbeddingBag program, and
    ``baton check`` passes on more bags than the sample had."""

    model = Bags().eval()
    sample, more = _bags(6, 0), _bags(30, 1)
    shapes = ({0: torch.export.Dim("tokens", min=2)}, {0: torch.export.Dim("batch", min=2)})
    program = torch.export.export(model, (sample["ids"], sample["offsets"]),
                                  dynamic_shapes=shapes)
    torch.export.save(program, tmp_path / "bags.pt2")
    for name, data in (("sample", sample), ("more", more)):
        np.savez(tmp_path / f"{name}.npz", **{k: v.numpy() for k, v in data.items()})
    def run(*args: str) -> Any:
        """``baton ARGS`` in this process (typer's runner), from ``tmp_path``."""
        from typer.testing import CliRunner

        from baton.cli import app

        return CliRunner().invoke(app, [str(tmp_path / a) if (tmp_path / a).exists() or a in
                                        OUT else a for a in args])

    refused = run("convert", "bags.pt2", "--trust-pickle", "--sample", "sample.npz", "-o", "x")
    assert refused.exit_code == 2 and "--no-batch ids" in refused.output
    done = run("convert", "bags.pt2", "--trust-pickle", "--sample", "sample.npz", "-o", "b",
               "--no-tune", "--no-batch", "ids", "--dynamic", "ids:0=tokens")
    assert done.exit_code == 0, done.output
    checked = run("check", "bags.pt2", "b", "--trust-pickle", "--data", "more.npz")
    assert checked.exit_code == 0, checked.output
    assert "parity search not run" in checked.output
