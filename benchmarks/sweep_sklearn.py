"""A sweep over scikit-learn's estimators: does baton convert them, and do they keep parity
on the data, with the parity search (envelope scope) and with every divergence failing?

    python benchmarks/sweep_sklearn.py            # prints the table and counts
    python benchmarks/sweep_sklearn.py --write    # also writes its docs/benchmarks.md section

The method (which estimators, fitted on what, checked how) is in
``benchmarks/sklearn_estimators.py``; ``tests/converters/test_coverage.py`` runs the same
method (without the scope-all check) and writes docs/coverage.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCHMARKS_MD, machine, write_section  # noqa: E402
from sklearn_estimators import names, passed, run  # noqa: E402

TITLE = "scikit-learn estimators: parity with and without the search"


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
    on_data = [r for r in tried if passed(r, "data")]
    search = [r for r in tried if passed(r, "search")]
    scope_all = [r for r in tried if passed(r, "all")]
    lost = [r for r in on_data if not passed(r, "search")]
    from baton.results.search import SearchBudget

    default = SearchBudget()
    budget = f"{default.examples} examples, with a {default.seconds:g} s safety cap"
    lines = [
        "Command: `python benchmarks/sweep_sklearn.py --write` (writes this section).",
        f"Machine: {env}.",
        "",
        "Every estimator of `sklearn.utils.all_estimators()` that builds with default "
        "arguments and is inductive (a `predict` or `transform` once fitted), by the method of "
        "[coverage](coverage.md) (`benchmarks/sklearn_estimators.py`): classifiers fitted on "
        "`make_classification(300, 6, random_state=0)`, regressors on `make_regression(300, "
        "6, random_state=0)`, the rest on the classification X (with its y when `fit` needs "
        "one), a few on adapted data (listed there). Each is converted with "
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
    for reason, which in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"- {md(reason)} ({len(which)}): {md(', '.join(which))}.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per estimator (default 120)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes at once (default 1: timings stay comparable)")
    parser.add_argument("--only", nargs="*", help="these estimators only (by class name)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"

    import onnxruntime as ort
    import sklearn

    import baton

    todo = names()
    if args.only:
        todo = [n for n in todo if n in set(args.only)]
    done = 0

    def progress(r: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        if r["status"] == "skipped":
            msg = "skipped: " + r.get("reason", "") + (
                f" ({r['detail']})" if r.get("detail") else "")
        elif "data" in r:
            msg = " / ".join(f"{k} {cell(r, k)}" for k in ("data", "search", "all") if k in r)
        else:
            msg = f"{r['status']}: {r.get('reason', '')} {r.get('detail', '')}"
        print(f"[{done:3d}/{len(todo)}] {r['name']:34s} {r.get('seconds', 0):6.1f}s  {msg}",
              flush=True)

    t0 = time.perf_counter()
    results = run(todo, ("data", "search", "all"), timeout=args.timeout,
                  workers=args.workers, progress=progress)
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
