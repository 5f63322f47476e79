"""bfloat16 PyTorch models: exported in bfloat16, rewritten to float32 arithmetic rounded to
bfloat16 wherever the bfloat16 graph rounds, served with float32 inputs and outputs, and
checked against the bfloat16 original within bfloat16's tolerance."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
nn = torch.nn


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.ln, self.l2 = nn.Linear(8, 32), nn.LayerNorm(32), nn.Linear(32, 5)

    def forward(self, x: Any) -> Any:
        return torch.softmax(self.l2(nn.functional.gelu(self.ln(self.l1(x)))), -1)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: Any) -> Any:
        return self.head(nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
                         .flatten(1))


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.ln = nn.LayerNorm(16)
        self.ff = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))

    def forward(self, x: Any) -> Any:
        y = self.ln(x + self.attn(x, x, x, need_weights=False)[0])
        return y + self.ff(y)


def _cnn() -> Any:
    model = CNN().train()
    with torch.no_grad():  # running statistics that are not the identity
        for _ in range(5):
            model(torch.randn(16, 3, 8, 8) * 3 + 1)
    return model


CASES = {"mlp": (MLP, (8,)), "cnn": (_cnn, (3, 8, 8)), "attention": (Attention, (5, 16))}


def _case(name: str) -> tuple[Any, Any]:
    make, shape = CASES[name]
    torch.manual_seed(0)
    model = make().eval().to(torch.bfloat16)
    x = torch.randn(32, *shape, generator=torch.Generator().manual_seed(1))
    return model, x.to(torch.bfloat16)


def test_onnxruntime_rounds_float32_to_bfloat16_as_torch_does() -> None:
    """The rewrite's premise: Cast(float -> bfloat16) is round to nearest, ties to even,
    bit for bit as torch (ties, subnormals, huge values, inf, nan), at every optimisation
    level (no pass removes the Cast pair)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BFLOAT16),
         helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)], "round",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    rng = np.random.default_rng(0)
    x = np.concatenate([
        (rng.standard_normal(20000) * 10.0 ** rng.integers(-40, 38, 20000)),
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-40, 1.00390625, 1.01171875],
    ]).astype(np.float32)
    ties = ((rng.integers(0, 2**15, 2000).astype(np.uint32) << 16) | 0x8000).view(np.float32)
    x = np.concatenate([x, ties])
    expected = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        sess = ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": x})[0]
        same = (got.view(np.uint32) == expected.view(np.uint32)) | (
            np.isnan(got) & np.isnan(expected))
        assert same.all(), (x[~same][:5], got[~same][:5], expected[~same][:5])


@pytest.mark.parametrize("name", list(CASES))
def test_bfloat16_models_convert_and_pass_the_check(name: str, tmp_path: Path) -> None:
    from baton.converters._torch.bfloat16 import BFLOAT16_TOLERANCE

    model, x = _case(name)
    bundle = baton.convert(model, x, tune=False)
    assert bundle.report, bundle.report.failures
    m = bundle.manifest
    assert m["precision"] == "bfloat16"
    assert any("bfloat16" in n for n in m["converter"]["notes"])
    assert [i["dtype"] for i in m["inputs"]] == ["float32"]
    assert [o["dtype"] for o in m["outputs"]] == ["float32"]
    assert m["tolerances"]["output"] == BFLOAT16_TOLERANCE.to_dict()
    graph = onnx.load_from_string(bundle.model_bytes)
    assert "Cast" in {n.op_type for n in graph.graph.node}
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in graph.graph.initializer
               if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.BFLOAT16))
    # with the parity search: the default budget for the MLP, a smaller one for the
    # slower models, to keep the suite short
    report = baton.check(model, bundle, x, search_budget=None if name == "mlp" else "300")
    assert report.passed, report
    # served from the saved bundle with float32 inputs, as the bfloat16 model computes
    from baton.runtime import Session

    bundle.save(tmp_path / "m.baton")
    more = torch.randn(64, *x.shape[1:], generator=torch.Generator().manual_seed(7))
    got = Session(tmp_path / "m.baton").run({"input": more.numpy()})["output"]
    assert got.dtype == np.float32
    with torch.no_grad():
        ref = model(more.to(torch.bfloat16)).float().numpy()
    tol = BFLOAT16_TOLERANCE
    assert (np.abs(got - ref) <= tol.atol + tol.rtol * np.abs(ref)).all()
    # and not merely float32 arithmetic: every output is a bfloat16 value
    assert (got.view(np.uint32) & 0xFFFF == 0).all()


def test_a_changed_weight_fails_the_bfloat16_check() -> None:
    model, x = _case("mlp")
    bundle = baton.convert(model, x, tune=False)
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.l2.weight[0] += 0.5  # one class's logit (all of them would cancel in softmax)
    assert not baton.check(broken, bundle, x, search=False)


def test_float32_inputs_check_a_bfloat16_model() -> None:
    """The bundle's contract is float32: checking with float32 data casts it to bfloat16
    for the original, as conversion did."""
    model, x = _case("mlp")
    bundle = baton.convert(model, x, tune=False)
    report = baton.check(model, bundle, x.float().numpy(), search=False)
    assert report.passed, report


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: Any) -> Any:
        return torch.cond(x.sum() > 0, lambda t: self.lin(t) * 2, lambda t: self.lin(t) - 1,
                          (x,))


def test_a_bfloat16_graph_with_subgraphs_is_refused_with_a_remedy_that_converts() -> None:
    """torch.cond exports as an If with subgraphs, which the rewrite does not enter."""
    torch.manual_seed(0)
    model = Branching().eval().to(torch.bfloat16)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    with pytest.raises(baton.UnsupportedModelError) as info:
        baton.convert(model, x, tune=False)
    assert "subgraphs" in info.value.found
    assert "copy.deepcopy(model).float()" in info.value.hint
    copy32 = copy.deepcopy(model).float()
    assert baton.convert(copy32, x.float().numpy(), tune=False).report
