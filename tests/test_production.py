"""Production, end to end (docs/production.md): ``baton serve --record`` under real Open
Inference Protocol clients (tritonclient), ``/metrics``, then ``baton recheck`` on what the
server recorded; and the scheduling and alerting files of ``examples/production/``, which
the page prints.

One server process serves the whole file: it records in-range traffic, then traffic with
one column scaled far beyond its training range, and is stopped with SIGTERM. The
rechecks run in process (typer's CliRunner).

PyYAML is not a dependency of the project, so the workflow and the alerting rules are read
by :func:`parse_yaml` below, a parser of the YAML subset those files use (block mappings
and sequences, literal blocks, flow sequences, quoted scalars, comments), which refuses
anything else.
"""

from __future__ import annotations

import http.client
import json
import re
import shlex
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from baton.cli import app
from tests.conftest import make_mixed_frame
from tests.test_serve import INPUTS, MODEL, Server, columns, serving, triton_inputs, wait_until

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "production"
PAGE = ROOT / "docs" / "production.md"
NUMERIC = ["age", "tenure_months", "monthly_charge"]
#: the column the drifted traffic scales far beyond its training range
SCALED = "age"
#: the in-range traffic's rows: enough for PSI to decide (300, recheck's default)
IN_RANGE_ROWS = 320
SCALED_ROWS = 40
#: a line of a script that runs baton recheck (not one that only names it)
RECHECK = re.compile(r"^\s*(\S*/)?baton recheck\s", flags=re.M)

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory: no baton.toml / pyproject.toml [tool.baton.recheck]
    changes the thresholds the rechecks here are judged by."""
    monkeypatch.chdir(tmp_path)


def run(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


# -- the traffic ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def traffic(mixed_frame: Any) -> tuple[Any, Any]:
    """Fresh rows like the training frame (another seed), their numbers clipped to the
    training frame's observed range, so inside the envelope by construction; and a second
    batch with ``SCALED`` multiplied by 1000."""
    def fresh(n: int, seed: int) -> Any:
        frame = make_mixed_frame(n, seed=seed)
        for c in NUMERIC:
            frame[c] = frame[c].clip(mixed_frame[c].min(), mixed_frame[c].max())
        return frame

    scaled = fresh(SCALED_ROWS, 32)
    scaled[SCALED] = scaled[SCALED] * 1000
    return fresh(IN_RANGE_ROWS, 31), scaled


def send(server: Server, frame: Any, clients: int = 4) -> int:
    """``frame`` in requests of 1 to 7 rows, from ``clients`` tritonclient clients at once
    (JSON and binary in turn); the number of requests. Every answer must be a prediction."""
    sizes = [1 + i % 7 for i in range(len(frame))]
    chunks, start = [], 0
    for size in sizes:
        if start >= len(frame):
            break
        chunks.append(frame.iloc[start:start + size])
        start += size
    errors: list[str] = []

    def work(k: int) -> None:
        client = server.client()
        for i, chunk in enumerate(chunks[k::clients]):
            try:
                result = client.infer(MODEL, triton_inputs(columns(chunk), binary=i % 2 == 0))
                assert result.as_numpy("label").shape == (len(chunk),)
            except Exception as exc:  # noqa: BLE001 - reported below, with the server log
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], f"{errors[:3]}\n{server.log_text()}"
    return len(chunks)


def rows_written(directory: Path) -> int:
    """Rows in the records files under ``directory`` (every file there is complete)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows
               for f in directory.rglob("records-*.parquet"))


def move_records(source: Path, target: Path) -> None:
    """Move the records files from ``source`` to ``target``, day directories and all."""
    for f in list(source.rglob("records-*.parquet")):
        dest = target / f.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(f, dest)


def scrape(server: Server) -> str:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/plain")
        return response.read().decode()
    finally:
        conn.close()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The exposition parsed by prometheus-client's own parser: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@dataclass
class Recorded:
    in_range: Path       # the records of the in-range traffic
    scaled: Path         # the records of the scaled traffic
    requests: int        # infer requests sent, both batches
    metrics: str         # /metrics after both batches
    exit_code: int       # the server's, after SIGTERM
    log: str


@pytest.fixture(scope="module")
def recorded(mixed_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory,
             traffic: tuple[Any, Any]) -> Recorded:
    base = tmp_path_factory.mktemp("production")
    live, in_range_dir, scaled_dir = base / "records", base / "in-range", base / "scaled"
    in_range, scaled = traffic
    with serving(mixed_bundle_dir, base / "serve.log", "--record", str(live),
                 "--record-rate", "1", "--record-every", "1") as srv:
        wait_until(srv.client().is_server_ready, "warm-up", srv)
        requests = send(srv, in_range)
        # every second the server writes what it recorded: wait for all of it, and set it
        # apart before the second batch (a file, once there, is complete and never touched)
        wait_until(lambda: rows_written(live) >= len(in_range), "the in-range records", srv)
        move_records(live, in_range_dir)
        requests += send(srv, scaled)
        metrics = scrape(srv)
        srv.process.send_signal(signal.SIGTERM)  # the rows still queued are written now
        exit_code = srv.process.wait(30)
        log = srv.log_text()
    move_records(live, scaled_dir)
    return Recorded(in_range_dir, scaled_dir, requests, metrics, exit_code, log)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, fitted_pipeline: Any,
           other_pipeline: Any) -> dict[str, Path]:
    import skops.io as sio

    d = tmp_path_factory.mktemp("models")
    out = {"model": d / "churn.skops", "other": d / "other.skops"}
    sio.dump(fitted_pipeline, out["model"])
    sio.dump(other_pipeline, out["other"])
    return out


def canonical(frame: Any) -> list[tuple[Any, ...]]:
    """The rows of ``frame`` (the churn columns), sorted, NaN as None: comparable as sets."""
    rows = []
    for row in frame[list(INPUTS)].itertuples(index=False):
        rows.append(tuple(None if isinstance(v, float) and np.isnan(v) else
                          (float(v) if isinstance(v, (int, float, np.number)) else str(v))
                          for v in row))
    return sorted(rows, key=repr)


# -- serve --record and /metrics --------------------------------------------------------------

def test_records_hold_the_rows_sent(recorded: Recorded, traffic: tuple[Any, Any],
                                    mixed_bundle_dir: Path) -> None:
    from baton.records import read_records
    from baton.runtime import BundleFiles

    assert recorded.exit_code == 0, recorded.log
    files = BundleFiles(mixed_bundle_dir)
    digest = files.digest(files.manifest())
    for directory, frame in zip((recorded.in_range, recorded.scaled), traffic):
        records = read_records(directory)
        assert records.rows == len(frame)
        assert canonical(records.data) == canonical(frame)
        assert records.digests == [digest]
        # one directory per UTC day, files named as the page says
        for f in records.files:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", f.parent.name), f
            assert re.fullmatch(r"records-\d{8}T\d{6}-\d+-\d+\.parquet", f.name), f
        assert set(records.served) == {"label", "probabilities"}
        assert records.served["label"].shape == (len(frame),)


def test_metrics_count_requests_and_rows_outside_by_input(recorded: Recorded,
                                                          traffic: tuple[Any, Any]) -> None:
    values = samples(recorded.metrics)

    def value(name: str, **labels: str) -> float:
        return values[(name, frozenset(labels.items()))]

    in_range, scaled = traffic
    assert value("baton_requests_total", outcome="ok") == recorded.requests
    assert value("baton_request_duration_seconds_count") == recorded.requests
    assert value("baton_outside_envelope_total", input=SCALED) == len(scaled)
    for name in ("tenure_months", "monthly_charge", "city", "plan"):
        assert value("baton_outside_envelope_total", input=name) == 0, name
    assert value("baton_records_written_total") >= len(in_range)
    assert value("baton_records_dropped_total") == 0
    assert value("baton_golden_check") == 1


# -- baton recheck on the records -------------------------------------------------------------

def test_recheck_passes_on_in_range_records(recorded: Recorded, models: dict[str, Path],
                                            mixed_bundle_dir: Path, tmp_path: Path) -> None:
    out = {k: tmp_path / f"recheck.{k}" for k in ("json", "xml", "md")}
    result = run("recheck", models["model"], mixed_bundle_dir, "--data", recorded.in_range,
                 "--json", out["json"], "--junit", out["xml"], "--summary-md", out["md"])
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    report = json.loads(out["json"].read_text())
    assert report["passed"] is True and report["rows"] == IN_RANGE_ROWS
    drift = {c["name"]: c for c in report["drift"]["columns"]}
    assert set(drift) >= {"age", "tenure_months", "monthly_charge", "city", "plan"}
    assert all(c["outside"] == 0 for c in drift.values())
    # enough rows on both sides (320 here, 400 at conversion) for PSI to decide
    assert all(drift[c]["psi_decides"] and drift[c]["psi"] <= 0.2 for c in NUMERIC)
    # the outputs served were compared with the bundle's, and agree
    assert {o["name"] for o in report["served"]} == {"label", "probabilities"}
    assert all(o["passed"] for o in report["served"])
    assert "PASSED" in out["md"].read_text()
    assert out["xml"].read_text().count("<failure") == 0


def test_recheck_fails_on_a_column_scaled_beyond_its_range(
        recorded: Recorded, models: dict[str, Path], mixed_bundle_dir: Path,
        tmp_path: Path) -> None:
    report_json = tmp_path / "recheck.json"
    result = run("recheck", models["model"], mixed_bundle_dir, "--data", recorded.scaled,
                 "--json", report_json)
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
    assert f"drift: input {SCALED}" in result.output
    report = json.loads(report_json.read_text())
    # parity itself holds: the verdict is the drift's, and names the scaled column only
    assert all(o["passed"] for o in report["outputs"])
    failing = [c["name"] for c in report["drift"]["columns"] if not c["passed"]]
    assert failing == [SCALED]
    drift = {c["name"]: c for c in report["drift"]["columns"]}
    assert drift[SCALED]["outside_share"] == 1.0


def test_recheck_of_a_bundle_that_no_longer_matches_fails_with_worst_rows(
        recorded: Recorded, models: dict[str, Path], mixed_bundle_dir: Path,
        tmp_path: Path) -> None:
    """The model file is another fit of the pipeline than the one the bundle was converted
    from: parity fails on the (in-range) records, and the worst rows are shown."""
    report_json = tmp_path / "recheck.json"
    result = run("recheck", models["other"], mixed_bundle_dir, "--data", recorded.in_range,
                 "--json", report_json)
    assert result.exit_code == 1, result.output
    assert "worst rows for probabilities" in result.output
    assert "city=" in result.output  # the worst rows show their input values
    report = json.loads(report_json.read_text())
    probabilities = [o for o in report["outputs"] if o["name"] == "probabilities"][0]
    assert not probabilities["passed"] and probabilities["worst_rows"]
    assert report["drift"]["passed"] is True  # the same traffic: only parity fails


# -- the page and examples/production/ --------------------------------------------------------

def fenced_blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M)


def test_examples_are_printed_on_the_page() -> None:
    page = PAGE.read_text()
    printed = [code for _, code in fenced_blocks(page)]
    names = sorted(p.name for p in EXAMPLES.iterdir())
    assert names == ["baton-alerts.yml", "baton-recheck.cron", "baton-recheck.service",
                     "baton-recheck.timer", "baton-recheck.yml"]
    for name in names:
        assert (EXAMPLES / name).read_text() in printed, f"{name} differs from the page"
        assert f"examples/production/{name}" in page or f"`{name}`" in page, name
    # configuration is shown in fences the docs test does not run
    for lang, code in fenced_blocks(page):
        if code in {(EXAMPLES / n).read_text() for n in names}:
            assert lang in {"ini", "yaml", "text"}, lang


def test_page_options_are_the_commands_options() -> None:
    """Every option in the page's tables is one of ``serve``'s or ``recheck``'s."""
    import typer.main

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    known = {opt for name in ("serve", "recheck") for p in commands[name].params
             for opt in p.opts}
    tabled = re.findall(r"^\| `(--[a-z][a-z-]*)", PAGE.read_text(), flags=re.M)
    assert tabled and set(tabled) <= known, sorted(set(tabled) - known)


def test_alert_rules_use_the_served_metrics(recorded: Recorded) -> None:
    rules = parse_yaml((EXAMPLES / "baton-alerts.yml").read_text())
    exposed = {name for name, _ in samples(recorded.metrics)}
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert {"BatonTrafficOutsideEnvelope", "BatonGoldenCheckFailed"} <= {
        r["alert"] for r in alerts}
    for rule in alerts:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"\bbaton_\w+", rule["expr"]))
        assert used and used <= exposed, (rule["alert"], used - exposed)
    # the page's table of metrics names what the server exposes
    table = re.findall(r"^\| `(baton_\w+)`", PAGE.read_text(), flags=re.M)
    families = {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in exposed}
    assert table and set(table) <= exposed | families, set(table) - exposed - families


def test_workflow_runs_recheck_on_a_schedule() -> None:
    workflow = parse_yaml((EXAMPLES / "baton-recheck.yml").read_text())
    on = workflow["on"]
    cron = on["schedule"][0]["cron"]
    assert len(cron.split()) == 5, cron
    assert "workflow_dispatch" in on
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    recheck = [s for s in steps if RECHECK.search(s.get("run", ""))]
    assert len(recheck) == 1
    assert "$(date -u -d yesterday +%F)" in recheck[0]["run"]
    assert "if" not in recheck[0]  # it runs, and its exit code fails the job
    assert any(s.get("if") == "failure()" for s in steps)  # and then says so loudly


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> values."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip()[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip().strip("[]")
            out.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        assert section is not None and sep, line
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_timer_starts_the_recheck_service() -> None:
    timer = unit(EXAMPLES / "baton-recheck.timer")
    service = unit(EXAMPLES / "baton-recheck.service")
    assert len(timer["Timer"]["OnCalendar"]) == 1
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    assert "Unit" not in timer["Timer"]  # so it starts baton-recheck.service, its namesake
    assert service["Service"]["Type"] == ["oneshot"]
    (exec_start,) = service["Service"]["ExecStart"]
    assert "baton recheck" in exec_start
    # in a unit file % starts a specifier: every literal % must be written %%
    assert "%" not in exec_start.replace("%%", "")


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """systemd's own check of the two units (where systemd-analyze is installed)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    for name in ("baton-recheck.service", "baton-recheck.timer"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    out = subprocess.run([analyze, "verify", "baton-recheck.service", "baton-recheck.timer"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    (calendar,) = unit(EXAMPLES / "baton-recheck.timer")["Timer"]["OnCalendar"]
    out = subprocess.run([analyze, "calendar", calendar], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# -- each schedule runs baton recheck on yesterday's records ----------------------------------

STUB = """#!/bin/sh
printf '%s\\n' "$@" > "$BATON_ARGS"
echo "stub baton: exit $STUB_EXIT"
exit "$STUB_EXIT"
"""


def scheduled_command(kind: str) -> tuple[list[str], str]:
    """The command each schedule runs, as the scheduler would run it: (argv, the baton
    executable it names)."""
    if kind == "cron":
        lines = [ln for ln in (EXAMPLES / "baton-recheck.cron").read_text().splitlines()
                 if ln.strip() and not ln.startswith("#") and not re.match(r"\w+=", ln)]
        assert len(lines) == 1
        fields = lines[0].split(None, 6)
        assert len(fields) == 7 and fields[5] == "baton"  # 5 times, the user, the command
        # cron turns an unescaped % into a newline; \% is a %
        assert "%" not in fields[6].replace("\\%", "")
        return ["/bin/sh", "-c", fields[6].replace("\\%", "%")], "/opt/baton/venv/bin/baton"
    if kind == "systemd":
        (line,) = unit(EXAMPLES / "baton-recheck.service")["Service"]["ExecStart"]
        # systemd: %% is %, $$ is $; then the words as a shell splits these
        return shlex.split(line.replace("%%", "%").replace("$$", "$")), (
            "/opt/baton/venv/bin/baton")
    workflow = parse_yaml((EXAMPLES / "baton-recheck.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    (script,) = [s["run"] for s in steps if RECHECK.search(s.get("run", ""))]
    return ["bash", "-e", "-c", script], ".venv/bin/baton"  # GitHub's shell for run:


@pytest.mark.parametrize("kind", ["cron", "systemd", "workflow"])
@pytest.mark.parametrize("status", [0, 1])
def test_schedule_runs_recheck_on_yesterdays_records(kind: str, status: int,
                                                     tmp_path: Path) -> None:
    """The command of each schedule, run by a shell with the paths moved under tmp_path
    and a stub in place of baton: it asks for ``recheck`` of yesterday's (UTC) records and
    fails when the recheck fails."""
    argv, baton = scheduled_command(kind)
    stub = tmp_path / "bin" / "baton"
    stub.parent.mkdir()
    stub.write_text(STUB)
    stub.chmod(0o755)
    (tmp_path / "var" / "recheck").mkdir(parents=True)

    def moved(word: str) -> str:
        return (word.replace(baton, str(stub)).replace("/var/lib/baton", str(tmp_path / "var"))
                .replace("/opt/baton", str(tmp_path / "opt")))

    args_file = tmp_path / "args"
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    out = subprocess.run([moved(w) for w in argv], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "BATON_ARGS": str(args_file),
                              "STUB_EXIT": str(status)})
    args = args_file.read_text().splitlines()
    assert args[0] == "recheck" and len(args) >= 4, args
    assert args[args.index("--data") + 1] == f"{tmp_path / 'var'}/records/{yesterday}"
    if kind == "cron":
        # cron mails what the command prints: the log, only when the recheck failed
        assert out.returncode == 0, out.stderr
        assert ("stub baton: exit 1" in out.stdout) == (status == 1), out.stdout
    else:
        assert out.returncode == status, out.stdout + out.stderr


# -- a parser of the YAML the examples use -----------------------------------------------------

_KEY = re.compile(r"""^("[^"]*"|'[^']*'|[^\s"'#\-\[{][^:]*?|-[^\s:][^:]*?):(?:\s+(.*)|)$""")


def _strip_comment(text: str) -> str:
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or text[i - 1] in " [,"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i].rstrip()
    return text.strip()


def _scalar(text: str) -> Any:
    text = _strip_comment(text)
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        assert text.endswith("'"), text
        return text[1:-1].replace("''", "'")
    if text.startswith("["):
        assert text.endswith("]"), text
        return [_scalar(p) for p in text[1:-1].split(",") if p.strip()]
    assert not text.startswith(("{", "&", "*", "!", ">")), f"unsupported YAML: {text!r}"
    return text


class _Yaml:
    def __init__(self, text: str) -> None:
        assert "\t" not in text, "tabs in YAML"
        self.lines = text.splitlines()
        self.i = 0

    def _skip(self) -> bool:
        """Past blank and comment lines; whether a line is left."""
        while self.i < len(self.lines) and (not self.lines[self.i].strip()
                                            or self.lines[self.i].lstrip().startswith("#")):
            self.i += 1
        return self.i < len(self.lines)

    def _indent(self) -> int:
        line = self.lines[self.i]
        return len(line) - len(line.lstrip(" "))

    def _item(self) -> bool:
        content = self.lines[self.i].strip()
        return content == "-" or content.startswith("- ")

    def node(self, indent: int) -> Any:
        if not self._skip() or self._indent() < indent:
            return None
        return self.sequence(self._indent()) if self._item() else self.mapping(self._indent())

    def sequence(self, indent: int) -> list[Any]:
        out: list[Any] = []
        while self._skip() and self._indent() == indent and self._item():
            rest = self.lines[self.i].strip()[1:].strip()
            if not rest:
                self.i += 1
                out.append(self.node(indent + 1))
            elif _KEY.match(_strip_comment(rest)):
                # a mapping whose first key sits on the dash's line
                self.lines[self.i] = " " * (indent + 2) + rest
                out.append(self.mapping(indent + 2))
            else:
                self.i += 1
                out.append(_scalar(rest))
        return out

    def mapping(self, indent: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self._skip() and self._indent() == indent and not self._item():
            content = _strip_comment(self.lines[self.i].strip())
            m = _KEY.match(content)
            assert m, f"line {self.i + 1}: not 'key: value': {content!r}"
            key = _scalar(m[1])
            assert key not in out, f"line {self.i + 1}: {key!r} twice"
            rest = m[2] or ""
            self.i += 1
            if rest in ("|", "|-"):
                out[key] = self.literal(indent, keep_newline=rest == "|")
            elif rest:
                out[key] = _scalar(rest)
            elif self._skip() and (self._indent() > indent
                                   or (self._indent() == indent and self._item())):
                out[key] = self.node(indent)
            else:
                out[key] = None
        return out

    def literal(self, indent: int, keep_newline: bool) -> str:
        body: list[str] = []
        start = None
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip():
                ind = len(line) - len(line.lstrip(" "))
                if ind <= indent:
                    break
                start = ind if start is None else start
                assert ind >= start, f"line {self.i + 1}: less indented than its block"
                body.append(line[start:])
            else:
                body.append("")
            self.i += 1
        while body and not body[-1]:
            body.pop()
        return "\n".join(body) + ("\n" if keep_newline else "")


def parse_yaml(text: str) -> Any:
    parser = _Yaml(text)
    out = parser.node(0)
    assert not parser._skip(), f"line {parser.i + 1}: not understood"
    return out


def test_parse_yaml_reads_the_subset() -> None:
    text = """# a comment
on:
  schedule:
    - cron: "15 0 * * *"   # daily
  workflow_dispatch:
jobs:
  a:
    runs-on: [self-hosted, x]
    steps:
      - name: one # comment
        run: |
          echo "a: b"  # kept

          echo 2
      - uses: 'it''s'
        with:
          k: ${{ github.token }}
"""
    assert parse_yaml(text) == {
        "on": {"schedule": [{"cron": "15 0 * * *"}], "workflow_dispatch": None},
        "jobs": {"a": {"runs-on": ["self-hosted", "x"], "steps": [
            {"name": "one", "run": 'echo "a: b"  # kept\n\necho 2\n'},
            {"uses": "it's", "with": {"k": "${{ github.token }}"}}]}}}
    with pytest.raises(AssertionError):
        parse_yaml("a: b\n  c: d\n")
