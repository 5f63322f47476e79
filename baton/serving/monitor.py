"""Traffic against the envelope: which rows of a request lie outside the region the
bundle's parity proof covers (:mod:`baton.envelope`), by envelope column.

:class:`EnvelopeMonitor` is compiled once per model and sits on the request path, so a
request that lies inside costs a few numpy calls whatever its number of columns: every
numeric column of the inputs (an ``[N, 1]`` input, a matrix input's columns) is stacked
into one float64 matrix and compared with the bounds as two vectors; text columns are a
frozenset lookup of the row's values; booleans are never outside. Only a request with rows
outside is looked at column by column, with :meth:`Region.outside_rows
<baton.envelope.Region.outside_rows>`, whose verdict is the envelope's own. Tensors the
envelope judges as a whole (masks, images, token ids) are judged by ``outside_rows``.

The inputs are named as the envelope names its columns (:func:`baton.envelope.columns_of`
on the data the model was proven on): an input read from a DataFrame column (``column``)
by that column's name, a matrix input by its ``columns``, a single matrix input without
column names as ``x0``, ``x1``, …, any other tensor by its input's name (or ``input``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from baton.envelope import Envelope, Region
from baton.schema import TensorSpec


@dataclass(frozen=True)
class Column:
    """One envelope column as the requests carry it: from input ``input``, at ``index`` of
    its second axis (None: the whole tensor, row by row)."""

    name: str
    input: str
    index: int | None
    region: Region

    def values(self, feeds: Mapping[str, Any]) -> np.ndarray:
        arr = np.asarray(feeds[self.input])
        if self.index is None:
            return arr
        return arr.reshape(arr.shape[0], -1)[:, self.index]


def envelope_columns(envelope: Envelope, inputs: Sequence[TensorSpec]) -> list[Column]:
    """The envelope's columns that the inputs carry, in the inputs' order. Columns of the
    envelope no input carries, and inputs the envelope does not know, are left out."""
    regions = envelope.columns
    out: list[Column] = []
    single = len(inputs) == 1
    for spec in inputs:
        if spec.column is not None and spec.column in regions:
            out.append(Column(spec.column, spec.name, 0, regions[spec.column]))
        elif spec.columns is not None:
            out += [Column(c, spec.name, j, regions[c]) for j, c in enumerate(spec.columns)
                    if c in regions]
        elif spec.name in regions:
            out.append(Column(spec.name, spec.name, None, regions[spec.name]))
        elif single and "x0" in regions and len(spec.shape) == 2:
            width = spec.shape[1] if isinstance(spec.shape[1], int) else sum(
                1 for k in regions if k.startswith("x") and k[1:].isdigit())
            out += [Column(f"x{j}", spec.name, j, regions[f"x{j}"]) for j in range(width)
                    if f"x{j}" in regions]
        elif single and "input" in regions:
            out.append(Column("input", spec.name, None, regions["input"]))
        elif single and len(spec.shape) == 2 and spec.shape[1] == len(regions):
            # a DataFrame fed whole to a matrix input: its columns, in order
            out += [Column(c, spec.name, j, r) for j, (c, r) in enumerate(regions.items())]
    return out


class EnvelopeMonitor:
    """Counts, per envelope column, the rows of each request that lie outside.

    ``known`` is False for a bundle without an envelope (bundles from before it was
    recorded): such a monitor counts nothing."""

    def __init__(self, envelope: Envelope | None, inputs: Sequence[TensorSpec]) -> None:
        self.known = envelope is not None
        self.columns = [] if envelope is None else envelope_columns(envelope, inputs)
        #: the envelope columns the inputs carry, each counted in /metrics (booleans too,
        #: though never outside: they are not judged)
        self.names = [c.name for c in self.columns]
        self._by_name = {c.name: c for c in self.columns}
        specs = {s.name: s for s in inputs}
        numeric: list[Column] = []
        text: list[Column] = []
        other: list[Column] = []
        for col in self.columns:
            spec = specs[col.input]
            region = col.region
            if region.kind == "bool":
                continue
            column_like = col.index is not None and _is_batched_matrix(spec)
            if column_like and region.kind in ("float", "int") and spec.dtype in _NUMERIC:
                if region.low is None and region.high is None and (
                        region.missing or region.kind == "float" or spec.dtype not in _FLOATS):
                    continue  # nothing it could hold lies outside
                numeric.append(col)
            elif column_like and region.kind == "text" and spec.dtype == "string":
                if region.categories is None:
                    continue  # any text lies inside (a request's text is never missing)
                text.append(col)
            else:
                other.append(col)
        self.numeric = numeric
        self.text = text
        self.other = other
        #: the numeric columns: how to stack them (input name, its columns taken or None
        #: for all), and the bounds of the stacked matrix's columns
        self._stack: list[tuple[str, Any]] = []
        names: list[str] = []
        low: list[float] = []
        high: list[float] = []
        nan_out: list[bool] = []
        by_input: dict[str, list[Column]] = {}
        for col in numeric:
            by_input.setdefault(col.input, []).append(col)
        for name, cols in by_input.items():
            width = _width(specs[name])
            indices = [c.index for c in cols]
            take = None if indices == list(range(width)) else np.array(indices)
            self._stack.append((name, take))
            for col in cols:
                r = col.region
                names.append(col.name)
                low.append(-np.inf if r.low is None else r.low)
                high.append(np.inf if r.high is None else r.high)
                nan_out.append(not (r.missing or r.kind == "float")
                               and specs[name].dtype in _FLOATS)
        self._numeric_names = names
        #: one-row requests whose numeric inputs are all single columns are judged value by
        #: value, in Python (a tenth of numpy's calls' cost on one row): input, its column's
        #: bounds, whether NaN lies outside, whether it is an integer (compared as float64,
        #: as the envelope compares it)
        self._scalars = None
        if numeric and all(_width(specs[c.input]) == 1 for c in numeric):
            self._scalars = [(name, lo, hi, nan, specs[name].dtype not in _FLOATS)
                             for (name, _), lo, hi, nan in zip(self._stack, low, high, nan_out)]
        self._low = np.array(low, dtype=np.float64)
        self._high = np.array(high, dtype=np.float64)
        self._nan_out = np.array(nan_out, dtype=bool) if any(nan_out) else None
        self._single = self._stack[0] if len(self._stack) == 1 else None
        #: every stacked input an [N, k] matrix taken whole: fetched in one call
        self._whole = None
        if len(self._stack) > 1 and all(take is None and len(specs[name].shape) == 2
                                        for name, take in self._stack):
            self._whole = operator.itemgetter(*(name for name, _ in self._stack))
        self._text = [(c.name, c.input, frozenset(c.region.categories or ()))
                      for c in text]
        #: whether any column is judged at all
        self.active = bool(self._stack or self._text or self.other)

    # -- the request path -------------------------------------------------------------------

    def check(self, feeds: Mapping[str, Any]) -> dict[str, int]:
        """The number of rows outside, per envelope column that has any (empty: every row
        lies inside). ``feeds`` are a decoded request's arrays, by input name."""
        found: dict[str, int] = {}
        scalars = self._scalars
        if scalars is not None and feeds[scalars[0][0]].shape[0] == 1:
            for name, low, high, nan, integer in scalars:
                v = feeds[name].item()
                if integer:
                    v = float(v)
                if v < low or v > high or (nan and v != v):
                    found = self._check_rows(feeds)
                    break
        elif self._stack:
            found = self._check_rows(feeds)
        for name, input_name, cats in self._text:
            values = feeds[input_name].ravel().tolist()
            if not cats.issuperset(values):
                n = int(self._by_name[name].region.outside_rows(
                    self._by_name[name].values(feeds)).sum())
                if n:
                    found[name] = n
        for col in self.other:
            n = int(col.region.outside_rows(col.values(feeds)).sum())
            if n:
                found[col.name] = n
        return found

    def _check_rows(self, feeds: Mapping[str, Any]) -> dict[str, int]:
        """The numeric columns' rows outside, counted with numpy."""
        found: dict[str, int] = {}
        matrix = self._matrix(feeds)
        bad = (matrix < self._low) | (matrix > self._high)  # NaN compares False
        if self._nan_out is not None:
            bad |= np.isnan(matrix) & self._nan_out
        if bad.any():
            counts = bad.sum(axis=0)
            for name, n in zip(self._numeric_names, counts.tolist()):
                if n:
                    found[name] = n
        return found

    def _matrix(self, feeds: Mapping[str, Any]) -> np.ndarray:
        single = self._single
        if single is not None:
            name, take = single
            arr = feeds[name]
            arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr
            return arr if take is None else arr[:, take]
        if self._whole is not None:
            return np.concatenate(self._whole(feeds), axis=1, dtype=np.float64)
        parts = []
        for name, take in self._stack:
            arr = feeds[name]
            if arr.ndim != 2:
                arr = arr.reshape(arr.shape[0], -1)
            parts.append(arr if take is None else arr[:, take])
        return np.concatenate(parts, axis=1, dtype=np.float64)

    # -- refusing -------------------------------------------------------------------------

    def reasons(self, feeds: Mapping[str, Any], found: Mapping[str, int]) -> dict[str, str]:
        """For each column of ``found`` (from :meth:`check`), why its first row outside lies
        outside and what lies inside, e.g. ``"row 0: 45000 above 90.01; inside: -8.51 ..
        90.01 (observed -0.3 .. 81.8)"``."""
        out = {}
        for name in found:
            col = self._by_name[name]
            values = col.values(feeds)
            rows = np.flatnonzero(col.region.outside_rows(values))
            row = int(rows[0]) if rows.size else 0
            value = values.reshape(values.shape[0], -1)[row] if values.ndim > 1 else values[row]
            if col.index is not None and np.ndim(value) and np.size(value) == 1:
                value = np.asarray(value).reshape(-1)[0]
            why = col.region.outside(value) or "outside"
            out[name] = f"row {row}: {why}; inside: {col.region.describe()}"
        return out


_NUMERIC = frozenset({"float32", "float64", "float16", "int64", "int32", "int16", "int8",
                      "uint8", "uint16", "uint32", "uint64"})
_FLOATS = frozenset({"float32", "float64", "float16"})


def _is_batched_matrix(spec: TensorSpec) -> bool:
    """An input of shape [N] or [N, k] (k fixed), read column by column."""
    shape = spec.shape
    return len(shape) == 1 or (len(shape) == 2 and isinstance(shape[1], int))


def _width(spec: TensorSpec) -> int:
    return 1 if len(spec.shape) == 1 else int(spec.shape[1])  # type: ignore[arg-type]
