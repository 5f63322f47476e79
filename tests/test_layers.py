"""The rooms look one way (DESIGN.md): import-linter's contracts in pyproject.toml hold, and
they really fail on a forbidden import, made at module level or inside a function."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_layers_hold() -> None:
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "baton", tmp_path / "baton",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("module", "line", "broken"), [
    # the runtime reaching up into parity, inside a function
    ("runtime/session.py", "def _up():\n    from baton.parity.compare import compare\n",
     "baton.runtime is not allowed to import baton.parity"),
    # converters and parity are siblings that never import each other
    ("parity/tuning.py", "def _side():\n    import baton.converters\n",
     "baton.parity is not allowed to import baton.converters"),
    # a leaf importing the bundle
    ("tolerance.py", "from baton.bundle import Bundle\n",
     "baton.tolerance is not allowed to import baton.bundle"),
    # the runtime importing a heavy framework
    ("runtime/providers.py", "def _heavy():\n    import pandas\n",
     "baton.runtime.providers -> pandas"),
])
def test_a_forbidden_import_breaks_a_contract(copy: Path, module: str, line: str,
                                              broken: str) -> None:
    target = copy / "baton" / module
    target.write_text(target.read_text() + "\n\n" + line)
    out = lint(copy)
    assert out.returncode != 0, out.stdout
    assert broken in out.stdout, out.stdout
