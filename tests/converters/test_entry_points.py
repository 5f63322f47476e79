"""Converters are registered through the ``baton.converters`` entry-point group.

A real third-party package, written here into a temporary directory with its own
``*.dist-info`` (so that :mod:`importlib.metadata` finds its entry points on
``PYTHONPATH``), converts, checks and loads its models through baton without baton knowing
of it; a broken one is skipped with a warning. Each runs in a subprocess: the registry is
read once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import baton
from baton.contract import ENTRY_POINT_GROUP, ModelFile
from baton.converters import (
    converters,
    find_converter,
    load_model_file,
    model_file_help,
    model_files,
)
from baton.converters._registry import _BUILTIN, _ordered

ROOT = Path(__file__).resolve().parents[2]

#: the order converters are asked in: the tree readers and XGBoost before scikit-learn's
#: general converter, which takes any estimator
ORDER = ["catboost", "lightgbm", "sklearn-pipeline-trees", "sklearn-trees", "xgboost",
         "sklearn", "statsmodels", "torch"]
SUFFIXES = {".cbm", ".txt", ".skops", ".json", ".ubj", ".pkl", ".pickle", ".joblib", ".pt2",
            ".pt"}


def _pyproject_entry_points() -> dict[str, str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return dict(project["entry-points"][ENTRY_POINT_GROUP])


# -- baton's own registrations ------------------------------------------------------------


def test_builtin_fallback_equals_pyproject() -> None:
    assert dict(_BUILTIN) == _pyproject_entry_points()
    assert [name for name, _ in _BUILTIN] == sorted(name for name, _ in _BUILTIN)


def test_installed_metadata_equals_pyproject() -> None:
    """The entry points baton was installed with are those of pyproject.toml (otherwise:
    pip install -e . again)."""
    dist = metadata.distribution("baton")
    installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
    assert installed == _pyproject_entry_points(), "stale metadata: pip install -e . again"


def test_order_and_names() -> None:
    convs = converters()
    assert [c.name for c in convs] == ORDER
    assert all(isinstance(c, baton.converters.Converter) for c in convs)
    # every entry point is named after what it registers
    names = {c.name for c in convs} | {"pickle"}
    assert names == set(_pyproject_entry_points())
    assert {mf.suffix for mf in model_files()} == SUFFIXES
    assert all(isinstance(mf, ModelFile) for mf in model_files())


def test_without_baton_metadata_the_builtin_list_is_used() -> None:
    """From a source tree that was never installed, nothing breaks: the same converters in
    the same order, the same model files (baton's metadata hidden from importlib.metadata)."""
    code = textwrap.dedent("""
        import importlib.metadata as md, json
        real = md.entry_points
        def entry_points(**kw):
            return md.EntryPoints(ep for ep in real(**kw)
                                  if getattr(ep.dist, "name", None) != "baton")
        md.entry_points = entry_points
        from baton.converters import converters, model_files
        print(json.dumps([[c.name for c in converters()], [m.suffix for m in model_files()]]))
    """)
    names, suffixes = json.loads(_python(code, cwd=ROOT.parent).stdout)
    assert names == ORDER
    assert set(suffixes) == SUFFIXES


def test_before_moves_a_converter_just_before_the_one_it_names() -> None:
    def c(name: str) -> Any:
        return SimpleNamespace(name=name)

    a, b, x, y, z = c("a"), c("b"), c("x"), c("y"), c("z")
    order = _ordered([(a, None), (x, "b"), (b, None), (y, "b"), (z, "x")])
    assert [v.name for v in order] == ["a", "z", "x", "y", "b"]  # z before x before b
    # a target that is not registered, or a cycle, leaves them where they were
    assert [v.name for v in _ordered([(a, "nobody"), (b, None)])] == ["a", "b"]
    assert [v.name for v in _ordered([(a, "b"), (b, "a"), (x, None)])] == ["x", "a", "b"]


# -- the texts written from the registrations ------------------------------------------------


def test_unknown_model_file_lists_every_format_and_how_to_save_it(tmp_path: Path) -> None:
    path = tmp_path / "model.xyz"
    path.write_text("?")
    with pytest.raises(baton.UsageError, match="cannot read model files of type") as info:
        load_model_file(path)
    err = info.value
    assert err.expected is not None and err.hint is not None
    for suffix in SUFFIXES:
        assert f"{suffix} (" in err.expected, suffix
    assert ".pt2 (PyTorch program (torch.export.save); needs --trust-pickle)" in err.expected
    assert ".pkl (pickle; needs --trust-pickle)" in err.expected
    assert err.hint.startswith("save ")
    for mf in model_files():
        assert mf.save in err.hint, mf.suffix  # every framework's way of saving a file
    assert "torch.export.save" in err.hint and "'model.pt2'" in err.hint
    assert "torch.jit.save" in err.hint and "--trust-pickle" in err.hint
    with pytest.raises(baton.UsageError, match="no model file") as missing:
        load_model_file(tmp_path / "absent.pt2")
    assert missing.value.expected is not None and ".pt2" in missing.value.expected


def test_model_file_help_is_the_cli_help() -> None:
    import baton.cli

    text = model_file_help()
    assert baton.cli.MODEL_FILES == text
    assert text.startswith("Model file: ") and text.endswith(".")
    assert all(s in text for s in SUFFIXES)
    safe, trusted = text.split("with --trust-pickle")
    assert ".pt2/.pt (PyTorch)" in trusted and ".pkl/.pickle/.joblib (pickle)" in trusted
    assert ".skops (scikit-learn)" in safe and ".json/.ubj (XGBoost)" in safe


def test_no_converter_names_every_framework() -> None:
    with pytest.raises(baton.UnsupportedModelError, match="no converter") as info:
        find_converter(object())
    err = info.value
    assert err.expected is not None and err.hint is not None
    for framework in {c.framework for c in converters()}:
        assert framework in err.expected
    assert ENTRY_POINT_GROUP in err.hint
    assert "arrives" not in err.hint


# -- a third-party converter package ------------------------------------------------------

POLY = '''
"""batonext_poly: a converter for baton, known to baton through its entry point alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from baton.contract import Conversion, ModelFile
from baton.schema import TensorSpec


class Poly:
    """y = a * x + b, one feature."""

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = float(a), float(b)

    def predict(self, x):
        return np.asarray(x, dtype=np.float64) @ np.array([[self.a]]) + self.b

    def save(self, path) -> None:
        Path(path).write_text(json.dumps({"a": self.a, "b": self.b}))


def load_poly(path: Path, trust_pickle: bool) -> Poly:
    d = json.loads(Path(path).read_text())
    return Poly(d["a"], d["b"])


class PolyConverter:
    name = "poly"
    framework = "poly"
    extra = ""
    model_files = (ModelFile(".poly", load_poly, framework="Poly", what="Poly (Poly.save)",
                             save="poly.save('model.poly')"),)

    def accepts(self, model) -> bool:
        return isinstance(model, Poly)

    def prepare(self, model, data):
        return np.asarray(data, dtype=np.float64)

    def infer_inputs(self, model, sample):
        return [TensorSpec(name="x", dtype="float64", shape=("N", 1))]

    def convert(self, model, sample, inputs, *, opset):
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "a"], ["ax"]),
             helper.make_node("Add", ["ax", "b"], ["y"])],
            "poly",
            [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 1])],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 1])],
            initializer=[numpy_helper.from_array(np.array([[model.a]]), "a"),
                         numpy_helper.from_array(np.array([model.b]), "b")])
        onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset or 17)])
        onx.ir_version = 8
        return Conversion(
            model=onx, inputs=inputs,
            outputs=[TensorSpec(name="y", dtype="float64", shape=("N", 1), kind="prediction")],
            source={"framework": "poly", "class": "batonext_poly.Poly",
                    "versions": {"batonext_poly": "0.1"}},
            converter={"name": "batonext_poly", "version": "0.1", "notes": []},
            precision="float64")

    def predict(self, model, data):
        return {"y": model.predict(data)}

    def describe(self, model) -> str:
        return f"batonext_poly.Poly(a={model.a}, b={model.b})"
'''

BROKEN = '''
"""batonext_broken: entry points that cannot give baton a converter."""

from baton.contract import ModelFile


class Raises:
    def __init__(self) -> None:
        raise RuntimeError("boom while instantiating")


NOT_A_CONVERTER = 42


class JsonFiles:
    """Model files alone, for a suffix XGBoost's converter already reads."""

    model_files = (ModelFile(".json", lambda path, trust: None, framework="JSON",
                             what="any JSON"),)


class Sklearn:
    """A converter under a name baton's own already has."""

    name = "sklearn"
    framework = "impostor"
    extra = ""

    def accepts(self, model): return True
    def prepare(self, model, data): return data
    def infer_inputs(self, model, sample): return []
    def convert(self, model, sample, inputs, *, opset): raise AssertionError
    def predict(self, model, data): return {}
    def describe(self, model): return "impostor"
'''


def _package(root: Path, name: str, source: str, entry_points: dict[str, str]) -> None:
    """A package and its installed metadata, as pip would leave them in site-packages."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(source)
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))


def _python(code: str, *args: str, cwd: Path, path: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path)] + (
            [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=cwd, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_a_third_party_converter_converts_checks_and_loads(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _package(site, "batonext_poly", POLY, {"poly": "batonext_poly:PolyConverter"})
    work = tmp_path / "work"
    work.mkdir()
    code = textwrap.dedent("""
        import json, sys, warnings
        from pathlib import Path

        import numpy as np

        warnings.simplefilter("error", RuntimeWarning)  # no entry point was skipped
        import baton
        from baton.converters import (converters, find_converter, load_model_file,
                                      model_file_help)
        from batonext_poly import Poly, PolyConverter

        work = Path(sys.argv[1])
        model = Poly(2.5, 0.5)
        x = np.linspace(-3, 3, 64).reshape(-1, 1)
        bundle = baton.convert(model, x)
        bundle.save(work / "poly.baton")
        report = baton.check(model, work / "poly.baton", x)  # the parity search runs too
        model.save(work / "model.poly")
        np.save(work / "x.npy", x)
        loaded = load_model_file(work / "model.poly")
        try:
            load_model_file(work / "x.npy")
        except baton.UsageError as err:
            hint = err.hint
        print(json.dumps({
            "order": [c.name for c in converters()],
            "found": type(find_converter(model)).__name__,
            "converted": bool(bundle.report), "checked": bool(report),
            "searched": report.search is not None and report.search.passed,
            "verified": bool(baton.verify(work / "poly.baton")),
            "loaded": [type(loaded).__name__, loaded.a, loaded.b],
            "help": model_file_help(), "hint": hint,
        }))
    """)
    got = json.loads(_python(code, str(work), cwd=work, path=site).stdout)
    assert got["order"] == ORDER + ["poly"]  # after baton's own, by name
    assert got["found"] == "PolyConverter"
    assert got["converted"] and got["checked"] and got["searched"] and got["verified"]
    assert got["loaded"] == ["Poly", 2.5, 0.5]
    assert ".poly (Poly)" in got["help"]
    assert "Poly with poly.save('model.poly')" in got["hint"]

    # the command line reads the extension's file suffix too
    cli = "import sys; from baton._entry import main; sys.argv[0] = 'baton'; main()"
    out = _python(cli, "convert", str(work / "model.poly"), "--sample", str(work / "x.npy"),
                  "-o", str(work / "cli.baton"), cwd=work, path=site)
    assert (work / "cli.baton" / "model.onnx").exists(), out.stdout
    _python(cli, "check", str(work / "model.poly"), str(work / "cli.baton"), "--data",
            str(work / "x.npy"), cwd=work, path=site)
    help_text = _python(cli, "convert", "--help", cwd=work, path=site).stdout
    assert ".poly" in help_text


def test_a_broken_entry_point_warns_and_the_builtins_still_work(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _package(site, "batonext_broken", BROKEN, {
        "missing": "batonext_broken_nowhere:Converter",
        "raises": "batonext_broken:Raises",
        "not-a-converter": "batonext_broken:NOT_A_CONVERTER",
        "sklearn": "batonext_broken:Sklearn",
        "json": "batonext_broken:JsonFiles",
    })
    code = textwrap.dedent("""
        import json, warnings

        import numpy as np
        from sklearn.linear_model import LinearRegression

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import baton
            from baton.converters import converters, model_files
            order = [c.name for c in converters()]
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 3))
        model = LinearRegression().fit(x, x @ [1.0, 2.0, -1.0])
        bundle = baton.convert(model, x)
        json_file = [m.framework for m in model_files() if m.suffix == ".json"]
        print(json.dumps({
            "json": json_file,
            "warnings": [str(w.message) for w in caught
                         if issubclass(w.category, RuntimeWarning)],
            "order": order, "suffixes": sorted(m.suffix for m in model_files()),
            "converted": bool(bundle.report),
            "framework": bundle.manifest["source"]["framework"],
        }))
    """)
    got = json.loads(_python(code, cwd=tmp_path, path=site).stdout)
    assert got["order"] == ORDER
    assert set(got["suffixes"]) == SUFFIXES
    assert got["converted"] and got["framework"] == "scikit-learn"
    messages = got["warnings"]
    assert len(messages) == 5, messages
    assert got["json"] == ["XGBoost"]  # a suffix belongs to the first registration
    expect = {
        "missing": "ModuleNotFoundError",
        "raises": "boom while instantiating",
        "not-a-converter": "neither a baton.contract.Converter",
        "sklearn": "already registered",
        "json": "its .json model files skipped",
    }
    for name, error in expect.items():
        (message,) = [m for m in messages if f"entry point {name} = " in m]
        assert ENTRY_POINT_GROUP in message and "batonext_broken" in message, message
        assert error in message, message


def test_register_at_run_time_after_the_entry_points(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _package(site, "batonext_poly", POLY, {"poly": "batonext_poly:PolyConverter"})
    code = textwrap.dedent("""
        import json
        from baton.converters import converters, register
        from batonext_poly import PolyConverter

        class Early(PolyConverter):
            name = "early"
        class Late(PolyConverter):
            name = "late"

        register(Early(), before="sklearn")
        register(Late())
        try:
            register(PolyConverter())
        except ValueError as err:
            duplicate = str(err)
        print(json.dumps([[c.name for c in converters()], duplicate]))
    """)
    order, duplicate = json.loads(_python(code, cwd=tmp_path, path=site).stdout)
    assert order == ["catboost", "lightgbm", "sklearn-pipeline-trees", "sklearn-trees",
                     "xgboost", "early", "sklearn", "statsmodels", "torch", "poly", "late"]
    assert "'poly' is already registered" in duplicate


def test_model_file_suffixes_are_checked() -> None:
    def load(path: Path, trust: bool) -> None:
        return None

    for bad in ("poly", ".POLY", ".", "./x"):
        with pytest.raises(ValueError, match="lower-case"):
            ModelFile(bad, load, framework="Poly", what="Poly")
    assert not ModelFile(".poly", load, framework="Poly", what="Poly").needs_trust
