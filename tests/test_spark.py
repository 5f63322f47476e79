"""baton.spark on a real Apache Spark in local mode (local[2], started here, once for the
file): score equals Session.predict, check equals the local check, and `baton check
--engine spark` gates like `baton check`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyspark  # a dev dependency: a broken install fails here, it is not skipped
import pytest
from pyspark.sql import types as T
from typer.testing import CliRunner

import baton
from baton import spark as bs
from baton.cli import app
from baton.errors import MissingDependencyError, SchemaError, UsageError
from baton.runtime import Session

#: rows per Arrow batch: the 400 churn rows in 2 partitions reach each worker in 4 batches,
#: so batches within a partition and partitions both have to be merged
BATCH = 64


@pytest.fixture(scope="session")
def spark() -> Any:
    session = bs.session("local[2]")
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH))
    assert session.sparkContext.master == "local[2]", pyspark.__version__
    yield session
    session.stop()


@pytest.fixture(scope="module")
def churn_df(spark: Any, mixed_frame: Any) -> Any:
    df = spark.createDataFrame(mixed_frame)
    assert df.rdd.getNumPartitions() == 2
    return df


def test_score_equals_session_predict(spark: Any, churn_df: Any, mixed_bundle_dir: Path,
                                      tmp_path: Path) -> None:
    # a copy of the bundle, removed before Spark runs: the executors get it with the job
    copy = Path(shutil.copytree(mixed_bundle_dir, tmp_path / "churn.baton"))
    scored = bs.score(churn_df, copy)
    shutil.rmtree(copy)
    got = scored.toPandas()
    rows = churn_df.toPandas()
    want = Session(mixed_bundle_dir).predict(rows)
    assert list(got.columns) == [*rows.columns, "label", "probabilities"]
    assert scored.schema["label"].dataType == T.LongType()  # int64 [N]
    assert scored.schema["probabilities"].dataType == T.ArrayType(
        T.DoubleType() if want["probabilities"].dtype == np.float64 else T.FloatType(), False)
    np.testing.assert_array_equal(got["label"].to_numpy(), want["label"])
    np.testing.assert_array_equal(np.stack(got["probabilities"].to_numpy()),
                                  want["probabilities"])
    for c in rows.columns:  # the input columns pass through unchanged
        assert got[c].equals(rows[c]), c


def test_score_matrix_model_from_an_unsaved_bundle(spark: Any, tmp_path: Path) -> None:
    import lightgbm as lgb
    import pandas as pd

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(500, 5)), columns=[f"x{i}" for i in range(5)])
    y = X.to_numpy() @ np.array([1.5, -2.0, 0.5, 0.0, 3.0])
    model = lgb.LGBMRegressor(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y)
    bundle = baton.convert(model, X, name="matrix")  # in memory, never saved
    assert bundle.path is None
    # an id column the model does not read, and the columns in another order
    frame = X[["x4", "x2", "x0", "x1", "x3"]].assign(id=np.arange(len(X)))
    df = spark.createDataFrame(frame)
    got = bs.score(df, bundle, keep=False, batch_rows=100)
    assert got.columns == ["prediction"]
    assert got.schema["prediction"].dataType == T.DoubleType()
    scored = got.toPandas()
    want = Session(bundle.save(tmp_path / "matrix.baton")).predict(frame)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), want["prediction"])


def test_score_refuses_missing_and_clashing_columns(spark: Any, churn_df: Any,
                                                    mixed_frame: Any,
                                                    mixed_bundle_dir: Path) -> None:
    with pytest.raises(SchemaError) as missing:
        bs.score(churn_df.drop("city"), mixed_bundle_dir)
    with pytest.raises(SchemaError) as local:
        Session(mixed_bundle_dir).predict(mixed_frame.drop(columns="city"))
    assert str(missing.value) == str(local.value)
    with pytest.raises(UsageError, match="(?s)a column named like output 'label'.*'Label'"
                                         ".*withColumnRenamed"):
        bs.score(churn_df.withColumn("Label", churn_df["age"]), mixed_bundle_dir)
    with pytest.raises(UsageError, match="unknown output 'proba'"):
        bs.score(churn_df, mixed_bundle_dir, outputs=["proba"])
    # keep=False: only the outputs asked for, and no clash with the input columns
    only = bs.score(churn_df.withColumn("label", churn_df["age"]), mixed_bundle_dir,
                    outputs=["label"], keep=False)
    assert only.columns == ["label"]


def _same_diffs(spark_report: Any, local_report: Any) -> None:
    assert spark_report.rows == local_report.rows
    assert [d.to_dict() for d in spark_report.outputs] == [
        d.to_dict() for d in local_report.outputs]


def test_check_passes_for_the_right_model_as_the_local_check(
        churn_df: Any, fitted_pipeline: Any, mixed_bundle_dir: Path) -> None:
    report = bs.check(fitted_pipeline, mixed_bundle_dir, churn_df, data_name="churn")
    local = baton.check(fitted_pipeline, mixed_bundle_dir, churn_df.toPandas(), search=False)
    assert report and local
    assert report.kind == "check" and report.rows == 400 and report.data == "churn"
    assert report.digest == local.digest is not None
    assert report.search is None
    assert any("not run" in n and "Spark" in n for n in report.notes)
    assert any("400 rows on Spark" in n for n in report.notes)
    _same_diffs(report, local)


def test_check_fails_for_another_model_with_the_local_worst_rows(
        churn_df: Any, other_pipeline: Any, mixed_bundle_dir: Path) -> None:
    report = bs.check(other_pipeline, mixed_bundle_dir, churn_df, atol=1e-4)
    local = baton.check(other_pipeline, mixed_bundle_dir, churn_df.toPandas(), search=False,
                        atol=1e-4)
    assert not report and not local
    by_name = {d.name: d for d in report.outputs}
    assert not by_name["label"] and by_name["label"].agreement < 1
    proba = by_name["probabilities"]
    assert not proba and proba.max_abs > 1e-4 and proba.worst
    assert proba.worst[0].inputs  # the worst rows show their input values
    # rows from both partitions and from later batches among the worst
    assert max(w.row for w in proba.worst) >= 200 + BATCH
    _same_diffs(report, local)


def test_check_refuses_an_empty_dataframe(churn_df: Any, fitted_pipeline: Any,
                                          mixed_bundle_dir: Path) -> None:
    with pytest.raises(UsageError, match="no rows"):
        bs.check(fitted_pipeline, mixed_bundle_dir, churn_df.limit(0))


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory, fitted_pipeline: Any,
              other_pipeline: Any, mixed_frame: Any) -> dict[str, Path]:
    import skops.io as sio

    d = tmp_path_factory.mktemp("spark-cli")
    out = {"model": d / "model.skops", "other": d / "other.skops",
           "parquet": d / "rows.parquet", "csv": d / "rows.csv"}
    sio.dump(fitted_pipeline, out["model"])
    sio.dump(other_pipeline, out["other"])
    mixed_frame.to_parquet(out["parquet"])
    mixed_frame.iloc[:150].to_csv(out["csv"], index=False)
    return out


def _run(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_engine_spark_gates(spark: Any, cli_files: dict[str, Path],
                                mixed_bundle_dir: Path, tmp_path: Path) -> None:
    result = _run("check", cli_files["model"], mixed_bundle_dir, "--data",
                  cli_files["parquet"], "--engine", "spark")
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    report_json, junit = tmp_path / "r.json", tmp_path / "r.xml"
    result = _run("check", cli_files["other"], mixed_bundle_dir, "--data", cli_files["csv"],
                  "--engine", "spark", "--spark-master", "local[2]", "--json", report_json,
                  "--junit", junit)
    assert result.exit_code == 1, result.output
    saved = json.loads(report_json.read_text())
    assert saved["rows"] == 150 and saved["data"] == str(cli_files["csv"])
    assert any(o["worst_rows"] for o in saved["outputs"])
    assert "failure" in junit.read_text()
    # the fixture's session still runs: the CLI stops only a session it started
    assert spark.range(3).count() == 3


@pytest.mark.parametrize("extra", [["--rows", "10"], ["--budget", "cpu:batch=1:p99<=2ms"],
                                   ["--seed", "3"], ["--tf32"]])
def test_cli_engine_spark_refuses_what_it_does_not_do(cli_files: dict[str, Path],
                                                      mixed_bundle_dir: Path,
                                                      extra: list[str]) -> None:
    result = _run("check", cli_files["model"], mixed_bundle_dir, "--data",
                  cli_files["parquet"], "--engine", "spark", *extra)
    assert result.exit_code == 2, result.output
    assert f"--engine spark does not take {extra[0]}" in result.output


def test_cli_engine_options_are_checked(cli_files: dict[str, Path],
                                        mixed_bundle_dir: Path) -> None:
    common = ["check", cli_files["model"], mixed_bundle_dir, "--data", cli_files["parquet"]]
    result = _run(*common, "--engine", "dask")
    assert result.exit_code == 2 and "unknown engine 'dask'" in result.output
    result = _run(*common, "--spark-master", "local[2]")
    assert result.exit_code == 2 and "--spark-master needs --engine spark" in result.output
    result = _run("check", cli_files["model"], mixed_bundle_dir, "--data",
                  cli_files["model"], "--engine", "spark")
    assert result.exit_code == 2 and "reads Parquet and CSV" in result.output


def test_java_problems_are_named(tmp_path: Path) -> None:
    assert bs.java_problem() is None  # this machine's Java runs Spark
    missing = bs.java_problem({"JAVA_HOME": str(tmp_path / "nowhere"), "PATH": ""})
    assert isinstance(missing, MissingDependencyError)
    assert "Java 17" in str(missing) and "openjdk-17-jre-headless" in str(missing)
    old = tmp_path / "jdk11"
    (old / "bin").mkdir(parents=True)
    java = old / "bin" / "java"
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    java.chmod(0o755)
    found = bs.java_problem({"JAVA_HOME": str(old), "PATH": ""})
    assert isinstance(found, MissingDependencyError) and "is Java 11" in str(found)


def test_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"baton\[spark\]"):
        bs.session()


def test_cli_engine_spark_reads_data_as_typed(cli_files: dict[str, Path], spark: Any,
                                              mixed_bundle_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # a URI keeps its '//' (a Path would fold it): the error quotes what Spark was given
    uri = f"file://{cli_files['parquet'].parent}/absent.parquet"
    args = ["check", str(cli_files["model"]), str(mixed_bundle_dir), "--data", uri,
            "--engine", "spark"]
    monkeypatch.setattr(sys, "argv", ["baton", *args])
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert f"Spark cannot read {uri}" in result.output


def test_check_raises_an_executor_error_as_itself(churn_df: Any, fitted_pipeline: Any,
                                                  mixed_bundle_dir: Path,
                                                  mixed_frame: Any) -> None:
    with pytest.raises(SchemaError) as local:
        baton.check(fitted_pipeline, mixed_bundle_dir, mixed_frame.drop(columns="city"),
                    search=False)
    with pytest.raises(SchemaError) as remote:
        bs.check(fitted_pipeline, mixed_bundle_dir, churn_df.drop("city"))
    assert remote.value.message == f"{local.value.message} (on a Spark executor)"
    assert (remote.value.expected, remote.value.hint) == (local.value.expected,
                                                          local.value.hint)
