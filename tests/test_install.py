"""The install boundary matches the runtime: `pip install baton` (no extra) brings numpy and
onnxruntime, runs a bundle through `baton.runtime.Session`, and names the extra for the rest.

A fresh virtual environment gets a regular (non-editable) install of this project under
constraints.txt (`pip install -c constraints.txt <project>`), so only the core dependencies
come. The project is installed from a copy
of its sources (pyproject.toml, README.md, baton/) so that the build's `build/` and
`*.egg-info` land in the test's directory, not in the checkout. pip's own cache (its
default, or PIP_CACHE_DIR) is shared across runs: warm, the install takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the runtime needs none of: the `cli` extra's packages and the frameworks'.
ABSENT = ("typer", "rich", "hypothesis", "onnx", "sklearn", "torch", "pandas")
#: pip's words for an index it cannot reach (then the test is skipped, saying so)
UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection",
               "Temporary failure in name resolution", "Name or service not known",
               "Network is unreachable", "No route to host", "ConnectTimeoutError",
               "ProxyError", "Could not fetch URL")


def isolated_env() -> dict[str, str]:
    """The environment without what points at the outer virtual environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding `pip install -c constraints.txt <this project>`."""
    d = tmp_path_factory.mktemp("install")
    src = d / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "baton", src / "baton",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = isolated_env()
    # without pip of its own (ensurepip takes longer than the install): this process's pip
    # installs into it (`pip --python`), resolving for that interpreter as its own would
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", d / "venv"], check=True,
                   env=env)
    python = d / "venv" / "bin" / "python"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
         "-c", ROOT / "constraints.txt", src],
        capture_output=True, text=True, env=env, cwd=d)
    if out.returncode != 0:
        text = out.stdout + out.stderr
        reason = next((ln.strip() for ln in text.splitlines()
                       if any(m in ln for m in UNREACHABLE)), None)
        if reason is not None:
            pytest.skip(f"pip cannot reach the package registry: {reason[:300]}")
        pytest.fail(f"pip install of the core failed:\n{text}")
    return d / "venv"


def run_in(venv: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in the venv's python, isolated (-I: neither the checkout nor PYTHON* vars)."""
    return subprocess.run([venv / "bin" / "python", "-I", "-c", code, *args],
                          capture_output=True, text=True, env=isolated_env(), cwd=venv.parent)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A scikit-learn model converted here, with the full environment, and feeds for it."""
    from sklearn.linear_model import LogisticRegression

    import baton

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    model = LogisticRegression().fit(X, (X[:, 0] + X[:, 1] > 0).astype(int))
    path = tmp_path_factory.mktemp("bundle") / "model.baton"
    baton.convert(model, X).save(path)
    feeds = tmp_path_factory.mktemp("feeds") / "feeds.npz"
    np.savez(feeds, input=rng.normal(size=(16, 4)))
    return path, feeds


def test_core_brings_the_runtime_only(venv: Path) -> None:
    code = (
        "import importlib.metadata as md, importlib.util, json\n"
        f"absent = {ABSENT!r}\n"
        "print(json.dumps({'requires': md.requires('baton'),\n"
        "    'importable': [m for m in absent if importlib.util.find_spec(m) is not None],\n"
        "    'installed': sorted(d.metadata['Name'].lower() for d in md.distributions())}))\n"
    )
    out = run_in(venv, code)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    core = [r for r in found["requires"] if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0] for r in core) == ["numpy", "onnxruntime"]
    assert found["importable"] == [], f"the core install brings {found['importable']}"
    assert {"baton", "numpy", "onnxruntime"} <= set(found["installed"])
    assert not {"typer", "rich", "hypothesis", "onnx", "scikit-learn", "torch", "pandas",
                "pyarrow", "skl2onnx", "click"} & set(found["installed"])
    # the check can fail: a missing module is really reported missing, an installed one found
    out = run_in(venv, "import importlib.util as u; print(u.find_spec('numpy') is not None)")
    assert out.stdout.strip() == "True"


def test_session_runs_a_bundle_as_the_full_install_does(
        venv: Path, bundle: tuple[Path, Path], tmp_path: Path) -> None:
    from baton.runtime import Session

    path, feeds_file = bundle
    feeds = dict(np.load(feeds_file))
    expected = Session(path).run(feeds)
    code = (
        "import sys, numpy as np\n"
        "from baton.runtime import Session\n"
        "session = Session(sys.argv[1])\n"  # checks every file's sha256
        "outputs = session.run(dict(np.load(sys.argv[2])))\n"
        "np.savez(sys.argv[3], **outputs)\n"
        f"print(','.join(m for m in {ABSENT!r} if m in sys.modules))\n"
    )
    result = tmp_path / "outputs.npz"
    out = run_in(venv, code, str(path), str(feeds_file), str(result))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    got = dict(np.load(result))
    assert sorted(got) == sorted(expected) == ["label", "probabilities"]
    for name, want in expected.items():
        np.testing.assert_array_equal(got[name], want, err_msg=name)


@pytest.mark.parametrize("args", [[], ["--help"], ["verify", "model.baton"]])
def test_baton_command_names_the_cli_extra(venv: Path, args: list[str]) -> None:
    out = subprocess.run([venv / "bin" / "baton", *args], capture_output=True, text=True,
                         env=isolated_env(), cwd=venv.parent)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "pip install 'baton[cli]'" in out.stderr
    assert "'typer'" in out.stderr
    assert out.stderr.startswith("error: the baton command needs")
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_library_calls_name_the_cli_extra(venv: Path, bundle: tuple[Path, Path]) -> None:
    path, _ = bundle
    code = (
        "import sys, numpy as np, baton\n"
        "calls = {'convert': lambda: baton.convert(object(), np.zeros((3, 4))),\n"
        "         'check': lambda: baton.check(object(), sys.argv[1], np.zeros((3, 4)))}\n"
        "for name, call in calls.items():\n"
        "    try:\n"
        "        call()\n"
        "    except baton.MissingDependencyError as exc:\n"
        "        print(name, exc.hint, '|', exc.message)\n"
    )
    out = run_in(venv, code, str(path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    for name, line in zip(("convert", "check"), lines):
        assert line == (f"{name} pip install 'baton[cli]' | baton.{name} needs the Python "
                        "package 'onnx', which is not installed."), line


def test_golden_vectors_need_no_onnx(venv: Path, bundle: tuple[Path, Path]) -> None:
    """Reading the golden vectors (self_check, warmup, baton.verify, baton.load) works on
    the runtime alone."""
    path, _ = bundle
    code = (
        "import sys, baton\n"
        "from baton.runtime import Session\n"
        "session = Session(sys.argv[1], self_check=True)\n"
        "session.warmup()\n"
        "report = baton.verify(sys.argv[1])\n"
        "assert report, report\n"
        "print(baton.load(sys.argv[1]).name, report.rows)\n"
        "print(','.join(m for m in ('onnx', 'hypothesis', 'typer', 'rich') if m in sys.modules))\n"
    )
    out = run_in(venv, code, str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("LogisticRegression ")
    assert out.stdout.splitlines()[1:] == [""]
