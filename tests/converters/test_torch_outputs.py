"""PyTorch outputs: any nesting of tuples and dicts flattened to dotted names in the order
torch.onnx emits them; non-tensor outputs refused; output shapes keep the graph's dynamic
dimensions instead of the sample's sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
nn = torch.nn


class DictOfTuples(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 3)
        self.b = nn.Linear(6, 2)

    def forward(self, x: Any) -> Any:
        return {"logits": self.a(x), "skipped": None,
                "aux": (self.b(x), torch.tanh(x).sum(1, keepdim=True)), "last": x * 3}


class TupleOfTuples(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 4)

    def forward(self, x: Any) -> Any:
        h = self.a(x)
        return h, (torch.relu(h), {"q": h - 1, "r": h.mean(1)})


class WithCache(nn.Module):
    """Returns an object besides its tensor, as a Hugging Face model with use_cache does."""

    class Cache:
        def __init__(self, t: Any) -> None:
            self.t = t

    def forward(self, x: Any) -> Any:
        return {"logits": x * 2, "past_key_values": self.Cache(x)}


def _x(n: int = 32, seed: int = 0) -> Any:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))


def _run(bundle: Any, path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from baton.runtime import Session

    bundle.save(path)
    return Session(path).run(feeds)


@pytest.mark.parametrize(("cls", "names"), [
    (DictOfTuples, ["logits", "aux.0", "aux.1", "last"]),
    (TupleOfTuples, ["output_0", "output_1.0", "output_1.1.q", "output_1.1.r"]),
])
def test_nested_outputs_convert_with_dotted_names_in_pytree_order(
        cls: Any, names: list[str], tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = cls().eval()
    bundle = baton.convert(model, _x(), tune=False)
    assert [o["name"] for o in bundle.manifest["outputs"]] == names
    assert bundle.report, bundle.report.failures
    report = baton.check(model, bundle, _x(64, 1))
    assert report.passed, report
    # each named output is the original's value at that path
    x = _x(5, 2)
    got = _run(bundle, tmp_path / "m.baton", {"input": x.numpy()})
    with torch.no_grad():
        leaves = [v for v in torch.utils._pytree.tree_leaves(model(x)) if v is not None]
    assert len(leaves) == len(names)
    for name, leaf in zip(names, leaves):
        np.testing.assert_allclose(got[name], leaf.numpy(), rtol=1e-5, atol=1e-6)


def test_a_non_tensor_output_is_refused_naming_its_path_and_type() -> None:
    with pytest.raises(baton.UnsupportedModelError) as info:
        baton.convert(WithCache().eval(), _x())
    err = info.value
    assert "'past_key_values'" in str(err) and "Cache" in str(err)
    assert "past_key_values: " in err.found and "WithCache.Cache" in err.found
    assert "use_cache" in err.hint and "return only tensors" in err.hint


def test_the_hint_works_returning_only_tensors_converts() -> None:
    class Fixed(WithCache):
        def forward(self, x: Any) -> Any:
            return {"logits": super().forward(x)["logits"]}

    bundle = baton.convert(Fixed().eval(), _x(), tune=False)
    assert [o["name"] for o in bundle.manifest["outputs"]] == ["logits"]
    assert bundle.report


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.proj = nn.Linear(16, 16)

    def forward(self, ids: Any) -> Any:
        e = self.embed(ids)
        return {"enc": self.proj(e), "pooled": e.mean(1)}


def test_output_shapes_keep_the_dynamic_sequence_dimension(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Encoder().eval()
    ids = torch.randint(0, 50, (4, 20), generator=torch.Generator().manual_seed(0))
    bundle = baton.convert(model, {"ids": ids}, dynamic={"ids": {1: "seq"}}, tune=False)
    assert bundle.report, bundle.report.failures
    seq = bundle.manifest["inputs"][0]["shape"][1]
    assert isinstance(seq, str)
    shapes = {o["name"]: o["shape"] for o in bundle.manifest["outputs"]}
    assert shapes == {"enc": ["N", seq, 16], "pooled": ["N", 16]}
    # the manifest round trip keeps the names, and the bundle serves another length
    bundle.save(tmp_path / "m.baton")
    from baton.runtime import BundleFiles, Session

    manifest = BundleFiles(tmp_path / "m.baton").manifest()  # parsed and checked
    assert [list(o.shape) for o in manifest.outputs] == [["N", seq, 16], ["N", 16]]
    other = torch.randint(0, 50, (3, 33), generator=torch.Generator().manual_seed(1))
    out = Session(tmp_path / "m.baton").run({"ids": other.numpy()})
    with torch.no_grad():
        ref = model(other)
    assert out["enc"].shape == (3, 33, 16)
    np.testing.assert_allclose(out["enc"], ref["enc"].numpy(), rtol=1e-5, atol=1e-6)
    from typer.testing import CliRunner

    from baton.cli import app

    shown = CliRunner().invoke(app, ["inspect", str(tmp_path / "m.baton")])
    assert shown.exit_code == 0, shown.output
    assert f'["N", "{seq}", 16]' in shown.output


def test_an_unnamed_dynamic_output_dimension_gets_a_name_not_the_sample_size() -> None:
    from baton.converters._torch.outputs import output_shape

    assert output_shape(["batch", None, 16, "s0"]) == ("N", "d1", 16, "s0")
    assert output_shape([]) == ("N",)
