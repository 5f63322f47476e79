"""Spark: scoring a DataFrame with the bundle (`baton.spark.score`) against the pandas UDF a
team writes today, the original model broadcast and its ``predict`` in ``mapInPandas``.

    python benchmarks/bench_spark.py            # writes its section of docs/benchmarks.md
    python benchmarks/bench_spark.py --quick    # 200k rows, one round; prints only

One local SparkSession (``local[2]``, ``baton.spark.session``: the UI off, Arrow on), the
same rows for both, for two scikit-learn models converted once: a pipeline of
StandardScaler + LogisticRegression on 8 float64 columns, and the demo pipeline (31
DataFrame columns, one of text; impute+scale+one-hot+logistic) on rows drawn from its
data. 1M rows (200k with ``--quick``) written as Parquet, read back in 4 partitions and
cached, so that both contenders start from the same rows in memory. Each contender is
forced to run fully (``write.format("noop")``: every row scored, nothing written), after
one warm-up run (the Python workers started, the model or the bundle loaded); they run
interleaved, in a fresh random order each round, and the figures are medians over the
rounds.

- *bundle*: ``baton.spark.score(df, bundle)``: the bundle's outputs (``label`` and
  ``probabilities``) added as columns, onnxruntime in each Python worker;
- *pandas UDF*: ``df.mapInPandas`` calling the broadcast pipeline's ``predict`` and
  ``predict_proba`` per Arrow batch, the same columns out (the schema of the bundle's);
- *scan only*: the cached rows through ``noop`` with nothing computed: Spark's own floor.

Then both outputs over the same rows are compared (one pass: the original run in
``mapInPandas`` on the bundle's scored rows): labels that differ, the largest absolute
difference of the probabilities.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import BENCHMARKS_MD, machine, write_section  # noqa: E402

TITLE = "Spark: scoring with the bundle vs a pandas UDF with the original"
COLUMNS = [f"x{i}" for i in range(8)]
PARTITIONS = 4
MASTER = "local[2]"


def models(n: int) -> list[tuple[str, Any, Any, Any]]:
    """(name, fitted model, training frame, a maker of ``n`` rows) for each model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from baton.demo import train_demo_model

    frame = rows(5000, seed=1)
    y = (frame["x0"] + 0.5 * frame["x1"] - frame["x2"] > 0).astype(int)
    small = Pipeline([("scale", StandardScaler()),
                      ("classify", LogisticRegression(max_iter=1000))]).fit(frame, y)
    demo, X_train, X_test = train_demo_model()

    def demo_rows() -> Any:
        import pandas as pd

        pool = pd.concat([X_train, X_test], ignore_index=True)
        picked = np.random.default_rng(0).integers(0, len(pool), n)
        return pool.iloc[picked].reset_index(drop=True)

    return [
        ("StandardScaler + LogisticRegression (8 float64 columns)", small, frame.iloc[:2000],
         lambda: rows(n)),
        ("demo pipeline (31 columns, one text; impute+scale+one-hot+logistic)", demo,
         X_train, demo_rows),
    ]


def rows(n: int, seed: int = 0) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    scales = np.array([1, 2, 0.5, 10, 1, 3, 0.1, 5])
    return pd.DataFrame(rng.normal(size=(n, len(COLUMNS))) * scales, columns=COLUMNS)


def input_columns(model: Any) -> list[str]:
    return [str(c) for c in model.feature_names_in_]


def pandas_udf_baseline(df: Any, model: Any, schema: Any) -> Any:
    """What a team writes without baton: the fitted pipeline broadcast, run per batch."""
    broadcast = df.sparkSession.sparkContext.broadcast(model)
    columns = input_columns(model)

    def predict(batches: Iterator[Any]) -> Iterator[Any]:
        fitted = broadcast.value
        for batch in batches:
            X = batch[columns]
            yield batch.assign(label=fitted.predict(X),
                               probabilities=list(fitted.predict_proba(X)))

    return df.mapInPandas(predict, schema=schema)


def agreement(scored: Any, model: Any) -> tuple[int, float, int]:
    """(labels that differ, max abs difference of the probabilities, rows) between the
    bundle's outputs and the original's, over the same rows."""
    from pyspark.sql import functions as F

    broadcast = scored.sparkSession.sparkContext.broadcast(model)
    columns = input_columns(model)

    def compare(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        fitted = broadcast.value
        for batch in batches:
            X = batch[columns]
            label = fitted.predict(X)
            proba = fitted.predict_proba(X)
            got = np.stack([np.asarray(p, dtype=np.float64)
                            for p in batch["probabilities"]]) if len(batch) else proba
            yield pd.DataFrame({
                "differ": [int((np.asarray(batch["label"]) != label).sum())],
                "max_abs": [float(np.abs(got - proba).max()) if len(batch) else 0.0],
                "n": [len(batch)]})

    out = (scored.mapInPandas(compare, "differ long, max_abs double, n long")
           .agg(F.sum("differ"), F.max("max_abs"), F.sum("n")).collect()[0])
    return int(out[0]), float(out[1]), int(out[2])


def time_rounds(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    for fn in fns.values():  # warm-up: workers started, model and bundle loaded
        fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for name in rng.permutation(list(fns)):
            t0 = time.perf_counter()
            fns[name]()
            samples[str(name)].append(time.perf_counter() - t0)
            print(f"  {name:10s} {samples[str(name)][-1]:.2f} s", flush=True)
    return samples


def measure(spark: Any, tmp: Path, i: int, name: str, model: Any, train: Any,
            make_rows: Callable[[], Any], n: int, rounds: int) -> dict[str, Any]:
    import baton
    import baton.spark

    print(f"{name}: {n:,} rows", flush=True)
    bundle = baton.convert(model, train).save(tmp / f"m{i}.baton")
    data = tmp / f"rows-{i}.parquet"
    make_rows().to_parquet(data, index=False)
    df = spark.read.parquet(str(data)).repartition(PARTITIONS).cache()
    assert df.count() == n
    scored = baton.spark.score(df, str(bundle))
    baseline = pandas_udf_baseline(df, model, scored.schema)

    def noop(frame: Any) -> Callable[[], None]:
        return lambda: frame.write.format("noop").mode("overwrite").save()

    samples = time_rounds({"bundle": noop(scored), "pandas UDF": noop(baseline),
                           "scan only": noop(df)}, rounds)
    differ, max_abs, checked = agreement(scored, model)
    added = ", ".join(f"`{f.name}` {f.dataType.simpleString()}"
                      for f in scored.schema.fields if f.name not in df.columns)
    df.unpersist()
    return {"name": name, "columns": len(df.columns), "added": added,
            "med": {k: statistics.median(v) for k, v in samples.items()},
            "differ": differ, "max_abs": max_abs, "checked": checked}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="200k rows, one round; print, don't write")
    parser.add_argument("--rows", type=int, default=None, help="rows (default 1M; 200k "
                        "with --quick); print, don't write")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args()

    import onnxruntime as ort
    import pyspark
    import sklearn

    import baton
    import baton.spark

    n = args.rows or (200_000 if args.quick else 1_000_000)
    rounds = 1 if args.quick else 3
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        spark = baton.spark.session(MASTER, app_name="baton-bench")
        spark.conf.set("spark.sql.shuffle.partitions", str(PARTITIONS))
        try:
            for i, (name, model, train, make_rows) in enumerate(models(n)):
                results.append(measure(spark, Path(tmp_name), i, name, model, train,
                                       make_rows, n, rounds))
        finally:
            spark.stop()

    env = machine(pyspark=pyspark.__version__, onnxruntime=ort.__version__,
                  **{"scikit-learn": sklearn.__version__}, baton=baton.__version__)
    lines = [
        "Command: `python benchmarks/bench_spark.py` (writes this section).",
        f"Machine: {env}; Spark in local mode (`{MASTER}`), Java {_java()}.",
        "",
        f"{n:,} rows per model (Parquet, read back in {PARTITIONS} partitions and cached, so "
        "both contenders start from the same rows in memory). *bundle*: "
        "`baton.spark.score(df, bundle)`, adding the bundle's outputs as columns; *pandas "
        "UDF*: `df.mapInPandas` calling the broadcast pipeline's `predict` and "
        "`predict_proba` on each Arrow batch, the same columns out (the bundle's schema); "
        "*scan only*: the cached rows with nothing computed, Spark's own floor. Each forced "
        "to run fully with `write.format(\"noop\")`, after a warm-up run; medians of "
        f"{rounds} interleaved round{'s' if rounds > 1 else ''}. Agreement: both models' "
        "outputs over the same rows (the original run on the bundle's scored rows).",
        "",
        "| model | bundle s | pandas UDF s | scan only s | bundle rows/s | pandas UDF rows/s "
        "| speed-up (pandas UDF / bundle) | labels differ | max abs diff, probabilities |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r["med"]
        lines.append(
            f"| {r['name']} | {m['bundle']:.2f} | {m['pandas UDF']:.2f} | "
            f"{m['scan only']:.2f} | {n / m['bundle']:,.0f} | {n / m['pandas UDF']:,.0f} | "
            f"{m['pandas UDF'] / m['bundle']:.2f}x | {r['differ']} of {r['checked']:,} | "
            f"{r['max_abs']:.3g} |")
    lines += [
        "",
        "Columns added: " + "; ".join(f"{r['name'].split(' (')[0]}: {r['added']}"
                                     for r in results) + ".",
    ]
    if args.quick or args.rows:
        print("\n".join(lines))
        return
    write_section(TITLE, lines, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


def _java() -> str:
    import subprocess

    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = (out.stderr or out.stdout).splitlines()
    return first[0].split('"')[1] if first and '"' in first[0] else "unknown"


if __name__ == "__main__":
    main()
