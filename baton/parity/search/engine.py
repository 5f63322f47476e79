"""The search's engine: it runs the stages (:data:`~baton.parity.search.stages.SEARCH_STAGES`)
in turn within the budget, evaluates their candidate rows through both models in batches
(splitting a batch the original rejects until the rejected rows are found), and records
what each finds: divergences by class, inputs outside the original model's domain.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baton.envelope import Envelope
from baton.errors import first_line
from baton.masks import apply_masks
from baton.parity.search.budget import (
    BATCH,
    DEFAULT_BUDGET,
    DOMAIN_EXAMPLES,
    TYPICAL_ROWS,
    SearchBudget,
)
from baton.parity.search.stages import SEARCH_STAGES, Stage
from baton.parity.search.tables import Candidate, Table, _jsonable_value, _value_key
from baton.results.search import (
    BrokenOutput,
    Counterexample,
    DomainExample,
    SearchResult,
    StageResult,
)
from baton.schema import n_rows

# -- evaluating candidates -------------------------------------------------------------


@dataclass
class _Outcome:
    status: str  # agree, diverge, domain, skipped
    reason: str = ""
    broken: list[BrokenOutput] = field(default_factory=list)
    onnx_error: str | None = None
    rejected: bool = False  # the original raised (rather than returned NaN)


class Searcher:
    """Runs candidates through both models and records what they find."""

    def __init__(self, predict: Callable[[Any], Mapping[str, Any]], target: Any,
                 prepared: Any, pairs: list[tuple[str, str]], tolerances: Mapping[str, Any],
                 split_points: Mapping[int, np.ndarray], seed: int, budget: SearchBudget,
                 reproduce: str, *, stages: tuple[Stage, ...] = SEARCH_STAGES,
                 envelope: Envelope | None = None, scope: str = "envelope",
                 strict: bool = False) -> None:
        self.predict, self.target = predict, target
        #: the stages, in the order they run, and the share of the examples each may use
        self.stages = stages
        self.shares = {s.name: s.share for s in stages if s.share is not None}
        self.split_points = {int(k): np.asarray(v, dtype=np.float64)
                             for k, v in split_points.items()}
        self.table = Table(prepared)
        #: the region of inputs the proof covers; each divergence is judged inside or
        #: outside it, and the stages draw their values mostly inside it
        self.envelope = envelope or Envelope.observe(prepared)
        self.table.bound(self.envelope)
        self.masks = self.envelope.masks()
        self.pairs = pairs
        self.kinds = {o.name: o.kind or ref for ref, o in
                      ((r, next(o for o in target.outputs if o.name == n)) for r, n in pairs)}
        self.tolerances = tolerances
        self.seed = seed
        self.budget = budget
        self.result = SearchResult(seed, budget, reproduce=reproduce, scope=scope,
                                   strict=strict, envelope=self.envelope.to_dict())
        self.classes: dict[str, Counterexample] = {}
        self.domains: dict[tuple[str, str], DomainExample] = {}
        self.start = time.perf_counter()
        self.used = 0
        self.rejected: dict[tuple[int, str], str] = {}
        self.typical = self._typical_rows()

    # -- budget -------------------------------------------------------------------------

    def time_left(self) -> bool:
        """Whether the search is still within its time cap. With an example budget the
        cap is a safety net only: which examples run depends on the seed and the budget,
        never on how fast the machine is, and a search the cap cuts short says so."""
        return (self.budget.seconds is None
                or time.perf_counter() - self.start < self.budget.seconds)

    def examples_left(self) -> int:
        if self.budget.examples is None:
            return 10**9
        return max(0, self.budget.examples - self.used)

    def stage_cap(self, stage: str) -> int:
        if self.budget.examples is None:
            return 50_000
        return max(1, int(self.budget.examples * self.shares[stage]))

    def reserved_after(self, stage: Stage) -> int:
        """The examples held back for the stages after ``stage`` that have a share (for a
        stage without one, which gets what the others leave)."""
        later = self.stages[self.stages.index(stage) + 1:]
        return sum(self.stage_cap(s.name) for s in later if s.share is not None)

    def _typical_rows(self) -> list[int]:
        """Rows of the user's data the original model accepts without NaN outputs."""
        n = self.table.rows
        rng = np.random.default_rng(self.seed)
        picks = [int(i) for i in rng.permutation(n)[: TYPICAL_ROWS * 4]]
        good = []
        for i in picks:
            if self.evaluate([Candidate(i, {}, "")])[0].status == "agree":
                good.append(i)
            if len(good) >= TYPICAL_ROWS:
                break
        return good or picks[:1]

    # -- evaluation ---------------------------------------------------------------------

    def evaluate(self, cands: list[Candidate]) -> list[_Outcome]:
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
                             f"{first_line(exc, 160)}")]
        try:
            expected = self.predict(data)
        except Exception as exc:  # noqa: BLE001 - the original may raise anything
            if len(cands) > 1:
                return self._split(cands)
            cause = exc.__cause__ or exc
            return [_Outcome("domain", "rejected by the original model: "
                             + first_line(cause, 160, with_type=True), rejected=True)]
        try:
            actual = self.target.run(feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
            if len(cands) > 1:
                return self._split(cands)
            return [_Outcome("diverge", onnx_error=first_line(exc, 200))]
        return self._judge(len(cands), expected, actual, data)

    def _split(self, cands: list[Candidate]) -> list[_Outcome]:
        mid = len(cands) // 2
        return self._run(cands[:mid]) + self._run(cands[mid:])

    def _judge(self, n: int, expected: Mapping[str, Any], actual: Mapping[str, Any],
               data: Any = None) -> list[_Outcome]:
        from baton.parity.compare import _as_array, _row_view, _shown, rows_agree

        # outputs aligned with a mask are compared where it sets a position
        expected, actual, _ = apply_masks(self.masks, data, expected, actual, self.pairs)
        outcomes = [_Outcome("agree") for _ in range(n)]
        for ref, name in self.pairs:
            kind = self.kinds[name]
            tol = self.tolerances[name]
            exp, act = np.asarray(expected[ref]), _as_array(actual[name])
            ok = rows_agree(kind, exp, act, tol)
            if len(ok) != n:  # a shape that is not one row per candidate: none agrees
                ok = np.zeros(n, dtype=bool)
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
                stage.status = "stopped by the time cap"
                return
            chunk = cands[i:i + BATCH]
            outcomes = self.evaluate(chunk)
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
                dom.inputs.append(self.changed(cand))
            return
        stage.divergent += 1
        outside = self.outside(cand)
        name = cand.divergence_class + ("" if not outside else " [outside the envelope]")
        cls = self.classes.get(name)
        if cls is not None:
            cls.rows += 1
            return
        self.classes[name] = Counterexample(
            cand.divergence_class, stage.name, inputs(), self.changed(cand),
            outcome.broken, onnx_error=outcome.onnx_error, in_envelope=not outside,
            outside=outside)

    def outside(self, cand: Candidate) -> list[str]:
        """Why the candidate's row lies outside the envelope (empty: inside): its changed
        values and the user's values it keeps."""
        return self.envelope.outside(self.table.row_values(cand.base, cand.edits))

    def changed(self, cand: Candidate) -> dict[str, Any]:
        out = {self.table.columns[ci].name: _jsonable_value(v) for ci, v in cand.edits.items()}
        return out or {"(typical row)": cand.base}

    # -- the stages -----------------------------------------------------------------------

    def run(self) -> SearchResult:
        for strategy in self.stages:
            stage = StageResult(strategy.name)
            t0 = time.perf_counter()
            if not self.time_left():
                stage.status = "not run: time cap reached"
            elif not self.examples_left():
                stage.status = "not run: example budget spent"
            else:
                strategy.run(self, stage)
            stage.seconds = time.perf_counter() - t0
            self.result.stages.append(stage)
        self.result.counterexamples = list(self.classes.values())
        self.result.domain = list(self.domains.values())
        self.result.seconds = time.perf_counter() - self.start
        if not self.result.complete:
            self.result.notes.append(str(self.result.incomplete))
        return self.result

    def take(self, cands: list[Candidate], cap: int) -> list[Candidate]:
        cap = min(cap, self.examples_left())
        if len(cands) <= cap:
            return cands
        keep = np.random.default_rng(self.seed).choice(len(cands), cap, replace=False)
        return [cands[i] for i in sorted(keep)]


def search(predict: Callable[[Any], Mapping[str, Any]], target: Any, prepared: Any,
           pairs: list[tuple[str, str]], tolerances: Mapping[str, Any], *,
           split_points: Mapping[int, np.ndarray] | None = None, seed: int = 0,
           budget: SearchBudget | None = None, reproduce: str = "",
           envelope: Envelope | None = None, scope: str = "envelope", strict: bool = False
           ) -> SearchResult:
    """Search for inputs where ``target`` (the converted model, a
    :class:`~baton.parity.check.Target`) and ``predict`` (the original model on prepared
    data) disagree.

    ``prepared``: the user's data as the converter's ``prepare`` returns it (for the
    observed ranges, categories and typical rows); ``pairs``: (original output, ONNX
    output); ``tolerances``: per ONNX output; ``split_points``: the original model's split
    thresholds by the position of their column in ``prepared`` (a converter's optional
    ``split_points(model)`` hook); ``envelope``: the region of inputs the proof covers
    (default: observed from ``prepared``), ``scope``: which divergences fail (those inside
    it, or ``"all"``), ``strict``: a search the time cap cut short fails too.
    """
    if n_rows(prepared) == 0:
        result = SearchResult(seed, budget or DEFAULT_BUDGET, reproduce=reproduce, scope=scope,
                              strict=strict)
        result.notes.append("not run: the data has no rows to take typical values from")
        return result
    return Searcher(predict, target, prepared, pairs, tolerances, split_points or {}, seed,
                    budget or DEFAULT_BUDGET, reproduce, envelope=envelope, scope=scope,
                    strict=strict).run()

