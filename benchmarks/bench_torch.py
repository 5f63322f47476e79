"""PyTorch eager vs the converted model on onnxruntime (CPU), side by side.

    python benchmarks/bench_torch.py            # writes its section of docs/benchmarks.md
    python benchmarks/bench_torch.py --quick    # fewer rounds; prints only

For each model (the test-suite's kinds: MLP, plain and with LayerNorm and GELU, CNN with
batch norm, LSTM over embeddings, Transformer encoder) at batch 1 and 32: torch eager
(``no_grad``, ``eval``) and baton.runtime.Session.run on the bundle (its graph optimised
offline where that passed parity and was faster) and on the raw export
(``optimize=False``), timed interleaved in one process in a random order per round;
medians. torch and onnxruntime each use their default thread settings on this machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCHMARKS_MD, machine, time_interleaved, write_section  # noqa: E402


def models() -> list[tuple[str, Any, Callable[[int], Any]]]:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32),
                                      nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                                      nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            self.head = nn.Linear(64, 10)

        def forward(self, x: Any) -> Any:
            return self.head(self.body(x).flatten(1))

    class LSTMText(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(5000, 64)
            self.rnn = nn.LSTM(64, 128, batch_first=True)
            self.head = nn.Linear(128, 2)

        def forward(self, tokens: Any) -> Any:
            states, _ = self.rnn(self.embed(tokens))
            return self.head(states[:, -1])

    mlp = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, 10))
    gelu = nn.Sequential(nn.Linear(64, 256), nn.LayerNorm(256), nn.GELU(), nn.Linear(256, 256),
                         nn.LayerNorm(256), nn.GELU(), nn.Linear(256, 10))
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(128, 4, 256, batch_first=True),
                                    2)
    return [
        ("MLP 64-256-256-10", mlp, lambda n: torch.randn(n, 64)),
        ("MLP 64-256-256-10, LayerNorm + GELU", gelu, lambda n: torch.randn(n, 64)),
        ("CNN 32x32 RGB, 2 conv + batch norm", CNN(), lambda n: torch.randn(n, 3, 32, 32)),
        ("LSTM over embeddings, 50 tokens", LSTMText(),
         lambda n: torch.randint(0, 5000, (n, 50))),
        ("TransformerEncoder 2 layers, d=128, 32 tokens", encoder,
         lambda n: torch.randn(n, 32, 128)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; print, don't write")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    import baton
    from baton.runtime import Session

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model, data) in enumerate(models()):
            model.eval()
            bundle = baton.convert(model, data(8))
            applied = bundle.manifest["converter"].get("optimization", {}).get("applied")
            sess = Session(bundle.save(Path(tmp) / f"m{i}.baton"))
            raw = Session(baton.convert(model, data(8), optimize=False).save(
                Path(tmp) / f"r{i}.baton"))
            for batch in (1, 32):
                x = data(batch)
                feeds = {sess.inputs[0].name: x.numpy()}

                def eager(model: Any = model, x: Any = x) -> Any:
                    with torch.no_grad():
                        return model(x)

                rounds = (300 if batch == 1 else 60) // (5 if args.quick else 1)
                med = time_interleaved({"torch": eager,
                                        "onnx": lambda f=feeds, s=sess: s.run(f),
                                        "raw": lambda f=feeds, s=raw: s.run(f)}, rounds)
                rows.append((name, batch, rounds, med, applied))
                print(f"{name[:45]:45s} batch {batch:3d}: torch {med['torch']:.3f} ms, "
                      f"onnxruntime {med['onnx']:.3f} ms, raw export {med['raw']:.3f} ms"
                      f" (optimised: {applied or 'no'})", flush=True)
    lines = [
        "Command: `python benchmarks/bench_torch.py` (writes this section).",
        f"Machine: {machine(torch=torch.__version__, onnxruntime=ort.__version__)}; CPU "
        "only (no CUDA run yet).",
        "",
        "Median milliseconds per call, interleaved (random order per round). *torch*: eager",
        "`model(x)` under `no_grad` in `eval` mode; *onnxruntime*: `baton.runtime.Session.run`",
        "on the converted bundle; *raw export*: the same on a bundle of the exporter's graph",
        "(`optimize=False`); *optimised*: the offline fusions the bundle kept (docs/pytorch.md).",
        "Speed-up = torch / onnxruntime; vs raw = raw export / onnxruntime.",
        "",
        "| model | batch | rounds | torch ms | onnxruntime ms | raw export ms | speed-up | "
        "vs raw | optimised |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, batch, rounds, med, applied in rows:
        lines.append(f"| {name} | {batch} | {rounds} | {med['torch']:.3f} | "
                     f"{med['onnx']:.3f} | {med['raw']:.3f} | "
                     f"{med['torch'] / med['onnx']:.2f}x | {med['raw'] / med['onnx']:.2f}x | "
                     f"{'yes' if applied else 'no'} |")
    if args.quick:
        print("\n".join(lines))
        return
    write_section("PyTorch: eager vs the converted model (CPU)", lines)
    print(f"wrote {BENCHMARKS_MD}", file=sys.stderr)


if __name__ == "__main__":
    main()
