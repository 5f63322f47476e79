"""Large data on one machine: the streaming `baton check` against the in-memory check and
the original model's own ``predict``, peak memory and rows/s at 10k, 100k and 1M rows.

    python benchmarks/bench_stream.py            # writes its section of docs/benchmarks.md
    python benchmarks/bench_stream.py --quick    # 10k and 100k rows, one round; prints only

A scikit-learn pipeline (StandardScaler + LogisticRegression on 8 float64 columns) is
converted once; the rows are Parquet files written by pandas (``DataFrame.to_parquet``,
pyarrow's default row groups). Every measurement runs in a fresh child process of its own,
and its peak resident memory is that child's alone (``os.wait4``'s rusage, ``ru_maxrss``).
The child imports everything first (Python, pandas, pyarrow, scikit-learn, onnxruntime,
skops, baton), then times the work: loading the model file included, interpreter start-up
and imports not (the process's whole wall time is reported beside it).

- *streaming check*: ``baton check model.skops model.baton --data rows.parquet
  --no-search``, run through the CLI's own entry point in the child;
- *in-memory check*: ``pd.read_parquet`` then ``baton.check(model, bundle, frame,
  search=False)``, which holds every row and every output at once;
- *original predict*: ``pd.read_parquet`` then the pipeline's own ``predict``: what
  scoring the file costs without baton.

The contenders of one size run interleaved, in a fresh random order each round; figures are
medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import BENCHMARKS_MD, machine, write_section  # noqa: E402

TITLE = "Large data: streaming check (peak RSS and rows/s)"
COLUMNS = [f"x{i}" for i in range(8)]
CONTENDERS = ("stream", "memory", "original")
LABELS = {"stream": "streaming `baton check --data f.parquet`",
          "memory": "in-memory `baton.check(model, bundle, frame)`",
          "original": "original `pd.read_parquet` + `predict`",
          "imports": "imports only (no work)"}


# -- the child: one measurement --------------------------------------------------------------

def child(kind: str, model_file: str, bundle: str, data: str, report: str) -> None:
    """Import everything, then time one contender; print its seconds as JSON."""
    import onnxruntime  # noqa: F401
    import pandas as pd
    import pyarrow.parquet  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import skops.io as sio

    import baton
    import baton.cli
    import baton.parity.check  # noqa: F401
    import baton.runtime  # noqa: F401

    def load() -> Any:
        return sio.load(model_file, trusted=sio.get_untrusted_types(file=model_file))

    code = 0
    t0 = time.perf_counter()
    if kind == "stream":
        sys.argv = ["baton", "check", model_file, bundle, "--data", data, "--no-search",
                    "--json", report]
        try:
            baton.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    elif kind == "memory":
        result = baton.check(load(), bundle, pd.read_parquet(data), search=False)
        code = 0 if result else 1
        result.write_json(report)
    elif kind == "original":
        load().predict(pd.read_parquet(data))
    elif kind != "imports":
        raise SystemExit(f"unknown contender {kind!r}")
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "code": code, "hwm_mb": _hwm_mb()}), file=sys.stderr)


def _hwm_mb() -> float:
    """This process's own peak RSS as the kernel keeps it per address space (VmHWM), a
    cross-check of the rusage the parent reads."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return float("nan")


# -- the parent: files, children, the section ------------------------------------------------

def make_model(tmp: Path) -> tuple[Path, Path]:
    """The model file and its bundle, converted once."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    import baton

    frame = rows(5000, seed=1)
    y = (frame["x0"] + 0.5 * frame["x1"] - frame["x2"] > 0).astype(int)
    model = Pipeline([("scale", StandardScaler()),
                      ("classify", LogisticRegression(max_iter=1000))]).fit(frame, y)
    model_file = tmp / "model.skops"
    sio.dump(model, model_file)
    assert isinstance(frame, pd.DataFrame)
    bundle = baton.convert(model, frame.iloc[:2000]).save(tmp / "model.baton")
    return model_file, Path(bundle)


def rows(n: int, seed: int = 0) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    scales = np.array([1, 2, 0.5, 10, 1, 3, 0.1, 5])
    return pd.DataFrame(rng.normal(size=(n, len(COLUMNS))) * scales, columns=COLUMNS)


def measure(kind: str, files: tuple[Path, Path], data: Path, report: Path) -> dict[str, Any]:
    """Run one contender in a fresh child; its time, its own peak RSS, its exit code."""
    model_file, bundle = files
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(model_file),
           str(bundle), str(data), str(report)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if proc.returncode != 0 or not last.startswith("{"):
        raise RuntimeError(f"{kind} on {data.name} failed (exit {proc.returncode}):\n{text}")
    result = json.loads(last)
    if result["code"] != 0:
        raise RuntimeError(f"{kind} on {data.name}: the check failed (exit {result['code']})")
    # Linux gives ru_maxrss in KiB
    return {"seconds": result["seconds"], "wall": wall, "rss_mb": usage.ru_maxrss * 1024 / 1e6,
            "hwm_mb": result.get("hwm_mb", float("nan"))}


def rows_compared(report: Path) -> int | None:
    """The number of rows the report says it compared (None when it does not say)."""
    found = json.loads(report.read_text())
    for key in ("rows", "rows_compared", "n_rows"):
        if isinstance(found.get(key), int):
            return int(found[key])
    for diff in found.get("outputs", []):
        for key in ("rows", "n_rows", "compared"):
            if isinstance(diff.get(key), int):
                return int(diff[key])
    return None


def prepare(tmp: str, sizes: str) -> None:
    """In a child of its own (so that the parent, whose memory every child's peak RSS
    starts from at fork, stays small): the model file, its bundle, the Parquet files, and
    the versions, as JSON."""
    import onnxruntime as ort
    import pandas as pd
    import pyarrow as pa

    import baton

    folder = Path(tmp)
    model_file, bundle = make_model(folder)
    for n in sizes.split(","):
        rows(int(n)).to_parquet(folder / f"rows-{n}.parquet", index=False)
    print(json.dumps({"model": str(model_file), "bundle": str(bundle),
                      "versions": {"onnxruntime": ort.__version__, "pandas": pd.__version__,
                                   "pyarrow": pa.__version__, "baton": baton.__version__}}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--prepare":
        prepare(*sys.argv[2:4])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10k and 100k rows, one round; print, don't write")
    parser.add_argument("--sizes", default=None,
                        help="row counts, e.g. 1000,5000 (default 10k,100k,1M; 10k,100k "
                        "with --quick)")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args()

    sizes = tuple(int(v) for v in args.sizes.split(",")) if args.sizes else (
        (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000))
    rounds = 1 if args.quick else 3
    rng = np.random.default_rng(0)
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    compared: dict[tuple[str, int], int | None] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        made = json.loads(subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--prepare", tmp_name,
             ",".join(map(str, sizes))], check=True, capture_output=True,
            text=True).stdout.strip().splitlines()[-1])
        files = (Path(made["model"]), Path(made["bundle"]))
        floor = [measure("imports", files, files[1], tmp / "r.json") for _ in range(rounds)]
        for n in sizes:
            data = tmp / f"rows-{n}.parquet"
            for _ in range(rounds):
                for kind in rng.permutation(CONTENDERS):
                    report = tmp / f"{kind}-{n}.json"
                    got = measure(str(kind), files, data, report)
                    samples.setdefault((str(kind), n), []).append(got)
                    if kind != "original":
                        compared[(str(kind), n)] = rows_compared(report)
                    print(f"{kind:8s} {n:>9,} rows: {got['seconds']:.2f} s "
                          f"({got['wall']:.2f} s process), peak RSS {got['rss_mb']:.0f} MB "
                          f"(VmHWM {got['hwm_mb']:.0f} MB)", flush=True)
            data.unlink()

    med = {key: {f: statistics.median(s[f] for s in v) for f in ("seconds", "wall", "rss_mb")}
           for key, v in samples.items()}
    floor_mb = statistics.median(s["rss_mb"] for s in floor)
    import resource

    # a child's peak RSS starts from its parent's at fork: this one is kept small (numpy)
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    lines = table(med, sizes, compared, floor_mb, rounds)
    lines[-1] += (f" The parent that starts the children holds {parent_mb:.0f} MB (a child's "
                  "`ru_maxrss` cannot read below its parent's size at fork; the model and "
                  "the files are made in a child of their own).")
    env = machine(**made["versions"])
    lines = [
        "Command: `python benchmarks/bench_stream.py` (writes this section).",
        f"Machine: {env}.",
        "",
        "A scikit-learn pipeline (StandardScaler + LogisticRegression, 8 float64 columns) "
        f"checked on Parquet files of {', '.join(f'{n:,}' for n in sizes)} rows (written "
        "by pandas, pyarrow's default row groups). Each figure is one fresh child process, "
        f"the medians of {rounds} interleaved round{'s' if rounds > 1 else ''}. *peak RSS*: "
        "the child's own maximum "
        "resident memory (`os.wait4`'s `ru_maxrss`), interpreter and imports included. "
        "*rows/s*: rows over the seconds of the work (loading the model file, reading and "
        "comparing the rows), after the imports; *process s*: the whole child, start-up "
        "included, at the largest size. *growth*: peak RSS at the largest size minus (and "
        "over) the smallest. *streaming check*: `baton check model.skops model.baton --data "
        "f.parquet --no-search` (reads the file in batches, keeps running statistics); "
        "*in-memory check*: `baton.check(model, bundle, pd.read_parquet(f), search=False)`; "
        "*original predict*: `pd.read_parquet(f)` and the pipeline's own `predict` (labels "
        "only), what scoring the file costs without baton.",
        "",
        *lines,
    ]
    if args.quick or args.sizes:
        print("\n".join(lines))
        return
    write_section(TITLE, lines, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


def table(med: dict[tuple[str, int], dict[str, float]], sizes: tuple[int, ...],
          compared: dict[tuple[str, int], int | None], floor_mb: float,
          rounds: int) -> list[str]:
    def size(n: int) -> str:
        return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"

    first, last = sizes[0], sizes[-1]
    head = ("| contender | " + " | ".join(f"peak RSS MB, {size(n)}" for n in sizes)
            + f" | growth {size(first)}→{size(last)} | "
            + " | ".join(f"rows/s, {size(n)}" for n in sizes)
            + f" | process s, {size(last)} |")
    out = [head, "|---|" + "---:|" * (2 * len(sizes) + 2)]
    for kind in CONTENDERS:
        m = {n: med[(kind, n)] for n in sizes}
        grow = m[last]["rss_mb"] - m[first]["rss_mb"]
        out.append(
            f"| {LABELS[kind]} | " + " | ".join(f"{m[n]['rss_mb']:.0f}" for n in sizes)
            + f" | +{grow:.0f} MB (×{m[last]['rss_mb'] / m[first]['rss_mb']:.2f}) | "
            + " | ".join(f"{n / m[n]['seconds']:,.0f}" for n in sizes)
            + f" | {m[last]['wall']:.1f} |")
    s, mem, orig = (med[(k, last)] for k in CONTENDERS)
    stream_rows = compared.get(("stream", last))
    said = (f"the streaming report says {stream_rows:,} rows compared"
            if stream_rows is not None else "the report does not state the rows compared")
    out += [
        "",
        f"The imports alone (no work) take {floor_mb:.0f} MB. At {last:,} rows the "
        f"streaming check peaks at {s['rss_mb']:.0f} MB against {mem['rss_mb']:.0f} MB for "
        f"the in-memory check and {orig['rss_mb']:.0f} MB for the original's own predict; "
        f"it runs at {last / s['seconds']:,.0f} rows/s, {s['seconds'] / orig['seconds']:.1f}x "
        "the original's time (it runs the original and the ONNX model, all outputs, and "
        f"compares them) and {s['seconds'] / mem['seconds']:.2f}x the in-memory check's; "
        f"{said} ({rounds} round{'s' if rounds > 1 else ''}).",
    ]
    return out


if __name__ == "__main__":
    main()
