"""``Report``: the verdict of a parity check, as data (JSON, JUnit XML, text tables)."""

from __future__ import annotations

import json
import os
import platform
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from baton.results._io import write_text
from baton.results.diff import OutputDiff
from baton.results.drift import DriftReport
from baton.results.files import FileCheck
from baton.results.latency import LatencyReport
from baton.results.search import SearchResult

REPORT_VERSION = 1


def environment() -> dict[str, str]:
    import numpy
    import onnxruntime

    from baton._version import __version__

    return {
        "baton": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


@dataclass
class Report:
    """The result of ``convert`` (parity on the sample), ``check``, ``recheck`` or
    ``verify``.

    ``bool(report)`` is the verdict: every output within tolerance and every file intact
    (and, for a recheck, the drift within its thresholds and the outputs served equal to
    the bundle's).
    """

    kind: str
    model: str
    target: str
    rows: int
    outputs: list[OutputDiff]
    files: list[FileCheck] = field(default_factory=list)
    data: str | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=environment)
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    #: the parity search beyond the data (``check`` only; ``None`` when it did not run)
    search: SearchResult | None = None
    #: latency measurements and budget decisions (``check`` with budgets; else ``None``)
    latency: LatencyReport | None = None
    #: the digest (``sha256:…``) of the bundle checked or verified, which a deploy pins
    #: (``baton verify --digest``); ``None`` for a bare ``.onnx`` or a bundle not yet saved
    digest: str | None = None
    #: drift from the proven envelope and the conversion sample (``recheck`` only)
    drift: DriftReport | None = None
    #: the outputs a service served against the bundle's on the same rows (``recheck`` on
    #: records only; empty otherwise)
    served: list[OutputDiff] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (bool(self.outputs) and all(self.outputs) and all(f.ok for f in self.files)
                and not self.problems and (self.search is None or self.search.passed)
                and (self.latency is None or self.latency.passed)
                and (self.drift is None or self.drift.passed) and all(self.served))

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[str]:
        out = [f"file {f.name}: " + ("not listed in baton.json" if f.expected is None else
                                     "missing" if f.found is None else "sha256 differs")
               for f in self.files if not f.ok]
        out += [f"output {o.name}: {o.summary()}" for o in self.outputs if not o.passed]
        if not self.outputs:
            out.append("no outputs were compared")
        if self.search is not None:
            out += [f"search: {c.summary()}" for c in self.search.failing]
            if self.search.strict and not self.search.complete:
                out.append(f"search: {self.search.incomplete} (--strict-search)")
        if self.latency is not None:
            out += self.latency.failures
        if self.drift is not None:
            out += self.drift.failures
        out += [f"served {o.name}: {o.summary()}" for o in self.served if not o.passed]
        return out + self.problems

    def output(self, name: str) -> OutputDiff:
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(name)

    # -- serialisation ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_version": REPORT_VERSION,
            "kind": self.kind,
            "passed": self.passed,
            "model": self.model,
            "target": self.target,
            "data": self.data,
            "rows": self.rows,
            "outputs": [o.to_dict() for o in self.outputs],
            "files": [f.to_dict() for f in self.files],
            "notes": self.notes,
            "problems": self.problems,
            "environment": self.environment,
            "created": self.created,
            "search": None if self.search is None else self.search.to_dict(),
            "latency": None if self.latency is None else self.latency.to_dict(),
            "digest": self.digest,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "served": [o.to_dict() for o in self.served],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        return cls(
            kind=d["kind"], model=d["model"], target=d["target"], rows=int(d["rows"]),
            outputs=[OutputDiff.from_dict(o) for o in d["outputs"]],
            files=[FileCheck(f["file"], f["expected"], f["found"]) for f in d.get("files", [])],
            data=d.get("data"), notes=list(d.get("notes", [])),
            problems=list(d.get("problems", [])),
            environment=dict(d.get("environment", {})), created=d.get("created", ""),
            search=SearchResult.from_dict(d["search"]) if d.get("search") else None,
            latency=LatencyReport.from_dict(d["latency"]) if d.get("latency") else None,
            digest=d.get("digest"),
            drift=DriftReport.from_dict(d["drift"]) if d.get("drift") else None,
            served=[OutputDiff.from_dict(o) for o in d.get("served", [])],
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> dict[str, Any]:
        """The short form stored in a bundle's manifest."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "data": self.data,
            "outputs": {
                o.name: {k: v for k, v in o.to_dict().items()
                         if k not in ("worst_rows", "name", "tolerance")}
                for o in self.outputs
            },
        }

    def to_junit(self) -> str:
        """JUnit XML: one test case per output (and per file for a verify)."""
        suite_name = f"baton.{self.kind}"
        cases: list[ET.Element] = []
        for o in self.outputs:
            case = ET.Element("testcase", classname=f"{suite_name}.{self.model}",
                              name=f"output {o.name} ({o.kind})", time="0")
            if not o.passed:
                fail = ET.SubElement(case, "failure", message=o.summary(), type="ParityFailure")
                fail.text = json.dumps(o.to_dict(), indent=2, allow_nan=False)
            else:
                out = ET.SubElement(case, "system-out")
                out.text = o.summary()
            cases.append(case)
        for f in self.files:
            case = ET.Element("testcase", classname=f"{suite_name}.files",
                              name=f"sha256 {f.name}", time="0")
            if not f.ok:
                ET.SubElement(case, "failure", type="IntegrityFailure",
                              message=f"{f.describe()} (expected sha256 "
                              f"{f.expected or 'listed in baton.json'}, found "
                              f"{f.found or 'missing'})")
            cases.append(case)
        if self.search is not None:
            cases += _search_cases(self.search, f"{suite_name}.search")
        if self.latency is not None:
            cases += self.latency.junit_cases(suite_name)
        if self.drift is not None:
            cases += _drift_cases(self.drift, f"{suite_name}.drift")
        for o in self.served:
            case = ET.Element("testcase", classname=f"{suite_name}.served",
                              name=f"served {o.name} ({o.kind})", time="0")
            if not o.passed:
                fail = ET.SubElement(case, "failure", message=o.summary(),
                                     type="ServedMismatch")
                fail.text = json.dumps(o.to_dict(), indent=2, allow_nan=False)
            else:
                ET.SubElement(case, "system-out").text = o.summary()
            cases.append(case)
        for i, problem in enumerate(self.problems):
            case = ET.Element("testcase", classname=f"{suite_name}.bundle",
                              name=f"problem {i + 1}", time="0")
            ET.SubElement(case, "failure", type="BundleProblem", message=problem)
            cases.append(case)
        failures = sum(1 for c in cases if c.find("failure") is not None)
        skipped = sum(1 for c in cases if c.find("skipped") is not None)
        root = ET.Element("testsuites", name="baton", tests=str(len(cases)),
                          failures=str(failures), errors="0")
        suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(cases)),
                              failures=str(failures), errors="0", skipped=str(skipped),
                              timestamp=self.created, hostname=platform.node())
        props = ET.SubElement(suite, "properties")
        for k, v in (("model", self.model), ("target", self.target), ("rows", str(self.rows)),
                     *self.environment.items()):
            ET.SubElement(props, "property", name=k, value=str(v))
        suite.extend(cases)
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        return write_text(Path(path), self.to_json() + "\n")

    def write_junit(self, path: str | os.PathLike[str]) -> Path:
        return write_text(Path(path), self.to_junit() + "\n")


def _drift_cases(drift: DriftReport, classname: str) -> list[ET.Element]:
    """One test case per input column: its share outside the envelope, PSI, unseen
    categories."""
    cases = []
    for c in drift.columns:
        case = ET.Element("testcase", classname=classname, name=f"drift {c.name}", time="0")
        if not c.passed:
            fail = ET.SubElement(case, "failure", message=c.summary(), type="Drift")
            fail.text = json.dumps(c.to_dict(), indent=2, allow_nan=False)
        else:
            ET.SubElement(case, "system-out").text = c.summary()
        cases.append(case)
    return cases


def _search_cases(search: SearchResult, classname: str) -> list[ET.Element]:
    """One test case for the search itself (its cost), one per class of divergence."""
    case = ET.Element("testcase", classname=classname, name="parity search",
                      time=f"{search.seconds:.3f}")
    ET.SubElement(case, "system-out").text = search.summary()
    if search.strict and not search.complete:
        ET.SubElement(case, "failure", type="IncompleteSearch",
                      message=f"{search.incomplete} (--strict-search)")
    cases = [case]
    failing = {id(c) for c in search.failing}
    for c in search.counterexamples:
        detail = json.dumps({**c.to_dict(), "seed": search.seed,
                             "reproduce": search.reproduce}, indent=2, allow_nan=False)
        if id(c) in failing:
            case = ET.Element("testcase", classname=classname, name=f"divergence: "
                              f"{c.divergence_class}", time="0")
            fail = ET.SubElement(case, "failure", message=c.summary(),
                                 type="ParityCounterexample")
            fail.text = detail
        else:  # reported, not failing: outside the proven envelope
            case = ET.Element("testcase", classname=classname, name=f"outside the envelope: "
                              f"{c.divergence_class}", time="0")
            ET.SubElement(case, "properties").append(
                ET.Element("property", name="in_envelope", value="false"))
            ET.SubElement(case, "system-err").text = f"warning: {c.summary()}\n{detail}"
        cases.append(case)
    return cases
