"""Attention masks and padding: outputs with one value per position are compared where the
mask sets the position; a row that attends to nothing lies outside the envelope; left- and
right-padded batches pass for a correct model and fail for a wrong one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton

torch = pytest.importorskip("torch")

from attention_models import CausalLM, Encoder, padded  # noqa: E402

from baton.errors import UsageError  # noqa: E402
from baton.masks import apply_masks, mask_convention, parse_masks  # noqa: E402

SEQ = 10

#: the bundle directories the command-line tests write (made absolute under tmp_path)
OUT = ("masked", "b", "x")

_BUNDLES: dict[tuple[str, str], tuple[Any, Any]] = {}


class Renamed(torch.nn.Module):
    """The decoder with its mask named otherwise, and inverted: 1 marks padding (as
    nn.MultiheadAttention's key_padding_mask)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = CausalLM()

    def forward(self, ids: Any, pad: Any) -> Any:
        return self.inner(ids, 1 - pad)["logits"]


def _converted(kind: str, side: str) -> tuple[Any, Any]:
    """A model (SDPA attention with a boolean mask, as transformers runs it) and its bundle,
    converted on a padded sample: one per model and padding side, shared by the tests."""
    key = (kind, side)
    if key not in _BUNDLES:
        model = (Encoder if kind == "encoder" else CausalLM)().eval()
        _BUNDLES[key] = model, baton.convert(model, padded(24, SEQ, side), tune=False)
    return _BUNDLES[key]


def _per_position(kind: str) -> str:
    return "last_hidden_state" if kind == "encoder" else "logits"


@pytest.mark.parametrize("kind", ["encoder", "causal"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batches_pass_the_default_gate(kind: str, side: str) -> None:
    model, bundle = _converted(kind, side)
    assert bundle.report.passed, bundle.report
    data = padded(40, SEQ, side, seed=7)
    # the default search for the decoder (whose left padding attends to nothing); a
    # smaller one for the encoder, to keep the suite short
    report = baton.check(model, bundle, data,
                         search_budget=None if kind == "causal" else "200")
    assert report.passed, report
    assert report.search is not None and report.search.stages
    diffs = {d.name: d for d in report.outputs}
    per = diffs[_per_position(kind)]
    mask = data["attention_mask"].numpy()
    assert per.positions == {"mask": "attention_mask", "compared": int(mask.sum()),
                             "total": int(mask.size)}
    assert "compared" in per.summary() and "where attention_mask sets them" in per.summary()
    assert diffs["pooled"].positions is None  # one vector per row: compared whole
    # the other side's padding passes too: the bundle does not know how the sample padded
    other = padded(40, SEQ, "right" if side == "left" else "left", seed=8)
    assert baton.check(model, bundle, other, search=False).passed


def test_the_mask_is_what_lets_the_causal_model_pass(tmp_path: Path) -> None:
    """Left-padded, the causal model's pad positions attend to nothing: torch and
    onnxruntime give different values there (no one reads them), the same values at every
    real token. Without the mask the comparison would fail the healthy model."""
    model, bundle = _converted("causal", "left")
    data = padded(40, SEQ, "left", seed=3)
    with torch.no_grad():
        want = model(**data)["logits"].numpy()
    session = baton.runtime.Session(bundle.save(tmp_path / "b"))
    got = session.run({k: v.numpy() for k, v in data.items()})["logits"]
    real = data["attention_mask"].numpy().astype(bool)
    tol = bundle.typed_manifest.tolerance("logits")
    assert np.abs(got - want)[real].max() <= tol.atol
    pad_diff = np.abs(np.nan_to_num(got - want, nan=np.inf))[~real]
    assert pad_diff.max() > 100 * tol.atol
    exp, act, positions = apply_masks(bundle.typed_manifest.envelope.masks(),
                                      {k: v.numpy() for k, v in data.items()},
                                      {"logits": want}, {"logits": got})
    assert positions["logits"].compared == int(real.sum())
    assert np.abs(exp["logits"] - act["logits"]).max() <= tol.atol


@pytest.mark.parametrize("kind", ["encoder", "causal"])
def test_a_changed_weight_fails(kind: str) -> None:
    model, bundle = _converted(kind, "left")
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        # the queries of one head (a shift along a LayerNorm'd input's ones would not
        # change them: such a row sums to 0)
        g = torch.Generator().manual_seed(0)
        wrong.blocks[1].qkv.weight[:8] += 0.05 * torch.randn(8, 16, generator=g)
    for side in ("left", "right"):
        report = baton.check(wrong, bundle, padded(40, SEQ, side, seed=5))
        assert not report.passed
        failed = {d.name for d in report.outputs if not d.passed}
        assert _per_position(kind) in failed


def test_a_row_that_attends_to_nothing_is_outside_the_envelope() -> None:
    _, bundle = _converted("encoder", "right")
    envelope = bundle.typed_manifest.envelope
    region = envelope.columns["attention_mask"]
    assert region.kind == "mask" and not region.padding
    assert region.outputs == ("last_hidden_state",)
    assert envelope.outside({"attention_mask": np.zeros(SEQ, dtype=np.int64)}) == [
        "attention_mask: a row that attends to no token"]
    assert envelope.outside({"attention_mask": np.full(SEQ, 2)}) == [
        "attention_mask: a mask value 2, not 0 or 1"]
    one = np.zeros(SEQ, dtype=np.int64)
    one[-1] = 1
    assert envelope.outside({"attention_mask": one}) == []


def test_the_search_tries_padding_it_never_saw() -> None:
    """Converted on right-padded rows only, the search still tries left-padded masks and
    one-token rows (the edge stage), and reports an empty mask as outside the envelope
    where it diverges."""
    model, bundle = _converted("causal", "right")
    report = baton.check(model, bundle, padded(30, SEQ, "right", seed=2))
    assert report.passed, report
    edge = next(s for s in report.search.stages if s.name == "edge")
    assert edge.examples > 0
    for c in report.search.counterexamples:
        assert not c.in_envelope, c


def test_a_declared_padding_mask(tmp_path: Path) -> None:
    """A mask named otherwise (1 marking padding, as nn.MultiheadAttention's
    key_padding_mask) is declared; undeclared, the healthy model fails on left padding."""

    model = Renamed().eval()
    data = padded(24, SEQ, "left")
    sample = {"ids": data["input_ids"], "pad": 1 - data["attention_mask"]}
    assert not baton.convert(model, sample, tune=False).report.passed
    bundle = baton.convert(model, sample, tune=False, mask_inputs=["pad:padding"])
    assert bundle.report.passed, bundle.report
    fresh = padded(30, SEQ, "left", seed=4)
    report = baton.check(model, bundle, {"ids": fresh["input_ids"],
                                         "pad": 1 - fresh["attention_mask"]},
                         search_budget="300")
    assert report.passed, report
    path = bundle.save(tmp_path / "b")
    assert baton.verify(path).passed  # golden vectors hold the graph's pad positions
    session = baton.runtime.Session(path, self_check=True)
    assert session.inputs[1].name == "pad"


def test_mask_names_and_declarations() -> None:
    ones = np.ones((2, 3), dtype=np.int64)
    assert mask_convention("attention_mask", ones) is False
    assert mask_convention("decoder_attention_mask", ones) is False
    assert mask_convention("src_key_padding_mask", ones.astype(bool)) is True
    assert mask_convention("attention_mask", ones * 2) is None  # not 0 and 1
    assert mask_convention("attention_mask", ones[0]) is None  # not [N, S]
    assert mask_convention("input_ids", ones) is None
    assert parse_masks(["m", "p:padding"]) == {"m": False, "p": True}
    with pytest.raises(UsageError, match="cannot read the mask input"):
        parse_masks(["m:sideways"])
    model, _ = _converted("encoder", "right")
    with pytest.raises(UsageError, match="is not a mask"):
        baton.convert(model, padded(4, SEQ, "right"), mask_inputs=["input_ids"])
    with pytest.raises(UsageError, match="no input 'mask'"):
        baton.convert(model, padded(4, SEQ, "right"), mask_inputs=["mask"])


def test_mask_and_no_batch_options_on_the_command_line(tmp_path: Path) -> None:
    """``--mask-input NAME:padding`` through ``baton convert`` and ``baton check`` on a
    ``.pt2`` program and an ``.npz`` sample (undeclared, the same model fails:
    test_a_declared_padding_mask)."""

    model = Renamed().eval()
    data = padded(12, SEQ, "left")
    ids, pad = data["input_ids"], 1 - data["attention_mask"]
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (ids, pad), dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(program, tmp_path / "padded.pt2")
    np.savez(tmp_path / "sample.npz", ids=ids.numpy(), pad=pad.numpy())
    def run(*args: str) -> Any:
        """``baton ARGS`` in this process (typer's runner), from ``tmp_path``."""
        from typer.testing import CliRunner

        from baton.cli import app

        return CliRunner().invoke(app, [str(tmp_path / a) if (tmp_path / a).exists() or a in
                                        OUT else a for a in args])

    done = run("convert", "padded.pt2", "--trust-pickle", "--sample", "sample.npz", "-o",
               "masked", "--no-tune", "--mask-input", "pad:padding")
    assert done.exit_code == 0, done.output
    assert "where pad sets them" in done.output
    checked = run("check", "padded.pt2", "masked", "--trust-pickle", "--data", "sample.npz")
    assert checked.exit_code == 0, checked.output
