"""The values the search puts into rows: each column's edge cases, a split threshold's
float neighbours, values drawn at random mostly inside the envelope (and some just beyond
its edges), and the hypothesis strategy for a column's value (inside the envelope).

numpy only at load time; hypothesis is imported when a strategy is built.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from baton.parity.search.tables import Column

#: the category that no column holds: an unseen category
UNSEEN = "baton-unseen-category"


# -- candidate values ------------------------------------------------------------------


def edge_values(col: Column) -> list[tuple[str, Any]]:
    """(label, value) edge cases for one column, valid for its dtype."""
    if col.kind == "mask":  # the shortest rows each way, a full one, and an empty one
        return [("one token, right-padded", mask_row(col, 1, left=False)),
                ("one token, left-padded", mask_row(col, 1, left=True)),
                ("every token", mask_row(col, col.shape[0], left=False)),
                ("no token", mask_row(col, 0, left=False))]
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
    big = 1e4 if fi.bits <= 16 else 1e30 if fi.bits <= 32 else 1e15
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
    with np.errstate(over="ignore"):  # beyond float16's range: inf, as the data would be
        return [(k, float(ftype(v))) for k, v in vals]


def mask_row(col: Column, length: int, *, left: bool) -> np.ndarray:
    """One row of a mask column that attends to ``length`` tokens, padded on the left or
    the right."""
    seq = col.shape[0]
    pos = np.arange(seq)
    keep = pos >= seq - length if left else pos < length
    return (~keep if col.padding else keep).astype(col.dtype)


def neighbours(t: float) -> list[float]:
    """A threshold, its float64 neighbours, and its float32 value with its neighbours."""
    with np.errstate(over="ignore"):
        f32 = np.float32(t)
        out = {t, float(np.nextafter(t, -np.inf)), float(np.nextafter(t, np.inf)), float(f32),
               float(np.nextafter(f32, np.float32(-np.inf))),
               float(np.nextafter(f32, np.float32(np.inf)))}
    return sorted(v for v in out if math.isfinite(v))


def _random_value(col: Column, rng: np.random.Generator) -> Any:
    """One value drawn for the column: mostly inside the envelope (a value of the data, or
    a number across the inside range), some just beyond its edges (up to a tenth of the
    inside range), now and then an unseen category."""
    u = rng.random()
    if col.kind == "mask":  # padded on either side to any length of at least one token
        return mask_row(col, int(rng.integers(1, col.shape[0] + 1)), left=u < 0.5)
    if col.kind == "bool":
        return bool(rng.random() < 0.5)
    if col.kind in ("text", "category"):
        if u < 0.03 or not col.categories:
            return UNSEEN
        return col.categories[int(rng.integers(len(col.categories)))]
    size = col.shape
    near = 0.1 * (col.inside_span if col.inside_span > 0 else max(1.0, abs(col.inside_hi)))
    if col.kind == "int":
        lo, hi = int(math.floor(col.inside_lo)), int(math.ceil(col.inside_hi))
        if col.shape:  # a tensor of integers holds ids, masks, indices: kept to the data's
            lo, hi = int(col.lo), int(col.hi)
        elif u >= 0.85:  # just beyond an edge
            pad = max(1, int(near))
            lo, hi = (hi + 1, hi + pad) if rng.random() < 0.5 else (lo - pad, lo - 1)
        drawn = rng.integers(lo, hi + 1, size=size)
        return drawn.astype(col.dtype) if size else int(drawn)
    v: Any
    if u < 0.2 and col.observed.size:
        v = rng.choice(col.observed, size=size)
    elif u < 0.3 and col.has_nan:
        v = np.full(size, np.nan)
    elif u < 0.85:
        v = rng.uniform(col.inside_lo, col.inside_hi, size=size)
    elif rng.random() < 0.5:
        v = rng.uniform(col.inside_hi, col.inside_hi + near, size=size)
    else:
        v = rng.uniform(col.inside_lo - near, col.inside_lo, size=size)
    return np.asarray(v, dtype=col.dtype) if size else float(col.dtype.type(v))


def _strategy(col: Column, points: list[float]) -> Any:
    """A hypothesis strategy for one column's value in a row."""
    from hypothesis import strategies as st

    if col.kind == "mask":
        return st.tuples(st.integers(1, col.shape[0]), st.booleans()).map(
            lambda t: mask_row(col, t[0], left=t[1]))
    if col.kind == "bool":
        return st.booleans()
    if col.kind in ("text", "category"):
        return st.sampled_from(list(col.categories) + ["", UNSEEN])
    # the edge values are the edge stage's: here they would mostly make rows the original
    # rejects (inf, 1e308), each costing a run of its own to find
    if col.kind == "int":
        if col.shape:  # ids, masks, indices: the data's own range
            elem = st.integers(int(col.lo), int(col.hi))
        else:  # inside the envelope
            elem = st.integers(int(math.floor(col.inside_lo)), int(math.ceil(col.inside_hi)))
    else:
        width: Literal[32, 64] = 32 if col.dtype.itemsize == 4 else 64
        lo, hi = col.inside_lo, col.inside_hi  # inside the envelope
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
