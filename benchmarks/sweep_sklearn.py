"""A sweep over scikit-learn's estimators: does baton convert them, and do they keep parity
on the data, with the parity search (envelope scope) and with every divergence failing?

    python benchmarks/sweep_sklearn.py            # prints the table and counts
    python benchmarks/sweep_sklearn.py --write    # also writes its docs/benchmarks.md section

Lists ``sklearn.utils.all_estimators()`` and keeps the inductive ones (a ``predict`` or
``transform`` once fitted) that build with default arguments and fit on plain numeric data:
classifiers on ``make_classification(300, 6, random_state=0)``, regressors on
``make_regression(300, 6, random_state=0)``, everything else on the classification X (with
its y when ``fit`` needs one). Each is converted with ``baton.convert(model, X)`` and checked
on the same X three times: ``search=False`` (parity on the data only), the default (the
parity search, where only divergences inside the proof's envelope fail) and
``search_scope="all"`` (every divergence fails). Default seed throughout.

Each estimator runs in a worker process with a per-estimator time limit (``--timeout``): a
hang or a crash costs that estimator only (the worker is replaced).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCHMARKS_MD, machine, write_section  # noqa: E402

TITLE = "scikit-learn estimators: parity with and without the search"

#: estimators that need input this sweep does not make (text, dicts, labels, images, 2-D y,
#: 1-D X, a kernel matrix) or that are biclusterings; skipped before they are built
SPECIAL_INPUT = {
    "CountVectorizer": "text input",
    "TfidfVectorizer": "text input",
    "HashingVectorizer": "text input",
    "FeatureHasher": "dict / string input",
    "DictVectorizer": "dict input",
    "LabelEncoder": "target transformer (labels)",
    "LabelBinarizer": "target transformer (labels)",
    "MultiLabelBinarizer": "target transformer (label sets)",
    "MultiOutputClassifier": "needs 2-D y",
    "MultiOutputRegressor": "needs 2-D y",
    "ClassifierChain": "needs 2-D y",
    "RegressorChain": "needs 2-D y",
    "MultiTaskElasticNet": "needs 2-D y",
    "MultiTaskElasticNetCV": "needs 2-D y",
    "MultiTaskLasso": "needs 2-D y",
    "MultiTaskLassoCV": "needs 2-D y",
    "IsotonicRegression": "needs 1-D X",
    "PatchExtractor": "image input",
    "KernelCenterer": "needs a kernel matrix",
    "SpectralBiclustering": "biclustering (no predict/transform)",
    "SpectralCoclustering": "biclustering (no predict/transform)",
}
TRANSDUCTIVE = "transductive (no predict/transform once fitted)"


def first_line(exc: BaseException, limit: int = 110) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def found_line(exc: BaseException, limit: int = 150) -> str:
    """The ``found:`` line of a baton error (what it saw), where there is one."""
    for line in str(exc).splitlines()[1:]:
        if line.strip().startswith("found:"):
            text = line.strip()[len("found:"):].strip()
            return text if len(text) <= limit else text[:limit - 1] + "…"
    return ""


def datasets() -> dict[str, Any]:
    from sklearn.datasets import make_classification, make_regression

    Xc, yc = make_classification(300, 6, random_state=0)
    Xr, yr = make_regression(300, 6, random_state=0)
    return {"classifier": (Xc, yc), "regressor": (Xr, yr), "other": (Xc, yc)}


def kind_of(est: Any) -> str:
    from sklearn.base import is_classifier, is_regressor

    return "classifier" if is_classifier(est) else "regressor" if is_regressor(est) else "other"


def fit(est: Any, X: Any, y: Any, kind: str) -> Any:
    """Fit a classifier or regressor on (X, y); anything else on X alone, else on (X, y)."""
    if kind != "other":
        return est.fit(X, y)
    try:
        return est.fit(X)
    except Exception:  # noqa: BLE001 - a fit that needs y (SelectKBest, LDA-like)
        from sklearn.base import clone

        return clone(est).fit(X, y)


def judge(report: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"pass": bool(report), "fail_class": None, "in_envelope": None,
                           "warnings": 0, "complete": None, "on_data": all(report.outputs)}
    s = report.search
    if s is not None:
        out["warnings"] = len(s.warnings)
        out["complete"] = s.complete
        if s.failing:
            out["fail_class"] = s.failing[0].divergence_class
            out["in_envelope"] = s.failing[0].in_envelope
    return out


def sweep_one(name: str, send: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Build, fit, convert and check one estimator; ``send`` reports each stage reached."""
    from sklearn.utils import all_estimators

    import baton

    t0 = time.perf_counter()
    res: dict[str, Any] = {"name": name, "status": "skipped", "stage": "build"}
    send(res)
    cls = dict(all_estimators())[name]
    try:
        est = cls()
        kind = kind_of(est)  # SelfTrainingClassifier builds, but needs its estimator here
    except Exception as e:  # noqa: BLE001
        return res | {"reason": "needs arguments", "detail": first_line(e, 70)}
    if not (hasattr(cls, "predict") or hasattr(cls, "transform")):
        return res | {"reason": TRANSDUCTIVE}
    X, y = datasets()[kind]
    res |= {"kind": kind, "stage": "fit"}
    send(res)
    try:
        est = fit(est, X, y, kind)
    except Exception as e:  # noqa: BLE001
        return res | {"reason": "fit fails on this data", "detail": first_line(e, 70)}
    if not (hasattr(est, "predict") or hasattr(est, "transform")):
        return res | {"reason": TRANSDUCTIVE}
    res |= {"status": "not converted", "stage": "convert"}
    send(res)
    try:
        bundle = baton.convert(est, X)
    except Exception as e:  # noqa: BLE001
        return res | {"reason": first_line(e), "detail": found_line(e),
                      "seconds": time.perf_counter() - t0}
    res |= {"status": "converted", "converted": True, "convert_parity": bool(bundle.report)}
    for key, kwargs in (("data", {"search": False}), ("search", {}),
                        ("all", {"search_scope": "all"})):
        res |= {"stage": f"check ({key})"}
        send(res)
        try:
            res[key] = judge(baton.check(est, bundle, X, **kwargs))
        except Exception as e:  # noqa: BLE001
            res[key] = {"pass": False, "error": first_line(e)}
    res |= {"stage": "done", "seconds": time.perf_counter() - t0}
    return res


def worker(tasks: Any, results: Any) -> None:
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"
    import onnxruntime

    # the search's counterexamples where onnxruntime fails are in the reports; not its log
    onnxruntime.set_default_logger_severity(4)
    while (name := tasks.get()) is not None:
        def send(partial: dict[str, Any], name: str = name) -> None:
            results.put(("partial", name, dict(partial)))

        try:
            res = sweep_one(name, send)
        except BaseException as e:  # noqa: BLE001 - report it, keep the worker going
            res = {"name": name, "status": "crashed", "reason": first_line(e)}
        results.put(("done", name, res))


class Pool:
    """One worker process at a time, replaced when an estimator hangs or kills it."""

    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.proc: Any = None

    def start(self) -> None:
        self.tasks, self.results = self.ctx.Queue(), self.ctx.Queue()
        self.proc = self.ctx.Process(target=worker, args=(self.tasks, self.results),
                                     daemon=True)
        self.proc.start()

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.tasks.put(None)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.proc = None

    def run(self, name: str, timeout: float) -> dict[str, Any]:
        if self.proc is None:
            self.start()
        self.tasks.put(name)
        last: dict[str, Any] = {"name": name, "stage": "start"}
        t0 = time.perf_counter()
        while True:
            left = timeout - (time.perf_counter() - t0)
            try:
                what, got, res = self.results.get(timeout=min(1.0, max(left, 0.01)))
            except queue.Empty:
                if left <= 0 or not self.proc.is_alive():
                    alive = self.proc.is_alive()
                    self.stop(kill=True)
                    return last | {
                        "status": "timeout" if alive else "crashed",
                        "reason": (f"over {timeout:g} s" if alive else "worker died")
                        + f" in {last['stage']}",
                        "seconds": time.perf_counter() - t0}
                continue
            if got != name:
                continue
            if what == "done":
                res.setdefault("seconds", time.perf_counter() - t0)
                return res
            last = res


def yes(r: dict[str, Any], key: str) -> bool:
    return bool(r.get(key, {}).get("pass"))


def cell(r: dict[str, Any], key: str) -> str:
    if key not in r:
        return ""
    c = r[key]
    if c.get("error"):
        return "error: " + c["error"]
    if c["pass"]:
        return ("pass" + (f" ({c['warnings']} warnings)" if c.get("warnings") else "")
                + (" (search cut short)" if c.get("complete") is False else ""))
    if not c.get("on_data", True):
        return "fail on data"
    where = "" if c["in_envelope"] is None else (
        " (in envelope)" if c["in_envelope"] else " (outside)")
    return f"fail: {c['fail_class']}{where}"


def md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_lines(results: list[dict[str, Any]], timeout: float, seconds: float,
                 env: str) -> list[str]:
    tried = [r for r in results if r["status"] != "skipped"]
    converted = [r for r in tried if r.get("converted")]
    on_data = [r for r in tried if yes(r, "data")]
    search = [r for r in tried if yes(r, "search")]
    scope_all = [r for r in tried if yes(r, "all")]
    lost = [r for r in on_data if not yes(r, "search")]
    from baton.results.search import SearchBudget

    default = SearchBudget()
    budget = f"{default.examples} examples, with a {default.seconds:g} s safety cap"
    lines = [
        "Command: `python benchmarks/sweep_sklearn.py --write` (writes this section).",
        f"Machine: {env}.",
        "",
        "Every estimator of `sklearn.utils.all_estimators()` that builds with default "
        "arguments, fits on plain numeric data and is inductive (a `predict` or `transform` "
        "once fitted). Classifiers are fitted on `make_classification(300, 6, "
        "random_state=0)`, regressors on `make_regression(300, 6, random_state=0)`, the rest "
        "on the classification X (with its y when `fit` needs one). Each is converted with "
        "`baton.convert(model, X)` and checked on the same X: *on data* "
        "`baton.check(model, bundle, X, search=False)`; *search (envelope)* the default "
        "`baton.check(model, bundle, X)`, where only divergences inside the proof's envelope "
        "fail; *search (all)* `search_scope=\"all\"`, where every divergence fails (the old "
        f"gate). Default seed; the search's default budget ({budget}). Each "
        f"estimator had {timeout:g} s in a worker process; the sweep took "
        f"{seconds / 60:.1f} min.",
        "",
        "| | estimators |",
        "|---|---:|",
        f"| tried (built, fitted, inductive) | {len(tried)} |",
        f"| converted (`baton.convert` returned a bundle) | {len(converted)} |",
        f"| of which its own parity on X (`bundle.report`) fails | "
        f"{sum(not r.get('convert_parity', True) for r in converted)} |",
        f"| pass on data | {len(on_data)} |",
        f"| pass with the search (envelope scope, the default) | {len(search)} |",
        f"| pass with the search (scope all) | {len(scope_all)} |",
        "",
    ]
    if lost:
        lines += ["Pass on data but fail the default search (first failing counterexample):",
                  "", "| estimator | failing class | in envelope |", "|---|---|---|"]
        for r in lost:
            c = r["search"]
            lines.append(f"| {r['name']} | {md(str(c.get('fail_class') or c.get('error')))} "
                         f"| {c.get('in_envelope')} |")
        lines.append("")
    else:
        lines += ["No estimator that passes on the data fails the default search.", ""]
    lines += ["| estimator | kind | converted | on data | search (envelope) | search (all) "
              "| s |", "|---|---|---|---|---|---|---:|"]
    for r in tried:
        if r.get("converted"):
            conv = "yes" + ("" if r.get("convert_parity", True) else
                            " (but `bundle.report` fails)")
            conv += "" if r["status"] == "converted" else f"; {r['status']}: {r['reason']}"
        else:
            conv = f"{r['status']}: {r.get('reason', '')}"
            conv += f" (found: {r['detail']})" if r.get("detail") else ""
        conv = md(conv)
        lines.append(f"| {r['name']} | {r.get('kind', '')} | {conv} | {md(cell(r, 'data'))} "
                     f"| {md(cell(r, 'search'))} | {md(cell(r, 'all'))} "
                     f"| {r.get('seconds', 0):.1f} |")
    skipped = [r for r in results if r["status"] == "skipped"]
    by_reason: dict[str, list[str]] = {}
    for r in skipped:
        detail = f" ({r['detail']})" if r.get("detail") and "fit" in r["reason"] else ""
        by_reason.setdefault(r.get("reason", ""), []).append(r["name"] + detail)
    lines += ["", f"Not tried ({len(skipped)}):", ""]
    for reason, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"- {md(reason)} ({len(names)}): {md(', '.join(names))}.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per estimator (default 120)")
    parser.add_argument("--only", nargs="*", help="these estimators only (by class name)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"

    import onnxruntime as ort
    import sklearn
    from sklearn.utils import all_estimators

    import baton

    names = [n for n, _ in all_estimators()]
    if args.only:
        names = [n for n in names if n in set(args.only)]
    pool = Pool()
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        for i, name in enumerate(names, 1):
            if name in SPECIAL_INPUT:
                r = {"name": name, "status": "skipped", "reason": SPECIAL_INPUT[name]}
            else:
                r = pool.run(name, args.timeout)
            results.append(r)
            if r["status"] == "skipped":
                msg = "skipped: " + r.get("reason", "") + (
                    f" ({r['detail']})" if r.get("detail") else "")
            elif "data" in r:
                msg = " / ".join(f"{k} {cell(r, k)}" for k in ("data", "search", "all")
                                 if k in r)
            else:
                msg = f"{r['status']}: {r.get('reason', '')} {r.get('detail', '')}"
            print(f"[{i:3d}/{len(names)}] {name:34s} {r.get('seconds', 0):6.1f}s  {msg}",
                  flush=True)
    finally:
        pool.stop()
    seconds = time.perf_counter() - t0

    env = machine(**{"scikit-learn": sklearn.__version__, "onnxruntime": ort.__version__,
                     "baton": baton.__version__})
    lines = report_lines(results, args.timeout, seconds, env)
    print("\n".join(lines))
    counts = Counter(r["status"] for r in results)
    print(f"\nsweep took {seconds / 60:.1f} min; statuses: {dict(counts)}", file=sys.stderr)
    if args.write:
        write_section(TITLE, lines, args.output)
        print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
