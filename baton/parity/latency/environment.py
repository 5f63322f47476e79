"""The environment a measurement records: the machine, the threads and whether CUDA is
there to time on."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from baton.results.latency import PROVIDERS


def machine() -> dict[str, Any]:
    """CPU model, cores and versions: what every measurement records."""
    import onnxruntime

    from baton._version import __version__

    logical = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = logical
    cpu, physical = _cpuinfo()
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "logical_cores": logical,
        "physical_cores": physical or logical,
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "baton": __version__,
    }


def _cpuinfo() -> tuple[str | None, int | None]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, None
    model = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.M)
    cores = set()
    for block in text.split("\n\n"):
        pid = re.search(r"^physical id\s*:\s*(\d+)", block, flags=re.M)
        cid = re.search(r"^core id\s*:\s*(\d+)", block, flags=re.M)
        if pid and cid:
            cores.add((pid.group(1), cid.group(1)))
    return (model.group(1).strip() if model else None), (len(cores) or None)


def threads_record(threads: int | None, env: Mapping[str, Any]) -> dict[str, Any]:
    """The intra-op threads a session runs with, and who chose them."""
    if threads is not None:
        return {"intra_op_threads": threads, "threads_chosen_by": "--threads"}
    return {"intra_op_threads": env.get("physical_cores"),
            "threads_chosen_by": "onnxruntime default (one per physical core)"}


def cuda_available() -> bool:
    import onnxruntime as ort

    return PROVIDERS["cuda"] in ort.get_available_providers()


def no_cuda_reason() -> str:
    import onnxruntime as ort

    return (f"no CUDA execution provider (onnxruntime {ort.__version__} offers "
            f"{', '.join(ort.get_available_providers())}; install onnxruntime-gpu on a machine "
            "with an NVIDIA GPU)")
