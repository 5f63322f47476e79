"""The `baton` command, through typer's CliRunner: exit codes, files, messages."""

from __future__ import annotations

import json
import pickle
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from baton.cli import app

runner = CliRunner()


def run(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, fitted_pipeline: Any, other_pipeline: Any,
          mixed_frame: Any) -> dict[str, Path]:
    import skops.io as sio

    d = tmp_path_factory.mktemp("cli")
    out = {
        "model": d / "model.skops", "other": d / "other.skops", "pickle": d / "model.pkl",
        "parquet": d / "train.parquet", "csv": d / "test.csv", "npy": d / "x.npy",
    }
    sio.dump(fitted_pipeline, out["model"])
    sio.dump(other_pipeline, out["other"])
    out["pickle"].write_bytes(pickle.dumps(fitted_pipeline))
    mixed_frame.iloc[:300].to_parquet(out["parquet"])
    mixed_frame.iloc[300:].to_csv(out["csv"], index=False)
    np.save(out["npy"], np.zeros((3, 2)))
    out["bundle"] = d / "churn.baton"
    result = run("convert", out["model"], "--sample", out["parquet"], "-o", out["bundle"])
    assert result.exit_code == 0, result.output
    return out


def test_convert_check_verify_pass(files: dict[str, Path]) -> None:
    assert (files["bundle"] / "baton.json").is_file()
    result = run("check", files["model"], files["bundle"], "--data", files["csv"])
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    result = run("verify", files["bundle"])
    assert result.exit_code == 0, result.output
    assert "35" not in result.output or "match their sha256" in result.output


def test_different_model_fails_with_worst_rows(files: dict[str, Path], tmp_path: Path) -> None:
    junit, report_json = tmp_path / "parity.xml", tmp_path / "parity.json"
    result = run("check", files["other"], files["bundle"], "--data", files["csv"],
                 "--junit", junit, "--json", report_json)
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
    assert "worst rows for probabilities" in result.output
    assert "city=" in result.output  # the worst rows show their input values
    data = json.loads(report_json.read_text())
    assert data["passed"] is False
    worst = data["outputs"][1]["worst_rows"]
    assert worst and set(worst[0]["inputs"]) == {"age", "tenure_months", "monthly_charge",
                                                 "city", "plan"}
    # JUnit: one test case per output, the failing ones marked
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["output label (label)",
                                              "output probabilities (probabilities)"]
    assert cases[1].find("failure") is not None
    assert root.find("testsuite").get("failures") == str(
        sum(c.find("failure") is not None for c in cases))


def test_loose_tolerance_from_the_command_line(files: dict[str, Path]) -> None:
    """--atol/--rtol override the bundle's tolerances for numbers; labels still gate exactly."""
    result = run("check", files["other"], files["bundle"], "--data", files["csv"],
                 "--atol", "1", "--rtol", "0")
    rows = {ln.split()[0]: ln.split()[2] for ln in result.output.splitlines()
            if ln.strip().split()[:1] in (["label"], ["probabilities"])}
    assert rows == {"label": "FAIL", "probabilities": "pass"}, result.output
    assert result.exit_code == 1


def test_tampered_model_fails_verify_naming_the_file(files: dict[str, Path],
                                                     tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad.baton"
    shutil.copytree(files["bundle"], bad)
    with open(bad / "model.onnx", "ab") as f:
        f.write(b"\0")
    result = run("verify", bad)
    assert result.exit_code == 1
    assert "model.onnx" in result.output and "DIFFERS" in result.output


def test_pickle_refused_without_trust(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "p.baton"
    result = run("convert", files["pickle"], "--sample", files["parquet"], "-o", out)
    assert result.exit_code == 2
    assert "arbitrary code" in result.output and "--trust-pickle" in result.output
    assert not out.exists()
    result = run("convert", files["pickle"], "--sample", files["parquet"], "-o", out,
                 "--trust-pickle")
    assert result.exit_code == 0, result.output


def test_unsupported_estimator_exits_2_with_explanation(files: dict[str, Path],
                                                       tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(100, 3))
    model = VotingClassifier([("hgb", HistGradientBoostingClassifier(max_iter=3)),
                              ("lr", LogisticRegression())]).fit(X, X[:, 0] > 0)
    sio.dump(model, tmp_path / "hgb.skops")
    np.save(tmp_path / "x.npy", X)
    result = run("convert", tmp_path / "hgb.skops", "--sample", tmp_path / "x.npy",
                 "-o", tmp_path / "hgb.baton")
    assert result.exit_code == 2
    assert "HistGradientBoostingClassifier" in result.output
    assert "what to do:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "hgb.baton").exists()


def test_existing_output_needs_force(files: dict[str, Path]) -> None:
    before = (files["bundle"] / "baton.json").read_bytes()
    result = run("convert", files["model"], "--sample", files["parquet"], "-o", files["bundle"])
    assert result.exit_code == 2 and "--force" in result.output
    assert (files["bundle"] / "baton.json").read_bytes() == before


@pytest.mark.parametrize("case", ["unknown-data", "missing-data", "unknown-model",
                                  "missing-column", "not-a-bundle", "wrong-shape"])
def test_input_errors_exit_2(files: dict[str, Path], tmp_path: Path, case: str,
                             mixed_frame: Any) -> None:
    if case == "unknown-data":
        (tmp_path / "d.xlsx").write_text("x")
        args = ["check", files["model"], files["bundle"], "--data", tmp_path / "d.xlsx"]
        expect = ".xlsx"
    elif case == "missing-data":
        args = ["check", files["model"], files["bundle"], "--data", tmp_path / "nope.csv"]
        expect = "no data file"
    elif case == "unknown-model":
        (tmp_path / "m.h5").write_text("x")
        args = ["check", tmp_path / "m.h5", files["bundle"], "--data", files["csv"]]
        expect = ".h5"
    elif case == "missing-column":
        mixed_frame.drop(columns="plan").to_csv(tmp_path / "d.csv", index=False)
        args = ["check", files["model"], files["bundle"], "--data", tmp_path / "d.csv"]
        expect = "'plan'"
    elif case == "not-a-bundle":
        args = ["check", files["model"], tmp_path, "--data", files["csv"]]
        expect = "baton.json"
    else:
        args = ["check", files["model"], files["bundle"], "--data", files["npy"]]
        expect = "rejected the data"
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert expect in result.output
    assert "Traceback" not in result.output


def test_inspect(files: dict[str, Path]) -> None:
    result = run("inspect", files["bundle"])
    assert result.exit_code == 0, result.output
    for text in ("skl2onnx", "tenure_months", "int64", "probabilities", "parity at conversion",
                 "parity ran on: cpu"):
        assert text in result.output
    result = run("inspect", files["bundle"], "--json")
    manifest = json.loads(result.output)
    assert manifest["name"] == "LogisticRegression"
    level = manifest["runtime"]["graph_optimization_level"]
    assert f"session: graph optimisation level {level}" in run("inspect", files["bundle"]).output


def test_bare_onnx_file_with_zipmap_is_checked(fitted_pipeline: Any, mixed_frame: Any,
                                               tmp_path: Path, files: dict[str, Path]) -> None:
    """A team's own skl2onnx export (ZipMap, float32, its own output names) is accepted."""
    from skl2onnx import to_onnx

    frame = mixed_frame.copy()
    for c in ("age", "monthly_charge"):
        frame[c] = frame[c].astype(np.float32)
    frame["plan"] = frame["plan"].astype(str).astype(object)
    from tests.conftest import mixed_pipeline, mixed_target

    model = mixed_pipeline().fit(frame, mixed_target(frame))
    onx = to_onnx(model, frame.iloc[:5], target_opset={"": 18, "ai.onnx.ml": 3})
    assert any(o.name == "output_probability" for o in onx.graph.output)
    (tmp_path / "raw.onnx").write_bytes(onx.SerializeToString())
    import skops.io as sio

    sio.dump(model, tmp_path / "m.skops")
    frame.to_parquet(tmp_path / "d.parquet")
    result = run("check", tmp_path / "m.skops", tmp_path / "raw.onnx",
                 "--data", tmp_path / "d.parquet")
    assert result.exit_code == 0, result.output
    assert "output_probability" in result.output


def test_internal_error_exits_3(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import baton.io

    def broken(path: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(baton.io, "read_data", broken)
    monkeypatch.setattr(baton.io, "iter_batches", broken)  # .csv streams
    result = run("check", files["model"], files["bundle"], "--data", files["csv"])
    assert result.exit_code == 3
    assert "internal error" in result.output and "BATON_DEBUG" in result.output


def test_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run("demo", "-o", out)
    assert result.exit_code == 0, result.output
    for name in ("model.skops", "holdout.csv", "breast-cancer.baton/baton.json",
                 "check-report.json", "check-junit.xml"):
        assert (out / name).is_file(), name
    assert "PASSED" in result.output
    assert f"baton verify {out / 'breast-cancer.baton'}" in result.output
    # the commands the demo prints work
    assert run("verify", out / "breast-cancer.baton").exit_code == 0
    assert run("check", out / "model.skops", out / "breast-cancer.baton",
               "--data", out / "holdout.csv").exit_code == 0
