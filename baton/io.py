"""Reading data files: ``.csv``, ``.parquet``, ``.npy``, ``.npz``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import BatonError, UsageError, first_line, require
from baton.schema import is_dataframe, n_rows, take_rows

DATA_SUFFIXES = (".csv", ".parquet", ".npy", ".npz")
#: the files read in batches, in bounded memory (:func:`iter_batches`)
STREAMED_SUFFIXES = (".csv", ".parquet")
#: rows per batch when a file is read in batches
BATCH_ROWS = 65_536
#: names of the arrays in an .npz that hold labels beside the features (never inputs)
_LABELS = {"y", "Y", "labels", "target", "targets"}


def _checked(path: str | os.PathLike[str]) -> tuple[Path, str, Any]:
    """The path, its suffix and pandas (None for arrays), once the file is known readable."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise UsageError(
            f"baton cannot read data files of type {suffix or '(no suffix)'!r}: {p}",
            expected="one of " + ", ".join(DATA_SUFFIXES),
            found=suffix or "no suffix",
            hint="save the data as CSV or Parquet (DataFrames) or .npy (arrays)",
        )
    if not p.is_file():
        raise UsageError(f"no data file at {p}", expected="an existing file",
                         found="nothing at that path", hint="check the path")
    # pandas (and pyarrow) come with the `pandas` extra: a missing one is named with it
    # (MissingDependencyError), not taken for a file that cannot be read
    pd = None
    if suffix == ".csv":
        pd = require("pandas", "pandas", "Reading CSV data")
    elif suffix == ".parquet":
        pd = require("pandas", "pandas", "Reading Parquet data")
        require("pyarrow", "pandas", "Reading Parquet data")
    return p, suffix, pd


def _unreadable(p: Path, suffix: str, exc: Exception) -> UsageError:
    return UsageError(
        f"cannot read {p} as {suffix[1:]} data",
        expected=f"a valid {suffix} file",
        found=first_line(exc, 300, with_type=True),
        hint="check the file is complete and of the type its name says",
    )


def read_data(path: str | os.PathLike[str]) -> Any:
    """A DataFrame (``.csv``, ``.parquet``), an array (``.npy``, an ``.npz`` holding one
    array, or one named ``X``/``x``/``data``/``inputs`` beside labels ``y``/``target``), or a
    dict of arrays (an ``.npz`` holding one array per model input, named like the inputs)."""
    p, suffix, pd = _checked(path)
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix == ".parquet":
            return pd.read_parquet(p)
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        with np.load(p, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if len(keys) == 1:
                return npz[keys[0]]
            for k in ("X", "x", "data", "inputs"):
                # the features beside their labels (np.savez(f, X=X, y=y)); beside other
                # arrays, x is one of several model inputs
                if k in keys and set(keys) - {k} <= _LABELS:
                    return npz[k]
            # several arrays: one per model input (or column), by name
            return {k: npz[k] for k in keys}
    except BatonError:
        raise
    except Exception as exc:  # noqa: BLE001 - each reader raises its own errors
        raise _unreadable(p, suffix, exc) from exc


def iter_batches(path: str | os.PathLike[str], rows: int = BATCH_ROWS) -> Iterator[Any]:
    """The rows of a ``.csv`` or ``.parquet`` file as DataFrames of at most ``rows`` rows,
    read one at a time (memory does not grow with the file). Parquet batches have the
    dtypes :func:`read_data` gives; CSV batches are parsed chunk by chunk (the first equals
    :func:`read_data`'s frame of a file that fits in it). Each batch is indexed by its row
    numbers in the whole file. The file is checked now; it is read as the batches are
    taken."""
    p, suffix, _ = _checked(path)
    if suffix not in STREAMED_SUFFIXES:
        raise UsageError(f"{p} cannot be read in batches", expected="a .csv or .parquet "
                         "file", found=suffix, hint="load it with baton.io.read_data")
    if rows < 1:
        raise UsageError("batches need at least one row", expected="rows >= 1",
                         found=str(rows), hint="pass e.g. rows=65536")
    return _batches(p, suffix, rows)


def _batches(p: Path, suffix: str, rows: int) -> Iterator[Any]:
    import pandas as pd

    try:
        if suffix == ".csv":
            reader: Any = pd.read_csv(p, chunksize=rows)
        else:
            import pyarrow.parquet as pq

            # pre_buffer (pyarrow's default) keeps every range it has read until the file
            # is closed: memory would grow with the file
            reader = (b.to_pandas() for b in pq.ParquetFile(p, pre_buffer=False)
                      .iter_batches(batch_size=rows))
        offset, first = 0, None
        for frame in reader:
            n = len(frame)
            if suffix == ".csv":
                first = frame.dtypes if first is None else first
                frame = _like_first(frame, first)
            index = frame.index
            if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
                frame.index = pd.RangeIndex(offset, offset + n)
            offset += n
            yield frame
    except BatonError:
        raise
    except Exception as exc:  # noqa: BLE001 - each reader raises its own errors
        raise _unreadable(p, suffix, exc) from exc


def _like_first(frame: Any, first: Any) -> Any:
    """A later CSV chunk with the first one's text columns as text: a chunk whose column
    is empty there reads it as floats (NaN), which a model taking text would refuse."""
    for col, dtype in first.items():
        if (col in frame.columns and frame[col].dtype != dtype
                and (str(dtype) == "object" or str(dtype).startswith(("str", "string")))):
            frame[col] = frame[col].astype(dtype)
    return frame


def count_rows(path: str | os.PathLike[str]) -> int | None:
    """The rows of a data file where that is cheap (Parquet's metadata); else None."""
    p, suffix, _ = _checked(path)
    if suffix != ".parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(p).metadata.num_rows)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own errors
        raise _unreadable(p, suffix, exc) from exc


class Reservoir:
    """A seeded uniform sample of at most ``size`` rows of data seen batch by batch
    (reservoir sampling, algorithm R): memory about ``size`` rows plus one batch.
    Batches are DataFrames, dicts of arrays or arrays, all of one kind; the sample keeps
    their order in the data. The same batches and seed give the same sample."""

    def __init__(self, size: int, seed: int = 0) -> None:
        if size < 1:
            raise UsageError("a sample needs at least one row", expected="a size >= 1",
                             found=str(size), hint="pass e.g. --rows 10000")
        self.size = size
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._data: Any = None
        self._rows = np.empty(0, dtype=np.int64)  # each kept row's number in the data

    @property
    def sampled(self) -> bool:
        """Whether the data held more rows than the sample keeps."""
        return self.seen > self.size

    def add(self, batch: Any) -> None:
        n = n_rows(batch)
        if not n:
            return
        cur = len(self._rows)
        fill = min(self.size - cur, n)
        later = np.arange(fill, n)
        slots = self._rng.integers(0, self.seen + later + 1) if later.size else later
        hit = slots < self.size
        later, slots = later[hit], slots[hit]
        if later.size:  # a slot taken twice keeps the later row (as one by one would)
            _, last = np.unique(slots[::-1], return_index=True)
            keep = np.sort(len(slots) - 1 - last)
            later, slots = later[keep], slots[keep]
        local = np.concatenate([np.arange(fill), later]).astype(np.int64)
        where = np.concatenate([np.arange(cur, cur + fill), slots]).astype(np.int64)
        if local.size:
            incoming = take_rows(batch, local)
            combined = incoming if self._data is None else _concat(self._data, incoming)
            order = np.arange(cur + fill)
            order[where] = cur + np.arange(len(local))
            rows = np.empty(cur + fill, dtype=np.int64)
            rows[:cur] = self._rows
            rows[where] = self.seen + local
            self._data, self._rows = take_rows(combined, order), rows
        self.seen += n

    def sample(self) -> Any:
        """The rows kept, in their order in the data (None before any row)."""
        if self._data is None:
            return None
        out = take_rows(self._data, np.argsort(self._rows, kind="stable"))
        if is_dataframe(out):
            out = out.reset_index(drop=True)
        return out


def _concat(a: Any, b: Any) -> Any:
    if is_dataframe(a):
        import pandas as pd

        return pd.concat([a, b], ignore_index=True)
    if isinstance(a, dict):
        return {k: np.concatenate([np.asarray(a[k]), np.asarray(b[k])]) for k in a}
    return np.concatenate([np.asarray(a), np.asarray(b)])


def sample_rows(path: str | os.PathLike[str], n: int, seed: int = 0,
                rows: int = BATCH_ROWS) -> tuple[Any, int]:
    """A seeded uniform sample of ``n`` rows of a ``.csv`` or ``.parquet`` file (all of
    them when it holds fewer), in file order, read in batches (memory about ``n`` rows
    plus one batch); and the rows the file holds."""
    reservoir = Reservoir(n, seed)
    for batch in iter_batches(path, rows):
        reservoir.add(batch)
    sample = reservoir.sample()
    if sample is None:  # an empty file: its (empty) frame
        sample = read_data(path)
    return sample, reservoir.seen
