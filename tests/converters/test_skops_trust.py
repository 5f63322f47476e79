"""A .skops file runs no code without --trust-pickle: real skops dumps edited to call
functions scikit-learn re-exports from the standard library (``subprocess.check_output``,
``os.remove``) are refused by the loader and by every command that loads a model, while
real models (and their internals skops does not list, such as TreePredictor) still load."""

from __future__ import annotations

import json
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from baton.cli import app
from baton.converters import load_model_file
from baton.converters.sklearn import _safe_type
from baton.errors import UsageError

skops_io = pytest.importorskip("skops.io")

SHELL = ("sklearn.utils._testing", "check_output")  # is subprocess.check_output
REMOVE = ("sklearn.datasets._species_distributions", "remove")  # is os.remove


def _json(value: Any, ident: int) -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True, "__id__": ident}


def _reduce_node(module: str, name: str, args: list[Any]) -> dict[str, Any]:
    """A node skops loads as ``module.name(*args)``."""
    return {
        "__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
        "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                    "content": [_json(a, 7_000_000 + i) for i, a in enumerate(args)],
                    "__id__": 7_100_000},
        "__id__": 7_200_000,
    }


def malicious_skops(path: Path, callable_: tuple[str, str], args: list[Any],
                    where: str = "attribute") -> Path:
    """A real skops dump of a fitted model whose schema.json is edited to call
    ``callable_(*args)`` on load: as an extra attribute of the model, or as the whole file."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    skops_io.dump(LogisticRegression().fit(rng.normal(size=(30, 3)), np.arange(30) % 2), path)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    node = _reduce_node(*callable_, args)
    if where == "root":
        schema = {**node, "protocol": schema["protocol"],
                  "_skops_version": schema["_skops_version"]}
    else:
        attrs = schema["content"]  # the estimator's __dict__, a DictNode
        attrs["content"]["payload"] = node
        key_types = attrs["key_types"]["content"]
        key_types.append(dict(key_types[0]))  # str, like every other attribute name
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def _write_marker(marker: Path) -> list[Any]:
    """check_output arguments that create ``marker``."""
    return [[sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]]


runner = CliRunner()


def _load_via(how: str, model: Path, tmp: Path) -> tuple[int, str]:
    """Load ``model`` the way ``how`` does: the library loader or a CLI command."""
    if how == "load_model_file":
        try:
            load_model_file(model)
        except UsageError as exc:
            return exc.exit_code, str(exc)
        return 0, ""
    sample = tmp / "sample.csv"
    sample.write_text("a,b,c\n0.1,0.2,0.3\n0.4,0.5,0.6\n")
    args = {
        "convert": ["convert", model, "--sample", sample, "-o", tmp / "out.baton"],
        "check": ["check", model, tmp / "none.baton", "--data", sample, "--no-search"],
        "bench": ["bench", tmp / "none.baton", "--model", model, "--min-runs", "1"],
    }[how]
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


HOW = ["load_model_file", "convert", "check", "bench"]


@pytest.mark.parametrize("where", ["attribute", "root"])
@pytest.mark.parametrize("how", HOW)
def test_skops_calling_check_output_runs_no_command(tmp_path: Path, how: str,
                                                    where: str) -> None:
    marker = tmp_path / "pwned"
    model = malicious_skops(tmp_path / "model.skops", SHELL, _write_marker(marker), where)
    code, message = _load_via(how, model, tmp_path)
    assert not marker.exists(), "loading the .skops file ran a command"
    assert code == 2
    assert "sklearn.utils._testing.check_output" in message
    assert "--trust-pickle" in message


@pytest.mark.parametrize("how", HOW)
def test_skops_calling_remove_deletes_nothing(tmp_path: Path, how: str) -> None:
    planted = tmp_path / "precious.txt"
    planted.write_text("keep me")
    model = malicious_skops(tmp_path / "model.skops", REMOVE, [str(planted)])
    code, message = _load_via(how, model, tmp_path)
    assert planted.exists(), "loading the .skops file deleted a file"
    assert planted.read_text() == "keep me"
    assert code == 2
    assert "sklearn.datasets._species_distributions.remove" in message


def test_trust_pickle_does_run_the_file(tmp_path: Path) -> None:
    """The opt-in is real: with --trust-pickle the file is loaded as written (which is what
    the refusal message warns of), so the refusal above is what protects the user."""
    marker = tmp_path / "ran"
    model = malicious_skops(tmp_path / "model.skops", SHELL, _write_marker(marker))
    load_model_file(model, trust_pickle=True)
    assert marker.exists()


# -- real models still load without --trust-pickle -------------------------------------


def _models() -> dict[str, Any]:
    from sklearn.cluster import KMeans
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestRegressor,
    )
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=10),
        "random_forest_regressor": RandomForestRegressor(n_estimators=5, random_state=0),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=5),
        "kmeans": KMeans(3, n_init=1, random_state=0),
        "scaler_svc": make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
        "mlp": MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0),
        "kneighbors": KNeighborsClassifier(),
    }


@pytest.mark.parametrize("name", ["pipeline", *_models()])
def test_real_models_load_without_trust_pickle(tmp_path: Path, name: str,
                                               fitted_pipeline: Any, mixed_frame: Any) -> None:
    if name == "pipeline":  # ColumnTransformer + OneHotEncoder + LogisticRegression
        model, x = fitted_pipeline, mixed_frame
    else:
        x = np.random.default_rng(0).normal(size=(200, 4))
        model = _models()[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLP's ConvergenceWarning
            model.fit(x, x[:, 0] if "regressor" in name else (x[:, 0] > 0).astype(int))
    path = tmp_path / "model.skops"
    skops_io.dump(model, path)
    loaded = load_model_file(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# -- which names are trusted ------------------------------------------------------------


def _reexports() -> list[str]:
    """Every attribute of an imported scikit-learn module that is not a class defined in that
    module: functions, and anything imported from elsewhere (subprocess, os, numpy...)."""
    import sklearn.datasets  # noqa: F401 - pulls in the modules with the os re-exports
    import sklearn.ensemble  # noqa: F401
    import sklearn.utils._testing  # noqa: F401

    names = []
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("sklearn.") or module is None:
            continue
        for attr, obj in list(vars(module).items()):
            if callable(obj) and not (isinstance(obj, type) and obj.__module__ == module_name):
                names.append(f"{module_name}.{attr}")
    return sorted(names)


def test_no_reexported_or_non_class_callable_is_trusted() -> None:
    names = _reexports()
    assert SHELL[0] + "." + SHELL[1] in names and REMOVE[0] + "." + REMOVE[1] in names
    trusted = [n for n in names if _safe_type(n)]
    assert trusted == []


def test_classes_in_test_modules_are_not_trusted() -> None:
    import sklearn.utils._testing as testing

    defined = [f"{testing.__name__}.{a}" for a, o in vars(testing).items()
               if isinstance(o, type) and o.__module__ == testing.__name__]
    assert defined, "sklearn.utils._testing defines no class any more: pick another module"
    assert not any(map(_safe_type, defined))


_NEVER_IMPORT = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"}
_STDLIB = sorted(set(sys.stdlib_module_names) - _NEVER_IMPORT)


@settings(max_examples=200, deadline=None)
@given(module=st.sampled_from(_STDLIB),
       sub=st.lists(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), max_size=2),
       attr=st.from_regex(r"[A-Za-z_]{1,12}", fullmatch=True))
def test_names_outside_sklearn_and_numpy_are_refused_without_importing(
        module: str, sub: list[str], attr: str) -> None:
    name = ".".join([module, *sub, attr])
    before = set(sys.modules)
    assert not _safe_type(name)
    assert set(sys.modules) == before, f"deciding on {name} imported a module"


@given(st.text(max_size=60))
def test_any_name_is_answered_without_error(name: str) -> None:
    assert _safe_type(name) in (True, False)
    assert not _safe_type("os." + name) and not _safe_type("builtins." + name)


@pytest.mark.parametrize("name", [
    "numpy.dtype", "numpy.dtypes.Float64DType", "numpy.dtypes.ObjectDType",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree", "sklearn.linear_model._logistic.LogisticRegression",
])
def test_sklearn_classes_and_numpy_dtypes_are_trusted(name: str) -> None:
    assert _safe_type(name)


@pytest.mark.parametrize("name", [
    "numpy.ndarray", "numpy.load", "numpy.dtypes.np", "numpy.lib.npyio.load",
    "sklearn.linear_model.LogisticRegression",  # re-exported from _logistic: skops never
    "sklearn.utils.parallel.delayed", "sklearn.externals._packaging.version.Version",
    "sklearn", "sklearn..x", "sklearn.no_such_module.X",
])
def test_other_numpy_and_sklearn_names_are_not(name: str) -> None:
    assert not _safe_type(name)
