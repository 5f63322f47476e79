"""Tree ensembles: baton beside the native library and the peers users would pick instead.

    python benchmarks/bench_trees.py            # writes its section of docs/benchmarks.md
    python benchmarks/bench_trees.py --quick    # fewer rounds; prints only

Peers, each where it installs (a missing one is named in the table's notes):

* the native library's predict, single-threaded and on every core;
* onnxmltools + onnxruntime (XGBoost, LightGBM; float32), CatBoost's own ONNX export, and
  skl2onnx for the random forest (float32): the ONNX graphs users get without baton;
* lleaves (LightGBM compiled with LLVM), single-threaded and on every core;
* hummingbird-ml (its default PyTorch backend).

The bench-only packages: ``pip install -e '.[bench]'`` (lleaves with llvmlite 0.44, and
onnxmltools); hummingbird-ml with ``pip install --no-deps hummingbird-ml psutil`` beside a
newer PyTorch (its own pins would replace it).

Models as in issue 16: an XGBoost classifier (300 trees, depth 8), a LightGBM classifier
(500 trees, 63 leaves), a CatBoost regressor (200 trees, depth 6) and a random forest
regressor (100 trees, depth 12), trained on 20,000 rows of enterprise-like data (integer
dates, epoch seconds, IDs, amounts, NaN). At batch 1, 100 and 10,000 every contender runs
on the same float64 rows (float32 for the peers that take only that), interleaved in one
process (random order per round); medians. *max error*: the largest absolute difference
from the native prediction (the probability of class 1, or the regression value) on the
10,000 query rows.
"""

from __future__ import annotations

import argparse
import importlib
import os
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

BATCHES = (1, 100, 10000)
CORES = os.cpu_count() or 1
Predict = Callable[[np.ndarray], np.ndarray]


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a peer that does not import is reported as such
        return False
    return True


def _ort(onx: Any, threads: int = 0) -> Predict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # onnxmltools' LightGBM graph declares a [1] label
    if threads:
        opts.intra_op_num_threads = threads
    data = onx if isinstance(onx, bytes) else onx.SerializeToString()
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda X: sess.run(None, {name: X.astype(np.float32)})


def xgboost_case(X: np.ndarray) -> tuple[Any, dict[str, Predict], dict[str, str]]:
    import xgboost as xgb

    model = xgb.XGBClassifier(n_estimators=300, max_depth=8, n_jobs=CORES).fit(
        X, class_target(X, 2))
    peers: dict[str, Predict] = {}
    for threads in (1, CORES):
        booster = model.get_booster().copy()
        booster.set_param({"nthread": threads})
        peers[f"native {threads}t"] = lambda d, b=booster: b.inplace_predict(d)
    missing = {}
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        onx = onnxmltools.convert_xgboost(model, initial_types=[
            ("input", FloatTensorType([None, X.shape[1]]))])
        run = _ort(onx)
        peers["onnxmltools"] = lambda d: np.asarray(run(d)[1])[:, 1]
    except Exception as exc:  # noqa: BLE001
        missing["onnxmltools"] = f"{type(exc).__name__}: {str(exc)[:80]}"
    _hummingbird(model, peers, missing)
    return model, peers, missing


def lightgbm_case(X: np.ndarray, tmp: Path) -> tuple[Any, dict[str, Predict], dict[str, str]]:
    import lightgbm as lgb

    model = lgb.LGBMClassifier(n_estimators=500, num_leaves=63, verbose=-1,
                               n_jobs=CORES).fit(X, class_target(X, 2))
    peers: dict[str, Predict] = {}
    for threads in (1, CORES):
        peers[f"native {threads}t"] = (
            lambda d, t=threads: model.predict_proba(d, num_threads=t)[:, 1])
    missing = {}
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        onx = onnxmltools.convert_lightgbm(model, initial_types=[
            ("input", FloatTensorType([None, X.shape[1]]))],
            zipmap=False)
        run = _ort(onx)
        peers["onnxmltools"] = lambda d: np.asarray(run(d)[1])[:, 1]
    except Exception as exc:  # noqa: BLE001
        missing["onnxmltools"] = f"{type(exc).__name__}: {str(exc)[:80]}"
    if _has("lleaves"):
        import lleaves

        path = tmp / "lgbm.txt"
        model.booster_.save_model(str(path))
        compiled = lleaves.Model(model_file=str(path))
        compiled.compile(cache=str(tmp / "lgbm.so"))
        for threads in (1, CORES):
            peers[f"lleaves {threads}t"] = (
                lambda d, t=threads: compiled.predict(d, n_jobs=t))
    else:
        missing["lleaves"] = "not installed (pip install 'baton[bench]')"
    _hummingbird(model, peers, missing)
    return model, peers, missing


def catboost_case(X: np.ndarray, tmp: Path) -> tuple[Any, dict[str, Predict], dict[str, str]]:
    import catboost as cb

    model = cb.CatBoostRegressor(iterations=200, depth=6, verbose=False, thread_count=CORES,
                                 allow_writing_files=False).fit(X, regression_target(X))
    peers: dict[str, Predict] = {}
    for threads in (1, CORES):
        peers[f"native {threads}t"] = lambda d, t=threads: model.predict(d, thread_count=t)
    missing = {}
    try:
        path = tmp / "catboost.onnx"
        model.save_model(str(path), format="onnx")
        run = _ort(path.read_bytes())
        peers["CatBoost ONNX"] = lambda d: np.asarray(run(d)[0]).reshape(-1)
    except Exception as exc:  # noqa: BLE001
        missing["CatBoost ONNX"] = f"{type(exc).__name__}: {str(exc)[:80]}"
    return model, peers, missing


def forest_case(X: np.ndarray) -> tuple[Any, dict[str, Predict], dict[str, str]]:
    import copy

    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(100, max_depth=12, n_jobs=CORES, random_state=0).fit(
        X, regression_target(X))
    peers: dict[str, Predict] = {}
    for threads in (1, CORES):
        m = copy.deepcopy(model).set_params(n_jobs=threads)
        peers[f"native {threads}t"] = lambda d, m=m: m.predict(d)
    missing = {}
    try:
        from skl2onnx import to_onnx

        run = _ort(to_onnx(model, X[:1].astype(np.float32), target_opset=18))
        peers["skl2onnx"] = lambda d: np.asarray(run(d)[0]).reshape(-1)
    except Exception as exc:  # noqa: BLE001
        missing["skl2onnx"] = f"{type(exc).__name__}: {str(exc)[:80]}"
    _hummingbird(model, peers, missing)
    return model, peers, missing


def _hummingbird(model: Any, peers: dict[str, Predict], missing: dict[str, str]) -> None:
    if not _has("hummingbird.ml"):
        missing["hummingbird-ml"] = "does not import here"
        return
    try:
        import hummingbird.ml

        hb = hummingbird.ml.convert(model, "torch")
        fn = hb.predict_proba if hasattr(model, "predict_proba") else hb.predict
        peers["hummingbird"] = (lambda d: np.asarray(fn(d))[:, 1]) if hasattr(
            model, "predict_proba") else (lambda d: np.asarray(fn(d)).reshape(-1))
    except Exception as exc:  # noqa: BLE001
        missing["hummingbird-ml"] = f"{type(exc).__name__}: {str(exc)[:80]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; print, don't write")
    args = parser.parse_args()

    import onnxruntime as ort

    import baton
    from baton.runtime import Session

    X = enterprise_matrix(20000, seed=0)
    query = enterprise_matrix(10000, seed=1)
    cases: list[tuple[str, str, Callable[[Path], tuple[Any, dict[str, Predict],
                                                       dict[str, str]]]]] = []
    if _has("xgboost"):
        cases.append(("xgboost", "XGBClassifier (300 trees, depth 8)",
                      lambda tmp: xgboost_case(X)))
    if _has("lightgbm"):
        cases.append(("lightgbm", "LGBMClassifier (500 trees, 63 leaves)",
                      lambda tmp: lightgbm_case(X, tmp)))
    if _has("catboost"):
        cases.append(("catboost", "CatBoostRegressor (200 trees, depth 6)",
                      lambda tmp: catboost_case(X, tmp)))
    if _has("sklearn"):
        cases.append(("scikit-learn", "RandomForestRegressor (100 trees, depth 12)",
                      lambda tmp: forest_case(X)))
    rows: list[tuple[str, str, int, str, float, float, float]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for i, (lib, name, build) in enumerate(cases):
            model, peers, missing = build(tmp)
            notes += [f"{name}: {peer}: {why}" for peer, why in missing.items()]
            key = "probabilities" if hasattr(model, "predict_proba") else "prediction"
            contenders: dict[str, Predict] = {}
            # tree_sum="fast" differs from the default only where the library adds its
            # trees in float32 (XGBoost)
            for tree_sum in ("exact", "fast") if lib == "xgboost" else ("exact",):
                bundle = baton.convert(model, X[:2000], tree_sum=tree_sum)
                sess = Session(bundle.save(tmp / f"m{i}-{tree_sum}.baton"))

                def run_baton(d: np.ndarray, sess: Any = sess, key: str = key) -> np.ndarray:
                    out = np.asarray(sess.run({"input": d})[key])
                    return out[:, 1] if out.ndim == 2 else out

                label = "baton" if tree_sum == "exact" else "baton tree_sum=fast"
                contenders[label] = run_baton
            contenders.update(peers)
            native = np.asarray(peers["native 1t"](query), dtype=np.float64)
            error = {k: float(np.max(np.abs(np.asarray(fn(query), np.float64).reshape(-1)
                                            - native)))
                     for k, fn in contenders.items()}
            for batch in BATCHES:
                data = query[:batch]
                rounds = {1: 200, 100: 60, 10000: 8}[batch] // (5 if args.quick else 1)
                med = time_interleaved({k: (lambda fn=fn: fn(data))  # noqa: B023
                                        for k, fn in contenders.items()}, max(rounds, 3))
                best_native = min(v for k, v in med.items() if k.startswith("native"))
                for k, ms in med.items():
                    rows.append((lib, name, batch, k, ms, best_native / ms, error[k]))
                print(f"{name[:40]:40s} batch {batch:6d}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in med.items()), flush=True)
    versions = {lib: importlib.import_module({"scikit-learn": "sklearn"}.get(lib, lib))
                .__version__ for lib, *_ in rows}
    lines = [
        "Command: `python benchmarks/bench_trees.py` (writes this section).",
        f"Machine: {machine(**versions, onnxruntime=ort.__version__)}.",
        "",
        "Median milliseconds per call, interleaved (random order per round). *native Nt*: the",
        "library's own predict on N threads; *baton*: `Session.run` on the converted bundle",
        "(exact float64 splits, default options; *tree_sum=fast*: docs/trees.md); the other",
        "peers as the script's docstring says. *vs native*: the faster native time / this",
        "contender's (above 1: faster than the library). *max error*: largest absolute",
        "difference from the native prediction on 10,000 rows.",
        "",
        "| library | model | batch | contender | ms | vs native | max error |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for lib, name, batch, who, ms, ratio, err in rows:
        lines.append(f"| {lib} | {name} | {batch} | {who} | {ms:.3f} | {ratio:.2f} | "
                     f"{err:.2g} |")
    if notes:
        lines += ["", "Peers not measured:"] + [f"- {n}" for n in notes]
    if args.quick:
        print("\n".join(lines))
        return
    write_section("Tree ensembles: native predict vs the converted model", lines)
    print(f"wrote {BENCHMARKS_MD}", file=sys.stderr)


if __name__ == "__main__":
    main()
