"""The parity search's results as data: its budget, the stages it ran, the classes of
divergence it found (each with its counterexample and the outputs that broke on it) and
the inputs outside the original model's domain.

A leaf, like the rest of :mod:`baton.results`: it imports nothing of baton but the other
leaves, so a :class:`~baton.results.report.Report` can hold a search's result without
importing the search (:mod:`baton.parity.search`, which produces these).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baton.errors import UsageError
from baton.schema import to_jsonable

#: which divergences fail the gate: those inside the proof's envelope, or all of them
SEARCH_SCOPES = ("envelope", "all")


@dataclass(frozen=True)
class SearchBudget:
    """How much the search may try: ``examples`` rows in all (``None``: no count limit)
    and ``seconds`` of wall time (``None``: no time limit).

    With an example count the examples and the verdict depend on the seed alone, never on
    the machine's speed or load: the time is a safety cap, and a search it cuts short says
    "incomplete" in its result (and fails the gate with ``--strict-search``). With a time
    alone the search runs until it is spent, and is as reproducible as the machine."""

    examples: int | None = 1000
    seconds: float | None = 60.0

    def __post_init__(self) -> None:
        if self.examples is None and self.seconds is None:
            raise UsageError("the search budget has no bound",
                             expected="a number of examples, seconds, or both",
                             found="neither", hint="pass e.g. --search-budget 2000,60s")
        if self.examples is not None and self.examples < 1:
            raise UsageError("the search budget needs at least one example",
                             expected="examples >= 1", found=str(self.examples),
                             hint="pass e.g. --search-budget 2000, or --no-search")
        if self.seconds is not None and not self.seconds > 0:
            raise UsageError("the search budget needs a positive time",
                             expected="seconds > 0", found=str(self.seconds),
                             hint="pass e.g. --search-budget 5s, or --no-search")

    @classmethod
    def parse(cls, text: str) -> SearchBudget:
        """``"2000"`` (examples), ``"5s"`` / ``"500ms"`` (time), or both: ``"2000,60s"``."""
        examples: int | None = None
        seconds: float | None = None
        parts = [p.strip().lower() for p in text.split(",") if p.strip()]
        try:
            if not parts or len(parts) > 2:
                raise ValueError(text)
            for p in parts:
                if p.endswith("ms"):
                    if seconds is not None:
                        raise ValueError(p)
                    seconds = float(p[:-2]) / 1000.0
                elif p.endswith("s"):
                    if seconds is not None:
                        raise ValueError(p)
                    seconds = float(p[:-1])
                else:
                    if examples is not None:
                        raise ValueError(p)
                    examples = int(p)
        except ValueError:
            raise UsageError(f"cannot read the search budget {text!r}",
                             expected="examples, seconds or both, e.g. 2000, 5s, 2000,5s",
                             found=text, hint="pass e.g. --search-budget 2000,60s") from None
        return cls(examples, seconds)

    def __str__(self) -> str:
        parts = [] if self.examples is None else [str(self.examples)]
        if self.seconds is not None:
            parts.append(f"{self.seconds:g}s")
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "seconds": self.seconds}


@dataclass
class BrokenOutput:
    """One output of a counterexample that does not agree."""

    name: str
    kind: str
    expected: Any
    actual: Any
    abs_error: float | None
    tolerance: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "expected": self.expected,
                "actual": self.actual, "abs_error": to_jsonable(self.abs_error),
                "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BrokenOutput:
        err = d.get("abs_error")
        return cls(d["name"], d["kind"], d.get("expected"), d.get("actual"),
                   None if err is None else _num(err), dict(d.get("tolerance", {})))


@dataclass
class Counterexample:
    """The minimal input of one class of divergence, and what broke on it."""

    divergence_class: str
    stage: str
    inputs: dict[str, Any]
    changed: dict[str, Any]
    outputs: list[BrokenOutput]
    rows: int = 1
    onnx_error: str | None = None
    #: whether the input lies inside the proof's envelope (a divergence there fails the
    #: gate); ``outside`` says why it does not
    in_envelope: bool = True
    outside: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.onnx_error:
            what = f"onnxruntime failed: {self.onnx_error}"
        else:
            what = "; ".join(
                f"{o.name}: original {_short(o.expected)}, onnx {_short(o.actual)}"
                + ("" if o.abs_error is None else f" (abs err {o.abs_error:.3g})")
                for o in self.outputs)
        changed = ", ".join(f"{k}={_short(v)}" for k, v in self.changed.items()) or "none"
        where = "" if self.in_envelope else (
            "outside the proven envelope (" + "; ".join(self.outside) + "): ")
        return (f"{where}{self.divergence_class} ({self.rows} row"
                f"{'s' if self.rows != 1 else ''}): {what}; changed {changed}")

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.divergence_class, "stage": self.stage, "rows": self.rows,
                "in_envelope": self.in_envelope, "outside": self.outside,
                "changed": self.changed, "inputs": self.inputs,
                "outputs": [o.to_dict() for o in self.outputs], "onnx_error": self.onnx_error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Counterexample:
        return cls(d["class"], d["stage"], dict(d.get("inputs", {})), dict(d.get("changed", {})),
                   [BrokenOutput.from_dict(o) for o in d.get("outputs", [])],
                   int(d.get("rows", 1)), d.get("onnx_error"),
                   bool(d.get("in_envelope", True)), list(d.get("outside", [])))


@dataclass
class DomainExample:
    """Inputs outside the original model's domain: it rejects them or returns NaN."""

    stage: str
    reason: str
    count: int
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "reason": self.reason, "count": self.count,
                "inputs": self.inputs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DomainExample:
        return cls(d["stage"], d["reason"], int(d["count"]), list(d.get("inputs", [])))


@dataclass
class StageResult:
    name: str
    examples: int = 0
    seconds: float = 0.0
    divergent: int = 0
    domain: int = 0
    skipped: int = 0
    status: str = "done"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "examples": self.examples, "seconds": round(self.seconds, 4),
                "divergent": self.divergent, "domain": self.domain, "skipped": self.skipped,
                "status": self.status}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StageResult:
        return cls(d["name"], int(d.get("examples", 0)), float(d.get("seconds", 0.0)),
                   int(d.get("divergent", 0)), int(d.get("domain", 0)),
                   int(d.get("skipped", 0)), str(d.get("status", "done")))


@dataclass
class SearchResult:
    """What the parity search tried and found; ``bool(result)``: no divergence that fails
    the gate (one inside the envelope; any, with ``scope`` ``"all"``), and, with
    ``strict``, a complete search."""

    seed: int
    budget: SearchBudget
    stages: list[StageResult] = field(default_factory=list)
    #: every class of divergence found, inside the envelope or not
    counterexamples: list[Counterexample] = field(default_factory=list)
    domain: list[DomainExample] = field(default_factory=list)
    seconds: float = 0.0
    reproduce: str = ""
    notes: list[str] = field(default_factory=list)
    #: which divergences fail the gate (:data:`SEARCH_SCOPES`)
    scope: str = "envelope"
    #: an incomplete search (cut short by the time cap) fails the gate
    strict: bool = False
    #: the envelope the proof covers (``Envelope.to_dict()``), as judged
    envelope: dict[str, Any] | None = None

    @property
    def failing(self) -> list[Counterexample]:
        """The divergences that fail the gate."""
        return [c for c in self.counterexamples if c.in_envelope or self.scope == "all"]

    @property
    def warnings(self) -> list[Counterexample]:
        """The divergences outside the envelope, reported but not failing the gate."""
        return [c for c in self.counterexamples if not (c.in_envelope or self.scope == "all")]

    @property
    def passed(self) -> bool:
        return not self.failing and not (self.strict and not self.complete)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def examples(self) -> int:
        return sum(s.examples for s in self.stages)

    @property
    def complete(self) -> bool:
        return all(not s.status.startswith(("stopped", "not run: time")) for s in self.stages)

    @property
    def incomplete(self) -> str | None:
        """``"incomplete: N of M examples"`` when the time cap cut the search short."""
        if self.complete:
            return None
        of = "" if self.budget.examples is None else f" of {self.budget.examples}"
        return (f"incomplete: {self.examples}{of} examples (the time cap of "
                f"{self.budget.seconds:g} s ran out)")

    def summary(self) -> str:
        runs = ", ".join(f"{s.name} {s.examples}" + ("" if s.status == "done" else
                                                     f" ({s.status})") for s in self.stages)
        domain = sum(d.count for d in self.domain)
        inside, outside = len(self.failing), len(self.warnings)
        found = (f"{inside} class{'es' if inside != 1 else ''} of divergence"
                 + (" inside the envelope" if self.scope == "envelope" else "")
                 if inside else "no divergence" + (" inside the envelope" if outside else ""))
        if outside:
            found += f" ({outside} outside it, reported only)"
        cut = "" if self.complete else f"; {self.incomplete}"
        return (f"{found} in {self.examples} examples ({runs}) in {self.seconds:.2f} s, "
                f"seed {self.seed}, budget {self.budget}; {domain} outside the model's "
                f"domain{cut}")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "seed": self.seed, "budget": self.budget.to_dict(),
                "examples": self.examples, "seconds": round(self.seconds, 4),
                "complete": self.complete, "scope": self.scope, "strict": self.strict,
                "stages": [s.to_dict() for s in self.stages],
                "counterexamples": [c.to_dict() for c in self.counterexamples],
                "domain": [d.to_dict() for d in self.domain], "reproduce": self.reproduce,
                "notes": self.notes, "envelope": self.envelope}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchResult:
        b = d.get("budget", {})
        return cls(int(d["seed"]), SearchBudget(b.get("examples"), b.get("seconds")),
                   [StageResult.from_dict(s) for s in d.get("stages", [])],
                   [Counterexample.from_dict(c) for c in d.get("counterexamples", [])],
                   [DomainExample.from_dict(x) for x in d.get("domain", [])],
                   float(d.get("seconds", 0.0)), str(d.get("reproduce", "")),
                   list(d.get("notes", [])), str(d.get("scope", "envelope")),
                   bool(d.get("strict", False)), d.get("envelope"))


def _num(v: Any) -> float:
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


def _short(v: Any, limit: int = 60) -> str:
    s = f"{v:.6g}" if isinstance(v, float) else str(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"
