"""DESIGN.md: mypy and ruff clean (ruff also bans framework imports at module level)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff() -> None:
    out = _run("ruff", "check", "baton", "tests", "benchmarks")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy() -> None:
    out = _run("mypy", "baton")
    assert out.returncode == 0, out.stdout + out.stderr
