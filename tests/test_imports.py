"""`import baton` and `import baton.runtime` must not load the training stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: hypothesis: a dependency of baton for the parity search, imported only when one runs;
#: onnx: imported when a graph is built or read (its C++ extension aborts the process when
#: a Ctrl-C lands while it loads, so the command must not load it just to start)
HEAVY = ("torch", "sklearn", "pandas", "skl2onnx", "lightgbm", "xgboost", "catboost",
         "statsmodels", "hypothesis", "onnx")


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


#: the rooms above the runtime, and what only conversion and the CLI need
ABOVE_RUNTIME = ("baton.parity", "baton.converters", "baton._api", "baton.cli", "baton.serving",
                 "baton.bundle", "baton.demo", "baton._render")
NOT_FOR_SERVICES = ("onnx", "typer", "rich", "hypothesis")


def test_runtime_loads_no_other_room() -> None:
    """A service that embeds baton.runtime and runs a bundle loads the runtime and the
    leaves only: no parity, converters, API, CLI or server code, and no onnx, typer, rich or
    hypothesis."""
    code = (
        "import sys, baton.runtime\n"
        "mods = sorted(sys.modules)\n"
        f"print(','.join(m for m in mods if m.startswith({ABOVE_RUNTIME!r})))\n"
        f"print(','.join(m for m in mods if m.split('.')[0] in {NOT_FOR_SERVICES!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rooms, packages = out.stdout.splitlines()
    assert rooms == "", f"import baton.runtime loaded {rooms}"
    assert packages == "", f"import baton.runtime loaded {packages}"


def test_running_a_bundle_loads_no_other_room(tmp_path: Path) -> None:
    """Loading, verifying, self-checking and running a bundle stays in the runtime too."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import baton

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(np.int64))
    path = baton.convert(model, X, tune=False).save(tmp_path / "lr.baton")
    code = (
        "import sys, numpy as np\n"
        "from baton.runtime import Session\n"
        f"s = Session({str(path)!r}, self_check=True)\n"
        "s.warmup()\n"
        "print(s.run({s.inputs[0].name: np.ones((2, 3), dtype=np.float32)})['label'].shape)\n"
        "mods = sorted(sys.modules)\n"
        f"print(','.join(m for m in mods if m.startswith({ABOVE_RUNTIME!r})\n"
        f"               or m.split('.')[0] in {NOT_FOR_SERVICES!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shape, loaded = out.stdout.splitlines()
    assert shape == "(2,)"
    assert loaded == "", f"running a bundle loaded {loaded}"


def test_a_room_above_is_really_detected() -> None:
    """The checks above can fail: importing the API shows up."""
    code = ("import sys, baton.runtime, baton._api\n"
            "print(any(m.startswith('baton.parity') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
