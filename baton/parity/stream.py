"""Comparing outputs batch by batch, in bounded memory: the streaming twin of
:func:`baton.parity.compare.compare`.

An :class:`OutputAccumulator` takes one output's batches (``update``), merges with
another's (``merge``: partitions on Spark, or any split of the rows) and gives the same
:class:`~baton.results.diff.OutputDiff` as ``compare`` on all the rows at once
(``result``). Everything it keeps is bounded: counts, maxima, the worst rows (at most
``WORST_ROWS``), the few values that decide the minimum passing tolerances, and the errors
for the p99: exactly up to ``EXACT_VALUES`` values, beyond that in a mergeable log-bucket
sketch whose p99 lies within ``SKETCH_ACCURACY`` (relative) of the exact one, and says so.

Everything here is plain numpy, lists and dicts: the accumulators pickle (Spark ships
them from the workers to the driver).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from baton.parity.compare import VECTOR_KINDS, _min_cosine, _p99, _passing, _shown
from baton.results.diff import WORST_ROWS, OutputDiff, WorstRow
from baton.schema import n_rows, row_values
from baton.tolerance import (
    Closeness,
    Tolerance,
    aligned,
    as_array,
    closeness,
    compared_as_labels,
    labels_equal,
    row_view,
)

#: error values kept exactly per output (abs and rel each); beyond, the p99 is sketched
EXACT_VALUES = 65_536
#: the relative accuracy of the sketched p99
SKETCH_ACCURACY = 0.01
#: values whose needed tolerance lies this close (relative) below the largest are kept:
#: only they can fail at it by rounding (see ``_Critical``)
_WINDOW = 1e-6
#: at most this many such values are kept (ties beyond: the largest needs)
_CRITICAL = 4096

__all__ = ["EXACT_VALUES", "SKETCH_ACCURACY", "CheckAccumulator", "OutputAccumulator",
           "QuantileSketch"]


class QuantileSketch:
    """A mergeable quantile sketch of non-negative values (DDSketch-style log buckets):
    any order statistic it gives lies within ``accuracy`` (relative) of the true one.
    Zeros and infinities are counted apart, exactly."""

    def __init__(self, accuracy: float = SKETCH_ACCURACY) -> None:
        self.accuracy = accuracy
        self.gamma = (1 + accuracy) / (1 - accuracy)
        self._log_gamma = math.log(self.gamma)
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.infinite = 0
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        self.count += int(v.size)
        finite = np.isfinite(v)
        self.infinite += int((~finite).sum())
        v = v[finite]
        positive = v[v > 0]
        self.zeros += int(v.size - positive.size)
        if positive.size:
            keys = np.ceil(np.log(positive) / self._log_gamma).astype(np.int64)
            uniq, counts = np.unique(keys, return_counts=True)
            for k, c in zip(uniq.tolist(), counts.tolist()):
                self.buckets[k] = self.buckets.get(k, 0) + c

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        out = QuantileSketch(self.accuracy)
        out.buckets = dict(self.buckets)
        for k, c in other.buckets.items():
            out.buckets[k] = out.buckets.get(k, 0) + c
        out.zeros = self.zeros + other.zeros
        out.infinite = self.infinite + other.infinite
        out.count = self.count + other.count
        return out

    def value_at(self, rank: int) -> float:
        """The ``rank``-th smallest value (from 0), within the sketch's accuracy."""
        if rank < self.zeros:
            return 0.0
        seen = self.zeros
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            if rank < seen:
                return 2 * self.gamma ** k / (self.gamma + 1)
        return math.inf

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile as numpy's default (linear) ``percentile`` computes it, from
        the sketched order statistics; an infinite neighbour gives the upper one (as
        ``compare``'s p99 does)."""
        if not self.count:
            return None
        h = (self.count - 1) * q
        lo = int(math.floor(h))
        frac = h - lo
        low = self.value_at(lo)
        if frac == 0:
            return low
        high = self.value_at(min(lo + 1, self.count - 1))
        if not (math.isfinite(low) and math.isfinite(high)):
            return high
        return low + frac * (high - low)


class _Values:
    """One output's error values for the p99: exact up to ``cap``, then sketched."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[np.ndarray] | None = []
        self.sketch: QuantileSketch | None = None
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        self.count += int(values.size)
        if self.parts is not None and self.count <= self.cap:
            self.parts.append(np.array(values, dtype=np.float64, copy=True).reshape(-1))
            return
        if self.sketch is None:
            self.sketch = QuantileSketch()
            for p in self.parts or ():
                self.sketch.add(p)
            self.parts = None
        self.sketch.add(values)

    def merge(self, other: _Values) -> _Values:
        out = _Values(min(self.cap, other.cap))
        for side in (self, other):
            if side.parts is not None:
                for p in side.parts:
                    out.add(p)
        sketches = [s.sketch for s in (self, other) if s.sketch is not None]
        if sketches:
            if out.sketch is None:
                out.sketch = QuantileSketch()
                for p in out.parts or ():
                    out.sketch.add(p)
                out.parts = None
            for s in sketches:
                out.sketch = out.sketch.merge(s)
        out.count = self.count + other.count
        return out

    @property
    def exact(self) -> bool:
        return self.parts is not None

    def p99(self) -> float | None:
        if not self.count:
            return None
        if self.parts is not None:
            return _p99(np.concatenate(self.parts))
        assert self.sketch is not None
        return self.sketch.quantile(0.99)


class _Critical:
    """The minimum passing tolerance (atol at the output's rtol, or rtol at its atol),
    exactly as ``compare`` finds it, in bounded memory.

    ``compare`` takes the largest tolerance any value needs (``need``, computed by a
    subtraction) and rounds it up until every value really passes. Passing is monotone in
    the tolerance, and a value whose need lies more than a few ulps below the largest
    passes at it whatever the rounding; so only the values near the largest need are
    kept (non-equal, finite expected, need within ``_WINDOW`` of the largest), and the
    rounding up is decided on them alone."""

    def __init__(self) -> None:
        self.top: float | None = None  # the largest need seen (None: no values)
        self.need = np.empty(0)
        self.err = np.empty(0)
        self.mag = np.empty(0)

    def add(self, need: np.ndarray, err: np.ndarray, mag: np.ndarray,
            candidate: np.ndarray) -> None:
        if not need.size:
            return
        top = float(need.max())
        self.top = top if self.top is None else max(self.top, top)
        keep = candidate & np.isfinite(need) & (need > 0)
        self._extend(need[keep], err[keep], mag[keep])

    def _extend(self, need: np.ndarray, err: np.ndarray, mag: np.ndarray) -> None:
        need = np.concatenate([self.need, need])
        err = np.concatenate([self.err, err])
        mag = np.concatenate([self.mag, mag])
        top = self.top if self.top is not None else 0.0
        near = need >= top * (1 - _WINDOW) if np.isfinite(top) else np.zeros(len(need), bool)
        need, err, mag = need[near], err[near], mag[near]
        if len(need) > _CRITICAL:
            idx = np.argsort(-need, kind="stable")[:_CRITICAL]
            need, err, mag = need[idx], err[idx], mag[idx]
        self.need, self.err, self.mag = need, err, mag

    def merge(self, other: _Critical) -> _Critical:
        out = _Critical()
        tops = [t for t in (self.top, other.top) if t is not None]
        out.top = max(tops) if tops else None
        out.need = self.need
        out.err, out.mag = self.err, self.mag
        out._extend(other.need, other.err, other.mag)
        return out

    def passing(self, passes: Callable[[Closeness, float], bool]) -> float:
        kept = Closeness(np.zeros(len(self.err), dtype=bool), self.err,
                         np.ones(len(self.err), dtype=bool), self.mag,
                         np.zeros(len(self.err), dtype=bool))
        return _passing(max(self.top or 0.0, 0.0), lambda t: passes(kept, t))


def _key(w: WorstRow, ratio: float) -> tuple[float, float, int]:
    return (-ratio, -(w.abs_error or 0.0), w.row)


class OutputAccumulator:
    """One output's comparison, batch by batch (see the module's docstring)."""

    def __init__(self, name: str, kind: str, tolerance: Tolerance, *,
                 exact_values: int = EXACT_VALUES) -> None:
        self.name, self.kind, self.tolerance = name, kind, tolerance
        self.rows = 0
        self.mismatched = 0
        #: "labels" or "numbers" (decided by the first batch), "shape" once shapes differ
        self.mode: str | None = None
        self.shapes: tuple[list[int], list[int]] | None = None
        self.exp_rows = 0
        self.act_rows = 0
        #: labels: (row, WorstRow), the first rows that differ; numbers: (key, WorstRow)
        self.worst: list[tuple[Any, WorstRow]] = []
        self.width: int | None = None  # values per row
        self.max_abs: float | None = None
        self.max_rel: float | None = None
        self.min_cosine: float | None = None
        self.abs_values = _Values(exact_values)
        self.rel_values = _Values(exact_values)
        self.atol = _Critical()
        self.rtol = _Critical()

    # -- one batch ------------------------------------------------------------------------

    def update(self, expected: Any, actual: Any, row_inputs: Callable[[int], dict] | None,
               offset: int) -> None:
        exp, act = np.asarray(expected), as_array(actual)
        n = len(exp) if exp.ndim else 1
        self.exp_rows += n
        self.act_rows += len(act) if act.ndim else 1
        fitted = aligned(exp, act)
        if fitted is None or self.mode == "shape":
            if self.mode != "shape":
                self.mode = "shape"
                self.shapes = (list(exp.shape[1:]), list(act.shape[1:]))
            self.rows += n
            return
        mode = "labels" if compared_as_labels(self.kind, fitted, act) else "numbers"
        self.mode = self.mode or mode
        if self.mode == "labels":
            self._labels(fitted, act, row_inputs, offset)
        else:
            self._numbers(fitted, act, row_inputs, offset)

    def _labels(self, exp: np.ndarray, act: np.ndarray, row_inputs: Callable[[int], dict] | None,
                offset: int) -> None:
        e, a = row_view(exp), row_view(act)
        same = labels_equal(e, a)
        self.rows += len(e)
        bad = np.flatnonzero(~same)
        self.mismatched += len(bad)
        new = [(offset + int(r), WorstRow(offset + int(r),
                                          row_inputs(int(r)) if row_inputs else {},
                                          _shown(e[r]), _shown(a[r])))
               for r in bad[:WORST_ROWS]]
        self.worst = sorted(self.worst + new, key=lambda t: t[0])[:WORST_ROWS]

    def _numbers(self, exp: np.ndarray, act: np.ndarray,
                 row_inputs: Callable[[int], dict] | None, offset: int) -> None:
        # the formulas of baton.parity.compare._compare_numbers, on one batch
        tol = self.tolerance
        b = row_view(exp).astype(np.float64)
        a = row_view(act).astype(np.float64)
        rows = len(b)
        self.rows += rows
        self.width = b.shape[1]
        c = closeness(b, a, tol)
        equal, err, ok, mag, finite_b = c.equal, c.err, c.ok, c.magnitude, c.finite
        bound = c.bound(tol.atol, tol.rtol)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            rel = np.where(err == 0, 0.0,
                           np.where((mag > 0) & np.isfinite(mag), err / mag, np.inf))
            need_atol = np.where(ok & equal, 0.0,
                                 np.where(finite_b, err - tol.rtol * mag, np.inf))
            need_rtol = np.where(
                ok & equal, 0.0,
                np.where(err <= tol.atol, 0.0, np.where(mag > 0, (err - tol.atol) / mag,
                                                        np.inf)),
            )
            need_rtol = np.where(finite_b | equal, need_rtol, np.inf)
            ratio = np.where(err == 0, 0.0, np.where(bound > 0, err / bound, np.inf))
            row_ratio = ratio.max(axis=1) if b.shape[1] else np.zeros(rows)
        row_ok = np.asarray(ok.all(axis=1)) if b.shape[1] else np.ones(rows, dtype=bool)
        row_err = err.max(axis=1) if b.shape[1] else np.zeros(rows)
        self.mismatched += int((~row_ok).sum())
        if err.size:
            self.max_abs = _max(self.max_abs, float(err.max()))
            self.max_rel = _max(self.max_rel, float(rel.max()))
            self.abs_values.add(err.reshape(-1))
            self.rel_values.add(rel.reshape(-1))
            candidate = ~equal & finite_b
            self.atol.add(need_atol.reshape(-1), err.reshape(-1), mag.reshape(-1),
                          candidate.reshape(-1))
            self.rtol.add(need_rtol.reshape(-1), err.reshape(-1), mag.reshape(-1),
                          candidate.reshape(-1))
        order = np.lexsort((-row_err, -row_ratio))
        new = []
        for r in (int(r) for r in order[:WORST_ROWS] if row_ratio[r] > 0 or not row_ok[r]):
            w = WorstRow(offset + r, row_inputs(r) if row_inputs else {}, _shown(b[r]),
                         _shown(a[r]), float(err[r].max()) if b.shape[1] else 0.0)
            new.append((_key(w, float(row_ratio[r])), w))
        self.worst = sorted(self.worst + new, key=lambda t: t[0])[:WORST_ROWS]
        if self.kind in VECTOR_KINDS and b.shape[1] > 1:
            cos = _min_cosine(a, b)
            if cos is not None:
                self.min_cosine = cos if self.min_cosine is None else min(self.min_cosine, cos)

    def shift_rows(self, by: int) -> None:
        """Number the worst rows ``by`` rows later (a partition whose rows were counted
        from its own first, once the rows before it are known)."""
        self.worst = [((*key[:-1], key[-1] + by) if isinstance(key, tuple) else key + by,
                       dataclasses.replace(w, row=w.row + by)) for key, w in self.worst]

    # -- merging and the result -----------------------------------------------------------

    def merge(self, other: OutputAccumulator) -> OutputAccumulator:
        """Both accumulators' rows in one (a new accumulator; neither changes)."""
        out = copy.copy(self)
        out.rows = self.rows + other.rows
        out.mismatched = self.mismatched + other.mismatched
        out.exp_rows = self.exp_rows + other.exp_rows
        out.act_rows = self.act_rows + other.act_rows
        modes = {self.mode, other.mode} - {None}
        out.mode = "shape" if "shape" in modes else (self.mode or other.mode)
        out.shapes = self.shapes or other.shapes
        out.width = self.width if self.width is not None else other.width
        out.worst = sorted(self.worst + other.worst, key=lambda t: t[0])[:WORST_ROWS]
        out.max_abs = _max(self.max_abs, other.max_abs)
        out.max_rel = _max(self.max_rel, other.max_rel)
        cos = [c for c in (self.min_cosine, other.min_cosine) if c is not None]
        out.min_cosine = min(cos) if cos else None
        out.abs_values = self.abs_values.merge(other.abs_values)
        out.rel_values = self.rel_values.merge(other.rel_values)
        out.atol = self.atol.merge(other.atol)
        out.rtol = self.rtol.merge(other.rtol)
        return out

    def result(self) -> OutputDiff:
        """The comparison of every row seen, as ``compare`` gives it on all of them."""
        tol, rows = self.tolerance, self.rows
        if self.mode == "shape":
            exp_tail, act_tail = self.shapes or ([], [])
            return OutputDiff(
                self.name, self.kind, rows, False, tol, mismatched_rows=rows,
                message=f"shape differs: original {[self.exp_rows, *exp_tail]}, "
                        f"ONNX {[self.act_rows, *act_tail]}")
        worst = [w for _, w in self.worst]
        if self.mode == "labels":
            agreement = (rows - self.mismatched) / rows if rows else 1.0
            return OutputDiff(self.name, self.kind, rows, agreement >= tol.agreement, tol,
                              mismatched_rows=self.mismatched, agreement=agreement,
                              worst=worst)
        diff = OutputDiff(
            self.name, self.kind, rows, self.mismatched == 0, tol,
            mismatched_rows=self.mismatched, max_abs=self.max_abs, max_rel=self.max_rel,
            p99_abs=self.abs_values.p99(), p99_rel=self.rel_values.p99(),
            min_atol=self.atol.passing(lambda c, t: bool(c.within(t, tol.rtol).all())),
            min_rtol=self.rtol.passing(lambda c, t: bool(c.within(tol.atol, t).all())),
            worst=worst,
        )
        if not (self.abs_values.exact and self.rel_values.exact):
            diff.p99_accuracy = SKETCH_ACCURACY
        if self.kind in VECTOR_KINDS and (self.width or 0) > 1:
            diff.min_cosine = self.min_cosine
        return diff


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


class CheckAccumulator:
    """Every output of one check (``pairs``: original output, ONNX output), and the rows.

    ``kinds`` and ``tolerances`` are by ONNX output; an output without a kind takes its
    original's name as its kind (as ``check`` does)."""

    def __init__(self, pairs: Iterable[tuple[str, str]], kinds: Mapping[str, str | None],
                 tolerances: Mapping[str, Tolerance], *,
                 exact_values: int = EXACT_VALUES) -> None:
        self.pairs = [(str(r), str(o)) for r, o in pairs]
        self.outputs = {o: OutputAccumulator(o, kinds.get(o) or r, tolerances[o],
                                             exact_values=exact_values)
                        for r, o in self.pairs}
        self.rows = 0

    def update(self, prepared_batch: Any, expected: Mapping[str, Any],
               actual: Mapping[str, Any], offset: int) -> None:
        """One batch: ``prepared_batch`` (the rows as the original model takes them, for the
        worst rows' inputs), both models' outputs on it, and its first row's number in the
        whole data."""
        for ref, onnx in self.pairs:
            self.outputs[onnx].update(expected[ref], actual[onnx],
                                      lambda r: row_values(prepared_batch, r), offset)
        self.rows += n_rows(prepared_batch)

    def merge(self, other: CheckAccumulator) -> CheckAccumulator:
        out = copy.copy(self)
        out.outputs = {o: acc.merge(other.outputs[o]) for o, acc in self.outputs.items()}
        out.rows = self.rows + other.rows
        return out

    def shift_rows(self, by: int) -> None:
        """Number the worst rows of every output ``by`` rows later (see
        :meth:`OutputAccumulator.shift_rows`)."""
        for acc in self.outputs.values():
            acc.shift_rows(by)

    def diffs(self) -> list[OutputDiff]:
        return [self.outputs[o].result() for _, o in self.pairs]
