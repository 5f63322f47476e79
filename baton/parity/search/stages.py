"""The search's stages, as a chain of strategies the engine runs in order.

Each stage is a small object with its ``name`` (as results and reports show it), its
``share`` of the example budget (the time is a cap on the whole search, never a stage's
share: what runs depends on the seed and the example budget alone), and a
``run(searcher, stage)`` method that makes candidate rows and hands them to the
:class:`~baton.parity.search.engine.Searcher`, which evaluates and records them in
``stage`` (a :class:`~baton.results.search.StageResult`). :data:`SEARCH_STAGES` is the
chain; the engine iterates over it rather than naming the stages itself.

numpy only at load time; hypothesis is imported when the property stage runs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from baton.parity.search.budget import PROPERTY_ROWS
from baton.parity.search.tables import Candidate, _where
from baton.parity.search.values import _random_value, _strategy, edge_values, neighbours
from baton.results.search import Counterexample, StageResult

if TYPE_CHECKING:
    from baton.parity.search.engine import Searcher, _Outcome


class Stage(ABC):
    """One stage of the search: what it is called, how much of the budget it may use,
    and how it makes its candidates."""

    #: the stage's name, as results and reports show it
    name: ClassVar[str]
    #: the most of the example budget the stage may use; ``None``: what the stages with
    #: a share leave (the stages after it keep theirs)
    share: ClassVar[float | None] = None

    @abstractmethod
    def run(self, searcher: Searcher, stage: StageResult) -> None:
        """Make this stage's candidates and have ``searcher`` evaluate and record them in
        ``stage`` (set ``stage.status`` when the stage does not apply or stops early)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EdgeStage(Stage):
    """Per column (or tensor input), NaN, ±inf, 0 and -0.0, the largest and smallest finite
    values, subnormals, huge magnitudes, the observed extremes and just beyond them, unseen
    and empty categories, in otherwise typical rows; an all-NaN and an all-zero row; a
    typical row alone (a batch of 1)."""

    name = "edge"
    share = 0.25

    def run(self, searcher: Searcher, stage: StageResult) -> None:
        cands: list[Candidate] = []
        base = searcher.typical
        order = []
        for ci, col in enumerate(searcher.table.columns):
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
                     for ci, c in enumerate(searcher.table.columns)
                     if c.kind == "float" or (c.kind == "int" and value == 0.0 and not c.shape)}
            if edits:
                cands.append(Candidate(base[0], {ci: (int(v) if searcher.table.columns[ci].kind
                                                      == "int" else v)
                                                 for ci, v in edits.items()},
                                       f"edge: {label} in every numeric column"))
        searcher.run_batch(stage, searcher.take(cands, searcher.stage_cap(self.name)))
        if searcher.examples_left():  # a batch of one row (always: it is one run)
            outcome = searcher.evaluate([Candidate(base[0], {}, "")])[0]
            stage.examples += 1
            searcher.used += 1
            if outcome.status != "agree":
                searcher.record(stage, Candidate(base[0], {}, "edge: a batch of 1 row"),
                                outcome, lambda: searcher.table.row_inputs(searcher.table.build(
                                    np.asarray([base[0]]), [{}]), 0))


class ThresholdStage(Stage):
    """Tree models: every split threshold of the original model, and its float64 and
    float32 neighbours both ways, in otherwise typical rows."""

    name = "thresholds"
    share = 0.25

    def run(self, searcher: Searcher, stage: StageResult) -> None:
        points = searcher.split_points
        if not points:
            stage.status = "not applicable: no split thresholds baton reads in this model"
            return
        table = searcher.table
        cols = table.columns
        by_col: dict[int, np.ndarray] = {}
        for feature, values in points.items():
            if table.form in ("frame", "matrix") and 0 <= int(feature) < len(cols) \
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
                    cands.append(Candidate(searcher.typical[k % len(searcher.typical)],
                                           {ci: v},
                                           f"split threshold of {col.name} ({_where(col, v)})"))
        searcher.run_batch(stage, searcher.take(cands, searcher.stage_cap(self.name)))


class SampleStage(Stage):
    """Rows drawn from the input schema: mostly inside the envelope (values of the data,
    and numbers across the inside range), some just beyond its edges, and unseen
    categories. It has no share of its own: it gets what the others leave."""

    name = "samples"

    def run(self, searcher: Searcher, stage: StageResult) -> None:
        rng = np.random.default_rng(searcher.seed + 1)
        reserve = 0 if searcher.budget.examples is None else searcher.reserved_after(self)
        n = max(1, min(searcher.examples_left() - reserve, 50_000))
        cols = searcher.table.columns
        cands = []
        for _ in range(n):
            edits = {ci: _random_value(c, rng) for ci, c in enumerate(cols)}
            beyond = not all(c.within(edits[ci]) for ci, c in enumerate(cols))
            cands.append(Candidate(searcher.typical[0], edits, "samples "
                                   + ("beyond the observed range" if beyond
                                      else "within the observed range")))
        # the budget is spent in full whatever the machine: the samples are drawn first,
        # then evaluated batch by batch
        searcher.run_batch(stage, cands)


class PropertyStage(Stage):
    """A hypothesis search over rows built from the schema (a typical row with some values
    replaced), which shrinks a divergence to a minimal counterexample: the fewest changed
    values, each as simple as it can be."""

    name = "property"
    # hypothesis makes a row far more slowly than numpy, so the property search's share
    # is kept small
    share = 0.1

    def run(self, searcher: Searcher, stage: StageResult) -> None:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hseed
        from hypothesis import strategies as st

        n = min(searcher.examples_left(), searcher.stage_cap(self.name))
        table = searcher.table
        cols = table.columns
        keep = object()
        strategies = [st.one_of(st.just(keep), _strategy(c, self._points(searcher, ci)))
                      for ci, c in enumerate(cols)]
        row = st.tuples(st.sampled_from(searcher.typical), *strategies)
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
            if new and searcher.time_left() and stage.examples < n:
                new = new[: n - stage.examples]
                for i, o in zip(new, searcher.evaluate([cands[i] for i in new])):
                    seen[keys[i]] = o
                    stage.examples += 1
                    searcher.used += 1
                    if o.status in ("domain", "skipped"):
                        searcher.record(stage, cands[i], o, dict)
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
        runner = hseed(searcher.seed)(runner)
        try:
            runner()
        except _Diverges:
            pass
        if failing:
            cand, outcome = failing[-1]
            where = all(cols[ci].within(v) for ci, v in cand.edits.items())
            cand.divergence_class = ("property search (shrunk, "
                                     + ("within" if where else "beyond") + " the observed range)")
            data = table.build(np.asarray([cand.base]), [cand.edits])
            stage.divergent += 1
            outside = searcher.outside(cand)
            searcher.classes[cand.divergence_class] = Counterexample(
                cand.divergence_class, stage.name, table.row_inputs(data, 0),
                searcher.changed(cand), outcome.broken, onnx_error=outcome.onnx_error,
                in_envelope=not outside, outside=outside)
        if not searcher.time_left() and stage.examples < n and not failing:
            stage.status = "stopped by the time cap"

    @staticmethod
    def _points(searcher: Searcher, ci: int) -> list[float]:
        if searcher.table.form not in ("frame", "matrix"):
            return []
        values = searcher.split_points.get(ci)
        if values is None:
            return []
        return [v for t in np.asarray(values)[:50] for v in neighbours(float(t))]


#: the search's stages, in the order they run: the engine runs each in turn, within the
#: share of the budget it declares
SEARCH_STAGES: tuple[Stage, ...] = (EdgeStage(), ThresholdStage(), SampleStage(),
                                    PropertyStage())
#: the search's stages, in the order they run
STAGES = tuple(s.name for s in SEARCH_STAGES)
#: the most of the example budget each stage may use; the samples get what the others
#: leave (hypothesis makes a row far more slowly than numpy, so the property search's
#: share is kept small)
STAGE_SHARE = {s.name: s.share for s in SEARCH_STAGES if s.share is not None}
