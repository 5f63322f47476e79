"""The parity search: inputs beyond the user's data where the converted model may diverge.

``baton check`` compares the original and the converted model on the user's data, which
proves parity only where that data falls. The search then tries, in this order, within a
budget of examples (rows) and seconds:

1. ``edge``: per column (or tensor input), NaN, ±inf, 0 and -0.0, the largest and smallest
   finite values, subnormals, huge magnitudes, the observed extremes and just beyond them,
   unseen and empty categories, in otherwise typical rows; an all-NaN and an all-zero row;
   a typical row alone (a batch of 1);
2. ``thresholds`` (tree models): every split threshold of the original model, and its
   float64 and float32 neighbours both ways, in otherwise typical rows;
3. ``samples``: rows drawn from the input schema, within and somewhat beyond the observed
   ranges and categories;
4. ``property``: a hypothesis search over rows built from the schema (a typical row with
   some values replaced), which shrinks a divergence to a minimal counterexample: the
   fewest changed values, each as simple as it can be.

Every candidate row is run through both models in batches; a batch the original model
rejects is split until the rejected rows are found. A row the original rejects, or for
which it returns NaN where the converted model does not, is outside the model's *domain*:
counted and shown, never a divergence. NaN on both sides at the same place agrees.

Divergences are grouped by class (stage and what was changed: ``edge: +inf in age``,
``split threshold of x3``, ``samples beyond the observed range``, ...); each class keeps
its first (for ``property``: shrunk) counterexample with both outputs, which output broke
and by how much, and the command that reproduces it. Extreme inputs are not excused: a
float32 graph that overflows where the original does not is reported (its class says
where the input lay), and it is for the user to decide whether such inputs can occur.

This module imports only numpy at load time; hypothesis and pandas are imported when a
search runs.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from baton.errors import UsageError
from baton.schema import is_dataframe, n_rows, to_jsonable

#: the search's stages, in the order they run
STAGES = ("edge", "thresholds", "samples", "property")
#: the most of the example budget each stage may use; the samples get what the others
#: leave (hypothesis makes a row far more slowly than numpy, so the property search's
#: share is kept small)
STAGE_SHARE = {"edge": 0.25, "thresholds": 0.25, "property": 0.1}
#: the share of the time budget that may be spent when each stage ends (cumulative)
TIME_SHARE = {"edge": 0.3, "thresholds": 0.55, "samples": 0.7, "property": 1.0}
#: typical rows (from the user's data) that edge cases and thresholds are put into
TYPICAL_ROWS = 4
#: candidate rows evaluated together
BATCH = 256
#: rows per example of the property search (evaluated as one batch)
PROPERTY_ROWS = 8
#: at most this many examples of domain rejections kept per stage and reason
DOMAIN_EXAMPLES = 3
UNSEEN = "baton-unseen-category"


@dataclass(frozen=True)
class SearchBudget:
    """How much the search may try: ``examples`` rows in all (``None``: no count limit)
    and ``seconds`` of wall time (``None``: no time limit). A search bounded by examples
    only is reproducible exactly; one stopped by time says so in its result."""

    examples: int | None = 1000
    seconds: float | None = 5.0

    def __post_init__(self) -> None:
        if self.examples is None and self.seconds is None:
            raise UsageError("the search budget has no bound",
                             expected="a number of examples, seconds, or both",
                             found="neither", hint="pass e.g. --search-budget 2000,5s")
        if self.examples is not None and self.examples < 1:
            raise UsageError("the search budget needs at least one example",
                             expected="examples >= 1", found=str(self.examples),
                             hint="pass e.g. --search-budget 2000, or --no-search")
        if self.seconds is not None and not self.seconds > 0:
            raise UsageError("the search budget needs a positive time",
                             expected="seconds > 0", found=str(self.seconds),
                             hint="pass e.g. --search-budget 5s, or --no-search")

    @classmethod
    def parse(cls, text: str) -> SearchBudget:
        """``"2000"`` (examples), ``"5s"`` / ``"500ms"`` (time), or both: ``"2000,5s"``."""
        examples: int | None = None
        seconds: float | None = None
        parts = [p.strip().lower() for p in text.split(",") if p.strip()]
        try:
            if not parts or len(parts) > 2:
                raise ValueError(text)
            for p in parts:
                if p.endswith("ms"):
                    if seconds is not None:
                        raise ValueError(p)
                    seconds = float(p[:-2]) / 1000.0
                elif p.endswith("s"):
                    if seconds is not None:
                        raise ValueError(p)
                    seconds = float(p[:-1])
                else:
                    if examples is not None:
                        raise ValueError(p)
                    examples = int(p)
        except ValueError:
            raise UsageError(f"cannot read the search budget {text!r}",
                             expected="examples, seconds or both, e.g. 2000, 5s, 2000,5s",
                             found=text, hint="pass e.g. --search-budget 2000,5s") from None
        return cls(examples, seconds)

    def __str__(self) -> str:
        parts = [] if self.examples is None else [str(self.examples)]
        if self.seconds is not None:
            parts.append(f"{self.seconds:g}s")
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "seconds": self.seconds}


DEFAULT_BUDGET = SearchBudget()


@dataclass
class BrokenOutput:
    """One output of a counterexample that does not agree."""

    name: str
    kind: str
    expected: Any
    actual: Any
    abs_error: float | None
    tolerance: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "expected": self.expected,
                "actual": self.actual, "abs_error": to_jsonable(self.abs_error),
                "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BrokenOutput:
        err = d.get("abs_error")
        return cls(d["name"], d["kind"], d.get("expected"), d.get("actual"),
                   None if err is None else _num(err), dict(d.get("tolerance", {})))


@dataclass
class Counterexample:
    """The minimal input of one class of divergence, and what broke on it."""

    divergence_class: str
    stage: str
    inputs: dict[str, Any]
    changed: dict[str, Any]
    outputs: list[BrokenOutput]
    rows: int = 1
    onnx_error: str | None = None

    def summary(self) -> str:
        if self.onnx_error:
            what = f"onnxruntime failed: {self.onnx_error}"
        else:
            what = "; ".join(
                f"{o.name}: original {_short(o.expected)}, onnx {_short(o.actual)}"
                + ("" if o.abs_error is None else f" (abs err {o.abs_error:.3g})")
                for o in self.outputs)
        changed = ", ".join(f"{k}={_short(v)}" for k, v in self.changed.items()) or "none"
        return (f"{self.divergence_class} ({self.rows} row{'s' if self.rows != 1 else ''}): "
                f"{what}; changed {changed}")

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.divergence_class, "stage": self.stage, "rows": self.rows,
                "changed": self.changed, "inputs": self.inputs,
                "outputs": [o.to_dict() for o in self.outputs], "onnx_error": self.onnx_error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Counterexample:
        return cls(d["class"], d["stage"], dict(d.get("inputs", {})), dict(d.get("changed", {})),
                   [BrokenOutput.from_dict(o) for o in d.get("outputs", [])],
                   int(d.get("rows", 1)), d.get("onnx_error"))


@dataclass
class DomainExample:
    """Inputs outside the original model's domain: it rejects them or returns NaN."""

    stage: str
    reason: str
    count: int
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "reason": self.reason, "count": self.count,
                "inputs": self.inputs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DomainExample:
        return cls(d["stage"], d["reason"], int(d["count"]), list(d.get("inputs", [])))


@dataclass
class StageResult:
    name: str
    examples: int = 0
    seconds: float = 0.0
    divergent: int = 0
    domain: int = 0
    skipped: int = 0
    status: str = "done"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "examples": self.examples, "seconds": round(self.seconds, 4),
                "divergent": self.divergent, "domain": self.domain, "skipped": self.skipped,
                "status": self.status}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StageResult:
        return cls(d["name"], int(d.get("examples", 0)), float(d.get("seconds", 0.0)),
                   int(d.get("divergent", 0)), int(d.get("domain", 0)),
                   int(d.get("skipped", 0)), str(d.get("status", "done")))


@dataclass
class SearchResult:
    """What the parity search tried and found; ``bool(result)``: no divergence found."""

    seed: int
    budget: SearchBudget
    stages: list[StageResult] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    domain: list[DomainExample] = field(default_factory=list)
    seconds: float = 0.0
    reproduce: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.counterexamples

    def __bool__(self) -> bool:
        return self.passed

    @property
    def examples(self) -> int:
        return sum(s.examples for s in self.stages)

    @property
    def complete(self) -> bool:
        return all(s.status == "done" for s in self.stages)

    def summary(self) -> str:
        runs = ", ".join(f"{s.name} {s.examples}" + ("" if s.status == "done" else
                                                     f" ({s.status})") for s in self.stages)
        domain = sum(d.count for d in self.domain)
        found = (f"{len(self.counterexamples)} class"
                 f"{'es' if len(self.counterexamples) != 1 else ''} of divergence"
                 if self.counterexamples else "no divergence")
        return (f"{found} in {self.examples} examples ({runs}) in {self.seconds:.2f} s, "
                f"seed {self.seed}, budget {self.budget}; {domain} outside the model's domain")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "seed": self.seed, "budget": self.budget.to_dict(),
                "examples": self.examples, "seconds": round(self.seconds, 4),
                "complete": self.complete, "stages": [s.to_dict() for s in self.stages],
                "counterexamples": [c.to_dict() for c in self.counterexamples],
                "domain": [d.to_dict() for d in self.domain], "reproduce": self.reproduce,
                "notes": self.notes}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchResult:
        b = d.get("budget", {})
        return cls(int(d["seed"]), SearchBudget(b.get("examples"), b.get("seconds")),
                   [StageResult.from_dict(s) for s in d.get("stages", [])],
                   [Counterexample.from_dict(c) for c in d.get("counterexamples", [])],
                   [DomainExample.from_dict(x) for x in d.get("domain", [])],
                   float(d.get("seconds", 0.0)), str(d.get("reproduce", "")),
                   list(d.get("notes", [])))


def _num(v: Any) -> float:
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


def _short(v: Any, limit: int = 60) -> str:
    s = f"{v:.6g}" if isinstance(v, float) else str(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


# -- the data as columns ---------------------------------------------------------------


@dataclass
class Column:
    """One column of the prepared data (a DataFrame column, a matrix column, or a whole
    tensor input whose rows have ``shape``)."""

    name: str
    key: Any
    kind: str  # float, int, bool, text, category
    dtype: np.dtype[Any]
    shape: tuple[int, ...] = ()
    lo: float = 0.0
    hi: float = 0.0
    has_nan: bool = False
    categories: list[Any] = field(default_factory=list)
    observed: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def span(self) -> float:
        return self.hi - self.lo

    def within(self, v: Any) -> bool:
        if self.kind in ("float", "int"):
            arr = np.asarray(v, dtype=np.float64)
            finite = arr[np.isfinite(arr)]
            return bool(np.all((finite >= self.lo) & (finite <= self.hi)))
        if self.kind in ("text", "category"):
            return v in self.categories
        return True


class Table:
    """The prepared data (DataFrame, 2-D array, other array, or dict of arrays) seen as
    columns, with rows that can be copied and changed column by column."""

    def __init__(self, prepared: Any) -> None:
        self.prepared = prepared
        self.rows = n_rows(prepared)
        self.columns: list[Column] = []
        if is_dataframe(prepared):
            self.form = "frame"
            for i, c in enumerate(prepared.columns):
                self.columns.append(_column(str(c), c, prepared[c], series=True, position=i))
        elif isinstance(prepared, Mapping):
            self.form = "dict"
            for k, v in prepared.items():
                self.columns.append(_column(str(k), k, np.asarray(v)))
        else:
            arr = np.asarray(prepared)
            if arr.ndim == 2 and arr.dtype.kind in "fiub":
                self.form = "matrix"
                for j in range(arr.shape[1]):
                    self.columns.append(_column(f"x{j}", j, arr[:, j]))
            else:
                self.form = "array"
                self.columns.append(_column("input", None, arr))

    def build(self, base: np.ndarray, edits: list[dict[int, Any]]) -> Any:
        """Rows ``base`` of the data, with ``edits[i]`` (column index -> value; for a tensor
        column a whole row value) applied to row ``i``."""
        idx = np.asarray(base, dtype=np.int64)
        if self.form == "frame":
            import pandas as pd

            frame = self.prepared.iloc[idx].reset_index(drop=True).copy()
            for ci, col in enumerate(self.columns):
                rows = [i for i, e in enumerate(edits) if ci in e]
                if not rows:
                    continue
                values = [edits[i][ci] for i in rows]
                series = frame[col.key]
                if isinstance(series.dtype, pd.CategoricalDtype):
                    new = [v for v in dict.fromkeys(values)
                           if not _missing(v) and v not in series.cat.categories]
                    if new:
                        series = series.cat.add_categories(new)
                    series = series.copy()
                    for r, v in zip(rows, values):
                        series.iloc[r] = np.nan if _missing(v) else v
                    frame[col.key] = series
                else:
                    arr = series.to_numpy(copy=True)
                    if arr.dtype.kind in "iub" and any(
                            not isinstance(v, (int, np.integer, bool, np.bool_))
                            for v in values):
                        arr = arr.astype(np.float64)
                    arr[rows] = values
                    frame[col.key] = arr
            return frame
        if self.form == "dict":
            out = {}
            for ci, col in enumerate(self.columns):
                arr = np.array(np.asarray(self.prepared[col.key])[idx])
                for i, e in enumerate(edits):
                    if ci in e:
                        arr[i] = e[ci]
                out[col.key] = arr
            return out
        arr = np.array(np.asarray(self.prepared)[idx])
        for i, e in enumerate(edits):
            for ci, v in e.items():
                if self.form == "matrix":
                    arr[i, self.columns[ci].key] = v
                else:
                    arr[i] = v
        return arr

    def row_inputs(self, data: Any, row: int, limit: int = 40) -> dict[str, Any]:
        if self.form == "frame":
            rec = data.iloc[row]
            return {str(c.name): to_jsonable(rec[c.key]) for c in self.columns[:limit]}
        if self.form == "dict":
            return {c.name: _shown(np.asarray(data[c.key])[row]) for c in self.columns[:limit]}
        arr = np.asarray(data)
        if self.form == "matrix":
            return {c.name: to_jsonable(arr[row, c.key]) for c in self.columns[:limit]}
        return {"input": _shown(arr[row])}


def _shown(v: np.ndarray, limit: int = 16) -> Any:
    flat = np.asarray(v).reshape(-1)
    vals = to_jsonable(flat[:limit])
    return vals + (["…"] if flat.size > limit else [])


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _column(name: str, key: Any, values: Any, *, series: bool = False,
            position: int = 0) -> Column:
    if series:
        import pandas as pd

        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = list(dtype.categories)
            return Column(name, key, "category", np.dtype(object), categories=cats,
                          has_nan=bool(values.isna().any()))
        arr = values.to_numpy()
        if arr.dtype.kind in "OUS" or pd.api.types.is_string_dtype(dtype):
            cats = [v for v in dict.fromkeys(arr.tolist()) if not _missing(v)]
            return Column(name, key, "text", np.dtype(object), categories=cats[:200],
                          has_nan=any(_missing(v) for v in arr.tolist()))
        values = arr
    arr = np.asarray(values)
    shape = tuple(arr.shape[1:])
    if arr.dtype.kind == "b":
        return Column(name, key, "bool", arr.dtype, shape)
    if arr.dtype.kind in "OUS":
        cats = [v for v in dict.fromkeys(arr.reshape(-1).tolist()) if not _missing(v)]
        return Column(name, key, "text", np.dtype(object), shape, categories=cats[:200])
    kind = "int" if arr.dtype.kind in "iu" else "float"
    with np.errstate(invalid="ignore"):
        flat = arr.reshape(-1).astype(np.float64)
    finite = flat[np.isfinite(flat)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    rng = np.random.default_rng(position)
    observed = np.unique(finite)
    if observed.size > 64:
        observed = np.sort(rng.choice(observed, 64, replace=False))
    return Column(name, key, kind, arr.dtype, shape, lo, hi, bool(np.isnan(flat).any()),
                  observed=observed)


# -- candidate values ------------------------------------------------------------------


def edge_values(col: Column) -> list[tuple[str, Any]]:
    """(label, value) edge cases for one column, valid for its dtype."""
    if col.kind == "bool":
        return [("True", True), ("False", False)]
    if col.kind in ("text", "category"):
        out: list[tuple[str, Any]] = [("unseen category", UNSEEN), ("empty category", "")]
        if col.kind == "text":
            out.append(("missing (None)", None))
        return out
    if col.kind == "int":
        info = np.iinfo(col.dtype)
        lo, hi = int(col.lo), int(col.hi)
        ints = [("0", 0), ("observed min", lo), ("observed max", hi),
                ("below the observed range", lo - 1), ("above the observed range", hi + 1)]
        if not col.shape:  # a tensor of integers holds ids, masks, indices: kept near
            # the observed values (one beyond them already leaves an embedding's table)
            ints += [("2**31", 2**31), ("-2**31", -(2**31)), ("2**53 + 1", 2**53 + 1)]
        return [(k, v) for k, v in ints if info.min <= v <= info.max]
    ftype = col.dtype.type if col.dtype.kind == "f" else np.float64
    fi = np.finfo(ftype)
    big = 1e30 if fi.bits <= 32 else 1e15
    span = col.span if col.span > 0 else max(1.0, abs(col.hi))
    vals = [("NaN", math.nan), ("+inf", math.inf), ("-inf", -math.inf), ("0", 0.0),
            ("-0.0", -0.0), ("largest finite", float(fi.max)),
            ("smallest finite", float(-fi.max)), ("smallest normal", float(fi.tiny)),
            ("smallest subnormal", float(fi.smallest_subnormal)),
            ("negative subnormal", -float(fi.smallest_subnormal)),
            ("huge magnitude", big), ("huge negative magnitude", -big),
            ("observed min", col.lo), ("observed max", col.hi),
            ("below the observed range", col.lo - span), ("above the observed range",
                                                          col.hi + span)]
    return [(k, float(ftype(v))) for k, v in vals]


def neighbours(t: float) -> list[float]:
    """A threshold, its float64 neighbours, and its float32 value with its neighbours."""
    with np.errstate(over="ignore"):
        f32 = np.float32(t)
        out = {t, float(np.nextafter(t, -np.inf)), float(np.nextafter(t, np.inf)), float(f32),
               float(np.nextafter(f32, np.float32(-np.inf))),
               float(np.nextafter(f32, np.float32(np.inf)))}
    return sorted(v for v in out if math.isfinite(v))


def _random_value(col: Column, rng: np.random.Generator) -> Any:
    """One value drawn for the column: within or up to half a span beyond the observed
    range (or category set)."""
    u = rng.random()
    if col.kind == "bool":
        return bool(rng.random() < 0.5)
    if col.kind in ("text", "category"):
        if u < 0.03 or not col.categories:
            return UNSEEN
        return col.categories[int(rng.integers(len(col.categories)))]
    size = col.shape
    if col.kind == "int":
        pad = 0 if col.shape else max(1, int(col.span // 2))
        drawn = rng.integers(int(col.lo) - pad, int(col.hi) + pad + 1, size=size)
        return drawn.astype(col.dtype) if size else int(drawn)
    span = col.span if col.span > 0 else max(1.0, abs(col.hi))
    v: Any
    if u < 0.2 and col.observed.size:
        v = rng.choice(col.observed, size=size)
    elif u < 0.3 and col.has_nan:
        v = np.full(size, np.nan)
    else:
        v = rng.uniform(col.lo - span / 2, col.hi + span / 2, size=size)
    return np.asarray(v, dtype=col.dtype) if size else float(col.dtype.type(v))


# -- evaluating candidates -------------------------------------------------------------


@dataclass
class _Outcome:
    status: str  # agree, diverge, domain, skipped
    reason: str = ""
    broken: list[BrokenOutput] = field(default_factory=list)
    onnx_error: str | None = None
    rejected: bool = False  # the original raised (rather than returned NaN)


@dataclass
class Candidate:
    base: int
    edits: dict[int, Any]
    divergence_class: str


class Searcher:
    """Runs candidates through both models and records what they find."""

    def __init__(self, predict: Callable[[Any], Mapping[str, Any]], target: Any,
                 prepared: Any, pairs: list[tuple[str, str]], tolerances: Mapping[str, Any],
                 split_points: Mapping[int, np.ndarray], seed: int, budget: SearchBudget,
                 reproduce: str) -> None:
        self.predict, self.target = predict, target
        self.split_points = {int(k): np.asarray(v, dtype=np.float64)
                             for k, v in split_points.items()}
        self.table = Table(prepared)
        self.pairs = pairs
        self.kinds = {o.name: o.kind or ref for ref, o in
                      ((r, next(o for o in target.outputs if o.name == n)) for r, n in pairs)}
        self.tolerances = tolerances
        self.seed = seed
        self.budget = budget
        self.result = SearchResult(seed, budget, reproduce=reproduce)
        self.classes: dict[str, Counterexample] = {}
        self.domains: dict[tuple[str, str], DomainExample] = {}
        self.start = time.perf_counter()
        self.used = 0
        self.time_share = 1.0
        self.rejected: dict[tuple[int, str], str] = {}
        self.typical = self._typical_rows()

    # -- budget -------------------------------------------------------------------------

    def time_left(self) -> bool:
        """Whether the running stage may go on: each stage may use the time budget up to
        its cumulative share (:data:`TIME_SHARE`), so that time one stage leaves unused
        goes to the next, and a slow stage cannot starve the others."""
        return (self.budget.seconds is None
                or time.perf_counter() - self.start < self.budget.seconds * self.time_share)

    def examples_left(self) -> int:
        if self.budget.examples is None:
            return 10**9
        return max(0, self.budget.examples - self.used)

    def stage_cap(self, stage: str) -> int:
        if self.budget.examples is None:
            return 50_000
        return max(1, int(self.budget.examples * STAGE_SHARE[stage]))

    def _typical_rows(self) -> list[int]:
        """Rows of the user's data the original model accepts without NaN outputs."""
        n = self.table.rows
        rng = np.random.default_rng(self.seed)
        picks = [int(i) for i in rng.permutation(n)[: TYPICAL_ROWS * 4]]
        good = []
        for i in picks:
            if self._evaluate([Candidate(i, {}, "")])[0].status == "agree":
                good.append(i)
            if len(good) >= TYPICAL_ROWS:
                break
        return good or picks[:1]

    # -- evaluation ---------------------------------------------------------------------

    def _evaluate(self, cands: list[Candidate]) -> list[_Outcome]:
        """Outcomes of candidates; a value the original model rejected alone in a typical
        row is taken as rejected wherever it appears, without running it again."""
        known: dict[int, _Outcome] = {}
        for i, c in enumerate(cands):
            for ci, v in c.edits.items():
                reason = self.rejected.get((ci, _value_key(v)))
                if reason is not None:
                    known[i] = _Outcome("domain", reason)
                    break
        todo = [c for i, c in enumerate(cands) if i not in known]
        done = iter(self._run(todo) if todo else [])
        out = [known[i] if i in known else next(done) for i in range(len(cands))]
        for c, o in zip(cands, out):
            if o.status == "domain" and o.rejected and len(c.edits) == 1:
                ((ci, v),) = c.edits.items()
                self.rejected[(ci, _value_key(v))] = o.reason
        return out

    def _run(self, cands: list[Candidate]) -> list[_Outcome]:
        # extreme inputs are deliberate here: the warnings they raise (overflow in a cast,
        # in a sum) are the point, not news
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return self._run_quietly(cands)

    def _run_quietly(self, cands: list[Candidate]) -> list[_Outcome]:
        from baton.errors import BatonError
        from baton.schema import to_feeds

        data = self.table.build(np.asarray([c.base for c in cands]), [c.edits for c in cands])
        try:
            feeds = to_feeds(data, self.target.inputs)
        except BatonError as exc:
            if len(cands) > 1:
                return self._split(cands)
            return [_Outcome("skipped", f"not a valid input for the ONNX model: "
                             f"{str(exc).splitlines()[0][:160]}")]
        try:
            expected = self.predict(data)
        except Exception as exc:  # noqa: BLE001 - the original may raise anything
            if len(cands) > 1:
                return self._split(cands)
            cause = exc.__cause__ or exc
            return [_Outcome("domain", "rejected by the original model: "
                             f"{type(cause).__name__}: {str(cause).splitlines()[0][:160]}"
                             if str(cause) else type(cause).__name__, rejected=True)]
        try:
            actual = self.target.run(feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
            if len(cands) > 1:
                return self._split(cands)
            text = str(exc).strip().splitlines()
            return [_Outcome("diverge", onnx_error=(text[0][:200] if text else
                                                    type(exc).__name__))]
        return self._judge(len(cands), expected, actual)

    def _split(self, cands: list[Candidate]) -> list[_Outcome]:
        mid = len(cands) // 2
        return self._run(cands[:mid]) + self._run(cands[mid:])

    def _judge(self, n: int, expected: Mapping[str, Any], actual: Mapping[str, Any]
               ) -> list[_Outcome]:
        from baton.parity.compare import _as_array, _row_view, _shown, rows_agree

        outcomes = [_Outcome("agree") for _ in range(n)]
        for ref, name in self.pairs:
            kind = self.kinds[name]
            tol = self.tolerances[name]
            exp, act = np.asarray(expected[ref]), _as_array(actual[name])
            ok = rows_agree(kind, exp, act, tol)
            if ok.all():
                continue
            e = _row_view(exp) if exp.ndim else exp.reshape(1, 1)
            a = _row_view(act) if act.ndim else act.reshape(1, 1)
            for r in np.flatnonzero(~ok):
                out = outcomes[r]
                er = e[r] if len(e) == n else None
                ar = a[r] if len(a) == n else None
                if er is not None and er.dtype.kind == "f" and np.isnan(er).any():
                    if out.status != "diverge":
                        out.status = "domain"
                        out.reason = f"the original model returns NaN ({name})"
                    continue
                err = None
                if er is not None and ar is not None and er.dtype.kind in "fiub" and \
                        ar.dtype.kind in "fiub" and kind != "label":
                    with np.errstate(invalid="ignore", over="ignore"):
                        d = np.abs(ar.astype(np.float64) - er.astype(np.float64))
                    err = float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if d.size else None
                out.status = "diverge"
                out.broken.append(BrokenOutput(
                    name, kind, _shown(er) if er is not None else None,
                    _shown(ar) if ar is not None else None, err, tol.to_dict()))
        return outcomes

    def run_batch(self, stage: StageResult, cands: list[Candidate]) -> None:
        for i in range(0, len(cands), BATCH):
            if not self.time_left():
                stage.status = "stopped by the time budget"
                return
            chunk = cands[i:i + BATCH]
            outcomes = self._evaluate(chunk)
            stage.examples += len(chunk)
            self.used += len(chunk)
            built: list[Any] = []

            def inputs(j: int, chunk: list[Candidate] = chunk, built: list[Any] = built
                       ) -> dict[str, Any]:
                if not built:
                    built.append(self.table.build(np.asarray([x.base for x in chunk]),
                                                  [x.edits for x in chunk]))
                return self.table.row_inputs(built[0], j)

            for j, (c, o) in enumerate(zip(chunk, outcomes)):
                if o.status != "agree":
                    self.record(stage, c, o, functools.partial(inputs, j))

    def record(self, stage: StageResult, cand: Candidate, outcome: _Outcome,
               inputs: Callable[[], dict[str, Any]]) -> None:
        if outcome.status == "skipped":
            stage.skipped += 1
            return
        if outcome.status == "domain":
            stage.domain += 1
            key = (stage.name, outcome.reason)
            dom = self.domains.setdefault(key, DomainExample(stage.name, outcome.reason, 0))
            dom.count += 1
            if len(dom.inputs) < DOMAIN_EXAMPLES:
                dom.inputs.append(self._changed(cand))
            return
        stage.divergent += 1
        cls = self.classes.get(cand.divergence_class)
        if cls is not None:
            cls.rows += 1
            return
        self.classes[cand.divergence_class] = Counterexample(
            cand.divergence_class, stage.name, inputs(), self._changed(cand),
            outcome.broken, onnx_error=outcome.onnx_error)

    def _changed(self, cand: Candidate) -> dict[str, Any]:
        out = {self.table.columns[ci].name: _jsonable_value(v) for ci, v in cand.edits.items()}
        return out or {"(typical row)": cand.base}

    # -- stages -------------------------------------------------------------------------

    def run(self) -> SearchResult:
        for name in STAGES:
            stage = StageResult(name)
            t0 = time.perf_counter()
            self.time_share = TIME_SHARE[name]
            if not self.time_left():
                stage.status = "not run: time budget spent"
            elif not self.examples_left():
                stage.status = "not run: example budget spent"
            else:
                getattr(self, f"_stage_{name}")(stage)
            stage.seconds = time.perf_counter() - t0
            self.result.stages.append(stage)
        self.result.counterexamples = list(self.classes.values())
        self.result.domain = list(self.domains.values())
        self.result.seconds = time.perf_counter() - self.start
        return self.result

    def _take(self, cands: list[Candidate], cap: int) -> list[Candidate]:
        cap = min(cap, self.examples_left())
        if len(cands) <= cap:
            return cands
        keep = np.random.default_rng(self.seed).choice(len(cands), cap, replace=False)
        return [cands[i] for i in sorted(keep)]

    def _stage_edge(self, stage: StageResult) -> None:
        cands: list[Candidate] = []
        base = self.typical
        order = []
        for ci, col in enumerate(self.table.columns):
            for k, (label, value) in enumerate(edge_values(col)):
                where = _where(col, value)
                row_value = value if not col.shape else np.full(col.shape, value,
                                                                dtype=col.dtype)
                order.append((k, ci, Candidate(base[k % len(base)], {ci: row_value},
                                               f"edge: {label} in {col.name} ({where})")))
        # one kind of value after another: the rows an original rejects (inf, 1e308) lie
        # together, so a rejected batch is split into few runs
        cands = [c for _, _, c in sorted(order, key=lambda t: (t[0], t[1]))]
        for label, value in (("NaN", math.nan), ("0", 0.0)):
            edits = {ci: (value if not c.shape else np.full(c.shape, value, dtype=c.dtype))
                     for ci, c in enumerate(self.table.columns)
                     if c.kind == "float" or (c.kind == "int" and value == 0.0 and not c.shape)}
            if edits:
                cands.append(Candidate(base[0], {ci: (int(v) if self.table.columns[ci].kind
                                                      == "int" else v)
                                                 for ci, v in edits.items()},
                                       f"edge: {label} in every numeric column"))
        self.run_batch(stage, self._take(cands, self.stage_cap("edge")))
        if self.examples_left():  # a batch of one row (always: it is one run)
            outcome = self._evaluate([Candidate(base[0], {}, "")])[0]
            stage.examples += 1
            self.used += 1
            if outcome.status != "agree":
                self.record(stage, Candidate(base[0], {}, "edge: a batch of 1 row"), outcome,
                            lambda: self.table.row_inputs(self.table.build(
                                np.asarray([base[0]]), [{}]), 0))

    def _stage_thresholds(self, stage: StageResult) -> None:
        points = self.split_points
        if not points:
            stage.status = "not applicable: no split thresholds baton reads in this model"
            return
        cols = self.table.columns
        by_col: dict[int, np.ndarray] = {}
        for feature, values in points.items():
            if self.table.form in ("frame", "matrix") and 0 <= int(feature) < len(cols) \
                    and cols[int(feature)].kind in ("float", "int") and not cols[int(
                        feature)].shape:
                by_col[int(feature)] = np.asarray(values, dtype=np.float64)
        if not by_col:
            stage.status = "not applicable: no split thresholds on numeric columns"
            return
        cands = []
        for ci, values in by_col.items():
            col = cols[ci]
            for t in values:
                near = neighbours(float(t))
                if col.kind == "int":  # the integers on both sides of the threshold
                    near = sorted({float(math.floor(t)), float(math.ceil(t)),
                                   float(math.floor(t)) + 1.0} & {v for v in near} | {
                        float(math.floor(t)), float(math.floor(t)) + 1.0})
                for k, v in enumerate(near):
                    if col.kind == "int":
                        v = int(v)
                    cands.append(Candidate(self.typical[k % len(self.typical)], {ci: v},
                                           f"split threshold of {col.name} ({_where(col, v)})"))
        self.run_batch(stage, self._take(cands, self.stage_cap("thresholds")))

    def _stage_samples(self, stage: StageResult) -> None:
        rng = np.random.default_rng(self.seed + 1)
        reserve = 0 if self.budget.examples is None else self.stage_cap("property")
        n = max(1, min(self.examples_left() - reserve, 50_000))
        cols = self.table.columns
        cands = []
        for _ in range(n):
            edits = {ci: _random_value(c, rng) for ci, c in enumerate(cols)}
            beyond = not all(c.within(edits[ci]) for ci, c in enumerate(cols))
            cands.append(Candidate(self.typical[0], edits, "samples "
                                   + ("beyond the observed range" if beyond
                                      else "within the observed range")))
        self.run_batch(stage, cands)

    def _stage_property(self, stage: StageResult) -> None:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hseed
        from hypothesis import strategies as st

        n = min(self.examples_left(), self.stage_cap("property"))
        cols = self.table.columns
        keep = object()
        strategies = [st.one_of(st.just(keep), _strategy(c, self._points(ci)))
                      for ci, c in enumerate(cols)]
        row = st.tuples(st.sampled_from(self.typical), *strategies)
        seen: dict[str, _Outcome] = {}
        failing: list[tuple[Candidate, _Outcome]] = []

        class _Diverges(Exception):
            pass

        def test(values: list[tuple[Any, ...]]) -> None:
            # a few rows per example, evaluated as one batch; shrinking leaves one row
            cands, keys = [], []
            for base, *vals in values:
                edits = {ci: v for ci, v in enumerate(vals) if v is not keep}
                cands.append(Candidate(base, edits, "property search (shrunk)"))
                keys.append(repr((base, sorted((k, repr(v)) for k, v in edits.items()))))
            new = [i for i, k in enumerate(keys) if k not in seen]
            new = list({keys[i]: i for i in new}.values())
            if new and self.time_left() and stage.examples < n:
                new = new[: n - stage.examples]
                for i, o in zip(new, self._evaluate([cands[i] for i in new])):
                    seen[keys[i]] = o
                    stage.examples += 1
                    self.used += 1
                    if o.status in ("domain", "skipped"):
                        self.record(stage, cands[i], o, dict)
            for c, k in zip(cands, keys):
                found = seen.get(k)
                if found is not None and found.status == "diverge":
                    failing.append((c, found))
                    raise _Diverges()

        runner = settings(max_examples=max(1, n), database=None, deadline=None,
                          derandomize=False, print_blob=False, report_multiple_bugs=False,
                          phases=[Phase.generate, Phase.shrink],
                          suppress_health_check=list(HealthCheck))(
            given(st.lists(row, min_size=1, max_size=PROPERTY_ROWS))(test))
        runner = hseed(self.seed)(runner)
        try:
            runner()
        except _Diverges:
            pass
        if failing:
            cand, outcome = failing[-1]
            where = all(cols[ci].within(v) for ci, v in cand.edits.items())
            cand.divergence_class = ("property search (shrunk, "
                                     + ("within" if where else "beyond") + " the observed range)")
            data = self.table.build(np.asarray([cand.base]), [cand.edits])
            stage.divergent += 1
            self.classes[cand.divergence_class] = Counterexample(
                cand.divergence_class, stage.name, self.table.row_inputs(data, 0),
                self._changed(cand), outcome.broken, onnx_error=outcome.onnx_error)
        if not self.time_left() and stage.examples < n and not failing:
            stage.status = "stopped by the time budget"

    def _points(self, ci: int) -> list[float]:
        if self.table.form not in ("frame", "matrix"):
            return []
        values = self.split_points.get(ci)
        if values is None:
            return []
        return [v for t in np.asarray(values)[:50] for v in neighbours(float(t))]


def _where(col: Column, value: Any) -> str:
    if col.kind not in ("float", "int", "text", "category"):
        return "-"
    if _missing(value) or (isinstance(value, np.ndarray) and value.dtype.kind == "f"
                           and bool(np.isnan(value).all())):
        return "missing value"
    try:
        return "within the observed range" if col.within(value) else "beyond the observed range"
    except (TypeError, ValueError):
        return "-"


def _value_key(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"{v.dtype}{v.shape}{v.tobytes().hex()}"
    return f"{type(v).__name__}:{v!r}"


def _jsonable_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return _shown(v)
    return to_jsonable(v)


def _strategy(col: Column, points: list[float]) -> Any:
    """A hypothesis strategy for one column's value in a row."""
    from hypothesis import strategies as st

    if col.kind == "bool":
        return st.booleans()
    if col.kind in ("text", "category"):
        return st.sampled_from(list(col.categories) + ["", UNSEEN])
    # the edge values are the edge stage's: here they would mostly make rows the original
    # rejects (inf, 1e308), each costing a run of its own to find
    if col.kind == "int":
        pad = 0 if col.shape else max(1, int(col.span // 2))
        elem = st.integers(int(col.lo) - pad, int(col.hi) + pad)
    else:
        span = col.span if col.span > 0 else max(1.0, abs(col.hi))
        width: Literal[32, 64] = 32 if col.dtype.itemsize == 4 else 64
        lo, hi = col.lo - span / 2, col.hi + span / 2
        if width == 32:  # bounds hypothesis accepts for float32 values
            lo, hi = float(np.float32(lo)), float(np.float32(hi))
        choices = [st.floats(lo, hi, width=width)]
        if col.has_nan:
            choices.append(st.just(math.nan))
        if col.observed.size:
            choices.insert(0, st.sampled_from([float(v) for v in col.observed]))
        if points:
            choices.append(st.sampled_from(points))
        elem = st.one_of(*choices)
    if not col.shape:
        return elem
    size = int(np.prod(col.shape))
    dtype = col.dtype

    def fill(parts: tuple[float | int, list[tuple[int, Any]]]) -> np.ndarray:
        base, overrides = parts
        arr = np.full(size, base, dtype=dtype)
        for i, v in overrides:
            arr[i] = v
        return arr.reshape(col.shape)

    return st.tuples(elem, st.lists(st.tuples(st.integers(0, size - 1), elem),
                                    max_size=4)).map(fill)


def search(predict: Callable[[Any], Mapping[str, Any]], target: Any, prepared: Any,
           pairs: list[tuple[str, str]], tolerances: Mapping[str, Any], *,
           split_points: Mapping[int, np.ndarray] | None = None, seed: int = 0,
           budget: SearchBudget | None = None, reproduce: str = "") -> SearchResult:
    """Search for inputs where ``target`` (the converted model, a
    :class:`~baton.parity.check.Target`) and ``predict`` (the original model on prepared
    data) disagree.

    ``prepared``: the user's data as the converter's ``prepare`` returns it (for the
    observed ranges, categories and typical rows); ``pairs``: (original output, ONNX
    output); ``tolerances``: per ONNX output; ``split_points``: the original model's split
    thresholds by the position of their column in ``prepared`` (a converter's optional
    ``split_points(model)`` hook).
    """
    if n_rows(prepared) == 0:
        result = SearchResult(seed, budget or DEFAULT_BUDGET, reproduce=reproduce)
        result.notes.append("not run: the data has no rows to take typical values from")
        return result
    return Searcher(predict, target, prepared, pairs, tolerances, split_points or {}, seed,
                    budget or DEFAULT_BUDGET, reproduce).run()

