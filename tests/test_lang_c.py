"""The issue's models, converted and checked in a child process under ``LANG=C LC_ALL=C``
(the case list and what each does: tests/lang_c_models.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lang_c_models import CASES  # noqa: E402


@pytest.fixture(scope="module")
def outcomes() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env |= {"LANG": "C", "LC_ALL": "C"}
    proc = subprocess.run([sys.executable, str(HERE / "lang_c_models.py")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_child_runs_without_a_locale(outcomes: dict[str, str]) -> None:
    assert outcomes["(locale)"] in ("C", "POSIX")


@pytest.mark.parametrize("name", list(CASES))
def test_converts_and_checks_under_lang_c(name: str, outcomes: dict[str, str]) -> None:
    assert outcomes[name] == "ok", outcomes[name]
