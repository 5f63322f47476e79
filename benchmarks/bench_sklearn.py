"""ONNX (through baton) vs the original scikit-learn model, measured side by side.

    python benchmarks/bench_sklearn.py            # writes docs/benchmarks.md
    python benchmarks/bench_sklearn.py --quick    # fewer repetitions, prints only

For each model and batch size, the original's predict, onnxruntime on the bundle's model
(bare InferenceSession.run on prepared feeds), baton.runtime.Session.run on the same feeds,
and Session.predict on the DataFrame/array (feeds built from it) are timed interleaved in one
process: each round runs every contender once, in a random order, so drift on a shared
machine (and onnxruntime's thread-pool wake-up after the original ran) hits all alike.
Medians over the rounds; ratios are original / ONNX.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCHMARKS_MD, machine, time_interleaved, write_section  # noqa: E402


def models() -> list[tuple[str, Any, Any, Any]]:
    """(name, fitted model, training sample, query data) for each benchmarked model."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from baton.demo import train_demo_model

    demo, X_train, X_test = train_demo_model()
    rng = np.random.default_rng(0)
    Xf = rng.normal(size=(5000, 20)).astype(np.float32)
    yc = (Xf[:, 0] + Xf[:, 1] * Xf[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0).fit(Xf, yc)
    Xd = rng.normal(size=(5000, 20))
    ridge = make_pipeline(StandardScaler(), Ridge()).fit(Xd, Xd @ rng.normal(size=20))
    return [
        ("demo pipeline (31 DataFrame columns, impute+scale+one-hot+logistic)", demo, X_train,
         X_test),
        ("RandomForestClassifier (100 trees, depth 10, 20 float32 features)", forest, Xf[:500],
         Xf),
        ("StandardScaler+Ridge (20 float64 features)", ridge, Xd[:500], Xd),
    ]


def rows_of(data: Any, n: int) -> Any:
    if hasattr(data, "iloc"):
        reps = -(-n // len(data))
        import pandas as pd

        return pd.concat([data] * reps, ignore_index=True).iloc[:n]
    reps = -(-n // len(data))
    return np.concatenate([data] * reps)[:n]


def contenders(predict: Callable[[Any], Any], raw: Any, sess: Any, data: Any,
               feeds: dict[str, np.ndarray]) -> dict[str, Callable[[], Any]]:
    direct, public = sess._binding, public_binding(raw)

    def public_run() -> Any:
        # the same Session (and onnxruntime session: one thread pool), on the public path
        sess._binding = public
        try:
            return sess.run(feeds)
        finally:
            sess._binding = direct

    return {
        "original": lambda: predict(data),
        "ort": lambda: raw.run(None, feeds),
        "session.run": lambda: sess.run(feeds),
        "public.run": public_run,
        "session.predict": lambda: sess.predict(data),
    }


def public_binding(raw: Any) -> Any:
    """What Session.run calls with BATON_DIRECT_RUN=0: the public InferenceSession.run."""
    import os

    from baton.runtime.session import _direct_run

    os.environ["BATON_DIRECT_RUN"] = "0"
    try:
        return _direct_run(raw)
    finally:
        del os.environ["BATON_DIRECT_RUN"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; print, don't write")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args()

    import onnxruntime as ort
    import sklearn

    import baton
    from baton.runtime import Session
    from baton.schema import to_feeds

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, sample, query in models():
            path = baton.convert(model, sample).save(Path(tmp) / f"m{len(results)}.baton")
            sess = Session(path)
            raw = sess._session  # the same onnxruntime session: the ratio is baton's own cost
            predict = model.predict_proba if hasattr(model, "predict_proba") else model.predict
            for batch in (1, 1000):
                data = rows_of(query, batch)
                feeds = to_feeds(data, sess.inputs)
                rounds = (200 if batch == 1 else 30) // (5 if args.quick else 1)
                med = time_interleaved(contenders(predict, raw, sess, data, feeds), rounds)
                results.append((name, batch, rounds, med))
                print(f"{name[:40]:40s} batch {batch:5d}: " + ", ".join(
                    f"{k} {v:.3f} ms" for k, v in med.items()), flush=True)

    env = machine(**{"scikit-learn": sklearn.__version__, "onnxruntime": ort.__version__,
                     "baton": baton.__version__})
    lines = [
        "Command: `python benchmarks/bench_sklearn.py` (writes this section).",
        f"Machine: {env}.",
        "",
        "Median milliseconds per call over interleaved rounds (each round runs every",
        "contender once, in a random order). *original*: the scikit-learn",
        "model's `predict_proba` (classifiers) or `predict`, on the DataFrame or array.",
        "*ort*: the bare `run` of the onnxruntime session inside the baton Session, on",
        "prepared feeds. *Session.run*: `baton.runtime.Session.run` on the same feeds (with its",
        "input validation). *public path*: the same `Session.run` with `BATON_DIRECT_RUN=0`,",
        "which calls the public `InferenceSession.run` instead of its C++ session directly.",
        "*Session.predict*: `Session.predict` on the DataFrame or array (builds the feeds).",
        "Speed-up = original / Session.predict.",
        "",
        "| model | batch | rounds | original ms | ort ms | Session.run ms | public path ms "
        "| Session.predict ms | speed-up | Session.run / ort | public path / ort |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, batch, rounds, med in results:
        lines.append(
            f"| {name} | {batch} | {rounds} | {med['original']:.3f} | {med['ort']:.3f} | "
            f"{med['session.run']:.3f} | {med['public.run']:.3f} | "
            f"{med['session.predict']:.3f} | "
            f"{med['original'] / med['session.predict']:.1f}x | "
            f"{med['session.run'] / med['ort']:.2f} | {med['public.run'] / med['ort']:.2f} |")
    worst_public = max(med["public.run"] / med["ort"] for _, _, _, med in results)
    worst_direct = max(med["session.run"] / med["ort"] for _, _, _, med in results)
    lines += [
        "",
        f"Session.run is at most {worst_direct:.2f}x a bare `InferenceSession.run` here; on the "
        f"public path it would be up to {worst_public:.2f}x, beyond the runtime's 3 % target, "
        "which is why it calls onnxruntime's C++ session directly (docs/runtime.md).",
    ]
    if args.quick:
        print("\n".join(lines))
        return
    write_section("scikit-learn: original `predict` vs the converted model", lines, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
