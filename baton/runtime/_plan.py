"""Feed plans: how a DataFrame's columns, or records parsed from JSON, become a Session's
feeds, compiled once per Session so that a valid call costs little beside the model run.

Two fast paths, each falling back to the validated one whenever anything is unusual:

* :meth:`FeedPlan.frame_feeds` reads a DataFrame's columns from pandas' blocks (2-D arrays
  holding the columns of one dtype), a block at a time, instead of one ``frame[column]``
  per input (about 25 us each). It gives exactly the feeds :func:`baton.schema.to_feeds`
  gives; an input whose column is not a plain array of the input's dtype (or a number for a
  float input, text without missing values for a text input) is read by ``to_feeds``'s
  own code, and so are frames this plan cannot read (a missing or repeated column, no rows,
  pandas internals other than expected): their errors are ``to_feeds``'s.
* :meth:`FeedPlan.record_feeds` builds the feeds from dicts keyed by column name, without
  pandas: one ``numpy.array`` per input dtype over every record's values.

pandas' blocks are not public API (``DataFrame._mgr``); any attribute missing or of another
shape sends the frame down the public path. Only numpy here: pandas is never imported.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np

from baton.errors import InputValidationError, SchemaError
from baton.schema import TensorSpec, cast_to_spec, numpy_dtype
from baton.schema.rows import _frame_values

#: the Python types a record's value may have on the fast path, by the input's dtype kind
#: (anything else is looked at value by value: numpy scalars, ints 0/1 for a bool input,
#: None for a text input, values of a wrong type)
_FAST_TYPES: dict[str, frozenset[type]] = {
    "f": frozenset({float, int, type(None)}),  # None is NaN, as predict reads it
    "i": frozenset({int}),
    "b": frozenset({bool}),
    "O": frozenset({str}),
}

#: how a frame of one layout is read: groups of inputs read a block at a time, inputs read
#: one by one, matrix inputs gathered from several blocks
_Layout = tuple[list["_Group"], list[TensorSpec], list[tuple[TensorSpec, list[tuple[int, int]]]]]

#: pandas' arrays of text held by arrow (its default ``str`` dtype)
_ARROW_TEXT = ("ArrowStringArray", "ArrowStringArrayNumpySemantics")

_DICT = {dict}

#: the layouts (block numbers and places of the needed columns) a plan remembers
_LAYOUTS = 16


class _Group:
    """Inputs read together: one block of a frame (or one dtype of the records), one target
    dtype, one shape of feed."""

    __slots__ = ("block", "locs", "names", "specs", "target", "rank", "widths", "text1")

    def __init__(self, block: int, target: np.dtype[Any], rank: int) -> None:
        self.block = block
        self.target = target
        self.rank = rank  # 1: feeds [N]; 2: feeds [N, 1]; 0: feeds [N, k] (``widths``)
        self.names: list[str] = []
        self.specs: list[TensorSpec] = []
        self.locs: Any = []
        self.widths: list[int] = []
        #: one [N, 1] text input: read with the other arrow text columns, if it is one
        self.text1 = False


def _columns(spec: TensorSpec) -> list[str]:
    """The columns an input is read from, in order (none: the input's own name)."""
    if spec.columns is not None:
        return list(spec.columns)
    return [spec.column] if spec.column is not None else []


def _rank(spec: TensorSpec, width: int) -> int | None:
    """How a feed of ``width`` columns is shaped for ``spec`` on the fast path, or None."""
    if width == 1 and spec.columns is None:
        if len(spec.shape) == 1:
            return 1
        if len(spec.shape) == 2 and spec.shape[1] == 1:
            return 2
        return None
    if len(spec.shape) == 2 and spec.shape[1] in (None, width):
        return 0
    return None


def _split(sub: np.ndarray, group: _Group, n: int) -> list[np.ndarray]:
    """The feeds of ``group`` from its values ``sub`` [columns, N] (C-contiguous)."""
    if group.rank == 2:
        return list(sub.reshape(len(group.names), n, 1))
    if group.rank == 1:
        return list(sub)
    out, start = [], 0
    for width in group.widths:
        out.append(np.ascontiguousarray(sub[start:start + width].T))
        start += width
    return out


class FeedPlan:
    """Which column goes to which input, compiled from the bundle's input specs."""

    def __init__(self, inputs: Sequence[TensorSpec]) -> None:
        self.inputs = list(inputs)
        #: predict on a DataFrame reads every input from named columns (as to_feeds does)
        self.from_frame = bool(self.inputs) and all(s.from_frame for s in self.inputs)
        self._columns = list(dict.fromkeys(
            c for s in self.inputs for c in (s.columns or (s.column,)) if c is not None))
        #: the frame's column names last seen: (Index, its arrow array, names, positions)
        self._seen: tuple[Any, Any, list[Any], np.ndarray] | None = None
        self._layouts: dict[bytes, _Layout] = {}
        self._records = _RecordPlan(self.inputs)

    # -- DataFrames ----------------------------------------------------------------------

    def frame_feeds(self, frame: Any) -> dict[str, np.ndarray] | None:
        """``to_feeds(frame, inputs)``, faster; None where only to_feeds can tell."""
        if not self.from_frame:
            return None
        try:
            read = self._read_frame(frame)
        except Exception:  # noqa: BLE001 - pandas internals of another shape: the public path
            return None
        if read is None:
            return None
        feeds, slow = read
        for spec in slow:  # in the inputs' order: the first error is to_feeds's first
            feeds[spec.name] = cast_to_spec(_frame_values(frame, spec), spec)
        return feeds

    def _positions(self, columns: Any) -> np.ndarray | None:
        """Where the needed columns are among ``columns`` (a pandas Index), or None when
        one is missing or repeated."""
        seen = self._seen
        if seen is not None and columns is seen[0]:
            return seen[3]
        arrow = getattr(getattr(columns, "_values", None), "_pa_array", None)
        if seen is not None and arrow is not None and seen[1] is not None \
                and arrow.equals(seen[1]):
            self._seen = (columns, arrow, seen[2], seen[3])
            return seen[3]
        names = columns.tolist()
        if seen is not None and names == seen[2]:
            self._seen = (columns, arrow, names, seen[3])
            return seen[3]
        where = {name: i for i, name in enumerate(names) if type(name) is str}
        if len(where) != len(names) or len(set(names)) != len(names):
            return None
        if any(c not in where for c in self._columns):
            return None
        positions = np.array([where[c] for c in self._columns], dtype=np.intp)
        self._seen = (columns, arrow, names, positions)
        return positions

    def _read_frame(self, frame: Any) -> tuple[dict[str, np.ndarray], list[TensorSpec]] | None:
        positions = self._positions(frame.columns)
        if positions is None:
            return None
        mgr = frame._mgr
        blocks = mgr.blocks
        blknos, blklocs = mgr.blknos[positions], mgr.blklocs[positions]
        key = blknos.tobytes() + blklocs.tobytes()
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layout(blknos.tolist(), blklocs.tolist())
            if len(self._layouts) >= _LAYOUTS:
                self._layouts.clear()
            self._layouts[key] = layout
        groups, slow_specs, spread = layout
        n = len(frame)
        if n == 0:
            return None
        feeds: dict[str, np.ndarray] = {}
        slow = list(slow_specs)
        # pandas' default text columns, one arrow array each (always valid UTF-8), are
        # read together into one object array
        text_groups: list[_Group] = []
        text: list[Any] = []
        for group in groups:
            values = blocks[group.block].values
            if group.text1 and type(values).__name__ in _ARROW_TEXT:
                chunked = values._pa_array
                if chunked.null_count or len(chunked) != n:
                    slow.extend(group.specs)  # missing text: NaN, made "nan" by cast_to_spec
                else:
                    text_groups.append(group)
                    text.extend(chunked.to_pylist())
                continue
            arrays = _block_feeds(values, group, n)
            if arrays is None:
                slow.extend(group.specs)
            else:
                feeds.update(zip(group.names, arrays))
        for spec, places in spread:
            matrix = _spread_feed([blocks[b].values for b, _ in places],
                                  [loc for _, loc in places], numpy_dtype(spec.dtype))
            if matrix is None:
                slow.append(spec)
            else:
                feeds[spec.name] = matrix
        if text_groups:
            table = np.array(text, dtype=object)
            if len(table) == len(text) and _plain_text(table):
                feeds.update(zip((g.names[0] for g in text_groups),
                                 table.reshape(len(text_groups), n, 1)))
            else:
                slow.extend(g.specs[0] for g in text_groups)
        if len(slow) > len(slow_specs):
            order = {s.name: i for i, s in enumerate(self.inputs)}
            slow.sort(key=lambda s: order[s.name])
        return feeds, slow

    def _layout(self, blknos: list[int], blklocs: list[int]) -> _Layout:
        """The groups of inputs read a block at a time, the inputs read one by one, and the
        matrix inputs whose columns lie in several blocks (with each column's place)."""
        place = {c: (b, loc) for c, b, loc in zip(self._columns, blknos, blklocs)}
        groups: dict[tuple[int, str, int], _Group] = {}
        slow: list[TensorSpec] = []
        spread: list[tuple[TensorSpec, list[tuple[int, int]]]] = []
        for spec in self.inputs:
            cols = _columns(spec)
            blocks = {place[c][0] for c in cols}
            rank = _rank(spec, len(cols))
            if rank is None:
                slow.append(spec)
                continue
            if len(blocks) != 1:  # a matrix of columns kept in several blocks
                spread.append((spec, [place[c] for c in cols]))
                continue
            block = blocks.pop()
            group = groups.setdefault((block, spec.dtype, rank),
                                      _Group(block, numpy_dtype(spec.dtype), rank))
            group.names.append(spec.name)
            group.specs.append(spec)
            group.locs.extend(place[c][1] for c in cols)
            group.widths.append(len(cols))
        for group in groups.values():
            group.locs = np.array(group.locs, dtype=np.intp)
            group.text1 = group.rank == 2 and group.target.kind == "O" and len(group.names) == 1
        return list(groups.values()), slow, spread

    # -- records -------------------------------------------------------------------------

    def record_feeds(self, records: Any) -> dict[str, np.ndarray]:
        return self._records.feeds(records)


def _block_feeds(values: Any, group: _Group, n: int) -> list[np.ndarray] | None:
    """The feeds of ``group`` read from one block's ``values``, or None where the inputs'
    own conversion must decide (another dtype, text with missing values, an extension
    array other than pandas' arrow text)."""
    target = group.target
    if type(values) is np.ndarray and values.ndim == 2:
        dtype = values.dtype
        if target.kind == "O":
            if dtype.kind != "O":
                return None
            sub = values[group.locs]
            if not _plain_text(sub):
                return None
        elif _castable(dtype, target):
            sub = values[group.locs]
            if dtype != target:
                sub = sub.astype(target)  # as to_feeds casts (and rounds) them
        else:
            return None
        return _split(sub if sub.flags.c_contiguous else np.ascontiguousarray(sub), group, n)
    # pandas' default text columns: one arrow array per column (always valid UTF-8)
    if (target.kind == "O" and len(group.locs) == 1
            and type(values).__name__ in _ARROW_TEXT):
        chunked = values._pa_array
        if chunked.null_count:
            return None  # missing text: NaN, made "nan" by cast_to_spec
        column = chunked.to_numpy()
        if column.dtype.kind != "O" or len(column) != n:
            return None
        return _split(column.reshape(1, n), group, n)
    return None


def _spread_feed(blocks: list[Any], locs: list[int], target: np.dtype[Any]
                 ) -> np.ndarray | None:
    """A numeric [N, k] feed from columns in several blocks of one dtype (as
    ``frame[columns].to_numpy()`` gives them), or None."""
    if target.kind == "O" or any(type(v) is not np.ndarray or v.ndim != 2 for v in blocks):
        return None
    dtype = blocks[0].dtype
    if any(v.dtype != dtype for v in blocks):
        return None  # pandas finds a common dtype (bool and float: object): cast_to_spec's
    if not _castable(dtype, target):
        return None
    matrix = np.stack([v[loc] for v, loc in zip(blocks, locs)], axis=1)
    return matrix if dtype == target else matrix.astype(target)


def _castable(dtype: np.dtype[Any], target: np.dtype[Any]) -> bool:
    """Whether cast_to_spec (``narrow=True``) casts numbers of ``dtype`` to the numeric
    ``target`` with ``astype`` alone, refusing none: any number for a float input (rounded
    as the parity check rounded them), integers and booleans an integer input holds all
    of; the same dtype."""
    if dtype == target:
        return True
    if not dtype.isnative:
        return False
    if target.kind == "f":
        return dtype.kind in "fiub"
    return target.kind in "iu" and dtype.kind in "biu" and np.can_cast(dtype, target, "safe")


def _plain_text(values: np.ndarray) -> bool:
    """Every value is a str that UTF-8 can encode (no lone surrogate)."""
    try:
        text = "".join(values.reshape(-1))
    except TypeError:  # None, NaN, numbers: cast_to_spec makes text of them or refuses
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- records ------------------------------------------------------------------------------

#: what a record's value must be, by the input's dtype kind, for the errors
_WANT = {
    "f": "a number (or null, which runs as NaN)",
    "i": "a whole number",
    "b": "true or false (or 0/1)",
    "O": "a string (or null, which runs as the text 'None')",
}


def _kind(spec: TensorSpec) -> str:
    kind = numpy_dtype(spec.dtype).kind
    return "i" if kind == "u" else kind


def _acceptable(kind: str, v: Any) -> bool:
    """Whether ``v`` is of a type an input of this kind takes (its value is checked by
    cast_to_spec): JSON's numbers for numeric inputs (not booleans, not text), text for
    text inputs, null for float and text inputs."""
    if kind == "O":
        return v is None or isinstance(v, str)
    if isinstance(v, (bool, np.bool_)):
        return kind == "b"
    if v is None:
        return kind == "f"
    return isinstance(v, (int, float, np.integer, np.floating))


class _RecordPlan:
    """Feeds from records: dicts keyed by column name (the input's name where the input
    is not read from a column)."""

    def __init__(self, inputs: list[TensorSpec]) -> None:
        self.inputs = inputs
        self.keys: dict[str, None] = {}
        self.groups: list[_Group] = []
        self.getters: list[Callable[[Mapping[str, Any]], tuple[Any, ...]]] = []
        #: inputs whose record value is the row's whole value (no column): cast as a list
        self.whole: list[TensorSpec] = []
        groups: dict[tuple[str, int], _Group] = {}
        for spec in inputs:
            cols = _columns(spec)
            self.keys.update(dict.fromkeys(cols or [spec.name]))
            rank = _rank(spec, len(cols)) if cols else None
            if rank is None:
                self.whole.append(spec)
                continue
            group = groups.setdefault((spec.dtype, rank),
                                      _Group(-1, numpy_dtype(spec.dtype), rank))
            group.names.append(spec.name)
            group.specs.append(spec)
            group.locs.extend(cols)
            group.widths.append(len(cols))
        self.groups = list(groups.values())
        for group in self.groups:
            getter = operator.itemgetter(*group.locs)
            self.getters.append(getter if len(group.locs) > 1 else
                                (lambda r, g=getter: (g(r),)))  # type: ignore[misc]
        self.keyset = frozenset(self.keys)
        self.fast_types = [_FAST_TYPES[_kind(g.specs[0])] for g in self.groups]

    def feeds(self, records: Any) -> dict[str, np.ndarray]:
        if not self.inputs:
            raise SchemaError("the model declares no inputs", expected="at least one input",
                              found="none", hint="re-convert the model")
        if type(records) is dict:
            rows: Sequence[Any] = (records,)
        elif type(records) is list:
            rows = records
        else:
            rows = ()
        if (rows and not self.whole and set(map(type, rows)) == _DICT
                and set(map(len, rows)) == {len(self.keys)}):
            # dicts of the model's size: every key the plan reads present means exactly
            # the model's keys (a missing one is a KeyError: looked at below)
            try:
                feeds = self._fast(rows)
            except KeyError:
                feeds = None
            if feeds is not None:
                return feeds
        rows = self._rows(records)
        feeds = {}
        slow: list[TensorSpec] = list(self.whole)
        for group, getter, fast in zip(self.groups, self.getters, self.fast_types):
            arrays = _record_arrays(rows, group, getter, fast)
            if arrays is None:
                slow.extend(group.specs)
            else:
                feeds.update(zip(group.names, arrays))
        if slow:
            order = {s.name: i for i, s in enumerate(self.inputs)}
            for spec in sorted(slow, key=lambda s: order[s.name]):
                feeds[spec.name] = self._checked(spec, rows)
        return feeds

    def _fast(self, rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray] | None:
        """The feeds of records whose values all take the fast path, or None."""
        feeds: dict[str, np.ndarray] = {}
        for group, getter, fast in zip(self.groups, self.getters, self.fast_types):
            arrays = _record_arrays(rows, group, getter, fast)
            if arrays is None:
                return None
            feeds.update(zip(group.names, arrays))
        return feeds

    def _rows(self, records: Any) -> Sequence[Mapping[str, Any]]:
        keyset = self.keyset
        if isinstance(records, Mapping):
            rows: Sequence[Mapping[str, Any]] = (records,)
        elif isinstance(records, Sequence) and not isinstance(records, (str, bytes)):
            rows = records
        else:
            raise self._not_records(f"{type(records).__name__} {repr(records)[:60]}")
        if not rows:
            raise InputValidationError(
                "no records to predict on", expected="at least one record",
                found="an empty list", hint="pass one dict per row, keyed by column name")
        for i, row in enumerate(rows):
            if type(row) is dict:
                if row.keys() == keyset:
                    continue
            elif not isinstance(row, Mapping):
                raise self._not_records(f"{type(row).__name__} {repr(row)[:60]} at record {i}")
            elif set(row) == keyset:
                continue
            raise self._wrong_keys(i, row)
        return rows

    def _expected(self) -> str:
        keys = list(self.keys)
        shown = keys if len(keys) <= 8 else [*keys[:6], "...", keys[-1]]
        return (f"exactly the model's {len(keys)} key{'s' if len(keys) > 1 else ''}: "
                + ", ".join(k if k == "..." and len(keys) > 8 else repr(k) for k in shown))

    def _not_records(self, found: str) -> InputValidationError:
        first = next(iter(self.keys))
        return InputValidationError(
            "the records must be a dict, or a list of dicts, keyed by column name",
            expected=self._expected(), found=found,
            hint=f"pass e.g. {{{first!r}: value, ...}} for one row, or a list of them (as "
            "json.loads gives them); Session.predict takes a DataFrame or a dict of columns")

    def _wrong_keys(self, i: int, row: Mapping[Any, Any]) -> InputValidationError:
        missing = [k for k in self.keys if k not in row]
        unknown = [k for k in row if k not in self.keyset]
        what = []
        if missing:
            what.append("lacks " + ", ".join(map(repr, missing[:10]))
                        + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        if unknown:
            what.append("has unknown " + ", ".join(map(repr, unknown[:10]))
                        + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
        return InputValidationError(
            f"record {i} {' and '.join(what)}",
            expected=self._expected(),
            found=f"{len(row)} key{'s' if len(row) != 1 else ''}"
            + (", without " + ", ".join(map(repr, missing[:10])) if missing else "")
            + (", with unknown " + ", ".join(map(repr, unknown[:10])) if unknown else ""),
            hint="send exactly one value per column the model was trained on"
            + (f": add {', '.join(map(repr, missing[:10]))}" if missing else "")
            + ("; " if missing and unknown else ": " if unknown else "")
            + (f"remove {', '.join(map(repr, unknown[:10]))} (predict_records refuses "
               "keys it would ignore, as run refuses unknown feeds)" if unknown else ""))

    def _checked(self, spec: TensorSpec, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """One input's feed, its values looked at one by one: what predict does with the
        same values as a dict of columns, with values of the wrong type refused."""
        cols = _columns(spec)
        if not cols:  # the row's whole value, as predict takes a dict of columns
            return cast_to_spec([r[spec.name] for r in rows], spec)
        kind = _kind(spec)
        for i, row in enumerate(rows):
            for col in cols:
                v = row[col]
                if not _acceptable(kind, v):
                    shown = repr(v)
                    raise InputValidationError(
                        f"input {spec.name!r}: expected {spec.describe()}, got "
                        f"{type(v).__name__} {shown[:40]} for {col!r} in record {i}",
                        expected=f"{_WANT[kind]} for {col!r}",
                        found=f"{type(v).__name__} {shown[:200]}",
                        hint=f"send {_WANT[kind]} for {col!r}"
                        + (" (predict_records does not parse text as numbers)"
                           if isinstance(v, str) else ""))
        values: list[Any] = ([r[cols[0]] for r in rows] if spec.columns is None
                             else [[r[c] for c in cols] for r in rows])
        try:
            return cast_to_spec(values, spec)
        except InputValidationError as exc:
            types = sorted({type(v).__name__ for v in chain.from_iterable(
                x if isinstance(x, list) else [x] for x in values)})
            raise InputValidationError(
                f"input {spec.name!r}: expected {spec.describe()}, got values it cannot hold "
                f"for {', '.join(map(repr, cols[:5]))}",
                expected=spec.describe(),
                found=f"{len(values)} record(s) of {', '.join(types)}",
                hint=exc.hint) from exc


def _record_arrays(rows: Sequence[Mapping[str, Any]], group: _Group,
                   getter: Callable[[Mapping[str, Any]], tuple[Any, ...]],
                   fast: frozenset[type]) -> list[np.ndarray] | None:
    """The feeds of ``group`` from the records' values, or None where they need looking
    at one by one (a type the fast path does not take, an int beyond the input's range,
    text a lone surrogate spoils)."""
    values = list(chain.from_iterable(map(getter, rows)))  # row by row
    if not set(map(type, values)) <= fast:
        return None
    target = group.target
    try:
        table = np.array(values, dtype=target)
    except (OverflowError, ValueError, TypeError):
        return None
    if target.kind == "O" and not _plain_text(table):
        return None
    n = len(rows)
    k = len(group.locs)
    sub = table.reshape(k, 1) if n == 1 else np.ascontiguousarray(table.reshape(n, k).T)
    return _split(sub, group, n)
