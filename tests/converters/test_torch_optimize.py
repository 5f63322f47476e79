"""Offline graph optimisation of PyTorch bundles: the fused graph agrees with the torch
model (MLP with LayerNorm and GELU in float32 and float16, a TransformerEncoder layer, an
encoder with an attention mask), the bundle records what was tried and why it was kept or
not, a changed weight still fails the gate, and ``optimize=False`` keeps the raw export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from attention_models import Encoder, padded  # noqa: E402

from baton.converters._torch.optimize import MARGIN, fuse  # noqa: E402
from baton.converters.torch import TorchConverter  # noqa: E402
from baton.runtime.session import make_ort_session  # noqa: E402

nn = torch.nn


def mlp() -> Any:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 3))


def encoder_layer() -> Any:
    torch.manual_seed(1)
    return nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)


def _ops(onx: Any) -> set[str]:
    return {f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in onx.graph.node}


def _raw(model: Any, sample: Any) -> Any:
    conv = TorchConverter()
    return conv.convert(model.eval(), sample, conv.infer_inputs(model, sample), opset=None,
                        optimize=False).model


def _numpy(out: Any) -> dict[str, np.ndarray]:
    if isinstance(out, dict):
        return {k: v.detach().float().numpy() for k, v in out.items()}
    return {"output": out.detach().float().numpy()}


#: the model, its inputs at a batch size, the contrib op the fusion should bring (None: no
#: pattern is found, the fused graph is the exporter's), the tolerance
CASES: dict[str, tuple[Callable[[], Any], Callable[[int], Any], str | None, float]] = {
    "mlp-layernorm-gelu": (mlp, lambda n: torch.randn(n, 12), "com.microsoft:Gelu", 1e-5),
    "mlp-float16": (lambda: mlp().half(), lambda n: torch.randn(n, 12).half(),
                    None, 1e-2),
    "transformer-encoder-layer": (encoder_layer, lambda n: torch.randn(n, 6, 16),
                                  "com.microsoft:SkipLayerNormalization", 1e-5),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_fused_graph_agrees_with_the_torch_model(case: str) -> None:
    make, data, fused_op, atol = CASES[case]
    model = make().eval()
    fused, counts = fuse(_raw(model, data(4)))
    if fused_op:
        assert counts and fused_op in _ops(fused)
    sess = make_ort_session(fused.SerializeToString())
    for n in (1, 5):  # sizes other than the sample's
        x = data(n)
        with torch.no_grad():
            want = _numpy(model(x))["output"]
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        np.testing.assert_allclose(got.astype(np.float64), want, atol=atol, rtol=atol)


def test_the_fused_graph_with_an_attention_mask() -> None:
    model = Encoder().eval()
    sample = padded(4, 8, "right")
    fused, counts = fuse(_raw(model, sample))
    assert counts
    sess = make_ort_session(fused.SerializeToString())
    feeds = padded(3, 8, "right", seed=5)
    with torch.no_grad():
        want = _numpy(model(**feeds))
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, {k: v.numpy() for k, v in feeds.items()})))
    for name in ("last_hidden_state", "pooled"):
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def converted() -> tuple[Any, Any, Any]:
    model = mlp().eval()
    x = torch.randn(16, 12)
    return model, x, baton.convert(model, x)


def test_the_bundle_says_what_was_tried_and_why(converted: tuple[Any, Any, Any]) -> None:
    _, _, bundle = converted
    assert bundle.report
    record = bundle.manifest["converter"]["optimization"]
    assert record["tried"] == "onnxscript ort_fusions"
    assert record["fusions"].get("erf_gelu") == 1
    assert set(record["speedup"]) == {"batch 1", "batch 16"}
    for label, med in record["median_ms"].items():
        assert med["raw"] > 0 and med["optimized"] > 0
        assert record["speedup"][label] == pytest.approx(med["raw"] / med["optimized"],
                                                         rel=1e-2, abs=2e-3)
    notes = bundle.manifest["converter"]["notes"]
    applied = "com.microsoft:Gelu" in _ops(bundle.onnx_model)
    if record["applied"]:
        assert applied and all(s >= 1 / (1 - MARGIN) - 1e-2 for s in record["speedup"].values())
        assert any(n.startswith("graph optimised offline") for n in notes)
    else:
        assert not applied and record["reason"]
        assert any(n.startswith("graph left as exported") for n in notes)


def test_a_changed_weight_still_fails_the_gate(converted: tuple[Any, Any, Any],
                                               tmp_path: Path) -> None:
    model, x, bundle = converted
    path = bundle.save(tmp_path / "m.baton")
    assert baton.check(model, path, x, search=False)
    import copy

    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed[3].weight[0, 0] += 0.05
    assert not baton.check(changed, path, x, search=False)


def test_no_optimize_keeps_the_raw_export(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    model = mlp().eval()
    x = torch.randn(8, 12)
    bundle = baton.convert(model, x, optimize=False, tune=False)
    assert bundle.manifest["converter"]["optimization"]["applied"] is None
    assert not any(op.startswith("com.microsoft") for op in _ops(bundle.onnx_model))
    # the command line's opt-out
    pt2 = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=(
        {0: torch.export.Dim("batch")},)), str(pt2))
    np.save(tmp_path / "x.npy", x.numpy())
    out = tmp_path / "b"
    result = CliRunner().invoke(app, ["convert", str(pt2), "--sample", str(tmp_path / "x.npy"),
                                      "--output", str(out), "--trust-pickle", "--no-optimize",
                                      "--no-tune"])
    assert result.exit_code == 0, result.output
    saved = baton.bundle.load(out)
    assert saved.manifest["converter"]["optimization"]["reason"].startswith("turned off")
