"""Every example in README.md and docs/ runs as printed (the pages in the order a reader
meets them, in one scratch directory that starts with `baton demo`'s files)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["cli.md", "bundle.md", "parity.md", "search.md", "runtime.md", "scikit-learn.md",
         "trees.md", "statsmodels.md", "pytorch.md", "latency.md", "services.md", "serving.md",
         "production.md", "scale.md", "security.md", "converters.md"]
BIN = Path(sys.executable).parent


def blocks(page: str) -> list[tuple[str, str]]:
    text = (ROOT / "docs" / page).read_text()
    return [(lang, code) for lang, code in re.findall(r"```(python|bash)\n(.*?)```", text,
                                                       flags=re.S)
            if not (lang == "bash" and ("pip install" in code or "python3 -m venv" in code))]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("docs")
    subprocess.run([BIN / "baton", "demo"], cwd=d, check=True, capture_output=True)
    # services.md runs the Node.js verifier as from a checkout: examples/node/ without its
    # node_modules (the page's own `npm ci` installs it)
    for name in ("package.json", "package-lock.json", "verify.mjs"):
        (d / "examples" / "node").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "examples" / "node" / name, d / "examples" / "node" / name)
    return d


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page: str, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(scratch)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    found = blocks(page)
    assert found, f"{page} has no examples"
    # a page may register a converter (converters.md): gone after the page, so that the
    # tests run after it in this process see baton's own registry
    from baton.converters import _registry

    _registry.converters()  # loaded first: the snapshot holds the built-in converters
    saved = list(_registry._CONVERTERS), dict(_registry._LOADERS)
    try:
        for lang, code in found:
            if lang == "python":
                exec(compile(code, f"<{page}>", "exec"), namespace)  # noqa: S102
                continue
            want = 1 if "# exits 1" in code else 0
            out = subprocess.run(["bash", "-e", "-c", code], cwd=scratch, env=env,
                                 capture_output=True, text=True)
            assert out.returncode == want, f"{page}:\n{code}\n{out.stdout}\n{out.stderr}"
            assert "Traceback" not in out.stderr
    finally:
        _registry._CONVERTERS[:] = saved[0]
        _registry._LOADERS.clear()
        _registry._LOADERS.update(saved[1])
