"""Execution providers: the short names baton uses, what this onnxruntime offers, and the
session options a choice implies (TF32 on CUDA, graph optimisation level, threads).

Short names: ``cpu`` (``CPUExecutionProvider``) and ``cuda`` (``CUDAExecutionProvider``);
any other onnxruntime provider may be named in full. A session always ends its provider
list with the CPU, onnxruntime's own fallback for operators the first provider lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from baton.errors import UsageError
from baton.manifest import OPTIMIZATION_LEVELS

PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
SKIPPED_NO_CUDA = "skipped: no CUDA execution provider"


def full_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider.lower(), provider)


def short_name(provider: str) -> str:
    for short, full in PROVIDER_NAMES.items():
        if full == provider:
            return short
    return provider


def available_providers() -> list[str]:
    """This onnxruntime's providers, full names, in its order of preference."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


@dataclass(frozen=True)
class RunSettings:
    """How an onnxruntime session is made: the providers in order (short or full names),
    TF32 on CUDA, the graph optimisation level and the intra-op threads (0: onnxruntime's
    choice)."""

    providers: tuple[str, ...] = ("cpu",)
    tf32: bool = False
    optimization: str = "all"
    threads: int = 0
    provider_options: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.optimization not in OPTIMIZATION_LEVELS:
            raise UsageError(
                f"unknown graph optimisation level {self.optimization!r}",
                expected="one of " + ", ".join(OPTIMIZATION_LEVELS),
                found=repr(self.optimization), hint="use 'all' (onnxruntime's default)",
            )

    @property
    def uses_cuda(self) -> bool:
        return any(full_name(p) == PROVIDER_NAMES["cuda"] for p in self.providers)

    def ort_providers(self) -> list[Any]:
        """The ``providers`` argument of ``onnxruntime.InferenceSession``."""
        out: list[Any] = []
        for p in self.providers:
            name = full_name(p)
            if name in (o if isinstance(o, str) else o[0] for o in out):
                continue
            options = dict(self.provider_options.get(name, {}))
            if name == PROVIDER_NAMES["cuda"]:
                options.setdefault("use_tf32", "1" if self.tf32 else "0")
            out.append((name, options) if options else name)
        if PROVIDER_NAMES["cpu"] not in (o if isinstance(o, str) else o[0] for o in out):
            out.append(PROVIDER_NAMES["cpu"])
        return out

    def session_options(self) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        if self.threads:
            opts.intra_op_num_threads = self.threads
        return opts

    def to_dict(self) -> dict[str, Any]:
        return {"providers": [short_name(full_name(p)) for p in self.providers],
                "tf32": self.tf32, "graph_optimization_level": self.optimization,
                "intra_op_threads": self.threads}


def resolve_providers(requested: Sequence[str], *, require: Sequence[str] = ()
                      ) -> tuple[tuple[str, ...], list[str]]:
    """The requested providers this onnxruntime has, and a note for each it lacks.

    A provider named in ``require`` but missing is an error (exit 2); any other missing
    provider is skipped, explicitly: the note says so and the caller reports it.
    """
    have = available_providers()
    known = {**PROVIDER_NAMES, **{p: p for p in have}}
    for p in [*requested, *require]:
        if p.lower() not in known and p not in known:
            raise UsageError(
                f"unknown execution provider {p!r}",
                expected="cpu, cuda, or a full onnxruntime provider name",
                found=repr(p), hint="this onnxruntime offers: " + ", ".join(have),
            )
    missing_required = [p for p in require if full_name(p) not in have]
    if missing_required:
        from baton.errors import MissingDependencyError

        raise MissingDependencyError(
            f"the {', '.join(missing_required)} execution provider is required but this "
            "onnxruntime does not have it",
            expected=", ".join(full_name(p) for p in missing_required),
            found="available providers: " + ", ".join(have),
            hint="install onnxruntime-gpu (instead of onnxruntime) on a machine with a "
            "CUDA GPU, or drop --require-provider",
        )
    kept: list[str] = []
    notes: list[str] = []
    for p in requested:
        if full_name(p) in have:
            kept.append(p.lower() if p.lower() in PROVIDER_NAMES else p)
        elif full_name(p) == PROVIDER_NAMES["cuda"]:
            notes.append(f"cuda: {SKIPPED_NO_CUDA} (this onnxruntime offers "
                         f"{', '.join(have)}); compared on the CPU instead")
        else:
            notes.append(f"{p}: skipped: this onnxruntime does not offer it")
    return tuple(kept) or ("cpu",), notes
