"""``baton recheck``: parity re-proven on production data, drift from the envelope and the
conversion sample's profile, and the outputs a service served against the bundle's."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import baton
from baton.cli import app
from baton.parity.recheck import parse_share, thresholds
from baton.results.drift import DriftReport
from tests.conftest import make_mixed_frame

runner = CliRunner()


def drift(report: Any) -> DriftReport:
    assert report.drift is not None, "a recheck's report has a drift section"
    return report.drift


def recheck(*args: Any, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["recheck", *map(str, args)], env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, fitted_pipeline: Any,
          other_pipeline: Any) -> dict[str, Path]:
    import skops.io as sio

    d = tmp_path_factory.mktemp("recheck")
    out = {"model": d / "model.skops", "other": d / "other.skops",
           "fresh": d / "fresh.parquet", "scaled": d / "scaled.parquet"}
    sio.dump(fitted_pipeline, out["model"])
    sio.dump(other_pipeline, out["other"])
    fresh = make_mixed_frame(400, seed=7)  # new traffic from the same distribution
    fresh.to_parquet(out["fresh"])
    scaled = fresh.copy()
    scaled["monthly_charge"] = scaled["monthly_charge"] * 100
    scaled.to_parquet(out["scaled"])
    return out


def test_fresh_in_range_rows_pass(files: dict[str, Path], mixed_bundle_dir: Path) -> None:
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["fresh"])
    assert result.exit_code == 0, result.output
    assert "PASSED: recheck" in result.output
    assert "400 rows" in result.output and "no parity search runs in recheck" in result.output
    for column in ("age", "tenure_months", "monthly_charge", "city", "plan"):
        assert column in result.output


def test_a_column_far_beyond_its_range_fails_naming_it(files: dict[str, Path],
                                                       mixed_bundle_dir: Path,
                                                       fitted_pipeline: Any) -> None:
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["scaled"])
    assert result.exit_code == 1, result.output
    failing = [line for line in result.output.splitlines() if line.startswith("drift: input")]
    assert len(failing) == 1 and "monthly_charge" in failing[0], result.output
    assert "outside the envelope (" in failing[0] and "> 1.0%" in failing[0]
    assert "PSI" in failing[0]
    assert "above" in result.output  # a reason, from the envelope
    # the library's report: the share outside is the share of scaled values above the range
    import pandas as pd

    data = pd.read_parquet(files["scaled"])
    report = baton.recheck(fitted_pipeline, mixed_bundle_dir, data)
    col = drift(report).column("monthly_charge")
    env = baton.load(mixed_bundle_dir).typed_manifest.envelope
    assert env is not None
    high = env.columns["monthly_charge"].high
    assert col.outside == int((data["monthly_charge"] > high).sum()) > 0
    assert col.psi is not None and col.psi > 0.2 and col.psi_decides
    assert not report and report.outputs and all(report.outputs)  # parity itself holds
    assert [c.name for c in drift(report).failing] == ["monthly_charge"]


def test_unseen_categories_are_named_and_counted(fitted_pipeline: Any,
                                                 mixed_bundle_dir: Path) -> None:
    data = make_mixed_frame(400, seed=8)
    data.loc[:29, "city"] = "Rome"
    data.loc[30:34, "city"] = "Kyiv"
    report = baton.recheck(fitted_pipeline, mixed_bundle_dir, data)
    city = drift(report).column("city")
    assert city.unseen == {"Rome": 30, "Kyiv": 5} and city.unseen_total == 35
    assert city.outside == 35 and not city.passed
    assert not report


def test_a_bundle_that_no_longer_matches_fails_with_worst_rows(
        files: dict[str, Path], mixed_bundle_dir: Path) -> None:
    result = recheck(files["other"], mixed_bundle_dir, "--data", files["fresh"])
    assert result.exit_code == 1, result.output
    assert "worst rows for" in result.output and "FAIL" in result.output


def test_a_bundle_without_a_profile_rechecks_with_a_note(files: dict[str, Path],
                                                        mixed_bundle_dir: Path,
                                                        tmp_path: Path) -> None:
    old = tmp_path / "old.baton"
    shutil.copytree(mixed_bundle_dir, old)
    manifest = json.loads((old / "baton.json").read_text())
    del manifest["profile"]  # baton.json is hashed by no file list: only the digest moves
    (old / "baton.json").write_text(json.dumps(manifest))
    report_file = tmp_path / "r.json"
    result = recheck(files["model"], old, "--data", files["fresh"], "--json", report_file)
    assert result.exit_code == 0, result.output
    assert "no profile" in result.output
    drift = json.loads(report_file.read_text())["drift"]
    assert all(c["psi"] is None for c in drift["columns"])
    assert all(c["outside"] == 0 for c in drift["columns"])  # the envelope still judges
    # and a column far beyond its range still fails, on the envelope alone
    result = recheck(files["model"], old, "--data", files["scaled"])
    assert result.exit_code == 1 and "monthly_charge" in result.output


def test_thresholds_from_pyproject_and_the_command_line_wins(
        files: dict[str, Path], mixed_bundle_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.baton.recheck]\nmax-outside = "90%"\nmax-psi = 0.001\n')
    monkeypatch.chdir(tmp_path)
    assert thresholds()[:2] == (0.9, 0.001)
    # every healthy column has a PSI above 0.001: the file's threshold fails them
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["fresh"])
    assert result.exit_code == 1, result.output
    assert "pyproject.toml" in result.output
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["fresh"],
                     "--max-psi", "0.5")
    assert result.exit_code == 0, result.output
    # 85 % of monthly_charge outside is within the file's 90 % ...
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["scaled"],
                     "--max-psi", "100")
    assert result.exit_code == 0, result.output
    # ... and not within the command line's 1 %
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["scaled"],
                     "--max-psi", "100", "--max-outside", "1%")
    assert result.exit_code == 1, result.output


def test_shares_are_read_as_percent_or_fraction() -> None:
    assert parse_share("1%", "--max-outside") == pytest.approx(0.01)
    assert parse_share("0.01", "--max-outside") == pytest.approx(0.01)
    for bad in ("150%", "-0.1", "lots", "nan"):
        with pytest.raises(baton.UsageError):
            parse_share(bad, "--max-outside")


def test_usage_errors_exit_2(files: dict[str, Path], mixed_bundle_dir: Path,
                             tmp_path: Path) -> None:
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["fresh"],
                     "--max-outside", "lots")
    assert result.exit_code == 2 and "--max-outside" in result.output
    result = recheck(files["model"], mixed_bundle_dir, "--data", tmp_path / "none.csv")
    assert result.exit_code == 2 and "nothing at" in result.output
    # a day's folder not written yet: named, with when such folders appear
    result = recheck(files["model"], mixed_bundle_dir, "--data", tmp_path / "2026-12-01")
    assert result.exit_code == 2 and "nothing at" in result.output, result.output
    assert "--record-every" in result.output
    (tmp_path / "empty").mkdir()
    result = recheck(files["model"], mixed_bundle_dir, "--data", tmp_path / "empty")
    assert result.exit_code == 2 and "records" in result.output
    make_mixed_frame(50, seed=3).drop(columns=["city"]).to_csv(tmp_path / "lack.csv",
                                                               index=False)
    result = recheck(files["model"], mixed_bundle_dir, "--data", tmp_path / "lack.csv")
    assert result.exit_code == 2 and "city" in result.output
    result = recheck(files["model"], mixed_bundle_dir)
    assert result.exit_code == 2


def test_report_files_parse_and_the_step_summary_gets_a_table(
        files: dict[str, Path], mixed_bundle_dir: Path, tmp_path: Path) -> None:
    out = {k: tmp_path / f"r.{k}" for k in ("json", "xml", "md")}
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    result = recheck(files["model"], mixed_bundle_dir, "--data", files["scaled"],
                     "--json", out["json"], "--junit", out["xml"], "--summary-md", out["md"],
                     env={"GITHUB_STEP_SUMMARY": str(step)})
    assert result.exit_code == 1, result.output
    report = json.loads(out["json"].read_text())
    assert report["kind"] == "recheck" and report["passed"] is False
    failed = [c["name"] for c in report["drift"]["columns"] if not c["passed"]]
    assert failed == ["monthly_charge"]
    share = drift(baton.Report.from_dict(report)).column("monthly_charge").outside_share
    assert share is not None and share > 0.5
    root = ET.parse(out["xml"]).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["drift monthly_charge"].find("failure") is not None
    assert cases["drift age"].find("failure") is None
    md = out["md"].read_text()
    assert "FAILED" in md and "| input |" in md
    row = next(line for line in md.splitlines() if line.startswith("| monthly_charge"))
    assert "**FAIL**" in row
    summary = step.read_text()
    assert summary.startswith("earlier step\n") and "| monthly_charge" in summary
    # check writes the same summary
    step.write_text("")
    result = runner.invoke(app, ["check", str(files["model"]), str(mixed_bundle_dir),
                                 "--data", str(files["fresh"]), "--no-search",
                                 "--summary-md", str(out["md"])],
                           env={"GITHUB_STEP_SUMMARY": str(step)})
    assert result.exit_code == 0, result.output
    assert "baton check: ✅ PASSED" in out["md"].read_text()
    assert "| output |" in step.read_text()


def test_few_rows_psi_is_reported_but_does_not_decide(fitted_pipeline: Any,
                                                      mixed_bundle_dir: Path) -> None:
    # 40 rows, every age near the top of the sample's range but inside the envelope:
    # the PSI is large, yet on 40 rows it is noise-prone and does not fail the model
    data = make_mixed_frame(40, seed=5)
    data["age"] = np.linspace(60.0, 70.0, 40)
    report = baton.recheck(fitted_pipeline, mixed_bundle_dir, data)
    age = drift(report).column("age")
    assert age.outside == 0 and age.psi is not None and age.psi > 0.2
    assert not age.psi_decides and report
    assert any("does not decide" in n for n in drift(report).notes)
    # with the bar lowered, the same PSI decides (and 40 rows' noise may fail others too)
    strict = baton.recheck(fitted_pipeline, mixed_bundle_dir, data, min_rows_psi=10)
    assert not strict and "age" in [c.name for c in drift(strict).failing]
    assert drift(strict).column("age").psi == pytest.approx(age.psi)


# -- records of `baton serve --record` -------------------------------------------------------


def _write_records(bundle: Path, frame: Any, directory: Path, *, digest: str | None,
                   tamper: bool = False) -> Path:
    """Records as the server writes them: the bundle's own outputs on ``frame``'s rows."""
    from baton import records
    from baton.runtime import Session
    from baton.schema import to_feeds

    session = Session(bundle)
    feeds = to_feeds(frame, session.inputs)
    outputs = session.run(feeds)
    if tamper:
        outputs = {k: v.copy() for k, v in outputs.items()}
        label = next(o.name for o in session.outputs if o.kind == "label")
        outputs[label][:10] = 1 - outputs[label][:10]
    lay = records.layout(session.inputs, session.outputs, model="churn", digest=digest)
    table = records.records_table(lay, [(1_700_000_000.0, feeds, outputs)])
    return records.write_records(table, directory)


def test_records_recheck_compares_what_was_served(fitted_pipeline: Any, mixed_bundle_dir: Path,
                                                  files: dict[str, Path],
                                                  tmp_path: Path) -> None:
    digest = baton.load(mixed_bundle_dir).digest
    frame = make_mixed_frame(300, seed=11)
    _write_records(mixed_bundle_dir, frame, tmp_path / "rec", digest=digest)
    report = baton.recheck(fitted_pipeline, mixed_bundle_dir, tmp_path / "rec")
    assert report, report.failures
    assert report.rows == 300 and report.served and all(report.served)
    # through the command: the records directory, as --data
    result = recheck(files["model"], mixed_bundle_dir, "--data", tmp_path / "rec")
    assert result.exit_code == 0, result.output
    assert "served" in result.output
    # a service that served other labels than the bundle gives fails on them
    _write_records(mixed_bundle_dir, frame, tmp_path / "bad", digest=digest, tamper=True)
    bad = baton.recheck(fitted_pipeline, mixed_bundle_dir, tmp_path / "bad")
    assert not bad and any(f.startswith("served ") for f in bad.failures)
    assert all(bad.outputs)  # the original and the bundle still agree


def test_records_of_another_bundle_are_noted(fitted_pipeline: Any, mixed_bundle_dir: Path,
                                             tmp_path: Path) -> None:
    frame = make_mixed_frame(100, seed=12)
    _write_records(mixed_bundle_dir, frame, tmp_path / "rec", digest="sha256:" + "0" * 64,
                   tamper=True)
    report = baton.recheck(fitted_pipeline, mixed_bundle_dir, tmp_path / "rec")
    assert any("another bundle" in n for n in report.notes)
    assert not report.served and report  # not compared: another model served them


# -- drift itself, without a model --------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(0.1, 50), shift=st.floats(-20, 20), rows=st.integers(1, 120),
       seed=st.integers(0, 2**16))
def test_drift_counts_the_rows_the_envelope_calls_outside(scale: float, shift: float,
                                                          rows: int, seed: int) -> None:
    from statsmodels.stats.proportion import proportion_confint

    from baton.envelope import Envelope
    from baton.parity.recheck import drift as measure
    from baton.profile import Profile

    rng = np.random.default_rng(seed)
    sample = rng.normal(size=(200, 2))
    new = rng.normal(size=(rows, 2)) * scale + shift
    envelope = Envelope.observe(sample)
    report = measure(new, envelope, Profile.observe(sample), max_outside=0.05,
                     min_rows_psi=100)
    for j, col in enumerate(report.columns):
        region = envelope.columns[f"x{j}"]
        outside = sum(region.outside(v) is not None for v in new[:, j])
        assert col.outside == outside
        # the share outside fails only with evidence: the exact one-sided 95 % bound (a
        # two-sided 90 % Clopper-Pearson interval, as statsmodels computes it) lies above
        low = proportion_confint(outside, rows, alpha=0.10, method="beta")[0]
        assert col.passed is not (low > 0.05 or (
            rows >= 100 and col.psi is not None and col.psi > 0.2))
        assert col.psi_decides is (rows >= 100)


def test_a_few_rows_outside_of_many_hold_and_a_clear_excess_fails() -> None:
    """The outside share decides on evidence: 2 of 171 (1.2 %) and 1 of 20 (5 %) may well
    come from under 1 %, 3 of 20 (15 %) may not; every row outside always fails."""
    from statsmodels.stats.proportion import proportion_confint

    from baton.results.drift import ColumnDrift

    for k, n, fails in ((2, 171, False), (1, 20, False), (0, 5, False), (3, 20, True),
                        (5, 5, True), (30, 1000, True), (12, 1000, False),
                        (12_345, 1_000_000, True), (9_000, 1_000_000, False)):
        col = ColumnDrift("x0", "float", n, outside=k, max_outside=0.01)
        assert col.outside_low == pytest.approx(
            proportion_confint(k, n, alpha=0.10, method="beta")[0], abs=1e-9)
        assert col.passed is not fails, (k, n, col.outside_low)
