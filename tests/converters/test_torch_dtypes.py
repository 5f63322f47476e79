"""PyTorch models in the dtypes practitioners use: int32 token ids and float16 (``.half()``)
models convert, keep parity (float16 within half precision's tolerance) and serve from a
saved bundle (bfloat16: tests/converters/test_torch_bf16.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")


class Bag(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.head = torch.nn.Embedding(50, 8), torch.nn.Linear(8, 2)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(dim=1))


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_ids_keep_their_dtype(dtype, tmp_path) -> None:
    model = Bag().eval()
    ids = np.random.default_rng(0).integers(0, 50, (16, 5)).astype(dtype)
    bundle = baton.convert(model, ids)
    assert bundle.typed_manifest.inputs[0].dtype == np.dtype(dtype).name
    assert baton.check(model, bundle, ids, search_budget="200")
    bundle.save(tmp_path / "b")
    session = baton.runtime.Session(tmp_path / "b")
    with torch.no_grad():
        expected = model(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(session.run({"input": ids})["output"], expected, rtol=1e-5,
                               atol=1e-6)


def test_a_half_model_converts_in_float16(tmp_path) -> None:
    model = mlp().half().eval()
    x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float16)
    bundle = baton.convert(model, x)
    spec = bundle.typed_manifest
    assert [s.dtype for s in spec.inputs] == ["float16"]
    assert [s.dtype for s in spec.outputs] == ["float16"]
    assert bundle.report, bundle.report
    assert baton.check(model, bundle, x, search_budget="200")
    bundle.save(tmp_path / "b")
    assert baton.verify(tmp_path / "b")  # the golden float16 vectors, re-run
    out = baton.runtime.Session(tmp_path / "b").run({"input": x})["output"]
    assert out.dtype == np.float16


def test_a_changed_weight_fails_even_at_half_precision() -> None:
    model = mlp().half().eval()
    x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float16)
    bundle = baton.convert(model, x)
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken[2].weight[0, 0] += 0.25
    assert not baton.check(broken, bundle, x, search=False)


def test_a_float32_copy_of_a_bfloat16_model_converts() -> None:
    model = mlp().to(torch.bfloat16).eval()
    x = torch.randn(16, 8).to(torch.bfloat16)
    # bfloat16 models themselves convert now: tests/converters/test_torch_bf16.py
    # a float32 copy converts too
    copy32 = copy.deepcopy(model).float()
    assert baton.convert(copy32, x.float().numpy()).report


def test_converting_and_checking_leave_the_module_in_its_own_modes() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5),
                                torch.nn.Linear(8, 2))
    model.train()
    model[1].eval()  # a mixed state, as a user may leave it
    modes = [m.training for m in model.modules()]
    x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    bundle = baton.convert(model, x)  # exported in eval mode: dropout off
    assert bundle.report
    assert baton.check(model, bundle, x, search_budget="100")
    assert [m.training for m in model.modules()] == modes
