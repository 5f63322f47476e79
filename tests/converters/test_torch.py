"""PyTorch modules through torch.onnx: dynamic batch, parity at batch sizes 1, 2, 7, 64."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")
nn = torch.nn


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x: Any) -> Any:
        return self.net(x)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: Any) -> Any:
        return self.head(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


class RecurrentText(nn.Module):
    def __init__(self, cell: str) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(16, 24, batch_first=True)
        self.head = nn.Linear(24, 2)

    def forward(self, tokens: Any) -> Any:
        states, _ = self.rnn(self.embed(tokens))
        return self.head(states[:, -1])


class AttentionText(nn.Module):
    """Token ids and a padding mask in; logits and a pooled embedding out (a dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        x = self.embed(input_ids)
        y, _ = self.attn(x, x, x, key_padding_mask=attention_mask == 0)
        m = attention_mask.unsqueeze(-1).float()
        pooled = (y * m).sum(1) / m.sum(1).clamp(min=1)
        return {"logits": self.head(pooled), "embedding": pooled}


def _cnn_with_running_stats() -> Any:
    model = CNN()
    model.train()
    with torch.no_grad():
        for _ in range(5):  # non-trivial running mean/var
            model(torch.randn(16, 3, 8, 8) * 3 + 1)
    assert not torch.allclose(model.bn.running_mean, torch.zeros(8))
    return model


def _tokens(n: int, seed: int) -> Any:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, 6), generator=g)
    mask = torch.ones(n, 6, dtype=torch.int64)
    mask[:, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


CASES = {
    "mlp": (MLP, lambda n, s: torch.randn(n, 8, generator=torch.Generator().manual_seed(s))),
    "cnn-batchnorm": (_cnn_with_running_stats,
                      lambda n, s: torch.randn(n, 3, 8, 8,
                                               generator=torch.Generator().manual_seed(s))),
    "lstm": (lambda: RecurrentText("lstm"),
             lambda n, s: torch.randint(0, 100, (n, 7),
                                        generator=torch.Generator().manual_seed(s))),
    "gru": (lambda: RecurrentText("gru"),
            lambda n, s: torch.randint(0, 100, (n, 7),
                                       generator=torch.Generator().manual_seed(s))),
    # a batch-1 sample: torch.export would specialise the batch to 1 here
    "transformer-encoder": (
        lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True),
                                      2),
        lambda n, s: torch.randn(n, 5, 16, generator=torch.Generator().manual_seed(s))),
    "attention-text": (AttentionText, _tokens),
}


@pytest.mark.parametrize("case", list(CASES))
def test_module_converts_with_parity_at_every_batch_size(case: str) -> None:
    torch.manual_seed(0)
    factory, data = CASES[case]
    model = factory().eval()
    sample = data(1 if case == "transformer-encoder" else 4, 0)
    bundle = baton.convert(model, sample)
    report = bundle.report
    assert report is not None and report, report.failures
    names = [o.name for o in report.outputs]
    for batch in (1, 2, 7, 64):
        assert any(n.endswith(f"@ batch {batch}") for n in names)
    assert bundle.inputs[0].shape[0] == "N"
    # fresh data at an odd batch size, and the runtime at batch 64
    assert baton.check(model, bundle, data(7, 1), search=False)
    import tempfile

    from baton.runtime import Session

    with tempfile.TemporaryDirectory() as tmp:
        sess = Session(bundle.save(Path(tmp) / "m.baton"))
        feeds = data(64, 2)
        feeds = ({k: v.numpy() for k, v in feeds.items()} if isinstance(feeds, dict)
                 else {sess.inputs[0].name: feeds.numpy()})
        out = sess.run(feeds)
    with torch.no_grad():
        ref = model(**data(64, 2)) if isinstance(sample, dict) else model(data(64, 2))
    ref = ref if isinstance(ref, dict) else {"output": ref}
    for name, value in ref.items():
        np.testing.assert_allclose(out[name], value.numpy(), rtol=1e-4, atol=1e-5)


def test_batch_one_trap_is_recorded_as_handled() -> None:
    """From a batch-1 example the plain dynamo export keeps batch 1 for this model."""
    model = CASES["transformer-encoder"][0]().eval()
    x = torch.randn(1, 5, 16)
    import onnxruntime as ort

    batch = torch.export.Dim("batch", min=1)
    raw = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: batch},),
                            verbose=False).model_proto
    sess = ort.InferenceSession(raw.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        sess.run(None, {sess.get_inputs()[0].name: np.zeros((8, 5, 16), np.float32)})
    bundle = baton.convert(model, x)
    assert bundle.manifest["converter"]["strategy"] == "dynamo"
    assert baton.check(model, bundle, torch.randn(8, 5, 16), search=False)


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_program_files_through_the_cli(suffix: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    model = MLP().eval()
    x = torch.randn(16, 8)
    path = tmp_path / f"model{suffix}"
    if suffix == ".pt2":  # exported with a dynamic batch, as docs/pytorch.md says
        batch = torch.export.Dim("batch", min=1)
        torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: batch},)),
                          str(path))
    else:
        torch.jit.save(torch.jit.trace(model, x), str(path))
    np.save(tmp_path / "x.npy", x.numpy())
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(path), "--trust-pickle",
                              "--sample", str(tmp_path / "x.npy"),
                              "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["check", str(path), "--trust-pickle", str(tmp_path / "m.baton"),
                              "--data", str(tmp_path / "x.npy")])
    assert out.exit_code == 0, out.output
    assert baton.verify(tmp_path / "m.baton")


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_program_files_need_trust(suffix: str, tmp_path: Path) -> None:
    """Loading a PyTorch program file can run code from it (issue 11): like a pickle, it
    is refused without --trust-pickle, before torch opens it."""
    from typer.testing import CliRunner

    from baton.cli import app

    x = torch.randn(16, 8)
    path = tmp_path / f"model{suffix}"
    if suffix == ".pt2":
        torch.export.save(torch.export.export(MLP().eval(), (x,)), str(path))
    else:
        torch.jit.save(torch.jit.trace(MLP().eval(), x), str(path))
    np.save(tmp_path / "x.npy", x.numpy())
    for command in (["convert", str(path), "--sample", str(tmp_path / "x.npy"), "-o",
                     str(tmp_path / "m.baton")],
                    ["bench", str(tmp_path / "none.baton"), "--model", str(path)]):
        out = CliRunner().invoke(app, command)
        assert out.exit_code == 2, out.output
        assert "--trust-pickle" in out.output and "can run code" in out.output
    assert not (tmp_path / "m.baton").exists()


def test_program_with_a_fixed_batch_is_refused_with_advice(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    x = torch.randn(16, 8)
    torch.export.save(torch.export.export(MLP().eval(), (x,)), str(tmp_path / "m.pt2"))
    np.save(tmp_path / "x.npy", x.numpy())
    out = CliRunner().invoke(app, ["convert", str(tmp_path / "m.pt2"), "--trust-pickle", "--sample",
                                   str(tmp_path / "x.npy"), "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 2, out.output
    assert "dynamic_shapes" in out.output and not (tmp_path / "m.baton").exists()


# -- dynamic dimensions besides the batch ------------------------------------------------

SEQ = {"input_ids": {1: "seq"}, "attention_mask": {1: "seq"}}


def _tokens_of_length(n: int, length: int, seed: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, length), generator=g)
    mask = (torch.arange(length) < torch.randint(1, length + 1, (n, 1), generator=g)).long()
    return {"input_ids": ids, "attention_mask": mask}


def test_sequence_length_declared_dynamic_serves_other_lengths() -> None:
    torch.manual_seed(0)
    model = AttentionText().eval()
    bundle = baton.convert(model, _tokens_of_length(4, 12, 0), dynamic=SEQ)
    assert bundle.report is not None and bundle.report, bundle.report.failures
    assert [s.shape for s in bundle.inputs] == [("N", "seq"), ("N", "seq")]
    names = [o.name for o in bundle.report.outputs]
    for size in (1, 6, 11):  # cut from the 12 tokens of the sample
        assert f"logits @ seq={size}" in names
    assert bundle.manifest["converter"]["dynamic_dims"] == {
        "input_ids": {"1": "seq"}, "attention_mask": {"1": "seq"}}
    # longer than anything in the sample, at an odd batch size
    report = baton.check(model, bundle, _tokens_of_length(5, 31, 1), search=False)
    assert report, report.failures


def test_without_a_dynamic_sequence_the_length_is_fixed() -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    bundle = baton.convert(AttentionText().eval(), _tokens_of_length(4, 12, 0))
    assert bundle.inputs[0].shape == ("N", 12)
    sess = ort.InferenceSession(bundle.model_bytes, providers=["CPUExecutionProvider"])
    feeds = {k: v.numpy() for k, v in _tokens_of_length(2, 20, 1).items()}
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        sess.run(None, feeds)


@pytest.mark.parametrize(("dynamic", "message"), [
    ({"ids": {1: "seq"}}, "unknown input 'ids'"),
    ({"input_ids": {0: "seq"}}, "no dimension 0"),
    ({"input_ids": {2: "seq"}}, "no dimension 2"),
])
def test_bad_dynamic_dimensions_are_usage_errors(dynamic: Any, message: str) -> None:
    with pytest.raises(baton.UsageError, match=message) as err:
        baton.convert(AttentionText().eval(), _tokens_of_length(4, 12, 0), dynamic=dynamic)
    assert err.value.exit_code == 2


def test_a_dynamic_dimension_of_size_one_in_the_sample_is_refused() -> None:
    with pytest.raises(baton.UsageError, match="at least 2"):
        baton.convert(AttentionText().eval(), _tokens_of_length(4, 1, 0), dynamic=SEQ)


def test_dynamic_program_file_through_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    torch.manual_seed(0)
    model = AttentionText().eval()
    sample = _tokens_of_length(6, 10, 0)
    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("seq", min=1)
    program = torch.export.export(model, (), kwargs=sample, dynamic_shapes={
        "input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
    torch.export.save(program, str(tmp_path / "m.pt2"))
    np.savez(tmp_path / "s.npz", **{k: v.numpy() for k, v in sample.items()})
    np.savez(tmp_path / "long.npz",
             **{k: v.numpy() for k, v in _tokens_of_length(3, 25, 1).items()})
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(tmp_path / "m.pt2"), "--trust-pickle", "--sample",
                              str(tmp_path / "s.npz"), "-o", str(tmp_path / "m.baton"),
                              "--dynamic", "input_ids:1=seq", "--dynamic",
                              "attention_mask:1=seq"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["check", str(tmp_path / "m.pt2"), "--trust-pickle",
                              str(tmp_path / "m.baton"),
                              "--data", str(tmp_path / "long.npz")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["convert", str(tmp_path / "m.pt2"), "--trust-pickle", "--sample",
                              str(tmp_path / "s.npz"), "-o", str(tmp_path / "x.baton"),
                              "--dynamic", "input_ids=seq"])
    assert out.exit_code == 2 and "INPUT:AXIS=NAME" in out.output
    assert not (tmp_path / "x.baton").exists()


def test_dynamic_dimensions_are_for_pytorch_models_only() -> None:
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(baton.UsageError, match="PyTorch models only"):
        baton.convert(LinearRegression().fit(X, X[:, 0]), X, dynamic={"input": {1: "f"}})
