"""What each export attempt said: torch's full message, cleaned for the manifest, and the
lines of it that state the cause, for the refusal and ``baton inspect``.

torch.onnx's dynamo errors open with a banner ("Failed to export the model with
torch.export. This is step 1/3 of exporting the model to ONNX. Next steps: ...", with ANSI
colours) and state the cause further down, under ``## Exception summary``, one
``<class '...'>: message`` line per exception in the chain (the first is the root)::

    <class 'torch.onnx._internal.exporter._errors.DispatchError'>: No ONNX function found
    for <OpOverload(op='aten._cdist_forward', overload='default')>. ...
"""

from __future__ import annotations

import re
from typing import Any

#: how much of an attempt's message the manifest keeps
MESSAGE_LIMIT = 8000
_CUT = "\n… [cut: the message had {n} characters]"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_SUMMARY_LINE = re.compile(r"^<class '(?:[\w.]+\.)?(\w+)'>: (.*)$")
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Violation)\w*): (.+)$")


def full_message(exc: BaseException) -> str:
    """``Type: message`` with ANSI escapes stripped, whitespace trimmed, cut at
    :data:`MESSAGE_LIMIT` characters with a marker."""
    text = _ANSI.sub("", f"{type(exc).__name__}: {exc}").strip()
    return clip(text)


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + _CUT.format(n=len(text))


def cause(text: str, limit: int = 400, *, chain: bool = True) -> str:
    """The line(s) of an export error that state its cause: the ``## Exception summary``
    lines of a dynamo error (``DispatchError: No ONNX function found for ...``), else the
    line after ``Error message:``, else the last ``SomeError: ...`` line, else the first
    paragraph (up to three lines). ``chain=False``: the root cause's line alone."""
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines()]
    summary = [f"{m[1]}: {m[2]}" for m in map(_SUMMARY_LINE.match, lines) if m]
    if summary:
        return _short(" <- ".join(dict.fromkeys(summary)) if chain else summary[0], limit)
    for i, ln in enumerate(lines[:-1]):
        if ln.rstrip(":").lower().endswith("error message") and lines[i + 1]:
            return _short(lines[i + 1], limit)
    errors = [ln for ln in lines[1:] if _EXCEPTION_LINE.match(ln)]
    if errors:
        return _short(errors[-1], limit)
    # a plain message (onnxruntime's): its first paragraph, up to three lines
    start = next((i for i, ln in enumerate(lines) if ln), len(lines))
    para = []
    for ln in lines[start:start + 3]:
        if not ln:
            break
        para.append(ln)
    return _short(" ".join(para), limit)


def _short(s: str, limit: int) -> str:
    return s if len(s) <= limit else s[: limit - 1] + "…"


def attempt(strategy: str, error: str | None = None) -> dict[str, Any]:
    """One attempt as the manifest records it (``info.converter.attempts``)."""
    if error is None:
        return {"strategy": strategy, "ok": True}
    return {"strategy": strategy, "ok": False, "error": error}


def describe_attempts(attempts: list[dict[str, Any]], limit: int = 400) -> str:
    """``dynamo: <cause>; torchscript: <cause>`` for a refusal's ``found``."""
    return "; ".join(f"{a['strategy']}: " + ("ok" if a.get("ok") else
                                           cause(str(a.get("error", "")), limit))
                     for a in attempts)
