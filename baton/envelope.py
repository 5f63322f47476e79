"""The envelope: the region of inputs a parity proof covers.

At conversion baton records, per input column (a DataFrame's columns by name, a numeric
matrix's as ``x0``, ``x1``, …, a dict's tensors by name, one array as ``input``), what the
sample held: the observed range of numbers, whether missing values were seen, the categories
of text. What lies **inside**, and so fails the gate when the converted model diverges there:

- numbers within the observed range widened on each side by :data:`MARGIN` of its span (of
  its magnitude, for a column that held one value); integers the same, rounded outwards;
- a missing value (NaN) in a float column, always: production data has them, and a graph
  that routes NaN another way than the original is a real bug; elsewhere only where the
  sample held one, or the user allowed it (``amount=nan``);
- the categories seen (all text, where the sample held more than :data:`MAX_CATEGORIES`);
- booleans, always;
- an attention mask (an input named ``attention_mask``, ``…_attention_mask``,
  ``input_mask`` or ``…padding_mask``, or declared): rows of 0 and 1 that attend to at
  least one token; a row that attends to nothing lies outside. The outputs aligned with a
  mask (one value per position) are compared only at the positions it sets
  (:mod:`baton.masks`).

Infinities, magnitudes far beyond the observed range and unseen categories lie outside: a
divergence there is reported, but does not fail the gate unless asked (``--search-scope
all``). Users widen or narrow a column with ``NAME=LO..HI`` (either side may be left open,
or ``inf``), ``NAME=a,b,c`` (the categories), ``NAME=nan`` (missing values inside), or several
of those, comma-separated (``amount=0..100,nan``); such a column is inside exactly as given.

A leaf of the package: numpy only (pandas is read only when handed a DataFrame).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from baton.errors import BundleError, UsageError

#: how far beyond the observed range a number still lies inside, as a share of the span
MARGIN = 0.1
#: text columns with more distinct values than this take any text as inside
MAX_CATEGORIES = 1000
ENVELOPE_FORMAT = "NAME=LO..HI, NAME=a,b,c or NAME=nan (or several, comma-separated)"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) or (
        type(v).__name__ in ("NAType", "NaTType"))


@dataclass(frozen=True)
class Region:
    """What lies inside for one column or tensor."""

    kind: str  # float, int, bool, text, mask
    #: the inside bounds (numbers), None for an open side
    low: float | None = None
    high: float | None = None
    #: missing values lie inside
    missing: bool = False
    #: the categories inside (text); None: any text
    categories: tuple[str, ...] | None = None
    #: what the sample held: its range, or its number of categories (for the report)
    observed: tuple[float, float] | None = None
    #: where the region comes from: the sample, or the user's --envelope / config
    source: str = "sample"
    #: a mask whose set values mark padding (``key_padding_mask``), not tokens to attend
    padding: bool = False
    #: a mask's outputs compared only where it sets a position (None: by their shapes)
    outputs: tuple[str, ...] | None = None

    def contains(self, value: Any) -> bool:
        return self.outside(value) is None

    def outside(self, value: Any) -> str | None:
        """Why ``value`` lies outside, or None when it lies inside (a tensor: every value)."""
        if self.kind == "bool":
            return None
        if self.kind == "mask":
            from baton.masks import mask_problem

            return mask_problem(value, self.padding)
        if self.kind == "text":
            values = np.asarray(value, dtype=object).reshape(-1).tolist() if isinstance(
                value, np.ndarray) else [value]
            for v in values:
                if _missing(v):
                    if not self.missing:
                        return "a missing value"
                elif self.categories is not None and str(v) not in self.categories:
                    return f"the category {str(v)[:40]!r}, not seen"
            return None
        try:
            arr = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return f"{str(value)[:40]!r}, not a number"
        nan = np.isnan(arr)
        if nan.any() and not (self.missing or self.kind == "float"):
            return "a missing value"
        vals = arr[~nan]
        if self.low is not None and (vals < self.low).any():
            return f"{float(vals[vals < self.low].min()):.6g} below {self.low:.6g}"
        if self.high is not None and (vals > self.high).any():
            return f"{float(vals[vals > self.high].max()):.6g} above {self.high:.6g}"
        return None

    def outside_rows(self, values: Any) -> np.ndarray:
        """Which rows of ``values`` (a column, or a tensor whose first axis is the row) lie
        outside, as a boolean array: row ``i`` is outside exactly when ``outside(values[i])``
        is not None, computed for every row at once."""
        if type(values).__module__.split(".")[0] == "pandas":
            values = values.to_numpy()
        arr = np.asarray(values)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        n = arr.shape[0]
        if self.kind == "bool" or n == 0:
            return np.zeros(n, dtype=bool)
        if self.kind == "mask":
            from baton.masks import attended

            try:
                numeric = arr.astype(np.float64).reshape(n, -1)
            except (TypeError, ValueError):
                return np.ones(n, dtype=bool)
            bad = ~np.isin(numeric, (0.0, 1.0)).all(axis=1)
            return np.asarray(bad | ~attended(numeric, self.padding).any(axis=1), dtype=bool)
        if self.kind == "text" or arr.dtype.kind in "OUS":
            if self.kind != "text":  # text where a number belongs: outside unless parsable
                return np.array([self.outside(v) is not None for v in arr], dtype=bool)
            flat = arr.reshape(n, -1)
            cats = None if self.categories is None else frozenset(self.categories)
            out = np.zeros(n, dtype=bool)
            for i, row in enumerate(flat.tolist()):
                for v in row:
                    if _missing(v):
                        if not self.missing:
                            out[i] = True
                            break
                    elif cats is not None and str(v) not in cats:
                        out[i] = True
                        break
            return out
        numeric = arr.reshape(n, -1).astype(np.float64, copy=False)
        nan = np.isnan(numeric)
        out = np.zeros(n, dtype=bool)
        if not (self.missing or self.kind == "float"):
            out |= nan.any(axis=1)
        with np.errstate(invalid="ignore"):
            if self.low is not None:
                out |= (numeric < self.low).any(axis=1)
            if self.high is not None:
                out |= (numeric > self.high).any(axis=1)
        return out

    def describe(self) -> str:
        if self.kind == "bool":
            return "true/false"
        if self.kind == "mask":
            return ("a mask of 0 and 1 (1: padding) with at least one 0 per row"
                    if self.padding else "a mask of 0 and 1 with at least one 1 per row")
        if self.kind == "text":
            cats = ("any text" if self.categories is None else
                    f"{len(self.categories)} categories" if len(self.categories) > 6 else
                    ", ".join(map(repr, self.categories)) or "no category")
            return cats + (" or missing" if self.missing else "")
        lo = "-inf" if self.low is None else f"{self.low:.6g}"
        hi = "inf" if self.high is None else f"{self.high:.6g}"
        text = f"{lo} .. {hi}"
        if self.kind == "float" or self.missing:
            text += ", or missing"
        if self.observed is not None and self.source == "sample":
            text += f" (observed {self.observed[0]:.6g} .. {self.observed[1]:.6g})"
        elif self.source != "sample":
            text += f" (from {self.source})"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "missing": self.missing,
                               "source": self.source}
        if self.kind in ("float", "int"):
            out["min"], out["max"] = self.low, self.high
            out["observed"] = None if self.observed is None else list(self.observed)
        if self.kind == "text":
            out["categories"] = None if self.categories is None else list(self.categories)
        if self.kind == "mask":
            out["padding"] = self.padding
            out["outputs"] = None if self.outputs is None else list(self.outputs)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Region:
        def num(v: Any) -> float | None:
            return None if v is None else float(v)

        obs = d.get("observed")
        cats = d.get("categories")
        outs = d.get("outputs")
        return cls(str(d["kind"]), num(d.get("min")), num(d.get("max")),
                   bool(d.get("missing", False)),
                   None if cats is None else tuple(str(c) for c in cats),
                   None if obs is None else (float(obs[0]), float(obs[1])),
                   str(d.get("source", "sample")), bool(d.get("padding", False)),
                   None if outs is None else tuple(str(o) for o in outs))


@dataclass(frozen=True)
class Envelope:
    """The inside of every column or tensor, by name."""

    columns: dict[str, Region] = field(default_factory=dict)
    margin: float = MARGIN

    def outside(self, values: Mapping[str, Any]) -> list[str]:
        """Why the row ``values`` (column name -> value) lies outside: one reason per
        column that does; empty when it lies inside. Columns the envelope does not know
        are not judged."""
        out = []
        for name, value in values.items():
            region = self.columns.get(name)
            why = None if region is None else region.outside(value)
            if why is not None:
                out.append(f"{name}: {why}")
        return out

    def contains(self, values: Mapping[str, Any]) -> bool:
        return not self.outside(values)

    def to_dict(self) -> dict[str, Any]:
        return {"margin": self.margin,
                "columns": {k: r.to_dict() for k, r in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: Any, where: str = "baton.json") -> Envelope:
        try:
            return cls({str(k): Region.from_dict(v) for k, v in d["columns"].items()},
                       float(d.get("margin", MARGIN)))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise BundleError(f"the envelope in {where} is malformed",
                              expected="envelope: {margin, columns: {NAME: {kind, min, max, "
                              "missing, categories}}}", found=f"{type(exc).__name__}: {exc}",
                              hint="re-create the bundle with 'baton convert'") from exc

    # -- observing ----------------------------------------------------------------------

    @classmethod
    def observe(cls, prepared: Any, margin: float = MARGIN,
                masks: Mapping[str, bool] | None = None) -> Envelope:
        """The envelope of ``prepared`` (the data as the original model takes it), named as
        the parity search names its columns. A tensor input named as a mask (or in
        ``masks``: name -> whether a set value marks padding) is a mask."""
        from baton.masks import mask_convention

        columns = {}
        for name, values in columns_of(prepared):
            padding = (masks or {}).get(name, mask_convention(name, values)
                                        if isinstance(prepared, Mapping) else None)
            columns[name] = (_observe(values, margin) if padding is None
                             else Region("mask", 0.0, 1.0, padding=padding, source=(
                                 "declared" if masks and name in masks else "sample")))
        return cls(columns, margin)

    def masks(self) -> dict[str, Region]:
        """The mask inputs, by name."""
        return {k: r for k, r in self.columns.items() if r.kind == "mask"}

    def with_mask_outputs(self, outputs: Mapping[str, tuple[str, ...]]) -> Envelope:
        """This envelope with each mask's aligned outputs named (mask -> output names)."""
        columns = dict(self.columns)
        for name, outs in outputs.items():
            columns[name] = replace(columns[name], outputs=tuple(outs))
        return replace(self, columns=columns)

    # -- the user's changes ---------------------------------------------------------------

    def with_overrides(self, specs: Iterable[str] | Mapping[str, Any], source: str
                       ) -> Envelope:
        """This envelope with columns widened or narrowed: ``NAME=LO..HI``, ``NAME=a,b``,
        ``NAME=nan`` (texts), or a mapping NAME -> text or list (``[tool.baton.envelope]``)."""
        items = (list(specs.items()) if isinstance(specs, Mapping)
                 else [_split_spec(s, source) for s in specs])
        columns = dict(self.columns)
        for name, value in items:
            name = str(name).strip()
            if name not in columns:
                raise UsageError(
                    f"{source}: no column {name!r} in the envelope",
                    expected="one of " + ", ".join(list(columns)[:30]),
                    found=repr(name),
                    hint="name a column of the model's input (a numpy matrix's are x0, x1, …)")
            columns[name] = _override(columns[name], name, value, source)
        return replace(self, columns=columns)


def columns_of(prepared: Any) -> list[tuple[str, Any]]:
    """(name, values) of every column: a DataFrame's by name, a dict's tensors by name, a
    2-D numeric array's as x0, x1, …, any other array as ``input``."""
    if type(prepared).__module__.split(".")[0] == "pandas" and hasattr(prepared, "columns"):
        return [(str(c), prepared[c]) for c in prepared.columns]
    if isinstance(prepared, Mapping):
        return [(str(k), np.asarray(v)) for k, v in prepared.items()]
    arr = np.asarray(prepared)
    if arr.ndim == 2 and arr.dtype.kind in "fiub":
        return [(f"x{j}", arr[:, j]) for j in range(arr.shape[1])]
    return [("input", arr)]


def _observe(values: Any, margin: float) -> Region:
    if hasattr(values, "dtype") and type(values).__module__.split(".")[0] == "pandas":
        import pandas as pd

        if isinstance(values.dtype, pd.CategoricalDtype):
            return _text(list(values.cat.categories), bool(values.isna().any()))
        arr = values.to_numpy()
        if arr.dtype.kind in "OUS" or pd.api.types.is_string_dtype(values.dtype):
            items = arr.tolist()
            return _text([v for v in items if not _missing(v)], any(map(_missing, items)))
        values = arr
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return Region("bool")
    if arr.dtype.kind in "OUS":
        items = arr.reshape(-1).tolist()
        return _text([v for v in items if not _missing(v)], any(map(_missing, items)))
    flat = arr.reshape(-1).astype(np.float64)
    finite = flat[np.isfinite(flat)]
    kind = "int" if arr.dtype.kind in "iu" else "float"
    if not finite.size:
        return Region(kind, None, None, True, source="sample")
    lo, hi = float(finite.min()), float(finite.max())
    pad = margin * (hi - lo if hi > lo else max(abs(lo), 1.0))
    low, high = lo - pad, hi + pad
    if kind == "int":
        low, high = float(math.floor(low)), float(math.ceil(high))
    return Region(kind, low, high, bool(np.isnan(flat).any()), observed=(lo, hi))


def _text(values: Sequence[Any], missing: bool) -> Region:
    cats = tuple(dict.fromkeys(str(v) for v in values))
    return Region("text", missing=missing,
                  categories=None if len(cats) > MAX_CATEGORIES else cats)


def _split_spec(spec: str, source: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"cannot read {source} {spec!r}", expected=ENVELOPE_FORMAT,
                         found=repr(spec), hint='e.g. --envelope "x0=0..4.5" or '
                         '--envelope "city=paris,lyon"')
    return name.strip(), value


def _number(text: str, spec: str, source: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        raise UsageError(f"cannot read {source} {spec!r}: {text!r} is not a number",
                         expected="LO..HI with numbers, e.g. 0..4.5 or ..100",
                         found=repr(text), hint="write the bounds as numbers") from None
    return None if math.isinf(v) else v


def _override(region: Region, name: str, value: Any, source: str) -> Region:
    items = ([str(v) for v in value] if isinstance(value, (list, tuple))
             else str(value).split(","))
    spec = f"{name}={value}"
    missing = any(i.strip().lower() == "nan" for i in items)
    rest = [i for i in items if i.strip().lower() != "nan"]
    if region.kind in ("float", "int"):
        if len(rest) > 1 or (rest and ".." not in rest[0]):
            raise UsageError(f"cannot read {source} {spec!r}",
                             expected=f"{name}=LO..HI (and/or nan) for a numeric column",
                             found=repr(spec), hint=f'e.g. "{name}=0..4.5" or "{name}=nan"')
        low, high = region.low, region.high
        if rest:
            lo_text, _, hi_text = rest[0].partition("..")
            low, high = _number(lo_text, spec, source), _number(hi_text, spec, source)
            if low is not None and high is not None and low > high:
                raise UsageError(f"{source} {spec!r}: the range is empty",
                                 expected="LO <= HI", found=f"{low:g} > {high:g}",
                                 hint="swap the bounds")
        return replace(region, low=low, high=high, missing=region.missing or missing,
                       source=source)
    if region.kind == "text":
        cats = tuple(i.strip() for i in rest) if rest else region.categories
        return replace(region, categories=cats, missing=region.missing or missing,
                       source=source)
    return replace(region, missing=region.missing or missing, source=source)
