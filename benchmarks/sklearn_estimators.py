"""Every scikit-learn estimator, built with default arguments, fitted, converted and checked:
the machinery behind ``benchmarks/sweep_sklearn.py`` (the benchmark table) and
``tests/converters/test_coverage.py`` (``docs/coverage.md`` and its floor).

The method: ``sklearn.utils.all_estimators()``; each class built with no arguments (those that
need one, such as a Pipeline or a meta-estimator's estimator, are not default-constructible);
classifiers fitted on ``make_classification(300, 6, random_state=0)``, regressors on
``make_regression(300, 6, random_state=0)``, everything else on the classification X (with its
y where ``fit`` needs one). An estimator that is inductive (a ``predict`` or ``transform`` once
fitted) is converted with ``baton.convert(model, X)`` and checked on the same X: on the data
only (``search=False``), with the default parity search, and (the benchmark only) with the
search's scope ``all``. Where the estimator cannot take that data by its nature, the data is
adapted as little as possible, and the adaptation is recorded (``ADAPTED``): non-negative
counts for the count models, a positive target for the log-link regressors, a 2-D target for
multi-target models, full-rank features for QDA, a text column for the vectorisers, one
feature for IsotonicRegression.

Each estimator runs in a worker process with a time limit: a hang or a crash costs that
estimator only (the worker is replaced). ``run`` uses several workers at once.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: estimators whose input is not a feature matrix of numbers or text, or that are not models
#: of X at all; not tried, with the reason
NOT_APPLICABLE = {
    "FeatureHasher": "input is a list of dicts or of string lists, not a table",
    "DictVectorizer": "input is a list of dicts, not a table",
    "LabelEncoder": "a target transformer (encodes y, not X)",
    "LabelBinarizer": "a target transformer (encodes y, not X)",
    "MultiLabelBinarizer": "a target transformer (encodes label sets, not X)",
    "PatchExtractor": "input is a batch of images",
    "KernelCenterer": "input is a kernel matrix against the training rows",
    "SpectralBiclustering": "a biclustering (no predict or transform)",
    "SpectralCoclustering": "a biclustering (no predict or transform)",
}
TRANSDUCTIVE = "transductive (no predict or transform once fitted)"

#: the data each adapted estimator is fitted and checked on, and why
ADAPTED = {
    **dict.fromkeys(("MultinomialNB", "ComplementNB", "LatentDirichletAllocation", "NMF",
                     "MiniBatchNMF", "AdditiveChi2Sampler"),
                    ("counts", "needs non-negative features: |X| of the classification data")),
    "CategoricalNB": ("categories", "needs non-negative integer categories: "
                      "floor(2 |X|) of the classification data"),
    "SkewedChi2Sampler": ("shifted", "needs X > -skewedness: X + 10 of the classification "
                          "data"),
    **dict.fromkeys(("PoissonRegressor", "GammaRegressor"),
                    ("positive_y", "needs a positive target: exp(y / std(y)) of the "
                     "regression data")),
    "QuadraticDiscriminantAnalysis": ("full_rank", "needs full-rank classes: "
                                      "make_classification(300, 6, n_informative=6, "
                                      "n_redundant=0, random_state=0)"),
    **dict.fromkeys(("MultiTaskElasticNet", "MultiTaskElasticNetCV", "MultiTaskLasso",
                     "MultiTaskLassoCV", "CCA", "PLSCanonical", "PLSSVD"),
                    ("two_targets", "needs a 2-D target: make_regression(300, 6, n_targets=2, "
                     "random_state=0)")),
    **dict.fromkeys(("CountVectorizer", "TfidfVectorizer", "HashingVectorizer"),
                    ("text", "takes text: 300 generated sentences, mixed case and accents")),
    "IsotonicRegression": ("one_feature", "takes one feature: the first column of the "
                           "regression data"),
}

WORDS = ("Paris café naïve Straße Ünïcödé élan über data Model parity proof ONNX runtime "
         "the a of and to budget latency Zürich déjà vu résumé coöperate piñata façade").split()


def datasets(key: str) -> tuple[Any, Any]:
    """(X, y) by name; the default ones and the adapted ones of ``ADAPTED``."""
    import numpy as np
    from sklearn.datasets import make_classification, make_regression

    Xc, yc = make_classification(300, 6, random_state=0)
    Xr, yr = make_regression(300, 6, random_state=0)
    if key in ("classifier", "other"):
        return Xc, yc
    if key == "regressor":
        return Xr, yr
    if key == "counts":
        return np.abs(Xc), yc
    if key == "categories":
        return np.floor(2 * np.abs(Xc)), yc
    if key == "shifted":
        return Xc + 10, yc
    if key == "positive_y":
        return Xr, np.exp(yr / yr.std())
    if key == "full_rank":
        return make_classification(300, 6, n_informative=6, n_redundant=0, random_state=0)
    if key == "two_targets":
        return make_regression(300, 6, n_targets=2, random_state=0)
    if key == "text":
        rng = np.random.default_rng(0)
        text = [" ".join(rng.choice(WORDS, size=rng.integers(3, 12))) for _ in range(300)]
        return np.array(text, dtype=object), yc
    if key == "one_feature":
        return Xr[:, :1], yr
    raise KeyError(key)


def kind_of(est: Any) -> str:
    from sklearn.base import is_classifier, is_regressor

    return "classifier" if is_classifier(est) else "regressor" if is_regressor(est) else "other"


def fit(est: Any, X: Any, y: Any, kind: str) -> Any:
    """Fit a classifier or regressor on (X, y); anything else on X alone, else on (X, y)."""
    if kind != "other":
        return est.fit(X, y)
    try:
        return est.fit(X)
    except Exception:  # noqa: BLE001 - a fit that needs y (SelectKBest, CCA-like)
        from sklearn.base import clone

        return clone(est).fit(X, y)


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


#: the environment variable that gives the search's example budget (e.g. "300"; unset:
#: baton.check's default), read by the worker processes
SEARCH_BUDGET_ENV = "BATON_SWEEP_SEARCH_BUDGET"
_budget = {"search_budget": os.environ[SEARCH_BUDGET_ENV]} if os.environ.get(
    SEARCH_BUDGET_ENV) else {}
#: the checks, by key: the keyword arguments of ``baton.check``
CHECKS = {"data": {"search": False}, "search": dict(_budget),
          "all": {"search_scope": "all", **_budget}}


def sweep_one(name: str, checks: Sequence[str],
              send: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Build, fit, convert and check one estimator; ``send`` reports each stage reached."""
    from sklearn.utils import all_estimators

    import baton

    t0 = time.perf_counter()
    res: dict[str, Any] = {"name": name, "status": "skipped", "stage": "build"}
    if name in NOT_APPLICABLE:
        return res | {"reason": NOT_APPLICABLE[name]}
    send(res)
    cls = dict(all_estimators())[name]
    try:
        est = cls()
        kind = kind_of(est)  # SelfTrainingClassifier builds, but needs its estimator here
    except Exception as e:  # noqa: BLE001
        return res | {"reason": "needs arguments", "detail": first_line(e, 70)}
    if not (hasattr(cls, "predict") or hasattr(cls, "transform")):
        return res | {"reason": TRANSDUCTIVE}
    key, why = ADAPTED.get(name, (kind, ""))
    X, y = datasets(key)
    res |= {"kind": kind, "stage": "fit", "dataset": key, "adapted": why}
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
        return res | {"reason": first_line(e, 400), "detail": found_line(e, 240),
                      "hint": str(getattr(e, "hint", "") or ""),
                      "seconds": time.perf_counter() - t0}
    conv = bundle.typed_manifest.info.get("converter", {})
    res |= {"status": "converted", "converted": True, "convert_parity": bool(bundle.report),
            "converter": conv.get("name", ""), "own": conv.get("own", [])}
    for key in checks:
        res |= {"stage": f"check ({key})"}
        send(res)
        try:
            res[key] = judge(baton.check(est, bundle, X, **CHECKS[key]))
        except Exception as e:  # noqa: BLE001
            res[key] = {"pass": False, "error": first_line(e)}
    res |= {"stage": "done", "seconds": time.perf_counter() - t0}
    return res


def worker(tasks: Any, results: Any, checks: Sequence[str]) -> None:
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"
    import onnxruntime

    # the search's counterexamples where onnxruntime fails are in the reports; not its log
    onnxruntime.set_default_logger_severity(4)
    while (name := tasks.get()) is not None:
        def send(partial: dict[str, Any], name: str = name) -> None:
            results.put(("partial", name, dict(partial)))

        try:
            res = sweep_one(name, checks, send)
        except BaseException as e:  # noqa: BLE001 - report it, keep the worker going
            res = {"name": name, "status": "crashed", "reason": first_line(e)}
        results.put(("done", name, res))


class Pool:
    """One worker process, replaced when an estimator hangs or kills it."""

    def __init__(self, checks: Sequence[str]) -> None:
        self.ctx = mp.get_context("spawn")
        self.checks = tuple(checks)
        self.proc: Any = None

    def start(self) -> None:
        self.tasks, self.results = self.ctx.Queue(), self.ctx.Queue()
        self.proc = self.ctx.Process(target=worker,
                                     args=(self.tasks, self.results, self.checks),
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


def names() -> list[str]:
    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [n for n, _ in all_estimators()]


def run(which: Iterable[str], checks: Sequence[str], *, timeout: float = 120.0,
        workers: int = 1, progress: Callable[[dict[str, Any]], None] | None = None,
        ) -> list[dict[str, Any]]:
    """Sweep these estimators with ``workers`` worker processes; results in input order."""
    todo = list(which)
    out: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def drain() -> None:
        pool = Pool(checks)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    name = todo.pop(0)
                r = pool.run(name, timeout)
                with lock:
                    out[name] = r
                    if progress is not None:
                        progress(r)
        finally:
            pool.stop()

    order = list(todo)
    threads = [threading.Thread(target=drain, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [out[n] for n in order]


def passed(r: dict[str, Any], key: str) -> bool:
    return bool(r.get(key, {}).get("pass"))


def how(r: dict[str, Any]) -> str:
    """Which converter wrote the graph: baton's own (by name) or skl2onnx."""
    name = r.get("converter", "")
    if name == "skl2onnx" and r.get("own"):
        return "baton's own (in skl2onnx's topology)"
    return {"skl2onnx": "skl2onnx", "sklearn-trees": "baton's tree emitter",
            "sklearn-pipeline-trees": "baton's tree emitter"}.get(name, name)


def verdict(r: dict[str, Any], checks: Sequence[str]) -> str:
    """One cell: the outcome of the last stage the estimator reached."""
    if r["status"] == "skipped":
        return "not tried: " + r.get("reason", "")
    if not r.get("converted"):
        found = f" (found: {r['detail']})" if r.get("detail") else ""
        hint = f"; what to do: {r['hint']}" if r.get("hint") else ""
        return f"{r['status']}: {r.get('reason', '')}{found}{hint}"
    for key in checks:
        c = r.get(key, {})
        if not c.get("pass"):
            if c.get("error"):
                return f"check ({key}) error: {c['error']}"
            if not c.get("on_data", True):
                return f"converted, parity fails on the data ({key})"
            where = "" if c.get("in_envelope") is None else (
                " inside the envelope" if c["in_envelope"] else " outside the envelope")
            return f"converted, the search fails: {c.get('fail_class')}{where}"
    return "parity" + (" (search cut short)" if r.get("search", {}).get("complete") is False
                       else "")
