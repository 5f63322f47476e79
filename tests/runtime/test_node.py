"""A bundle verified from Node.js: examples/node/verify.mjs on onnxruntime-node.

The verifier reads baton.json, checks every sha256, decodes the golden TensorProto files
itself and runs them on onnxruntime-node (pinned in examples/node/package.json, installed
here once per session with ``npm ci --ignore-scripts``).

Node.js and npm are required: without them these tests *fail* and say so, unless
``BATON_SKIP_NODE=1`` is set, which skips them with that reason (a machine that cannot run
Node must opt out knowingly; CI has Node).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import baton
from tests.conftest import make_mixed_frame, mixed_target

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node"
SCRIPT = EXAMPLE / "verify.mjs"


def _pinned_version() -> str:
    return str(json.loads((EXAMPLE / "package.json").read_text())["dependencies"]
               ["onnxruntime-node"])


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with the pinned onnxruntime-node installed beside verify.mjs."""
    exe, npm = shutil.which("node"), shutil.which("npm")
    if exe is None or npm is None:
        reason = (f"Node.js and npm are needed to test examples/node/verify.mjs; found node="
                  f"{exe}, npm={npm}. Install Node.js >= 18 with npm, or set BATON_SKIP_NODE=1 "
                  "to skip these tests knowingly")
        if os.environ.get("BATON_SKIP_NODE") == "1":
            pytest.skip(reason)
        pytest.fail(reason)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    major = int(re.match(r"v(\d+)", version).group(1)) if re.match(r"v(\d+)", version) else 0
    assert major >= 18, f"verify.mjs needs Node.js >= 18, found {version!r} at {exe}"
    installed = EXAMPLE / "node_modules" / "onnxruntime-node" / "package.json"
    if not (installed.is_file()
            and json.loads(installed.read_text())["version"] == _pinned_version()):
        # the package's postinstall downloads extra binaries from GitHub; the Linux, macOS and
        # Windows CPU binaries ship inside the package, so scripts are not needed
        out = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                             cwd=EXAMPLE, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            pytest.fail(f"npm ci in {EXAMPLE} failed (exit {out.returncode}):\n"
                        f"{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return exe


def _verify(node: str, bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node, str(SCRIPT), str(bundle)], capture_output=True, text=True,
                          timeout=120)


# -- bundles ----------------------------------------------------------------------------------


def _lightgbm_pipeline(path: Path) -> Path:
    """String and float columns, one-hot encoded, into LightGBM: ai.onnx.ml TreeEnsemble."""
    lgb = pytest.importorskip("lightgbm")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = make_mixed_frame(200, seed=1)
    prepare = ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore"),
                                  ["city", "plan"])], remainder="passthrough")
    model = make_pipeline(prepare, lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1))
    model.fit(frame, mixed_target(frame))
    return baton.convert(model, frame, name="lgbm", tune=False).save(path)


def _xgboost_regressor(path: Path) -> Path:
    """A float32 matrix into XGBoost trees (the graph takes float64)."""
    xgb = pytest.importorskip("xgboost")
    X = np.random.default_rng(2).normal(size=(150, 4)).astype(np.float32)
    model = xgb.XGBRegressor(n_estimators=15, max_depth=3, n_jobs=1)
    model.fit(X, X[:, 0] * 2 - X[:, 1] ** 2)
    return baton.convert(model, X, name="xgb", tune=False).save(path)


def _torch_ids(path: Path) -> Path:
    """Token ids (int64) and a padding mask (bool) into an embedding, a float32 output."""
    torch = pytest.importorskip("torch")

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(50, 8)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, ids: Any, keep: Any) -> Any:
            m = keep.unsqueeze(-1).float()
            return self.head((self.embed(ids) * m).sum(1) / m.sum(1).clamp(min=1))

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (6, 5), generator=g)
    keep = torch.rand(6, 5, generator=g) > 0.3
    bundle = baton.convert(Pooled().eval(), {"ids": ids, "keep": keep}, name="ids", tune=False)
    return bundle.save(path)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "lightgbm-pipeline": _lightgbm_pipeline,
    "xgboost": _xgboost_regressor,
    "torch-ids": _torch_ids,
}


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory, mixed_bundle_dir: Path
            ) -> Callable[[str], Path]:
    """Bundles by kind, built once: the demo-like sklearn pipeline (float, int and string
    columns) from conftest, a tree pipeline, a tree model, a PyTorch model."""
    built: dict[str, Path] = {"sklearn-pipeline": mixed_bundle_dir}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = BUILDERS[kind](tmp_path_factory.mktemp("node") / f"{kind}.baton")
        return built[kind]

    return get


KINDS = ["sklearn-pipeline", *BUILDERS]


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / bundle.name))


def _rehash(bundle: Path, name: str) -> None:
    """Record a changed file's sha256 in baton.json (so only the comparison can catch it)."""
    manifest = json.loads((bundle / "baton.json").read_text())
    manifest["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "baton.json").write_text(json.dumps(manifest, indent=2))


def _output_file(bundle: Path, output: str) -> str:
    names = [o["name"] for o in json.loads((bundle / "baton.json").read_text())["outputs"]]
    return f"test_data_set_0/output_{names.index(output)}.pb"


def _edit_tensor(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    import onnx
    from onnx import numpy_helper

    tensor = onnx.load_tensor(str(path))
    onnx.save_tensor(numpy_helper.from_array(change(numpy_helper.to_array(tensor)),
                                             tensor.name), str(path))


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_node_passes_a_sound_bundle(kind: str, bundles: Callable[[str], Path], node: str
                                    ) -> None:
    bundle = bundles(kind)
    manifest = json.loads((bundle / "baton.json").read_text())
    out = _verify(node, bundle)
    assert out.returncode == 0, out.stdout + out.stderr
    n = len(manifest["files"])
    assert f"files:   {n} of {n} match" in out.stdout
    for spec in manifest["outputs"]:
        assert re.search(rf"^  {re.escape(spec['name'])} +\S+ +pass ", out.stdout, re.M), \
            out.stdout
    assert out.stdout.rstrip().endswith(f"PASSED: verify {bundle} on onnxruntime-node")


@pytest.mark.parametrize("name", ["model.onnx", "test_data_set_0/input_3.pb",
                                  "test_data_set_0/output_1.pb", "report.json"])
def test_node_names_a_changed_file(name: str, bundles: Callable[[str], Path], node: str,
                                   tmp_path: Path) -> None:
    bundle = _copy(bundles("sklearn-pipeline"), tmp_path)
    with open(bundle / name, "ab") as f:
        f.write(b"\x00")
    out = _verify(node, bundle)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"problem: file {name}: sha256 differs" in out.stdout
    assert "FAILED: verify" in out.stdout
    report = baton.verify(bundle)  # Python's verdict is the same, naming the same file
    assert not report and f"file {name}: sha256 differs" in report.failures


def test_node_names_a_missing_file(bundles: Callable[[str], Path], node: str,
                                   tmp_path: Path) -> None:
    bundle = _copy(bundles("xgboost"), tmp_path)
    (bundle / "model.onnx").unlink()
    out = _verify(node, bundle)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "problem: file model.onnx: missing" in out.stdout
    assert "golden vectors not run" in out.stdout


@pytest.mark.parametrize(("factor", "passes"), [(0.5, True), (2.0, False)])
@pytest.mark.parametrize("kind", ["sklearn-pipeline", "torch-ids"])
def test_node_applies_the_bundles_tolerance(kind: str, factor: float, passes: bool,
                                            bundles: Callable[[str], Path], node: str,
                                            tmp_path: Path) -> None:
    """One golden value moved by ``factor`` times its allowed error (atol + rtol*|value|,
    from baton.json), its hash re-recorded: inside passes, outside fails naming the output."""
    bundle = _copy(bundles(kind), tmp_path)
    manifest = json.loads((bundle / "baton.json").read_text())
    spec = next(o for o in manifest["outputs"] if o["kind"] != "label")
    tol = manifest["tolerances"][spec["name"]]
    name = _output_file(bundle, spec["name"])

    def move(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        row = len(a) // 2
        a[row, 0] += factor * (tol["atol"] + tol["rtol"] * abs(float(a[row, 0])))
        return a

    _edit_tensor(bundle / name, move)
    _rehash(bundle, name)
    out = _verify(node, bundle)
    assert out.returncode == (0 if passes else 1), out.stdout + out.stderr
    verdict = "pass" if passes else "FAIL"
    assert re.search(rf"^  {re.escape(spec['name'])} +\S+ +{verdict} ", out.stdout, re.M), \
        out.stdout
    if not passes:
        assert f"problem: output {spec['name']}: " in out.stdout
        assert "1 of " in out.stdout
    assert bool(baton.verify(bundle)) is passes


def test_node_requires_labels_to_agree(bundles: Callable[[str], Path], node: str,
                                       tmp_path: Path) -> None:
    bundle = _copy(bundles("lightgbm-pipeline"), tmp_path)
    name = _output_file(bundle, "label")

    def flip(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[0] = 1 - a[0]
        return a

    _edit_tensor(bundle / name, flip)
    _rehash(bundle, name)
    out = _verify(node, bundle)
    rows = json.loads((bundle / "baton.json").read_text())["golden"]["rows"]
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"problem: output label: {rows - 1} of {rows} labels agree" in out.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_node_reads_tensors_written_with_typed_fields(kind: str, bundles: Callable[[str], Path],
                                                      node: str, tmp_path: Path) -> None:
    """baton writes numbers as raw_data; other writers use float_data, int64_data,
    int32_data (bool), double_data: the decoder reads both."""
    import onnx
    from onnx import helper, numpy_helper

    bundle = _copy(bundles(kind), tmp_path)
    for path in sorted((bundle / "test_data_set_0").glob("*.pb")):
        tensor = onnx.load_tensor(str(path))
        if tensor.data_type == onnx.TensorProto.STRING:
            continue
        a = numpy_helper.to_array(tensor)
        typed = helper.make_tensor(tensor.name, tensor.data_type, a.shape, a.flatten().tolist())
        assert not typed.raw_data
        onnx.save_tensor(typed, str(path))
        _rehash(bundle, path.relative_to(bundle).as_posix())
    out = _verify(node, bundle)
    assert out.returncode == 0, out.stdout + out.stderr


def test_node_verifies_a_zipped_bundle(bundles: Callable[[str], Path], node: str,
                                       tmp_path: Path) -> None:
    zipped = baton.load(bundles("torch-ids")).save(tmp_path / "ids.zip", archive=True)
    out = _verify(node, zipped)
    assert out.returncode == 0, out.stdout + out.stderr


def test_node_fails_a_bundle_that_failed_parity_at_conversion(
        bundles: Callable[[str], Path], node: str, tmp_path: Path) -> None:
    bundle = _copy(bundles("xgboost"), tmp_path)
    manifest = json.loads((bundle / "baton.json").read_text())
    manifest["parity"]["passed"] = False
    (bundle / "baton.json").write_text(json.dumps(manifest))
    out = _verify(node, bundle)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "failed parity when it was converted" in out.stdout


@pytest.mark.parametrize(("edit", "message"), [
    ("no-manifest", "has no baton.json"),
    ("schema", "schema_version 2"),
    ("not-json", "is not JSON"),
])
def test_node_refuses_an_unreadable_bundle(edit: str, message: str,
                                           bundles: Callable[[str], Path], node: str,
                                           tmp_path: Path) -> None:
    bundle = _copy(bundles("xgboost"), tmp_path)
    manifest = bundle / "baton.json"
    if edit == "no-manifest":
        manifest.unlink()
    elif edit == "schema":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()),
                                        "schema_version": 2}))
    else:
        manifest.write_text("{")
    out = _verify(node, bundle)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
