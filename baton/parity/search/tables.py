"""The user's data as the search sees it: columns (their kind, dtype, observed range and
categories) and rows that can be copied and changed column by column; a candidate row is
one of the user's rows with some of its values changed.

numpy only at load time; pandas is imported when a DataFrame is read or built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baton.envelope import Envelope
from baton.schema import is_dataframe, n_rows, to_jsonable

# -- the data as columns ---------------------------------------------------------------


@dataclass
class Column:
    """One column of the prepared data (a DataFrame column, a matrix column, or a whole
    tensor input whose rows have ``shape``)."""

    name: str
    key: Any
    kind: str  # float, int, bool, text, category, mask
    dtype: np.dtype[Any]
    shape: tuple[int, ...] = ()
    lo: float = 0.0
    hi: float = 0.0
    has_nan: bool = False
    categories: list[Any] = field(default_factory=list)
    observed: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: the inside of the envelope for numbers (:meth:`Table.bound`): where the samples and
    #: the property search draw most of their values
    inside_lo: float = 0.0
    inside_hi: float = 0.0
    #: a mask (kind ``mask``) whose set values mark padding rather than tokens
    padding: bool = False

    @property
    def span(self) -> float:
        return self.hi - self.lo

    @property
    def inside_span(self) -> float:
        return self.inside_hi - self.inside_lo

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

    def bound(self, envelope: Envelope) -> None:
        """Give each numeric column the inside bounds of ``envelope`` (an open side, or a
        column it does not know: the observed range widened by its margin)."""
        for col in self.columns:
            region = envelope.columns.get(col.name)
            if region is not None and region.kind == "mask" and len(col.shape) == 1:
                col.kind, col.padding = "mask", region.padding
            pad = envelope.margin * (col.span if col.span > 0 else max(abs(col.hi), 1.0))
            lo = region.low if region is not None and region.low is not None else None
            hi = region.high if region is not None and region.high is not None else None
            col.inside_lo = col.lo - pad if lo is None else lo
            col.inside_hi = col.hi + pad if hi is None else hi
            if col.inside_hi < col.inside_lo:
                col.inside_lo, col.inside_hi = col.inside_hi, col.inside_lo

    def value(self, row: int, ci: int) -> Any:
        """The user's value of column ``ci`` in row ``row``."""
        col = self.columns[ci]
        if self.form == "frame":
            return self.prepared[col.key].iloc[row]
        if self.form == "dict":
            return np.asarray(self.prepared[col.key])[row]
        arr = np.asarray(self.prepared)
        return arr[row, col.key] if self.form == "matrix" else arr[row]

    def row_values(self, base: int, edits: Mapping[int, Any]) -> dict[str, Any]:
        """Column name -> value of row ``base`` with ``edits`` applied."""
        return {col.name: edits[ci] if ci in edits else self.value(base, ci)
                for ci, col in enumerate(self.columns)}

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


def _where(col: Column, value: Any) -> str:
    if col.kind == "mask":
        from baton.masks import mask_problem

        return mask_problem(value, col.padding) or "a mask the envelope holds"
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


# -- candidate rows --------------------------------------------------------------------


@dataclass
class Candidate:
    base: int
    edits: dict[int, Any]
    divergence_class: str
