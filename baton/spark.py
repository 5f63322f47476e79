"""Scoring and parity checks on Apache Spark (the ``spark`` extra: ``pip install
'baton[spark]'``; Java 17 or newer on every machine of the cluster).

>>> from baton import spark as bs
>>> session = bs.session()                                  # local[*] unless told
>>> scored = bs.score(session.read.parquet("rows/"), "churn.baton")   # doctest: +SKIP
>>> report = bs.check(model, "churn.baton", session.read.parquet("rows/"))  # doctest: +SKIP

:func:`score` adds the bundle's outputs to a DataFrame as new columns through
``mapInPandas``: Arrow batches, one :class:`baton.runtime.Session` per Python worker
process, reused for every batch and task that worker runs. :func:`check` runs the original
model (broadcast to the executors) and the bundle on every partition, gathers each
partition's comparison in the same accumulator as the streaming check on one machine
(:mod:`baton.parity.stream`), merges them on the driver and returns the same
:class:`~baton.results.report.Report` as :func:`baton.check` (without the parity search,
which needs no big data: run ``baton check`` on a sample for it).

The bundle travels to the executors inside the job (its files, zipped, in a broadcast
variable), so a cluster needs no shared filesystem; each worker unpacks it once, checks
every file's hash and the bundle's digest, and loads it. pyspark is imported inside the
functions only: ``import baton`` never imports it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import pickle
import re
import shutil
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from baton import errors
from baton.errors import BatonError, MissingDependencyError, UsageError, require
from baton.schema import TensorSpec
from baton.tolerance import ToleranceArg

__all__ = ["check", "score", "session"]

#: what Spark's own Python workers are started with in local mode, unless PYSPARK_PYTHON says
#: otherwise: this interpreter (where baton is installed), not whatever ``python3`` is first
#: on the PATH
_LOCAL = re.compile(r"^local(\[[^\]]*\])?$")


# -- the session ----------------------------------------------------------------------------


def session(master: str | None = None, app_name: str = "baton") -> Any:
    """The active SparkSession, or a new one on ``master`` (default ``local[*]``: every
    core of this machine) with the UI off, Arrow on and few shuffle partitions.

    In local mode Spark's Python workers run this interpreter (unless ``PYSPARK_PYTHON`` is
    set). A session that already runs is returned as it is (``master`` does not move it).
    Raises :class:`MissingDependencyError` without pyspark or without Java 17+."""
    sql = require("pyspark.sql", "spark", "baton.spark")
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active
    url = master or "local[*]"
    if _LOCAL.match(url) and "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = (
        sql.SparkSession.builder.master(url).appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "4")
    )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM failed to start: say why when we can
        problem = java_problem()
        if problem is not None:
            raise problem from exc
        raise UsageError(
            f"Spark did not start on {url}", expected="a SparkSession",
            found=errors.first_line(exc, with_type=True),
            hint="check the master URL (e.g. local[*], spark://host:7077) and that the "
            "cluster is reachable; set BATON_DEBUG=1 for the traceback") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextlib.contextmanager
def running(master: str | None = None, app_name: str = "baton") -> Iterator[Any]:
    """:func:`session`, stopped at the end if this started it (a session that already
    ran is left running)."""
    sql = require("pyspark.sql", "spark", "baton.spark")
    started = sql.SparkSession.getActiveSession() is None
    spark = session(master, app_name)
    try:
        yield spark
    finally:
        if started:
            spark.stop()


#: what :func:`read` reads, by suffix (a path without one: Parquet)
READ_SUFFIXES = (".parquet", ".csv")


def read(spark: Any, path: str) -> Any:
    """The Spark DataFrame of the Parquet file or directory (``.parquet``, or a path
    without a suffix) or the CSV file(s) (``.csv``: a header row; column types inferred)
    at ``path``, which may be any URI Spark reads (``hdfs://``, ``s3a://``, ...)."""
    suffix = Path(path.rstrip("/")).suffix.lower()
    if suffix not in (*READ_SUFFIXES, ""):
        raise UsageError(
            f"--engine spark reads Parquet and CSV data, not {suffix or 'this path'!r}: {path}",
            expected="a .parquet file or directory, or a .csv file or directory",
            found=suffix or "no suffix", hint="write the data as Parquet, or check it "
            "locally with 'baton check' (without --engine spark)")
    try:
        if suffix == ".csv":
            return spark.read.csv(path, header=True, inferSchema=True)
        return spark.read.parquet(path)
    except Exception as exc:  # noqa: BLE001 - Spark's AnalysisException: path or format
        raise UsageError(
            f"Spark cannot read {path}", expected=f"{'CSV' if suffix == '.csv' else 'Parquet'}"
            " data at that path", found=errors.first_line(exc, with_type=True),
            hint="check the path (every executor must reach it) and the format") from exc


def java_problem(env: dict[str, str] | None = None) -> MissingDependencyError | None:
    """Why Spark cannot start its JVM here (no Java, or one older than 17), or None."""
    import subprocess

    env = dict(os.environ if env is None else env)
    home = env.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java", path=env.get(
        "PATH"))
    hint = ("install Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless) and put "
            "it on the PATH, or set JAVA_HOME to its directory")
    if java is None or not Path(java).is_file():
        return MissingDependencyError(
            "Spark needs Java 17 or newer, and none was found",
            expected="Java 17+ (JAVA_HOME/bin/java or java on the PATH)",
            found=f"JAVA_HOME={home}, where there is no bin/java" if home else
            "no java on the PATH and JAVA_HOME not set", hint=hint)
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60,
                             env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return MissingDependencyError(
            "Spark needs Java 17 or newer, and the java found does not run",
            expected="Java 17+", found=f"{java}: {errors.first_line(exc)}", hint=hint)
    text = (out.stderr or "") + (out.stdout or "")
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392": Java 8
        major = int(match.group(2))
    if major < 17:
        return MissingDependencyError(
            f"Spark needs Java 17 or newer, and {java} is Java {major}",
            expected="Java 17+", found=f"Java {major} ({text.strip().splitlines()[0][:200]})",
            hint=hint)
    return None


# -- shipping the bundle -------------------------------------------------------------------


@dataclass(frozen=True)
class _Shipped:
    """A bundle (or a bare .onnx) as the executors receive it: its files zipped in a
    broadcast variable, and the digest they must have once unpacked."""

    key: str
    onnx: bool
    digest: str | None
    data: Any  # a pyspark Broadcast of the bytes

    @property
    def value(self) -> bytes:
        return bytes(self.data.value)


def _pack(bundle: Any) -> tuple[bytes, Any, str]:
    """The bytes to ship for ``bundle`` (a Bundle, a bundle directory or zip, or a ``.onnx``
    file), its manifest (None for a bare ONNX file) and its digest (of an ONNX file: the
    sha256 of its bytes). A bundle's files are checked against their hashes first."""
    import hashlib

    from baton.bundle import Bundle
    from baton.runtime._files import MANIFEST, BundleFiles

    if isinstance(bundle, Bundle):
        if bundle.path is None or bundle.digest is None or not Path(bundle.path).exists():
            folder = Path(tempfile.mkdtemp(prefix="baton-spark-"))
            try:
                saved = replace(bundle).save(folder / "bundle.baton", archive=True)
                return _pack(saved)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        bundle = bundle.path
    path = Path(os.fspath(bundle))
    if path.suffix.lower() == ".onnx" and path.is_file():
        data = path.read_bytes()
        return data, None, "sha256:" + hashlib.sha256(data).hexdigest()
    files = BundleFiles(path)
    manifest = files.manifest()
    files.check_integrity(manifest)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in [MANIFEST, *sorted(manifest.files)]:
            archive.writestr(name, files.read(name))
    return buffer.getvalue(), manifest, files.digest(manifest)


def _ship(spark: Any, bundle: Any) -> tuple[_Shipped, Any]:
    """``bundle`` broadcast to the executors, and its manifest (None for a bare .onnx)."""
    data, manifest, digest = _pack(bundle)
    onnx = manifest is None
    shipped = _Shipped(digest.removeprefix("sha256:"), onnx, None if onnx else digest,
                       spark.sparkContext.broadcast(data))
    return shipped, manifest


#: per Python worker process: what each shipped bundle became, by (kind, key)
_OPEN: dict[tuple[str, str], Any] = {}
_OPEN_LOCK = threading.Lock()


def _opened(kind: str, shipped: _Shipped, load: Callable[[Path], Any]) -> Any:
    """``load(path)`` of the shipped bundle unpacked here, once per worker process: the
    unpacked files are removed again as soon as it is loaded (onnxruntime holds the model)."""
    with _OPEN_LOCK:
        found = _OPEN.get((kind, shipped.key))
        if found is not None:
            return found
        folder = Path(tempfile.mkdtemp(prefix="baton-spark-"))
        try:
            if shipped.onnx:
                path = folder / "model.onnx"
                path.write_bytes(shipped.value)
            else:
                path = folder / "bundle"
                with zipfile.ZipFile(io.BytesIO(shipped.value)) as archive:
                    archive.extractall(path)
            loaded = load(path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        _OPEN[(kind, shipped.key)] = loaded
        return loaded


def _runtime_session(shipped: _Shipped) -> Any:
    from baton.runtime import Session

    return _opened("session", shipped, lambda p: Session(p, digest=shipped.digest))


# -- errors raised on executors -------------------------------------------------------------

_MARK = "baton-error:"


def _on_executor(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Run a worker function; a BatonError it raises reaches the driver, inside Spark's own
    exception, as its JSON (:func:`_driver_error` raises it again there)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from fn(*args, **kwargs)
        except BatonError as exc:
            fields = {"type": type(exc).__name__, "message": exc.message,
                      "expected": exc.expected, "found": exc.found, "hint": exc.hint}
            raise RuntimeError(f"{exc}\n{_MARK}{json.dumps(fields)}") from exc

    return wrapper


def _driver_error(exc: BaseException) -> BatonError | None:
    """The BatonError an executor raised, from the text of Spark's exception, or None."""
    for line in str(exc).splitlines():
        at = line.find(_MARK)
        if at < 0:
            continue
        try:
            fields = json.loads(line[at + len(_MARK):])
        except ValueError:
            continue
        cls = getattr(errors, str(fields.get("type")), None)
        if not (isinstance(cls, type) and issubclass(cls, BatonError)):
            cls = BatonError
        return cls(f"{fields['message']} (on a Spark executor)",
                   expected=fields.get("expected"), found=fields.get("found"),
                   hint=fields.get("hint"))
    return None


def _collect(frame: Any) -> list[Any]:
    try:
        return list(frame.collect())
    except Exception as exc:
        found = _driver_error(exc)
        if found is not None:
            raise found from None
        raise


# -- score ----------------------------------------------------------------------------------

_SPARK_TYPES = {
    "float32": "FloatType", "float64": "DoubleType", "float16": "FloatType",
    "int64": "LongType", "int32": "IntegerType", "int16": "ShortType", "int8": "ByteType",
    "uint8": "ShortType", "uint16": "IntegerType", "uint32": "LongType",
    "bool": "BooleanType", "string": "StringType",
}


def _is_scalar(spec: TensorSpec) -> bool:
    """One value per row: shape [N] or [N, 1]."""
    return len(spec.shape) == 1 or (len(spec.shape) == 2 and spec.shape[1] == 1)


def spark_type(spec: TensorSpec) -> Any:
    """The Spark SQL type of an output column: a scalar for ``[N]`` and ``[N, 1]`` (a label
    as long or string, a regression value as double or float), an array (of arrays, per
    further dimension) for ``[N, k]`` (probabilities: ``array<float>``)."""
    types = require("pyspark.sql.types", "spark", "baton.spark")
    name = _SPARK_TYPES.get(spec.dtype)
    if name is None or not spec.shape:
        raise UsageError(
            f"output {spec.name!r} ({spec.describe()}) cannot be a column of a Spark "
            "DataFrame", expected="an output with a batch dimension, of a numeric, bool or "
            "string dtype", found=spec.describe(),
            hint="pass outputs=[...] naming the outputs to add")
    kind: Any = getattr(types, name)()
    if _is_scalar(spec):
        return kind
    for _ in spec.shape[1:]:
        kind = types.ArrayType(kind, containsNull=False)
    return kind


def _as_column(values: np.ndarray, spec: TensorSpec) -> Any:
    """An output's values for one batch as a pandas column Arrow can write as
    :func:`spark_type`."""
    if _is_scalar(spec):
        flat = values.reshape(len(values))
        return flat.astype(object) if spec.dtype == "string" else flat
    if values.ndim == 2:
        return list(values)
    return values.tolist()


def _feed_columns(inputs: Sequence[TensorSpec]) -> list[str] | None:
    """The DataFrame columns the bundle reads (when every input names its columns)."""
    if not inputs or not all(s.from_frame for s in inputs):
        return None
    cols: list[str] = []
    for s in inputs:
        for c in (s.columns if s.columns is not None else (s.column,)):
            if c is not None and c not in cols:
                cols.append(c)
    return cols


def score(df: Any, bundle: Any, *, outputs: Sequence[str] | None = None,
          batch_rows: int = 10_000, keep: bool = True) -> Any:
    """``df`` with the bundle's outputs as new columns (lazily, as any Spark
    transformation): what :meth:`baton.runtime.Session.predict` gives for the same rows,
    one column per output, named like it (``outputs``: only these).

    ``bundle``: a bundle directory, zipped ``.baton`` or :class:`baton.Bundle`, shipped to
    the executors with the job. The inputs are read from ``df``'s columns as the bundle's
    schema names them (a missing column raises the SchemaError ``predict`` raises).
    ``batch_rows`` caps the rows of one ``predict`` call on a worker (Spark's Arrow batches,
    ``spark.sql.execution.arrow.maxRecordsPerBatch``, are cut to it). ``keep=False`` returns
    the output columns alone. Column types: :func:`spark_type`."""
    from baton.schema import require_columns

    types = require("pyspark.sql.types", "spark", "baton.spark.score")
    if batch_rows < 1:
        raise UsageError("batch_rows must be at least 1", expected="an integer >= 1",
                         found=repr(batch_rows), hint="e.g. batch_rows=10000")
    shipped, manifest = _ship(_spark_of(df), bundle)
    if manifest is None:
        raise UsageError(
            "baton.spark.score needs a bundle, not a bare .onnx file",
            expected="a bundle directory or zipped .baton (its schema names the columns)",
            found=str(bundle), hint="convert the model with 'baton convert'")
    columns = _feed_columns(manifest.inputs)
    if columns is not None:
        require_columns(df, columns)
    by_name = {o.name: o for o in manifest.outputs}
    wanted = list(outputs) if outputs is not None else list(by_name)
    unknown = [n for n in wanted if n not in by_name]
    if unknown or not wanted:
        raise UsageError(
            f"unknown output{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            if unknown else "no outputs to add",
            expected="outputs " + ", ".join(map(repr, by_name)),
            found=", ".join(map(repr, wanted)) or "an empty list",
            hint="name outputs of the bundle ('baton inspect' lists them), or pass "
            "outputs=None for all")
    specs = [by_name[n] for n in wanted]
    fields = [types.StructField(s.name, spark_type(s), nullable=False) for s in specs]
    if keep:
        taken = {c.lower(): c for c in df.columns}
        clash = [s.name for s in specs if s.name.lower() in taken]
        if clash:
            raise UsageError(
                f"the DataFrame already has {'columns' if len(clash) > 1 else 'a column'} "
                f"named like output{'s' if len(clash) > 1 else ''} "
                f"{', '.join(map(repr, clash))}",
                expected="output names that are not columns of the DataFrame (Spark "
                "compares column names case-insensitively)",
                found="columns " + ", ".join(repr(taken[c.lower()]) for c in clash),
                hint="rename or drop those columns first (df.withColumnRenamed), pass "
                "outputs=[...] without them, or keep=False for the outputs alone")
        schema = types.StructType(list(df.schema.fields) + fields)
        source_df = df
    else:
        schema = types.StructType(fields)
        source_df = df.select(*columns) if columns is not None else df
    run = functools.partial(_score_batches, shipped=shipped, specs=specs, columns=columns,
                            keep=keep, batch_rows=batch_rows)
    return source_df.mapInPandas(run, schema)


def _spark_of(df: Any) -> Any:
    spark = getattr(df, "sparkSession", None)
    if spark is None:
        raise UsageError("expected a Spark DataFrame", expected="a pyspark.sql.DataFrame",
                         found=type(df).__name__,
                         hint="read the data with spark.read.parquet(...) or "
                         "spark.createDataFrame(pandas_frame)")
    return spark


@_on_executor
def _score_batches(batches: Iterable[Any], *, shipped: _Shipped, specs: list[TensorSpec],
                   columns: list[str] | None, keep: bool, batch_rows: int) -> Iterator[Any]:
    import pandas as pd

    sess = _runtime_session(shipped)
    for frame in batches:
        for start in range(0, len(frame), batch_rows):
            part = frame.iloc[start:start + batch_rows]
            out = sess.predict(part[columns] if columns is not None else part)
            added = {s.name: _as_column(out[s.name], s) for s in specs}
            if keep:
                yield part.assign(**added)
            else:
                yield pd.DataFrame(added, index=part.index)


# -- check ----------------------------------------------------------------------------------


def check(model: Any, bundle: Any, df: Any, *, tolerance: ToleranceArg = None,
          atol: float | None = None, rtol: float | None = None,
          data_name: str | None = None) -> Any:
    """Compare ``model`` with its converted form (a bundle or ``.onnx``) on every row of
    the Spark DataFrame ``df``; returns the :class:`~baton.results.report.Report` of
    :func:`baton.check` with ``search=False`` on the same rows (``bool(report)`` is the
    verdict): the same max and p99 errors, agreement, worst rows (numbered in the
    DataFrame's partition order) and minimum passing tolerance. ``tolerance``, ``atol`` and
    ``rtol`` as for :func:`baton.check`.

    The original model is pickled (cloudpickle) into a broadcast variable for the
    executors; on each partition it and the bundle run on Arrow batches, and the
    partition's comparison is gathered in a :class:`baton.parity.stream.CheckAccumulator`,
    sent back as one row of bytes and merged on the driver: one Spark job, one pass over the
    data. No parity search runs on Spark (the report says so): run :func:`baton.check` on a
    sample for it."""
    require("onnx", "cli", "baton.spark.check")
    from pyspark import cloudpickle  # type: ignore[attr-defined]

    from baton.converters import find_converter
    from baton.parity.check import describe_run, open_target, report_from
    from baton.runtime.providers import RunSettings
    from baton.tolerance import resolve, with_overrides

    spark = _spark_of(df)
    converter = find_converter(model)
    shipped, _ = _ship(spark, bundle)
    target = open_target(bundle)
    tolerances = {o.name: with_overrides(resolve(tolerance, o.name, target.tolerances),
                                         atol, rtol) for o in target.outputs}
    model_data = spark.sparkContext.broadcast(cloudpickle.dumps(model))
    run = functools.partial(_check_batches, shipped=shipped, model_data=model_data,
                            converter=converter, tolerances=tolerances)
    try:
        rows = _collect(df.mapInPandas(run, "part int, acc binary"))
    finally:
        model_data.destroy()
    if not rows:
        raise UsageError("the data has no rows", expected="at least one row",
                         found="an empty DataFrame", hint="check the data Spark read")
    # the partitions' comparisons (made by this job's own workers from the driver's
    # objects), each numbering its rows from 0: renumbered in partition order, then merged
    parts = [pickle.loads(r["acc"]) for r in sorted(rows, key=lambda r: r["part"])]
    seen = 0
    for part in parts:
        _renumber(part, seen)
        seen += part.rows
    acc = functools.reduce(lambda a, b: a.merge(b), parts)
    notes = describe_run(RunSettings(), "cpu")
    notes.append(f"compared {acc.rows:,} rows on Spark ({spark.sparkContext.master}, "
                 f"{len(parts)} non-empty partition{'s' if len(parts) != 1 else ''}); worst "
                 "rows are numbered in the DataFrame's partition order")
    notes.append("parity search not run: it does not run on Spark; run 'baton check MODEL "
                 "BUNDLE --data SAMPLE' (baton.check) on a sample of the data for it")
    return report_from(acc, model=converter.describe(model), target=target,
                       data_name=data_name, notes=notes)


def _renumber(acc: Any, by: int) -> None:
    """Move the row numbers of a partition's worst rows (counted from the partition's first
    row) by ``by``, the rows of the partitions before it. The worst rows of a
    :class:`~baton.parity.stream.OutputAccumulator` are ``(key, WorstRow)``, the key ending
    in the row number (ties go to the lower row), so the order within a partition stays."""
    if not by:
        return
    for output in acc.outputs.values():
        output.worst = [
            ((*key[:-1], key[-1] + by) if isinstance(key, tuple) else key + by,
             replace(worst, row=worst.row + by))
            for key, worst in output.worst]


def _worker_target(shipped: _Shipped) -> Any:
    """The converted side on a worker, as :func:`baton.parity.check.open_target` opens
    it (a bundle through the worker's :class:`~baton.runtime.Session`)."""
    from baton.parity.check import Target, open_target

    if shipped.onnx:
        return _opened("target", shipped, open_target)
    sess = _runtime_session(shipped)
    return Target("", sess.inputs, sess.outputs, sess.manifest.tolerances, sess.run,
                  shipped.digest, sess.manifest.envelope)


@_on_executor
def _check_batches(batches: Iterable[Any], *, shipped: _Shipped, model_data: Any,
                   converter: Any, tolerances: dict[str, Any]) -> Iterator[Any]:
    """One partition of :func:`check`: its CheckAccumulator (rows numbered from the
    partition's first), pickled, as one row beside the partition's number."""
    import pandas as pd
    from pyspark import TaskContext

    from baton.envelope import Envelope
    from baton.parity.check import _match_outputs, reference_outputs
    from baton.parity.stream import CheckAccumulator
    from baton.runtime.providers import RunSettings
    from baton.schema import n_rows, to_feeds, unbatched

    context = TaskContext.get()
    part = context.partitionId() if context is not None else 0
    offset = 0
    target = _worker_target(shipped)
    whole = unbatched(target.inputs)
    if whole:
        raise UsageError(
            "this model cannot be checked on Spark", expected="inputs with a batch dimension",
            found=f"{', '.join(whole)} without one (fed whole)",
            hint="load the data and call baton.check(model, bundle, data)")
    model = pickle.loads(model_data.value)
    kinds = {o.name: o.kind for o in target.outputs}
    acc: Any = None
    for batch in batches:
        prepared = converter.prepare(model, batch)
        if not n_rows(prepared):
            continue
        expected, _ = reference_outputs(converter, model, prepared, RunSettings())
        actual = target.run(to_feeds(prepared, target.inputs))
        if acc is None:
            pairs = _match_outputs(expected, target.outputs)
            masks = (target.envelope or Envelope.observe(prepared)).masks()
            if masks:
                raise UsageError(
                    "outputs compared under an attention mask cannot be checked on Spark",
                    expected="no mask inputs", found="mask inputs " + ", ".join(masks),
                    hint="load the data and call baton.check(model, bundle, data)")
            acc = CheckAccumulator(pairs, kinds, {o: tolerances[o] for _, o in pairs})
        acc.update(prepared, expected, actual, offset)
        offset += n_rows(prepared)
    if acc is not None:
        yield pd.DataFrame({"part": np.array([part], dtype=np.int32),
                            "acc": [pickle.dumps(acc)]})
