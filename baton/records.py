"""Recorded traffic: the Parquet records ``baton serve --record DIR`` writes, and reading
them back for ``baton recheck``.

One Parquet file per flush, under ``DIR/YYYY-MM-DD/`` (the UTC day of its first row), named
``records-<UTC yyyymmddTHHMMSS of its first row>-<pid>-<seq>.parquet``; each is written to a
hidden temporary name in that directory and renamed into place, so a reader never sees a
partial file. Columns:

- the inputs, named as the envelope names them (:func:`baton.envelope.columns_of` of the data
  the original model takes): an input read from a DataFrame column (``spec.column``) is a
  scalar column of that name, one read from several (``spec.columns``) one scalar column per
  name; a single 2-D numeric input without column names is ``x0``, ``x1``, …; any other
  input a column named like it, a scalar for a ``[N]`` input, else a list of each row's
  values, flattened (the row's shape is the input's, kept in the metadata);
- the outputs served, as ``output:<ONNX output name>`` (a scalar for a ``[N]`` output, else
  a list as above); null in the rows of a request that asked for other outputs only;
- ``baton:time``: when the request was answered (timestamp, UTC).

The schema's metadata key ``baton`` holds JSON: ``{"format": "baton-records/1", "model",
"digest" (the bundle's, or null), "inputs": [TensorSpec.to_dict()], "outputs": [...]}``, from
which the layout is derived again on reading.

A leaf of the package: numpy at import; pyarrow and pandas only inside the functions that
need them.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import BatonError, UsageError, first_line, require
from baton.schema.spec import BATCH, TensorSpec, numpy_dtype

FORMAT = "baton-records/1"
#: the Parquet schema metadata key holding the layout
METADATA_KEY = b"baton"
#: the column of each row's time
TIME = "baton:time"
#: the prefix of the served outputs' columns
OUTPUT = "output:"
#: how the files are named (glob), and exactly (what rotation may delete)
GLOB = "records-*.parquet"
NAME = re.compile(r"records-\d{8}T\d{6}-\d+-\d+\.parquet")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: the forms the data takes on reading (what the original model takes)
FRAME, MATRIX, TENSORS = "frame", "matrix", "tensors"

_SEQ = itertools.count(1)


@dataclass(frozen=True)
class Column:
    """One Parquet column of the records and where its values come from."""

    #: the column's name in the file
    name: str
    #: the input (or output) it holds
    source: str
    #: the position along axis 1 of the [N, k] input it is taken from; None: all of it
    index: int | None
    dtype: str
    #: each row's shape: () for a scalar column; may hold None (a dynamic dimension)
    shape: tuple[int | None, ...]
    #: whether the tensor's first axis is the row (else the whole tensor is in every row)
    batched: bool = True

    @property
    def scalar(self) -> bool:
        return self.shape == ()

    @property
    def size(self) -> int | None:
        """Values per row; None when a dimension is dynamic."""
        if any(not isinstance(d, int) for d in self.shape):
            return None
        return math.prod(int(d) for d in self.shape if d is not None)


@dataclass(frozen=True)
class Layout:
    """How a model's feeds and outputs map onto the records' columns."""

    model: str
    digest: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: the form the inputs are read back in: FRAME (a DataFrame), MATRIX (one 2-D array,
    #: columns x0, x1, …) or TENSORS (a dict of arrays, or the array of a single input)
    form: str
    columns: tuple[Column, ...]
    served: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        """Every column of the records, in order."""
        return [c.name for c in self.columns] + [c.name for c in self.served] + [TIME]

    def metadata(self) -> dict[str, Any]:
        return {"format": FORMAT, "model": self.model, "digest": self.digest,
                "inputs": [s.to_dict() for s in self.inputs],
                "outputs": [s.to_dict() for s in self.outputs]}

    def differs(self, other: Layout) -> str | None:
        """What differs between this layout and ``other`` (None when they are the same):
        the inputs and outputs by name, dtype, shape and columns (a bundle's digest or
        name may change between files of one model's records)."""
        for what, mine, theirs in (("inputs", self.inputs, other.inputs),
                                   ("outputs", self.outputs, other.outputs)):
            a, b = [_signature(s) for s in mine], [_signature(s) for s in theirs]
            if a != b:
                return f"{what} {_describe(mine)} vs {_describe(theirs)}"
        return None


def _signature(spec: TensorSpec) -> tuple[Any, ...]:
    return (spec.name, spec.dtype, tuple(spec.shape), spec.column, spec.columns)


def _describe(specs: Sequence[TensorSpec], most: int = 6) -> str:
    text = ", ".join(f"{s.name} {s.describe()}" for s in specs[:most])
    return text + (f", … ({len(specs)} in all)" if len(specs) > most else "")


def layout(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], *, model: str,
           digest: str | None = None) -> Layout:
    """The records' layout for a model with these inputs and outputs (a bundle's specs)."""
    if not inputs:
        raise UsageError(f"model {model!r} declares no inputs: there is nothing to record",
                         expected="at least one input", found="none",
                         hint="re-convert the model")
    inputs, outputs = tuple(inputs), tuple(outputs)
    columns: list[Column] = []
    if all(s.from_frame for s in inputs):
        form = FRAME
        for s in inputs:
            if s.columns is not None:
                columns += [Column(c, s.name, j, s.dtype, ()) for j, c in enumerate(s.columns)]
            else:
                assert s.column is not None
                columns.append(Column(s.column, s.name, None, s.dtype, ()))
    elif (len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[0] == BATCH
          and isinstance(inputs[0].shape[1], int) and inputs[0].dtype != "string"):
        form = MATRIX
        s = inputs[0]
        k = int(s.shape[1])  # type: ignore[arg-type]
        columns = [Column(f"x{j}", s.name, j, s.dtype, ()) for j in range(k)]
    else:
        form = TENSORS
        columns = [_tensor_column(s.name, s) for s in inputs]
    served = [_tensor_column(OUTPUT + s.name, s) for s in outputs]
    names = [c.name for c in columns] + [c.name for c in served] + [TIME]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(
            f"model {model!r} cannot be recorded: the records would hold the column"
            f"{'s' if len(repeated) > 1 else ''} {', '.join(map(repr, repeated))} twice",
            expected="distinct column names", found=", ".join(names[:12]),
            hint="rename the inputs or outputs named like another's column (or "
            f"{TIME!r}) and re-convert the model")
    return Layout(model, digest, inputs, outputs, form, tuple(columns), tuple(served))


def _tensor_column(name: str, spec: TensorSpec) -> Column:
    batched = bool(spec.shape) and spec.shape[0] == BATCH
    row = spec.shape[1:] if batched else spec.shape
    shape = tuple(d if isinstance(d, int) else None for d in row)
    if batched and shape == (1,) and spec.column is not None:
        shape = ()
    return Column(name, spec.name, None, spec.dtype, shape, batched)


def layout_of_metadata(meta: Mapping[str, Any]) -> Layout:
    """The layout a file's ``baton`` metadata describes (ValueError, KeyError, TypeError when
    it is malformed)."""
    if meta.get("format") != FORMAT:
        raise ValueError(f"format {meta.get('format')!r}, not {FORMAT!r}")
    inputs = [TensorSpec.from_dict(d) for d in meta["inputs"]]
    outputs = [TensorSpec.from_dict(d) for d in meta["outputs"]]
    for spec in (*inputs, *outputs):
        numpy_dtype(spec.dtype)  # SchemaError for a dtype baton does not know
    return layout(inputs, outputs,
                  model=str(meta.get("model") or "model"), digest=meta.get("digest"))


# -- writing ------------------------------------------------------------------------------------

Batch = tuple[Any, Mapping[str, np.ndarray], Mapping[str, np.ndarray]]


def batch_rows(lay: Layout, feeds: Mapping[str, Any]) -> int:
    """The rows of one request's feeds: the first axis of its first batched input."""
    for c in lay.columns:
        if c.batched:
            arr = feeds[c.source]
            return int(arr.shape[0]) if getattr(arr, "ndim", 0) else 1
    return 1


def records_table(lay: Layout, batches: Sequence[Batch]) -> Any:
    """A pyarrow Table of ``batches``: (time, feeds, outputs) of each request, ``time`` as
    seconds since the epoch (or a datetime), feeds and outputs as the server holds them
    (arrays of shape [rows, ...] in the ONNX dtypes, text as object arrays of str). An
    output missing from a request's outputs is null in its rows; a feed that does not fit
    its input's shape is a ValueError naming it."""
    pa = require("pyarrow", "serve", "Recording traffic")
    rows = [batch_rows(lay, feeds) for _, feeds, _ in batches]
    total = sum(rows)
    for (_, feeds, _), n in zip(batches, rows):
        for spec in lay.inputs:
            _check_feed(spec, feeds.get(spec.name), n)
    arrays = [_column(pa, c, [feeds.get(c.source) for _, feeds, _ in batches], rows,
                      strict=True) for c in lay.columns]
    arrays += [_column(pa, c, [outs.get(c.source) for _, _, outs in batches], rows)
               for c in lay.served]
    micros = np.repeat(np.array([_micros(t) for t, _, _ in batches], dtype=np.int64),
                       np.asarray(rows, dtype=np.int64)) if batches else np.zeros(0, np.int64)
    arrays.append(pa.array(micros, type=pa.timestamp("us", tz="UTC")))
    schema = pa.schema([pa.field(n, a.type) for n, a in zip(lay.names, arrays)],
                       metadata={METADATA_KEY: json.dumps(lay.metadata()).encode()})
    table = pa.Table.from_arrays(arrays, schema=schema)
    assert table.num_rows == total
    return table


def _check_feed(spec: TensorSpec, arr: Any, rows: int) -> None:
    """ValueError unless ``arr`` holds ``rows`` rows of the input's values (as many per row
    as its shape says)."""
    batched = bool(spec.shape) and spec.shape[0] == BATCH
    dims = [d if isinstance(d, int) else None for d in spec.shape]
    if arr is None:
        fits, found = False, "nothing"
    else:
        shape = np.shape(arr)
        found = f"shape {list(shape)}"
        fits = not batched or (len(shape) >= 1 and shape[0] == rows and (
            None in dims[1:] or math.prod(shape[1:]) == math.prod(
                d for d in dims[1:] if d is not None)))
    if not fits:
        raise ValueError(f"input {spec.name!r}: expected {rows} rows of shape "
                         f"{_dims(dims[1:] if batched else dims)}, found {found}")


def _micros(t: Any) -> int:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return int(round(t.timestamp() * 1e6))
    return int(round(float(t) * 1e6))


def _arrow_type(pa: Any, dtype: str) -> Any:
    return {"float32": pa.float32(), "float64": pa.float64(), "float16": pa.float16(),
            "int64": pa.int64(), "int32": pa.int32(), "bool": pa.bool_(),
            "string": pa.string()}[dtype]


def _column(pa: Any, c: Column, parts: Sequence[Any], rows: Sequence[int], *,
            strict: bool = False) -> Any:
    """The Arrow array of column ``c`` from each request's array (None: not served; with
    ``strict``, an array missing or of another shape is a ValueError)."""
    kind = _arrow_type(pa, c.dtype)
    want = numpy_dtype(c.dtype)
    size = c.size
    width = 1 if c.scalar else size  # values per row; None: dynamic
    flats: list[np.ndarray] = []
    lengths: list[int] = []
    valid: list[bool] = []
    for part, n in zip(parts, rows):
        if n == 0:
            continue
        arr = _row_values(part, c, n)
        ok = arr is not None and (width is None or arr.shape[1] == width)
        if strict and not ok:
            found = "nothing" if part is None else f"shape {list(np.shape(part))}"
            raise ValueError(f"input {c.source!r}: expected {n} rows of shape "
                             f"{_dims(c.shape)}, found {found}")
        if not ok or arr is None:  # recorded as missing: placeholders under a null
            arr = np.full((n, width or 0), "" if want.kind == "O" else 0, dtype=want)
        elif arr.dtype != want:
            arr = arr.astype(want)
        flats.append(arr.reshape(-1))
        lengths += [arr.shape[1]] * n
        valid += [ok] * n
    flat = np.concatenate(flats) if flats else np.zeros(0, dtype=want)
    mask = ~np.asarray(valid, dtype=bool)
    missing = bool(mask.any())
    if c.scalar:
        if flat.dtype.kind == "O":
            items = _texts(flat)
            if missing:
                items = [None if m else v for v, m in zip(items, mask.tolist())]
            return pa.array(items, type=kind)
        return pa.array(flat, type=kind, mask=mask if missing else None)
    values = pa.array(_texts(flat), type=kind) if flat.dtype.kind == "O" else pa.array(
        flat, type=kind)
    arrow_mask = pa.array(mask) if missing else None
    if size is not None:
        return pa.FixedSizeListArray.from_arrays(values, size, mask=arrow_mask)
    offsets = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))])
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values,
                                    mask=arrow_mask)


def _row_values(part: Any, c: Column, n: int) -> np.ndarray | None:
    """One request's values of column ``c`` as [n, values per row], or None when the
    request holds no such array (an output it did not ask for) or not one per row."""
    if part is None:
        return None
    arr = np.asarray(part)
    if not c.batched:
        return np.broadcast_to(arr.reshape(1, -1), (n, arr.size))
    if arr.ndim == 0 or arr.shape[0] != n:
        return None
    arr = arr.reshape(n, -1)
    return arr[:, c.index:c.index + 1] if c.index is not None else arr


def _texts(flat: np.ndarray) -> list[Any]:
    return [v if v is None or isinstance(v, str) else
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in flat.tolist()]


def write_records(table: Any, directory: str | os.PathLike[str]) -> Path:
    """Write ``table`` (from :func:`records_table`) under ``directory``, atomically: to a
    hidden temporary file in its day's directory (``YYYY-MM-DD``, the UTC day of its first
    row), made durable, then renamed to ``records-<time>-<pid>-<seq>.parquet``. Returns the
    path. Nothing is left behind when it fails (OSError, from the disk)."""
    pq = require("pyarrow.parquet", "serve", "Recording traffic")
    first = _first_time(table)
    day = Path(directory) / first.strftime("%Y-%m-%d")
    day.mkdir(parents=True, exist_ok=True)
    name = f"records-{first.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(_SEQ):06d}.parquet"
    final = day / name
    temp = day / f".{name}.tmp"
    try:
        with open(temp, "wb") as out:
            pq.write_table(table, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
    except BaseException:
        try:
            temp.unlink()
        except OSError:
            pass
        raise
    return final


def _first_time(table: Any) -> datetime:
    col = table.column(TIME)
    if len(col) == 0:
        return datetime.now(timezone.utc)
    value = col[0].as_py()
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


# -- reading ------------------------------------------------------------------------------------

@dataclass
class Records:
    """Recorded traffic, read back."""

    #: the inputs as ``baton check --data`` would hand them to the original model: a
    #: DataFrame (inputs from DataFrame columns), a 2-D array (one matrix input, x0, …), else
    #: a dict {input name: array [rows, ...]} (the array itself for a single input)
    data: Any
    #: the outputs served, by ONNX output name, [rows, ...]; where some rows' requests did
    #: not ask for an output, its missing values are NaN (numbers, as float64) or None (text,
    #: booleans; an object array)
    served: dict[str, np.ndarray]
    rows: int
    files: list[Path]
    #: the distinct bundle digests the files name, in the order first seen
    digests: list[str]
    #: when each row's request was answered (datetime64[us], UTC)
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="datetime64[us]"))
    #: the layout of the files (the model's name, inputs and outputs)
    layout: Layout | None = None
    #: by output name, which rows' requests were answered that output (a request may ask
    #: for some outputs only; the others are missing from its rows in ``served``)
    answered: dict[str, np.ndarray] = field(default_factory=dict)


def is_records(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds records: a directory with ``records-*.parquet`` files (searched
    recursively), or a ``.parquet`` file whose schema has the ``baton`` metadata key."""
    p = Path(path)
    if p.is_dir():
        return any(not f.name.startswith(".") for f in p.rglob(GLOB))
    if p.is_file() and p.suffix.lower() == ".parquet":
        try:
            pq = require("pyarrow.parquet", "pandas", "Reading recorded traffic")
            meta = pq.read_schema(p).metadata or {}
        except BatonError:
            raise
        except Exception:  # noqa: BLE001 - not a Parquet file we can read: not records
            return False
        return METADATA_KEY in meta
    return False


def record_files(path: str | os.PathLike[str]) -> list[Path]:
    """The records files under a directory (recursively), by name: oldest first."""
    return sorted((f for f in Path(path).rglob(GLOB) if not f.name.startswith(".")
                   and f.is_file()), key=lambda f: (f.name, str(f)))


def read_records(path: str | os.PathLike[str]) -> Records:
    """The records in ``path`` (a directory searched recursively, or one file): their inputs
    in the form the original model takes, and the outputs served. UsageError when ``path``
    holds none, holds files of different layouts (another model's), or a damaged file."""
    p = Path(path)
    if p.is_dir():
        files = record_files(p)
        if not files:
            others = sum(1 for f in p.rglob("*") if f.is_file())
            raise UsageError(
                f"no records in {p}",
                expected=f"{GLOB} files written by 'baton serve --record {p}'",
                found=f"no {GLOB} file under it" + (f" ({others} other file"
                                                    f"{'s' if others > 1 else ''})"
                                                    if others else " (it is empty)"),
                hint="is the server running with --record? It writes the rows it recorded "
                "every --record-every seconds (60 by default) and when it stops; or pass a "
                "data file (.csv, .parquet) to read as data")
    elif p.is_file():
        files = [p]
    else:
        raise UsageError(f"no records at {p}", expected="a directory of records written by "
                         "'baton serve --record DIR', or one of their .parquet files",
                         found="nothing at that path", hint="check the path")
    pa = require("pyarrow", "pandas", "Reading recorded traffic")
    pq = require("pyarrow.parquet", "pandas", "Reading recorded traffic")
    first: tuple[Path, Layout] | None = None
    tables = []
    digests: list[str] = []
    for f in files:
        table, lay = _read_one(pq, f)
        if first is None:
            first = (f, lay)
        else:
            what = first[1].differs(lay)
            if what is not None:
                raise UsageError(
                    f"the records in {p} come from different models: {first[0]} and {f} "
                    "differ",
                    expected="records of one model (the same inputs and outputs)",
                    found=what,
                    hint="pass the directory of one model's records (each server its own "
                    "--record DIR), or move the other model's files elsewhere")
        if lay.digest is not None and lay.digest not in digests:
            digests.append(lay.digest)
        tables.append(table.replace_schema_metadata(None))
    assert first is not None
    lay = first[1]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    rows = table.num_rows
    values = {c.name: _to_numpy(pa, table.column(c.name), c, rows, where=files[0])
              for c in (*lay.columns, *lay.served)}
    data = _data(lay, values, rows, p)
    served = {c.source: values[c.name] for c in lay.served}
    times = table.column(TIME).to_numpy().astype("datetime64[us]") if rows else np.zeros(
        0, dtype="datetime64[us]")
    answered = {c.source: ~np.asarray(table.column(c.name).is_null(), dtype=bool)
                for c in lay.served}
    return Records(data, served, rows, files, digests, times, lay, answered)


def _read_one(pq: Any, f: Path) -> tuple[Any, Layout]:
    try:
        table = pq.read_table(f)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file, in its words
        raise UsageError(
            f"cannot read the records file {f}",
            expected="a complete Parquet file written by 'baton serve --record'",
            found=first_line(exc, 300, with_type=True),
            hint="move or delete that file (records are written whole and then renamed "
            "into place: a damaged one was changed or cut after it was written)") from exc
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise UsageError(
            f"{f} holds no baton records",
            expected=f"a Parquet file written by 'baton serve --record', with the "
            f"{METADATA_KEY.decode()!r} schema metadata",
            found="a Parquet file without it",
            hint="pass it as data instead (--data reads any .parquet), or the directory "
            "the server records into")
    try:
        lay = layout_of_metadata(json.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError, BatonError) as exc:
        raise UsageError(f"the records file {f} has a layout baton cannot read",
                         expected=f"{METADATA_KEY.decode()!r} metadata of format {FORMAT}",
                         found=first_line(exc, 200, with_type=True),
                         hint="read it with the baton version that wrote it, or move "
                         "it away") from exc
    if table.column_names != lay.names:
        raise UsageError(f"the records file {f} does not hold the columns its layout names",
                         expected=", ".join(lay.names[:12]),
                         found=", ".join(table.column_names[:12]),
                         hint="move or delete that file: it was not written by "
                         "'baton serve --record' as it is")
    return table, lay


def _to_numpy(pa: Any, chunked: Any, c: Column, rows: int, where: Path) -> np.ndarray:
    arr = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    want = numpy_dtype(c.dtype)
    nulls = arr.null_count > 0
    if c.scalar:
        out = _plain(arr, want)
        return _with_missing(out, np.asarray(arr.is_null()), want) if nulls else out
    child = arr.values
    if isinstance(arr, pa.FixedSizeListArray):
        size = arr.type.list_size
        flat = _plain(child.slice(arr.offset * size, len(arr) * size), want)
        out = flat.reshape((rows, *(int(d) for d in c.shape if d is not None)))
        return _with_missing(out, np.asarray(arr.is_null()), want) if nulls else out
    # a variable-length list: a dynamic dimension
    offsets = np.asarray(arr.offsets)
    lengths = np.diff(offsets)
    flat = _plain(child.slice(int(offsets[0]), int(offsets[-1] - offsets[0])), want)
    valid = ~np.asarray(arr.is_null()) if nulls else np.ones(rows, dtype=bool)
    seen = set(lengths[valid].tolist())
    if len(seen) > 1:
        raise UsageError(
            f"the rows of {c.source!r} in the records from {where.parent} have different "
            "shapes (a dynamic dimension), so they cannot be read back as one array",
            expected="rows of one shape", found=f"{len(seen)} lengths: "
            + ", ".join(map(str, sorted(seen)[:6])),
            hint="recheck the records of one shape at a time (the requests' shapes differ)")
    length = seen.pop() if seen else 0
    known = math.prod(int(d) for d in c.shape if d is not None)
    dynamic = [i for i, d in enumerate(c.shape) if d is None]
    shape = [0 if d is None else int(d) for d in c.shape]
    if len(dynamic) == 1 and known and length % known == 0:
        shape[dynamic[0]] = length // known
    elif dynamic:
        raise UsageError(
            f"the rows of {c.source!r} in the records from {where.parent} cannot be given "
            "back their shape", expected="at most one dynamic dimension per row",
            found=f"row shape {_dims(c.shape)} holding {length} values",
            hint="declare the input's fixed dimensions when converting the model")
    if nulls:  # the missing rows have no values: give them room
        full = np.zeros((rows, length), dtype=want) if want.kind != "O" else np.full(
            (rows, length), None, dtype=object)
        full[valid] = flat.reshape(-1, length) if length else full[valid]
        out = full.reshape((rows, *shape))
        return _with_missing(out, ~valid, want)
    return flat.reshape((rows, *shape))


def _dims(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _plain(arr: Any, want: np.dtype[Any]) -> np.ndarray:
    out = arr.to_numpy(zero_copy_only=False)
    if want.kind == "O":
        return np.asarray(out, dtype=object)
    if arr.null_count:
        return out  # float (or object) with the nulls as NaN/None
    return out.astype(want, copy=False)


def _with_missing(out: np.ndarray, missing: np.ndarray, want: np.dtype[Any]) -> np.ndarray:
    """``out`` with the rows ``missing`` marked: NaN for numbers (as float64 when they are
    not floats), None for text and booleans."""
    if want.kind == "f":
        out = np.array(out, dtype=want)
        out[missing] = np.nan
        return out
    if want.kind in "iu":
        out = np.array(out, dtype=np.float64)
        out[missing] = np.nan
        return out
    out = np.array(out, dtype=object)
    out[missing] = None
    return out


def _data(lay: Layout, values: Mapping[str, np.ndarray], rows: int, where: Path) -> Any:
    if lay.form == FRAME:
        pd = require("pandas", "pandas", "Reading recorded traffic")
        frame = {c.name: pd.Series(values[c.name], dtype=numpy_dtype(c.dtype))
                 for c in lay.columns}
        return pd.DataFrame(frame, index=pd.RangeIndex(rows))
    if lay.form == MATRIX:
        dtype = numpy_dtype(lay.inputs[0].dtype)
        if not lay.columns:
            return np.zeros((rows, 0), dtype=dtype)
        return np.column_stack([values[c.name] for c in lay.columns]).astype(dtype, copy=False)
    out: dict[str, np.ndarray] = {}
    for c in lay.columns:
        arr = values[c.name]
        if not c.batched:  # the whole tensor, the same in every row
            if rows and not all(np.array_equal(arr[0], arr[i], equal_nan=arr.dtype.kind == "f")
                                for i in range(1, rows)):
                raise UsageError(
                    f"the input {c.source!r} (without a batch dimension) differs between the "
                    f"requests recorded in {where}",
                    expected="one value of it in all the records read together",
                    found="different values", hint="recheck the records of one value at a "
                    "time")
            arr = arr[0] if rows else arr.reshape(tuple(d or 0 for d in c.shape))
        out[c.source] = arr
    return out[lay.columns[0].source] if len(out) == 1 else out
