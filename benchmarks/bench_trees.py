"""Gradient-boosted trees: the library's own predict vs the converted model, side by side.

    python benchmarks/bench_trees.py            # writes its section of docs/benchmarks.md
    python benchmarks/bench_trees.py --quick    # fewer rounds; prints only

Each model is trained on 20,000 rows of enterprise-like data (an integer date, epoch
seconds, IDs, amounts, NaN) and converted with baton. At batch 1 and 10,000 rows the
native predict (probabilities for classifiers) and baton.runtime.Session.run on the same
float64 rows are timed interleaved in one process (random order per round); medians.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import BENCHMARKS_MD, machine, time_interleaved, write_section  # noqa: E402

from tests.converters.tree_data import class_target, enterprise_matrix, regression_target  # noqa: E402,I001

N_TREES = 200


def factories() -> list[tuple[str, str, Callable[[np.ndarray], Any]]]:
    """(library, description, fit(X) -> model) for every library installed here."""
    out: list[tuple[str, str, Callable[[np.ndarray], Any]]] = []

    def reg(X: np.ndarray) -> np.ndarray:
        return regression_target(X)

    def cls(X: np.ndarray) -> np.ndarray:
        return class_target(X, 2)

    if importlib.util.find_spec("lightgbm"):
        import lightgbm as lgb

        out += [
            ("lightgbm", f"LGBMRegressor ({N_TREES} trees, 31 leaves)",
             lambda X: lgb.LGBMRegressor(n_estimators=N_TREES, verbose=-1, n_jobs=2)
             .fit(X, reg(X))),
            ("lightgbm", f"LGBMClassifier binary ({N_TREES} trees)",
             lambda X: lgb.LGBMClassifier(n_estimators=N_TREES, verbose=-1, n_jobs=2)
             .fit(X, cls(X))),
        ]
    if importlib.util.find_spec("xgboost"):
        import xgboost as xgb

        out += [("xgboost", f"XGBRegressor ({N_TREES} trees, depth 6)",
                 lambda X: xgb.XGBRegressor(n_estimators=N_TREES, max_depth=6,
                                            n_jobs=2).fit(X, reg(X)))]
    if importlib.util.find_spec("catboost"):
        import catboost as cb

        out += [("catboost", f"CatBoostRegressor ({N_TREES} trees, depth 6)",
                 lambda X: cb.CatBoostRegressor(iterations=N_TREES, depth=6, verbose=False,
                                                thread_count=2, allow_writing_files=False)
                 .fit(X, reg(X)))]
    if importlib.util.find_spec("sklearn"):
        from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

        out += [
            ("scikit-learn", f"HistGradientBoostingRegressor ({N_TREES} iterations)",
             lambda X: HistGradientBoostingRegressor(max_iter=N_TREES).fit(X, reg(X))),
            ("scikit-learn", "RandomForestRegressor (100 trees, depth 12)",
             lambda X: RandomForestRegressor(100, max_depth=12, n_jobs=1, random_state=0)
             .fit(X, reg(X))),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; print, don't write")
    args = parser.parse_args()

    import onnxruntime as ort

    import baton
    from baton.errors import BatonError
    from baton.runtime import Session

    X = enterprise_matrix(20000, seed=0)
    query = enterprise_matrix(10000, seed=1)
    rows = []
    skipped = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (lib, name, fit) in enumerate(factories()):
            model = fit(X)
            try:
                path = baton.convert(model, X[:2000]).save(Path(tmp) / f"m{i}.baton")
            except BatonError as exc:
                skipped.append(f"{name}: {exc.message}")
                continue
            sess = Session(path)
            native = model.predict_proba if hasattr(model, "predict_proba") else model.predict
            for batch in (1, 10000):
                data = query[:batch]
                feeds = {"input": data}
                rounds = (300 if batch == 1 else 15) // (5 if args.quick else 1)
                med = time_interleaved({"native": lambda: native(data),  # noqa: B023
                                        "onnx": lambda: sess.run(feeds)}, rounds)  # noqa: B023
                rows.append((lib, name, batch, rounds, med))
                print(f"{name[:45]:45s} batch {batch:6d}: native {med['native']:.3f} ms, "
                      f"baton {med['onnx']:.3f} ms", flush=True)
    versions = {lib: importlib.import_module({"scikit-learn": "sklearn"}.get(lib, lib))
                .__version__ for lib, *_ in rows}
    lines = [
        "Command: `python benchmarks/bench_trees.py` (writes this section).",
        f"Machine: {machine(**versions, onnxruntime=ort.__version__)}.",
        "",
        "Median milliseconds per call, interleaved (random order per round). *native*: the",
        "library's own `predict_proba`/`predict` on float64 rows; *baton*: `Session.run` on",
        "the converted bundle (exact float64 splits). Ratio = native / baton (above 1: the",
        "converted model is faster).",
        "",
        "| library | model | batch | rounds | native ms | baton ms | ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for lib, name, batch, rounds, med in rows:
        lines.append(f"| {lib} | {name} | {batch} | {rounds} | {med['native']:.3f} | "
                     f"{med['onnx']:.3f} | {med['native'] / med['onnx']:.2f} |")
    lines += [""] + [f"Not converted: {s}" for s in skipped]
    if args.quick:
        print("\n".join(lines))
        return
    write_section("Tree ensembles: native predict vs the converted model", lines)
    print(f"wrote {BENCHMARKS_MD}", file=sys.stderr)


if __name__ == "__main__":
    main()
