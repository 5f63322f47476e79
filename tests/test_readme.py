"""The README's Quick start: two commands, the second exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [ln for b in blocks for ln in b.splitlines() if ln and not ln.startswith("#")]


def test_two_quick_start_commands() -> None:
    cmds = quick_start_commands()
    assert len(cmds) == 2
    assert cmds[0].startswith("python3 -m venv .venv") and cmds[0].endswith("baton demo")
    assert "-c constraints.txt" in cmds[0] and "-c constraints.txt" in cmds[1]


def test_ci_runs_the_second_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci


def test_constraints_pin_every_package() -> None:
    lines = [ln for ln in (ROOT / "constraints.txt").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.+\-]+", ln) for ln in lines)
    names = {ln.split("==")[0].lower().replace("_", "-") for ln in lines}
    assert {"onnxruntime", "onnx", "scikit-learn", "skl2onnx", "numpy", "pandas"} <= names
