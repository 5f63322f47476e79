"""``baton bench`` and ``baton check --budget``, through typer's CliRunner.

Timed runs are kept small through --min-runs/--min-seconds/--max-seconds; no test asserts
on a time: only on verdicts, exit codes and what the output and files carry."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from baton.cli import app

runner = CliRunner()
FAST = ["--min-runs", "500", "--min-seconds", "0", "--max-seconds", "20"]
# with the original model (milliseconds a call) beside the ONNX one: fewer runs
BENCH = ["--min-runs", "100", "--min-seconds", "0", "--max-seconds", "20"]
INTERVAL = re.compile(r"p99 [0-9.]+ (?:ns|µs|ms|s) \[[0-9.]+ (?:ns|µs|ms|s), "
                      r"[0-9.]+ (?:ns|µs|ms|s)\]")


def run(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def cuda_present() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, fitted_pipeline: Any,
          mixed_frame: Any) -> dict[str, Path]:
    import skops.io as sio

    import baton

    d = tmp_path_factory.mktemp("bench")
    out = {"dir": d, "model": d / "model.skops", "csv": d / "rows.csv",
           "bundle": d / "churn.baton"}
    sio.dump(fitted_pipeline, out["model"])
    mixed_frame.iloc[300:].to_csv(out["csv"], index=False)
    baton.convert(fitted_pipeline, mixed_frame.iloc[:300], name="churn").save(out["bundle"])
    return out


def check(files: dict[str, Path], *extra: Any) -> Any:
    return run("check", files["model"], files["bundle"], "--data", files["csv"], "--no-search",
               *FAST, *extra)


def test_impossible_budget_fails_with_its_interval(files: dict[str, Path],
                                                   tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = check(files, "--budget", "cpu:batch=1:p99<=1ns", "--json", report)
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "cpu:batch=1:p99<=1ns" in result.output
    assert INTERVAL.search(result.output), result.output
    data = json.loads(report.read_text())
    assert data["passed"] is False
    (b,) = data["latency"]["budgets"]
    assert b["verdict"] == "fail" and b["interval"]["low"] > 1e-6  # 1 ns in ms
    (m,) = data["latency"]["measurements"]
    env = m["environment"]
    for key in ("cpu", "logical_cores", "physical_cores", "intra_op_threads", "onnxruntime",
                "provider", "batch", "input_shapes"):
        assert key in env, key
    assert env["batch"] == 1 and all(s[0] == 1 for s in env["input_shapes"].values())


def test_generous_budget_passes(files: dict[str, Path]) -> None:
    result = check(files, "--budget", "cpu:batch=1:p99<=10s",
                   "--budget", "cpu:batch=16:throughput>=1/s", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    assert result.output.count(" pass ") >= 2


@pytest.fixture()
def cpu_load() -> Iterator[None]:
    """A busy loop in another process, for as long as the test runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def quiet_p50_ms(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> float:
    """The ONNX model's p50 at batch 1, measured before any load is added."""
    out = tmp_path_factory.mktemp("quiet") / "bench.json"
    result = run("bench", files["bundle"], "--batch", "1", *FAST, "--json", out)
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(out.read_text())["results"]
    return float(entry["onnx"]["p50_ms"]["value"])


@pytest.mark.usefixtures("cpu_load")
def test_same_verdict_twice_under_load(files: dict[str, Path], quiet_p50_ms: float) -> None:
    # limits a factor of 20 from the quiet median, either side: a busy loop on one of the
    # two cores must not move the verdict, nor may running the command again
    cases = (("cpu:batch=1:p99<=10s", 0), ("cpu:batch=1:p99<=1ns", 1),
             (f"cpu:batch=1:p50<={quiet_p50_ms * 20:.6f}ms", 0),
             (f"cpu:batch=1:p50<={quiet_p50_ms / 20:.6f}ms", 1))
    for budget, verdict in cases:
        codes = [check(files, "--budget", budget).exit_code for _ in range(2)]
        assert codes == [verdict, verdict], budget


def test_too_few_runs_is_undecided_and_strict_makes_it_fail(files: dict[str, Path]) -> None:
    # 50 runs put 0.5 runs beyond p99: the interval is unbounded above, so a generous
    # ceiling can be neither confirmed nor refuted
    few = ["--min-runs", "50", "--min-seconds", "0", "--max-seconds", "20"]
    args = ["check", files["model"], files["bundle"], "--data", files["csv"], "--no-search",
            *few, "--budget", "cpu:batch=1:p99<=10s"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "undecided" in result.output and "unbounded" in result.output
    strict = run(*args, "--strict-budgets")
    assert strict.exit_code == 1, strict.output
    assert "UNDECIDED" in strict.output


@pytest.mark.skipif(cuda_present(), reason="this onnxruntime has a CUDA provider")
def test_cuda_budget_without_cuda_is_skipped_never_silently(files: dict[str, Path]) -> None:
    result = check(files, "--budget", "cuda:batch=1:p99<=10s")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "no CUDA execution provider" in result.output
    assert check(files, "--budget", "cuda:batch=1:p99<=10s",
                 "--strict-budgets").exit_code == 1


@pytest.mark.parametrize("spec", ["cpu:batch=1:p99", "gpu:batch=1:p99<=2ms",
                                  "cpu:batch=1:p99>=2ms"])
def test_bad_budget_exits_2_before_any_work(files: dict[str, Path], spec: str) -> None:
    result = check(files, "--budget", spec)
    assert result.exit_code == 2, result.output
    assert "cannot read the latency budget" in result.output
    assert "cpu:batch=1:p99<=2ms" in result.output  # an example of the right form


def test_budgets_from_the_config_file(files: dict[str, Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "baton.toml").write_text('budgets = ["cpu:batch=1:p99<=1ns"]\n')
    monkeypatch.chdir(tmp_path)
    result = check(files)
    assert result.exit_code == 1, result.output
    assert f"budgets from {tmp_path / 'baton.toml'}" in result.output
    # the command line replaces the file's budget for the same provider, batch and metric
    result = check(files, "--budget", "cpu:batch=1:p99<=10s")
    assert result.exit_code == 0, result.output
    (tmp_path / "baton.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.baton]\nbudgets = ["cpu:batch=2:p50<=1ns"]\n')
    result = check(files)
    assert result.exit_code == 1 and "pyproject.toml" in result.output, result.output


def _intervals_ok(stats: dict[str, Any]) -> None:
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        iv = stats[key]
        assert iv["low"] <= iv["value"], key
        assert iv["high"] is None or iv["value"] <= iv["high"], key


def test_bench_json_has_percentiles_for_onnx_and_original(files: dict[str, Path],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run("bench", files["bundle"], "--model", files["model"], "--data", files["csv"],
                 "--batch", "1,8", *BENCH, "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [(r["provider"], r["batch"]) for r in data["results"]] == [("cpu", 1), ("cpu", 8)]
    for r in data["results"]:
        for side in ("onnx", "original"):
            assert r[side]["model"] == side and r[side]["runs"] >= 100
            _intervals_ok(r[side])
        assert r["speedup_p50"]["value"] > 0
        assert r["onnx"]["environment"]["input_shapes"]["age"] == [r["batch"], 1]
    assert "speed-up" in result.output


def test_bench_on_golden_vectors_rebuilds_the_original_input(files: dict[str, Path],
                                                             tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run("bench", files["bundle"], "--model", files["model"], "--batch", "3",
                 "--threads", "1", *BENCH, "--json", out)
    assert result.exit_code == 0, result.output
    (r,) = json.loads(out.read_text())["results"]
    assert r["original"]["runs"] >= 100
    assert r["onnx"]["environment"]["intra_op_threads"] == 1


@pytest.mark.skipif(cuda_present(), reason="this onnxruntime has a CUDA provider")
def test_bench_reports_cuda_as_skipped(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run("bench", files["bundle"], "--batch", "1", "--provider", "cpu,cuda", *FAST,
                 "--json", out)
    assert result.exit_code == 0, result.output
    assert "skipped: no CUDA execution provider" in result.output
    cuda = [r for r in json.loads(out.read_text())["results"] if r["provider"] == "cuda"]
    assert cuda and "no CUDA execution provider" in cuda[0]["onnx"]["skipped"]


@pytest.mark.parametrize("args", [["--batch", "1,x"], ["--batch", "0"], ["--provider", "tpu"],
                                  ["--threads", "0"], ["--min-runs", "0"]])
def test_bench_usage_errors_exit_2(files: dict[str, Path], args: list[str]) -> None:
    result = run("bench", files["bundle"], *args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
