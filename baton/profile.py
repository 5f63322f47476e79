"""The profile: what the conversion sample looked like, kept to measure drift against.

At conversion baton records, per input column (named as the envelope names them,
:func:`baton.envelope.columns_of`), how the sample's values were distributed:

- a numeric column: the quantile bin edges of its values (deciles by default, equal edges
  merged), the outer bins open-ended (``(-inf, e0]`` … ``(e_last, inf)``), the share of the
  sample's values in each bin, and the share of missing values (NaN);
- a text or categorical column: the frequencies of its most frequent categories (at most
  :data:`MAX_PROFILE_CATEGORIES`; the rest pooled as ``other``) and the missing share;
- a boolean column: the two categories ``false`` and ``true``;
- a tensor input (several values per row): profiled as above over all its values; a tensor
  of another kind is skipped with the reason;
- an attention mask: skipped (its region in the envelope says what a mask may hold).

:meth:`Profile.psi` measures how far new values have moved from the sample: the
population stability index over the same bins (plus one for missing values). PSI below
0.1 is usually read as no shift, 0.1 to 0.2 as a moderate one, above 0.2 as a large one.

A leaf of the package: numpy only (pandas is read only when handed a DataFrame).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baton.envelope import _missing, columns_of
from baton.errors import BundleError

#: the profile layout this baton writes and reads
PROFILE_FORMAT = "baton-profile/1"
#: number of quantile bins of a numeric column (deciles)
BINS = 10
#: categories kept by name per text column; the rest are pooled as ``other``
MAX_PROFILE_CATEGORIES = 20
#: added to every bin's share before PSI's logarithm, so an empty bin stays finite
SMOOTHING = 1e-4
#: the labels of the pooled bins
OTHER, MISSING = "other", "missing"


@dataclass(frozen=True)
class ColumnProfile:
    """The distribution of one column of the conversion sample."""

    kind: str  # numeric, categorical, skipped
    #: values observed (rows, or all values of a tensor)
    values: int = 0
    #: share of missing values among them
    missing: float = 0.0
    #: numeric: the interior bin edges, increasing; a value v falls in the first bin whose
    #: edge is >= v (the last bin: above every edge)
    edges: tuple[float, ...] = ()
    #: numeric: share of all values in each of the len(edges) + 1 bins (missing excluded)
    shares: tuple[float, ...] = ()
    #: categorical: share of all values per category kept by name
    categories: dict[str, float] = field(default_factory=dict)
    #: categorical: share of the categories pooled as ``other``
    other: float = 0.0
    #: skipped: why
    reason: str | None = None

    def bin_labels(self) -> list[str]:
        """The name of each bin PSI is computed over (the missing bin last)."""
        if self.kind == "numeric":
            e = [f"{x:.6g}" for x in self.edges]
            if not e:
                labels = ["all values"]
            else:
                labels = [f"<= {e[0]}"] + [f"({a}, {b}]" for a, b in zip(e, e[1:])] + [
                    f"> {e[-1]}"]
        else:
            labels = [*self.categories, OTHER]
        return [*labels, MISSING]

    def expected(self) -> np.ndarray:
        """The sample's share per bin, in the order of :meth:`bin_labels`."""
        body = self.shares if self.kind == "numeric" else (*self.categories.values(), self.other)
        return np.array([*body, self.missing], dtype=np.float64)

    def counts(self, values: Any) -> np.ndarray:
        """How many of ``values`` fall in each bin (order of :meth:`bin_labels`)."""
        if self.kind == "numeric":
            return _numeric_counts(_flat(values), self.edges)
        if self.kind == "categorical":
            items = _items(values)
            index = {c: i for i, c in enumerate(self.categories)}
            counts = np.zeros(len(index) + 2, dtype=np.int64)
            for v in items:
                if _missing(v):
                    counts[-1] += 1
                else:
                    counts[index.get(_category(v), len(index))] += 1
            return counts
        raise ValueError(f"a skipped column has no bins ({self.reason})")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "skipped":
            out["reason"] = self.reason
            return out
        out.update(values=self.values, missing=self.missing)
        if self.kind == "numeric":
            out.update(edges=list(self.edges), shares=list(self.shares))
        else:
            out.update(categories=dict(self.categories), other=self.other)
        return out


@dataclass(frozen=True)
class PsiDetail:
    """A PSI and what it was computed from."""

    psi: float
    labels: list[str]
    #: the conversion sample's share per bin
    expected: list[float]
    #: how many new values fell in each bin
    counts: list[int]

    @property
    def values(self) -> int:
        return int(sum(self.counts))


@dataclass(frozen=True)
class Profile:
    """The conversion sample's distribution, per column, by the envelope's names."""

    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    #: rows of the conversion sample
    rows: int = 0
    bins: int = BINS

    # -- observing ----------------------------------------------------------------------

    @classmethod
    def observe(cls, prepared: Any, bins: int = BINS, masks: Iterable[str] = ()) -> Profile:
        """The profile of ``prepared`` (the data as the original model takes it). Inputs
        named in ``masks`` (or, in a dict of tensors, masks by their name: see
        :mod:`baton.masks`) are skipped."""
        from baton.masks import mask_convention

        if bins < 1:
            raise ValueError(f"bins must be at least 1, not {bins}")
        skip = set(masks)
        columns = {}
        rows = 0
        for name, values in columns_of(prepared):
            rows = max(rows, int(len(values)) if np.ndim(values) else 1)
            if name in skip or (isinstance(prepared, Mapping)
                                and mask_convention(name, values) is not None):
                columns[name] = ColumnProfile("skipped", reason="an attention mask")
            else:
                try:
                    columns[name] = _observe(values, bins)
                except (TypeError, ValueError) as exc:  # values neither numbers nor text
                    columns[name] = ColumnProfile("skipped", reason=(
                        f"cannot be profiled: {type(exc).__name__}: {exc}")[:200])
        return cls(columns, rows, bins)

    # -- measuring ----------------------------------------------------------------------

    def compare(self, column: str, values: Any) -> PsiDetail:
        """PSI of ``values`` against the sample's ``column``, with the bins and counts.

        PSI = sum over bins of (a - e) * ln(a / e), where e is the sample's share of a bin
        and a the new values' share; both are smoothed first, p -> (p + s) / (1 + k*s)
        with s = :data:`SMOOTHING` and k bins, so a bin empty on either side adds a large
        but finite term. Raises KeyError for a column the profile lacks and ValueError for
        a skipped one or for no values."""
        col = self.columns[column]
        if col.kind == "skipped":
            raise ValueError(f"{column} is not profiled: {col.reason}")
        counts = col.counts(values)
        total = int(counts.sum())
        if total == 0:
            raise ValueError(f"no values of {column} to compare")
        expected = col.expected()
        return PsiDetail(psi(expected, counts / total), col.bin_labels(),
                         [float(e) for e in expected], [int(c) for c in counts])

    def psi(self, column: str, values: Any) -> float:
        """The population stability index of ``values`` against the sample's ``column``
        (:meth:`compare` says how; it also returns the counts used)."""
        return self.compare(column, values).psi

    # -- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in baton.json under ``profile`` (finite numbers only)."""
        return {"format": PROFILE_FORMAT, "rows": self.rows, "bins": self.bins,
                "columns": {k: c.to_dict() for k, c in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: Any, where: str = "baton.json") -> Profile:
        """The profile of its JSON form ``d``; a BundleError names what is malformed."""
        def bad(problem: str) -> BundleError:
            return BundleError(
                f"the profile in {where} is malformed",
                expected="profile: {format: " + PROFILE_FORMAT + ", rows, bins, columns: "
                "{NAME: {kind: numeric, values, missing, edges, shares} | {kind: categorical, "
                "values, missing, categories, other} | {kind: skipped, reason}}}",
                found=problem[:300], hint="re-create the bundle with 'baton convert'")

        if not isinstance(d, dict):
            raise bad(f"profile: {type(d).__name__}, not an object")
        if d.get("format") != PROFILE_FORMAT:
            raise bad(f"profile.format: {d.get('format')!r}")
        rows, bins, columns = d.get("rows"), d.get("bins"), d.get("columns")
        for key, v in (("rows", rows), ("bins", bins)):
            if not _count(v):
                raise bad(f"profile.{key}: {v!r}, not an integer >= 0")
        if not isinstance(columns, dict):
            raise bad(f"profile.columns: {type(columns).__name__}, not an object")
        out = {}
        for name, c in columns.items():
            path = f"profile.columns.{name}"
            if not isinstance(c, dict):
                raise bad(f"{path}: {type(c).__name__}, not an object")
            kind = c.get("kind")
            if kind == "skipped":
                out[str(name)] = ColumnProfile("skipped", reason=str(c.get("reason", "")))
                continue
            if kind not in ("numeric", "categorical"):
                raise bad(f"{path}.kind: {kind!r}, not numeric, categorical or skipped")
            if not _count(c.get("values")):
                raise bad(f"{path}.values: {c.get('values')!r}, not an integer >= 0")
            missing = c.get("missing")
            if not _share(missing):
                raise bad(f"{path}.missing: {missing!r}, not a share in [0, 1]")
            if kind == "numeric":
                edges, shares = c.get("edges"), c.get("shares")
                if not isinstance(edges, list) or not all(_finite(e) for e in edges):
                    raise bad(f"{path}.edges: {edges!r}, not a list of finite numbers")
                if any(b <= a for a, b in zip(edges, edges[1:])):
                    raise bad(f"{path}.edges: {edges!r}, not increasing")
                if not isinstance(shares, list) or len(shares) != len(edges) + 1 or not all(
                        _share(s) for s in shares):
                    raise bad(f"{path}.shares: {shares!r}, not {len(edges) + 1} shares "
                              "in [0, 1] (one more than the edges)")
                body = [float(s) for s in shares]
                col = ColumnProfile("numeric", int(c["values"]), float(c["missing"]),
                                    tuple(float(e) for e in edges), tuple(body))
            else:
                cats, other = c.get("categories"), c.get("other")
                if not isinstance(cats, dict) or not all(_share(s) for s in cats.values()):
                    raise bad(f"{path}.categories: {cats!r}, not an object of shares")
                if not _share(other):
                    raise bad(f"{path}.other: {other!r}, not a share in [0, 1]")
                body = [float(s) for s in cats.values()] + [float(c["other"])]
                col = ColumnProfile("categorical", int(c["values"]), float(c["missing"]),
                                    categories={str(k): float(s) for k, s in cats.items()},
                                    other=float(c["other"]))
            if col.values and abs(sum(body) + col.missing - 1.0) > 1e-6:
                raise bad(f"{path}: its shares add up to {sum(body) + col.missing:.6g}, not 1")
            out[str(name)] = col
        return cls(out, int(rows), int(bins))  # type: ignore[arg-type]


def psi(expected: Any, actual: Any, smoothing: float = SMOOTHING) -> float:
    """PSI of the shares ``actual`` against ``expected`` (same bins, each adding up to 1),
    each smoothed as ``(p + smoothing) / (1 + k * smoothing)`` first."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    k = e.size
    e = (e + smoothing) / (1 + k * smoothing)
    a = (a + smoothing) / (1 + k * smoothing)
    return float(np.sum((a - e) * np.log(a / e)))


# -- observing one column ------------------------------------------------------------------


def _observe(values: Any, bins: int) -> ColumnProfile:
    if hasattr(values, "dtype") and type(values).__module__.split(".")[0] == "pandas":
        import pandas as pd

        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype.kind in "OUS" or (
                pd.api.types.is_string_dtype(values.dtype)):
            return _categorical(values.to_numpy(dtype=object).tolist())
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return _categorical(["true" if v else "false" for v in arr.reshape(-1).tolist()],
                            keep=("false", "true"))
    if arr.dtype.kind in "OUS":
        return _categorical(arr.reshape(-1).tolist())
    if arr.dtype.kind not in "fiu":
        return ColumnProfile("skipped", reason=f"values of dtype {arr.dtype}, neither numbers "
                             "nor text")
    flat = arr.reshape(-1).astype(np.float64)
    if flat.size == 0:
        return ColumnProfile("skipped", reason="no values")
    nan = np.isnan(flat)
    finite = flat[np.isfinite(flat)]
    edges: tuple[float, ...] = ()
    if finite.size and bins > 1:
        qs = np.quantile(finite, np.arange(1, bins) / bins)
        edges = tuple(float(e) for e in np.unique(qs))
    counts = _numeric_counts(flat, edges)
    n = flat.size
    return ColumnProfile("numeric", int(n), float(nan.sum() / n), edges,
                         tuple(float(c / n) for c in counts[:-1]))


def _numeric_counts(flat: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Counts per bin (values <= edges[0], …, > edges[-1]) and, last, of missing values."""
    nan = np.isnan(flat)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), flat[~nan], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)
    return np.append(counts, int(nan.sum()))


def _categorical(items: list[Any], keep: tuple[str, ...] = ()) -> ColumnProfile:
    n = len(items)
    if n == 0:
        return ColumnProfile("skipped", reason="no values")
    missing = sum(1 for v in items if _missing(v))
    freq = Counter(_category(v) for v in items if not _missing(v))
    kept = list(keep) or [c for c, _ in freq.most_common(MAX_PROFILE_CATEGORIES)]
    cats = {c: freq.get(c, 0) / n for c in kept}
    other = (n - missing - sum(freq.get(c, 0) for c in kept)) / n
    return ColumnProfile("categorical", n, missing / n, categories=cats, other=float(other))


def _category(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    return str(v)


def _items(values: Any) -> list[Any]:
    if type(values).__module__.split(".")[0] == "pandas":
        return list(values.to_numpy(dtype=object).tolist())
    return list(np.asarray(values, dtype=object).reshape(-1).tolist())


def _flat(values: Any) -> np.ndarray:
    if type(values).__module__.split(".")[0] == "pandas":
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _share(v: Any) -> bool:
    return _finite(v) and 0.0 <= float(v) <= 1.0


__all__ = ["BINS", "ColumnProfile", "Profile", "PsiDetail", "psi"]
