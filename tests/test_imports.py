"""`import baton` and `import baton.runtime` must not load the training stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: hypothesis: a dependency of baton for the parity search, imported only when one runs
HEAVY = ("torch", "sklearn", "pandas", "skl2onnx", "lightgbm", "xgboost", "catboost",
         "hypothesis")


@pytest.mark.parametrize("module", ["baton", "baton.runtime", "baton.cli"])
def test_import_loads_no_framework(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"


def test_heavy_module_is_really_detected() -> None:
    """The check above can fail: importing pandas shows up in sys.modules."""
    code = "import sys, baton, pandas\nprint('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
