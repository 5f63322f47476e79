"""A report as GitHub-flavoured Markdown: the summary CI shows (``--summary-md FILE``, and
the step summary of a GitHub Actions job, ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from baton.results._io import write_text
from baton.results.report import Report

#: the environment variable GitHub Actions names its step summary file in
STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def _cell(value: Any, limit: int = 160) -> str:
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|") or " "


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return lines + [""]


def summary_markdown(report: Report) -> str:
    """The report as Markdown: the verdict, then a table per section (outputs, drift,
    outputs served, search, latency), the failures and the notes."""
    verdict = "✅ PASSED" if report.passed else "❌ FAILED"
    lines = [f"### baton {report.kind}: {verdict}", "",
             f"`{_cell(report.model)}` vs `{_cell(report.target)}` on "
             f"{_cell(report.data or '-')} ({report.rows} rows)"
             + (f"; digest `{report.digest}`" if report.digest else ""), ""]
    if report.outputs:
        lines += _table(["output", "kind", "verdict", "detail"],
                        [[o.name, o.kind, "pass" if o.passed else "**FAIL**", o.summary()]
                         for o in report.outputs])
    bad_files = [f for f in report.files if not f.ok]
    if bad_files:
        lines += _table(["file", "problem"], [[f.name, f.describe()] for f in bad_files])
    if report.drift is not None:
        d = report.drift
        lines += [f"**drift** on {d.rows} rows ({_cell(d.thresholds())})", ""]
        lines += _table(
            ["input", "outside the envelope", "PSI", "unseen categories", "verdict"],
            [[c.name, "-" if c.outside_share is None else
              f"{c.outside_share:.1%} ({c.outside} of {c.rows})",
              "-" if c.psi is None else f"{c.psi:.3g}" + ("" if c.psi_decides
                                                        else " (not deciding)"),
              ", ".join(f"{k} ×{v}" for k, v in c.unseen.items()) or "-",
              "pass" if c.passed else "**FAIL**"] for c in d.columns])
    if report.served:
        lines += ["**served** (outputs served vs the bundle's)", ""]
        lines += _table(["output", "kind", "verdict", "detail"],
                        [[o.name, o.kind, "pass" if o.passed else "**FAIL**", o.summary()]
                         for o in report.served])
    if report.search is not None:
        lines += [f"**search**: {_cell(report.search.summary(), 400)}", ""]
    if report.latency is not None:
        lines += ["**latency**: " + ("within budget" if report.latency.passed
                                     else "over budget"), ""]
    failures = report.failures
    if failures and not report.passed:
        lines += ["**failures**", ""] + [f"- {_cell(f, 400)}" for f in failures] + [""]
    if report.notes:
        lines += ["<details><summary>notes</summary>", ""]
        lines += [f"- {_cell(n, 600)}" for n in report.notes] + ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def write_summary(report: Report, path: str | os.PathLike[str] | None) -> None:
    """Write the Markdown summary to ``path`` (when given) and append it to the step
    summary of a GitHub Actions job (when ``$GITHUB_STEP_SUMMARY`` names one)."""
    text = summary_markdown(report)
    if path is not None:
        write_text(Path(path), text)
    step = os.environ.get(STEP_SUMMARY)
    if step:
        try:
            with open(step, "a", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as exc:  # the job's summary is a courtesy: the verdict stands
            sys.stderr.write(f"warning: cannot append the summary to ${STEP_SUMMARY} "
                             f"({step}): {exc}\n")
