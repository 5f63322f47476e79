"""The input path: what baton costs between a service's data and the model run.

    python benchmarks/bench_input.py            # writes its section of docs/benchmarks.md
    python benchmarks/bench_input.py --quick    # fewer rounds, prints only

For two DataFrame pipelines (the demo's 31 columns, and 25 columns: 20 numbers and 5 text
categories, impute+scale+one-hot+logistic, one [N, 1] input per column as baton's
scikit-learn converter makes them), times interleaved in one process: the bare
``InferenceSession.run`` of the bundle's onnxruntime session on prepared feeds,
``Session.run`` on the same feeds, ``Session.predict`` on a one-row DataFrame,
``Session.predict_records`` on one dict and on a list of 100 (as ``json.loads`` gives
them), and the path ``predict`` took before its feed plan (``to_feeds`` then ``run``).
Medians over the rounds; ratios are to the bare run on the same rows.
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

TITLE = "Input path: `Session.predict` and `predict_records` vs a bare `InferenceSession.run`"


def pipeline_25(seed: int = 0) -> tuple[Any, Any, Any]:
    """A 25-column pipeline (20 float columns with gaps, 5 text categories) and its
    train/query frames."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    n = 2000
    numbers = {f"x{i}": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n))
               for i in range(20)}
    texts = {f"c{i}": rng.choice(["red", "green", "blue", "amber"], n).astype(object)
             for i in range(5)}
    frame = pd.DataFrame({**numbers, **texts})
    y = ((np.nan_to_num(frame["x0"].to_numpy()) + (frame["c0"] == "red").to_numpy()) > 0.5)
    model = Pipeline([
        ("prepare", ColumnTransformer([
            ("numbers", Pipeline([("impute", SimpleImputer(strategy="median")),
                                  ("scale", StandardScaler())]), list(numbers)),
            ("texts", OneHotEncoder(handle_unknown="ignore"), list(texts)),
        ])),
        ("classify", LogisticRegression(max_iter=1000)),
    ]).fit(frame.iloc[:1500], y[:1500].astype(int))
    return model, frame.iloc[:1500], frame.iloc[1500:]


def models() -> list[tuple[str, Any, Any, Any]]:
    from baton.demo import train_demo_model

    demo, X_train, X_test = train_demo_model()
    model, train, query = pipeline_25()
    return [
        ("25 columns (20 numbers, 5 text; impute+scale+one-hot+logistic)", model, train, query),
        ("demo pipeline (31 columns)", demo, X_train, X_test),
    ]


def contenders(sess: Any, query: Any) -> dict[str, Callable[[], Any]]:
    from baton.schema import to_feeds

    raw = sess._session  # the same onnxruntime session: the ratios are baton's own cost
    row = query.iloc[:1]
    feeds = to_feeds(row, sess.inputs)
    record = row.to_dict("records")[0]
    hundred = query.iloc[:100]
    feeds_100 = to_feeds(hundred, sess.inputs)
    records_100 = hundred.to_dict("records")
    return {
        "ort": lambda: raw.run(None, feeds),
        "session.run": lambda: sess.run(feeds),
        "predict": lambda: sess.predict(row),
        "records": lambda: sess.predict_records(record),
        "old": lambda: sess.run(to_feeds(row, sess.inputs)),
        "ort_100": lambda: raw.run(None, feeds_100),
        "records_100": lambda: sess.predict_records(records_100),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; print, don't write")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args()

    import onnxruntime as ort
    import pandas as pd

    import baton
    from baton.runtime import Session

    rounds = 300 if args.quick else 2000
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model, train, query) in enumerate(models()):
            sess = Session(baton.convert(model, train).save(Path(tmp) / f"m{i}.baton"))
            check_same(sess, query)
            med = time_interleaved(contenders(sess, query), rounds)
            results.append((name, len(sess.inputs), med))
            print(f"{name[:40]:40s}: " + ", ".join(f"{k} {v * 1000:.1f} us"
                                                    for k, v in med.items()), flush=True)

    env = machine(onnxruntime=ort.__version__, pandas=pd.__version__,
                  baton=baton.__version__)
    lines = [
        "Command: `python benchmarks/bench_input.py` (writes this section).",
        f"Machine: {env}.",
        "",
        f"Median microseconds per call over {rounds} interleaved rounds (each round runs every",
        "contender once, in a random order). *bare run*: `InferenceSession.run` of the",
        "bundle's own onnxruntime session on prepared feeds (one array per input).",
        "*Session.run*: baton's `run` on the same feeds. *predict*: `Session.predict` on a",
        "one-row DataFrame. *records*: `Session.predict_records` on one dict, as `json.loads`",
        "gives it. *old path*: `run(to_feeds(frame, inputs))`, what `predict` did before its",
        "feed plan. *records ×100*: `predict_records` on a list of 100 dicts, beside the",
        "bare run on the same 100 rows prepared. Ratios are to the bare run on the same rows.",
        "",
        "| model | inputs | bare run µs | Session.run µs | predict µs | records µs "
        "| old path µs | records ×100 µs | bare run ×100 µs | Session.run / bare "
        "| predict / bare | records / bare | old path / bare | records ×100 / bare ×100 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n_inputs, med in results:
        us = {k: v * 1000 for k, v in med.items()}
        lines.append(
            f"| {name} | {n_inputs} | {us['ort']:.1f} | {us['session.run']:.1f} | "
            f"{us['predict']:.1f} | {us['records']:.1f} | {us['old']:.1f} | "
            f"{us['records_100']:.1f} | {us['ort_100']:.1f} | "
            f"{us['session.run'] / us['ort']:.2f} | {us['predict'] / us['ort']:.2f} | "
            f"{us['records'] / us['ort']:.2f} | {us['old'] / us['ort']:.1f} | "
            f"{us['records_100'] / us['ort_100']:.2f} |")
    worst_predict = max(m["predict"] / m["ort"] for _, _, m in results)
    worst_records = max(m["records"] / m["ort"] for _, _, m in results)
    lines += [
        "",
        f"One row: `predict` is at most {worst_predict:.2f}x the bare run here (target 2x), "
        f"`predict_records` at most {worst_records:.2f}x (target 1.3x). baton's `run` calls "
        "onnxruntime's C++ session directly, skipping the Python wrapper's check of the feed "
        "names, which is why a ratio can be below 1 (docs/runtime.md).",
    ]
    if args.quick:
        print("\n".join(lines))
        return
    write_section(TITLE, lines, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


def check_same(sess: Any, query: Any) -> None:
    """The contenders compute the same outputs (else the timings compare nothing)."""
    from baton.schema import to_feeds

    rows = query.iloc[:100]
    want = sess.run(to_feeds(rows, sess.inputs))
    for got in (sess.predict(rows), sess.predict_records(rows.to_dict("records"))):
        for k, v in want.items():
            np.testing.assert_array_equal(got[k], v)


if __name__ == "__main__":
    main()
