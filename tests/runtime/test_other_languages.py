"""The Java and C# verifiers of docs/services.md: the page shows the files of examples/ as
they are, and the Java TensorProto reader (standard library only) reads golden vectors as
onnx/numpy do. The ONNX Runtime parts cannot be built here (no Maven Central, no NuGet)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _blocks(lang: str) -> list[str]:
    text = (ROOT / "docs" / "services.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize(("lang", "path"), [
    ("java", "java/TensorProtoReader.java"),
    ("java", "java/BatonVerify.java"),
    ("csharp", "csharp/BatonVerify.cs"),
    ("xml", "csharp/BatonVerify.csproj"),
])
def test_services_page_shows_the_example_files(lang: str, path: str) -> None:
    assert (EXAMPLES / path).read_text() in _blocks(lang), f"docs/services.md lacks {path}"


def test_pinned_versions_agree() -> None:
    """One onnxruntime version across the Node.js pin, the Maven pom, the csproj and the page."""
    node = json.loads((EXAMPLES / "node" / "package.json").read_text())
    version = node["dependencies"]["onnxruntime-node"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    lock = json.loads((EXAMPLES / "node" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/onnxruntime-node"]["version"] == version
    pom = (EXAMPLES / "java" / "pom.xml").read_text()
    assert re.search(rf"<artifactId>onnxruntime</artifactId>\s*<version>{version}</version>", pom)
    csproj = (EXAMPLES / "csharp" / "BatonVerify.csproj").read_text()
    assert f'Include="Microsoft.ML.OnnxRuntime" Version="{version}"' in csproj
    page = (ROOT / "docs" / "services.md").read_text()
    assert f"onnxruntime:{version}" in page and f"onnxruntime-node {version}" in page


def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        rng.normal(size=(5, 3)),
        rng.normal(size=(4, 1)).astype(np.float32),
        np.array([[np.nan], [np.inf], [-np.inf], [0.0], [-0.0]]),
        rng.integers(-(2 ** 40), 2 ** 40, size=(6, 1)),
        rng.integers(-1000, 1000, size=(3, 2)).astype(np.int32),
        rng.random((2, 5)) > 0.5,
        np.array([["Lyon"], [""], ["None"], ["naïve ☃"], ['a "quoted" \\ value']], dtype=object),
        np.zeros((0, 1)),
        np.array(2.5),
    ]


def _java_read(files: list[Path], tmp_path: Path) -> list[dict[str, object]]:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("no JDK (javac/java) on this machine: the Java reader is not tested here")
    subprocess.run([javac, "-d", str(tmp_path / "classes"),
                    str(EXAMPLES / "java" / "TensorProtoReader.java")], check=True)
    utf8 = ["-Dfile.encoding=UTF-8", "-Dsun.stdout.encoding=UTF-8", "-Dstdout.encoding=UTF-8"]
    out = subprocess.run([java, *utf8, "-cp", str(tmp_path / "classes"), "TensorProtoReader",
                          *map(str, files)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("raw", [True, False], ids=["raw_data", "typed-fields"])
def test_java_reader_reads_what_onnx_writes(raw: bool, tmp_path: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper

    files = []
    arrays = _arrays()
    for i, a in enumerate(arrays):
        proto = numpy_helper.from_array(
            a if a.dtype != object else np.vectorize(lambda v: v.encode(), otypes=[object])(a),
            f"t{i}")
        if not raw and proto.data_type != onnx.TensorProto.STRING:
            proto = helper.make_tensor(proto.name, proto.data_type, a.shape,
                                       a.flatten().tolist())
        files.append(tmp_path / f"t{i}.pb")
        onnx.save_tensor(proto, str(files[-1]))
    for a, got in zip(arrays, _java_read(files, tmp_path)):
        assert got["dims"] == list(a.shape)
        if a.dtype == object:
            assert got["values"] == a.flatten().tolist()
        else:
            np.testing.assert_array_equal(np.array(got["values"], dtype=np.float64),
                                          a.flatten().astype(np.float64))


def test_java_reader_reads_a_bundles_golden_vectors(mixed_bundle_dir: Path,
                                                    tmp_path: Path) -> None:
    import baton

    bundle = baton.load(mixed_bundle_dir)
    names = [s.name for s in bundle.inputs] + [s.name for s in bundle.outputs]
    files = sorted((mixed_bundle_dir / "test_data_set_0").glob("input_*.pb"),
                   key=lambda p: int(p.stem.split("_")[1]))
    files += sorted((mixed_bundle_dir / "test_data_set_0").glob("output_*.pb"),
                    key=lambda p: int(p.stem.split("_")[1]))
    expected = {**bundle.golden_inputs, **bundle.golden_outputs}
    got = _java_read(files, tmp_path)
    assert [g["name"] for g in got] == names
    for g in got:
        want = expected[str(g["name"])]
        if want.dtype == object:
            assert g["values"] == want.flatten().tolist()
        else:
            np.testing.assert_array_equal(np.array(g["values"], dtype=np.float64),
                                          want.flatten().astype(np.float64))
