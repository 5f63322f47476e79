"""Rendering reports and bundles: rich tables on a terminal, plain text when piped."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from baton.manifest import Manifest
from baton.results.report import Report
from baton.tolerance import Tolerance


def _table(console: Console, title: str, headers: list[str], rows: list[list[str]]) -> None:
    if console.is_terminal:
        t = Table(title=title, title_justify="left")
        for h in headers:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*r)
        console.print(t)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    console.print(title, markup=False, highlight=False)
    for r in [headers, *rows]:
        line = "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths[:-1])) + "  " + r[-1]
        console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)


def _say(console: Console, text: str, style: str | None = None) -> None:
    if console.is_terminal and style:
        from rich.markup import escape

        # the text is data (a file name, a category, a note): never markup
        console.print(f"[{style}]{escape(text)}[/{style}]", highlight=False)
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def verdict_line(report: Report) -> tuple[str, str]:
    if report.passed:
        return f"PASSED: {report.kind} {report.target}", "bold green"
    return f"FAILED: {report.kind} {report.target}", "bold red"


def render_report(report: Report, console: Console) -> None:
    _say(console, f"model:  {report.model}")
    _say(console, f"target: {report.target}")
    _say(console, f"data:   {report.data or '-'} ({report.rows} rows)")
    if report.files:
        bad = [f for f in report.files if not f.ok]
        if bad:
            _table(console, "files that changed since conversion", ["file", "problem"],
                   [[f.name, f.describe()] for f in bad])
        _say(console, f"files:  {len(report.files) - len(bad)} of {len(report.files)} match "
                      "their sha256 in baton.json", "red" if bad else None)
    if report.digest:
        _say(console, f"digest: {report.digest}")
    if report.outputs:
        _table(console, "outputs", ["output", "kind", "verdict", "detail"], [
            [o.name, o.kind, "pass" if o.passed else "FAIL", o.summary()]
            for o in report.outputs
        ])
    for o in report.outputs:
        if o.passed or not o.worst:
            continue
        rows = []
        for w in o.worst:
            err = "" if w.abs_error is None else f"{w.abs_error:.3g}"
            rows.append([str(w.row), _short(w.expected), _short(w.actual), err,
                         _short(w.inputs)])
        _table(console, f"worst rows for {o.name}",
               ["row", "original", "onnx", "abs err", "inputs"], rows)
    if report.search is not None:
        render_search(report.search, console)
    if report.latency is not None:
        from baton._render_latency import render_latency

        render_latency(report.latency, console)
    if report.drift is not None:
        render_drift(report.drift, console)
    if report.served:
        render_served(report.served, console)
    for n in report.notes:
        _say(console, f"note: {n}", "yellow")
    for problem in report.problems:
        _say(console, f"problem: {problem}", "red")
    text, style = verdict_line(report)
    _say(console, text, style)


def render_drift(drift: Any, console: Console) -> None:
    """Drift per input: outside the envelope, PSI, unseen categories; then the failing
    inputs, each with why."""
    def share(c: Any) -> str:
        s = c.outside_share
        return "-" if s is None else f"{s:.1%} ({c.outside})"

    def psi(c: Any) -> str:
        if c.psi is None:
            return "-"
        return f"{c.psi:.3g}" + ("" if c.psi_decides else " (not deciding)")

    def unseen(c: Any) -> str:
        if not c.unseen_total:
            return ""
        more = c.unseen_total - sum(c.unseen.values())
        return ", ".join(f"{k} x{v}" for k, v in c.unseen.items()) + (
            f", +{more}" if more else "")

    _table(console, f"drift on {drift.rows} rows ({drift.thresholds()})",
           ["input", "kind", "outside", "PSI", "unseen categories", "verdict"],
           [[c.name, c.kind, share(c), psi(c), _short(unseen(c), 80),
             "pass" if c.passed else "FAIL"] for c in drift.columns])
    for c in drift.failing:
        why = []
        if c.outside_failed:
            why.append(f"{c.outside_share:.1%} of rows outside the envelope ({c.outside} of "
                       f"{c.rows}: at least {c.outside_low:.1%} with 95 % confidence) > "
                       f"{c.max_outside:.1%}")
        if c.psi_failed:
            why.append(f"PSI {c.psi:.3g} > {c.max_psi:g}")
        _say(console, f"drift: input {c.name}: " + "; ".join(why), "red")
        for e in c.examples:
            _say(console, f"  outside: {e}", "yellow")
        if c.unseen_total:
            _say(console, f"  unseen categories: {unseen(c)}", "yellow")
    for n in drift.notes:
        _say(console, f"note: {n}", "yellow")


def render_served(served: list[Any], console: Console) -> None:
    """The outputs served against the bundle's on the same rows."""
    _table(console, "served (the outputs the service served vs the bundle's)",
           ["output", "kind", "verdict", "detail"],
           [[o.name, o.kind, "pass" if o.passed else "FAIL", o.summary()] for o in served])
    for o in served:
        if o.passed or not o.worst:
            continue
        _table(console, f"worst served rows for {o.name}",
               ["row", "bundle", "served", "abs err", "inputs"],
               [[str(w.row), _short(w.expected), _short(w.actual),
                 "" if w.abs_error is None else f"{w.abs_error:.3g}", _short(w.inputs)]
                for w in o.worst])


def render_search(search: Any, console: Console) -> None:
    """The parity search: its cost, what it tried, and each class of divergence."""
    _say(console, f"search: {search.summary()}", None if search.passed else "red")
    if search.strict and not search.complete:
        _say(console, f"search fails: {search.incomplete} and --strict-search", "red")
    failing = {id(c) for c in search.failing}
    for c in search.counterexamples:
        rows = [[o.name, _short(o.expected), _short(o.actual),
                 "" if o.abs_error is None else f"{o.abs_error:.3g}"] for o in c.outputs]
        if c.onnx_error:
            rows.append(["(onnxruntime)", "-", c.onnx_error, ""])
        where = ("" if c.in_envelope else "outside the proven envelope: ")
        _table(console, f"{'divergence' if id(c) in failing else 'warning'}: {where}"
               f"{c.divergence_class} ({c.rows} row{'s' if c.rows != 1 else ''})",
               ["output", "original", "onnx", "abs err"], rows)
        if not c.in_envelope:
            _say(console, "  outside: " + "; ".join(c.outside), "yellow")
        _say(console, "  changed: " + (", ".join(f"{k}={_short(v, 40)}"
                                                 for k, v in c.changed.items()) or "nothing"))
        _say(console, f"  input:   {_short(c.inputs, 400)}")
    if search.envelope and search.counterexamples:
        _say(console, "envelope (inside, the proof covers; "
             + ("only divergences inside fail)" if search.scope == "envelope"
                else "--search-scope all: every divergence fails)"))
        _say(console, "  " + describe_envelope(search.envelope, limit=12))
    for d in search.domain[:5]:
        _say(console, f"domain: {d.count} {d.stage} input{'s' if d.count != 1 else ''}: "
                      f"{d.reason}")
    if search.counterexamples:
        _say(console, f"reproduce: {search.reproduce}")


def describe_envelope(envelope: dict[str, Any] | Any, limit: int | None = None) -> str:
    """``name: inside`` for each column of an envelope (its JSON form or an Envelope)."""
    from baton.envelope import Envelope

    env = envelope if isinstance(envelope, Envelope) else Envelope.from_dict(envelope)
    items = [f"{name}: {r.describe()}" for name, r in env.columns.items()]
    more = len(items) - limit if limit is not None and len(items) > limit else 0
    return "; ".join(items[:limit] if more else items) + (f"; … {more} more" if more else "")


def _short(v: Any, limit: int = 120) -> str:
    if isinstance(v, dict):
        s = ", ".join(f"{k}={_short(x, 24)}" for k, x in v.items())
    elif isinstance(v, float):
        s = f"{v:.6g}"
    elif isinstance(v, list):
        s = "[" + ", ".join(_short(x, 24) for x in v) + "]"
    else:
        s = str(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def render_manifest(manifest: Manifest, console: Console, digest: str | None = None) -> None:
    info = manifest.info
    src = info.get("source", {})
    conv = info.get("converter", {})
    onnx_info = info.get("onnx", {})
    _say(console, f"bundle:    {manifest.name} (schema {manifest.schema_version}, "
                  f"created {info.get('created')} by baton {info.get('baton_version')})")
    versions = ", ".join(f"{k} {v}" for k, v in src.get("versions", {}).items())
    _say(console, f"source:    {src.get('framework')} {src.get('class')} ({versions})")
    _say(console, f"converter: {conv.get('name')} {conv.get('version')}: {conv.get('strategy')}")
    for line in _attempt_lines(conv.get("attempts", [])):
        _say(console, f"attempt:   {line}")
    opsets = ", ".join(f"{k} {v}" for k, v in onnx_info.get("opsets", {}).items())
    _say(console, f"onnx:      IR {onnx_info.get('ir_version')}, opsets {opsets}; converted with "
                  f"onnx {onnx_info.get('onnx_version')}, onnxruntime "
                  f"{onnx_info.get('onnxruntime_version')}; precision {info.get('precision')}")
    for note in conv.get("notes", []):
        _say(console, f"note:      {note}")
    _table(console, "inputs", ["name", "dtype", "shape", "column"], [
        [i.name, i.dtype, json.dumps(list(i.shape)), str(i.column or "-")]
        for i in manifest.inputs
    ])
    _table(console, "outputs", ["name", "kind", "dtype", "shape", "tolerance"], [
        [o.name, str(o.kind or "-"), o.dtype, json.dumps(list(o.shape)),
         _tol(manifest.tolerance(o.name), o.kind)]
        for o in manifest.outputs
    ])
    parity = info.get("parity", {})
    if parity:
        verdict = "passed" if parity.get("passed") else "FAILED"
        _say(console, f"parity at conversion: {verdict} on {parity.get('rows')} rows of the sample",
             "green" if parity.get("passed") else "red")
        for name, s in parity.get("outputs", {}).items():
            if s.get("kind") == "label":
                detail = f"agreement {s.get('agreement')}"
            else:
                detail = f"max abs {s.get('max_abs')}, max rel {s.get('max_rel')}"
            _say(console, f"  {name}: {'pass' if s.get('passed') else 'FAIL'} ({detail})")
    ran = info.get("parity_settings")
    if ran:
        _say(console, f"parity ran on: {', '.join(ran.get('providers', ['cpu']))}"
                      + (f", TF32 {'on' if ran.get('tf32') else 'off'}"
                         if "cuda" in ran.get("providers", []) else ""))
    medians = manifest.runtime.details.get("tuning", {}).get("median_ms", {})
    measured = ", ".join(f"{k} {v:g} ms" for k, v in medians.items())
    _say(console, f"session: graph optimisation level {manifest.optimization}"
                  + (f" (batch 1 medians: {measured})" if measured else ""))
    if manifest.envelope is not None:
        _table(console, f"envelope (the inputs the proof covers; numbers widened by "
               f"{manifest.envelope.margin:.0%} of their span)", ["input", "inside"],
               [[name, r.describe()] for name, r in manifest.envelope.columns.items()])
    golden = manifest.golden
    _say(console, f"golden vectors: {golden.rows if golden else 0} rows in "
                  f"{golden.dir if golden else '-'}/; {len(manifest.files)} files hashed (sha256)")
    if digest is not None:
        _say(console, f"digest:    {digest} (pin it: baton verify BUNDLE --digest {digest})")


def _tol(tol: Tolerance, kind: str | None) -> str:
    """The tolerance an output is checked at (the defaults for what the manifest omits)."""
    if kind == "label":
        return f"agreement >= {tol.agreement:g}"
    return f"atol {tol.atol:g} + rtol {tol.rtol:g}"


def _attempt_lines(attempts: Any) -> list[str]:
    """The export attempts a converter recorded as ``{"strategy", "ok", "error"}`` (the
    PyTorch converter's): each with the line of its error that states the cause."""
    from baton.converters._torch.export import cause

    lines = []
    for a in attempts if isinstance(attempts, list) else []:
        if not isinstance(a, dict) or "strategy" not in a:
            continue
        why = "" if a.get("ok") else cause(str(a.get("error", "")), 300, chain=False)
        lines.append(f"{a['strategy']} ok" if a.get("ok") else f"{a['strategy']} failed: {why}")
    return lines
