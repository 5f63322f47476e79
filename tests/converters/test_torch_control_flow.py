"""Control flow on a tensor's value: a Python ``if`` on data is refused, naming the line and
the fix (the TorchScript fallback used to trace it and bake in the sample's branch, a
silently wrong bundle); the same model written with ``torch.cond`` or ``torch.where``
converts and keeps parity on both branches."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")


class PythonIf(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 0:  # the data-dependent branch
            return self.a(x)
        return self.b(x) * 10


class WithCond(PythonIf):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda t: self.a(t), lambda t: self.b(t) * 10, (x,))


class WithWhere(PythonIf):
    def forward(self, x):
        per_row = x.sum(dim=1, keepdim=True) > 0
        return torch.where(per_row, self.a(x), self.b(x) * 10)


def positive(n: int = 16, sign: float = 1.0) -> np.ndarray:
    return (sign * np.abs(np.random.default_rng(0).normal(size=(n, 4)))).astype(np.float32)


def test_a_python_if_on_data_is_refused_naming_the_line_and_the_fix() -> None:
    model = PythonIf().eval()
    with pytest.raises(baton.UnsupportedModelError) as info:
        baton.convert(model, positive())
    message = str(info.value)
    line = inspect.getsourcelines(PythonIf.forward)[1] + 1
    assert f"test_torch_control_flow.py:{line}" in message, message
    assert "if x.sum() > 0:" in message
    assert "only the branch the sample took" in message
    assert "torch.cond" in info.value.hint and "torch.where" in info.value.hint


def test_torch_cond_converts_and_keeps_parity_on_both_branches() -> None:
    model = WithCond().eval()
    bundle = baton.convert(model, positive())
    assert bundle.report, bundle.report
    for sign in (1.0, -1.0):  # both branches, each on data that takes it
        data = positive(8, sign)
        report = baton.check(model, bundle, data, search=False)
        assert report, report
    # the branch the sample did not take is in the graph: the negative rows give b(x) * 10
    with torch.no_grad():
        expected = (model.b(torch.from_numpy(positive(8, -1.0))) * 10).numpy()
    import onnxruntime as ort

    sess = ort.InferenceSession(bundle.model_bytes)
    got = sess.run(None, {sess.get_inputs()[0].name: positive(8, -1.0)})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_torch_where_converts_and_passes_the_search() -> None:
    model = WithWhere().eval()
    data = np.concatenate([positive(8), positive(8, -1.0)])
    bundle = baton.convert(model, data)
    assert bundle.report, bundle.report
    assert baton.check(model, bundle, data, search_budget="200")
