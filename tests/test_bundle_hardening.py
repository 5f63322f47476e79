"""A bundle is read only from inside itself, every file it needs is listed and hashed, its
manifest has the shape baton writes, a zip is never inflated before its hashes are checked,
and its digest pins it (issue 11)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import external_data_helper, numpy_helper
from typer.testing import CliRunner

import baton
from baton.cli import app
from baton.errors import BundleError, BundleIntegrityError, UsageError
from baton.runtime import Session
from baton.runtime._files import sha256_bytes


def cli(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def linear_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear regression on 3 float64 columns: its coefficients are an initializer."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    path = tmp_path_factory.mktemp("linear") / "linear.baton"
    baton.convert(LinearRegression().fit(X, y), X, name="linear").save(path)
    return path


def copy(bundle: Path, tmp_path: Path, name: str = "b.baton") -> Path:
    dest = tmp_path / name
    shutil.copytree(bundle, dest)
    return dest


def rewrite_manifest(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((bundle / "baton.json").read_text())
    change(manifest)
    (bundle / "baton.json").write_text(json.dumps(manifest, indent=2))


def rehash(bundle: Path, *names: str) -> None:
    def update(m: dict[str, Any]) -> None:
        for n in names:
            m["files"][n] = sha256_bytes((bundle / n).read_bytes())
    rewrite_manifest(bundle, update)


def externalise(bundle: Path, location: str, write: bool = True) -> bytes:
    """Move the model's float initializers into the file ``location`` (relative to the
    bundle; written there unless ``write`` is off), as onnx's external data; returns the
    bytes they take. model.onnx is re-hashed in the manifest."""
    model = onnx.load(str(bundle / "model.onnx"))
    blob = b""
    for t in model.graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
            raw = numpy_helper.to_array(t).tobytes()
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t), t.name))
            external_data_helper.set_external_data(t, location=location, offset=len(blob),
                                                   length=len(raw))
            t.ClearField("raw_data")
            t.data_location = onnx.TensorProto.EXTERNAL
            blob += raw
    assert blob, "the model has no float initializer"
    (bundle / "model.onnx").write_bytes(model.SerializeToString())
    if write:
        (bundle / location).write_bytes(blob)
    rehash(bundle, "model.onnx")
    return blob


def rows() -> np.ndarray:
    return np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])


# -- external data --------------------------------------------------------------------------

def test_external_data_planted_in_the_working_directory_is_never_read(
        linear_bundle: Path, tmp_path: Path) -> None:
    """The probe's attack: model.onnx refers to 'weights.bin', which is not in the bundle;
    the working directory of the process that loads it (a service, started there) holds a
    file of that name. Loading from bytes made onnxruntime read it."""
    bundle = copy(linear_bundle, tmp_path)
    data = externalise(bundle, "weights.bin", write=False)
    # without graph optimisations (onnxruntime's constant folding refuses external data of
    # a model given as bytes), as the probe's bundle had it
    rewrite_manifest(bundle, lambda m: m["runtime"].update(graph_optimization_level="disable"))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "weights.bin").write_bytes(np.full(len(data) // 8, 1e6).tobytes())
    code = ("import numpy as np\nfrom baton.runtime import Session\n"
            "from baton.errors import BundleIntegrityError\n"
            f"try:\n    out = Session({str(bundle)!r}).run({{'input': np.ones((1, 3))}})\n"
            "    print('served', out['prediction'].ravel().tolist())\n"
            "except BundleIntegrityError as e:\n    print('refused', e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("refused") and "weights.bin" in out, out
    assert "not a file the bundle lists" in out
    result = subprocess.run([sys.executable, "-m", "baton.cli", "verify", str(bundle)],
                            cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 1 and "weights.bin" in result.stdout + result.stderr


def test_unlisted_external_data_inside_the_bundle_is_refused(linear_bundle: Path,
                                                             tmp_path: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    externalise(bundle, "weights.bin")  # in the bundle, but not in 'files'
    with pytest.raises(BundleIntegrityError, match="weights.bin"):
        Session(bundle)


def test_listed_external_data_is_read_from_the_bundle(linear_bundle: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    expected = Session(linear_bundle).run({"input": rows()})
    bundle = copy(linear_bundle, tmp_path)
    externalise(bundle, "weights.bin")
    rehash(bundle, "weights.bin")
    decoy = tmp_path / "cwd"
    decoy.mkdir()
    shutil.copy(bundle / "weights.bin", decoy / "weights.bin")
    (decoy / "weights.bin").write_bytes(b"\0" * len((bundle / "weights.bin").read_bytes()))
    monkeypatch.chdir(decoy)
    got = Session(bundle).run({"input": rows()})
    np.testing.assert_array_equal(got["prediction"], expected["prediction"])
    assert cli("verify", bundle).exit_code == 0
    # the listed file is hashed like every other: changing it fails the bundle
    (bundle / "weights.bin").write_bytes(b"\0" * len((bundle / "weights.bin").read_bytes()))
    with pytest.raises(BundleIntegrityError, match="weights.bin"):
        Session(bundle)


@pytest.mark.parametrize("location", ["../weights.bin", "/tmp/weights.bin", "a/../../w.bin"])
def test_external_data_outside_the_bundle_is_refused(linear_bundle: Path, tmp_path: Path,
                                                     location: str) -> None:
    bundle = copy(linear_bundle, tmp_path)
    externalise(bundle, "weights.bin")
    raw = onnx.load(str(bundle / "model.onnx"), load_external_data=False)
    for tensor in raw.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    (bundle / "model.onnx").write_bytes(raw.SerializeToString())
    rehash(bundle, "model.onnx")
    with pytest.raises(BundleError, match="outside its own directory"):
        Session(bundle)
    assert cli("verify", bundle).exit_code == 2


def test_zipped_bundle_with_external_data_is_refused_with_a_remedy(linear_bundle: Path,
                                                                   tmp_path: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    externalise(bundle, "weights.bin")
    rehash(bundle, "weights.bin")
    archive = tmp_path / "z.baton"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(bundle.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(bundle).as_posix())
    with pytest.raises(BundleError, match="unzip it") as info:
        Session(archive)
    # the remedy works as printed
    target = tmp_path / "unzipped"
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(archive), str(target)],
                   check=True)
    assert "python -m zipfile -e" in str(info.value)
    Session(target).run({"input": rows()})


def test_golden_vector_with_external_data_is_refused(linear_bundle: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = copy(linear_bundle, tmp_path)
    golden = bundle / "test_data_set_0" / "input_0.pb"
    tensor = onnx.TensorProto()
    tensor.ParseFromString(golden.read_bytes())
    planted = numpy_helper.to_array(tensor)
    external_data_helper.set_external_data(tensor, location="planted.bin")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    tensor.ClearField("double_data")
    golden.write_bytes(tensor.SerializeToString())
    rehash(bundle, "test_data_set_0/input_0.pb")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted.bin").write_bytes(planted.tobytes())
    with pytest.raises(BundleError, match="external data"):
        baton.verify(bundle)
    result = cli("verify", bundle)
    assert result.exit_code == 2 and "input_0.pb" in result.output


# -- every needed file listed ---------------------------------------------------------------

def test_model_dropped_from_the_listing_and_replaced_fails(linear_bundle: Path, tmp_path: Path,
                                                           fitted_pipeline: Any,
                                                           mixed_bundle_dir: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    other = onnx.load(str(bundle / "model.onnx"))
    for t in other.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 0 + 7, t.name))
    (bundle / "model.onnx").write_bytes(other.SerializeToString())
    rewrite_manifest(bundle, lambda m: m["files"].pop("model.onnx"))
    with pytest.raises(BundleIntegrityError, match="model.onnx"):
        Session(bundle)
    result = cli("verify", bundle)
    assert result.exit_code == 1 and "NOT LISTED" in result.output


def test_empty_file_listing_checks_nothing_no_more(linear_bundle: Path, tmp_path: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    rewrite_manifest(bundle, lambda m: m.update(files={}))
    with pytest.raises(BundleIntegrityError) as info:
        Session(bundle)
    for name in ("model.onnx", "test_data_set_0/input_0.pb", "report.json"):
        assert name in str(info.value)
    assert not baton.verify(bundle)


def test_unlisted_golden_file_fails(linear_bundle: Path, tmp_path: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    rewrite_manifest(bundle, lambda m: m["files"].pop("test_data_set_0/output_0.pb"))
    report = baton.verify(bundle)
    assert not report
    assert "file test_data_set_0/output_0.pb: not listed in baton.json" in report.failures


def test_manifest_that_does_not_describe_the_model_is_refused(linear_bundle: Path,
                                                              tmp_path: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    rewrite_manifest(bundle, lambda m: m["inputs"][0].update(name="other"))
    with pytest.raises(BundleError, match="does not describe"):
        Session(bundle)


# -- zipped bundles are streamed ------------------------------------------------------------

def _peak_rss_mib(code: str) -> tuple[float, str]:
    """Run ``code`` in a child Python; its peak resident memory (MiB) and what it printed.
    (VmHWM of the child's own image: getrusage's maxrss would count the parent's memory,
    which Linux carries over the fork and exec of the child.)"""
    script = (code + "\nfor line in open('/proc/self/status'):\n"
              "    if line.startswith('VmHWM:'):\n"
              "        print(int(line.split()[1]) / 1024)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    lines = out.stdout.strip().splitlines()
    return float(lines[-1]), "\n".join(lines[:-1])


def test_zip_bomb_is_refused_without_inflating_it(linear_bundle: Path, tmp_path: Path) -> None:
    """A small zip whose model.onnx inflates to 1.5 GiB: the hash check streams it and
    fails; the process never holds it (the probe saw 4.1 GB)."""
    archive = tmp_path / "bomb.baton"
    manifest = json.loads((linear_bundle / "baton.json").read_text())
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("baton.json", json.dumps(manifest))
        with zf.open("model.onnx", "w", force_zip64=True) as member:
            block = b"\0" * (64 << 20)
            for _ in range(24):
                member.write(block)
    assert archive.stat().st_size < 8 << 20
    code = ("from baton.runtime import Session\nfrom baton.errors import BundleIntegrityError\n"
            f"try:\n    Session({str(archive)!r})\n"
            "except BundleIntegrityError as e:\n    print('refused', str(e).splitlines()[0])")
    peak, said = _peak_rss_mib(code)
    assert said.startswith("refused") and "model.onnx" in said
    assert peak < 400, f"peak RSS {peak:.0f} MiB"


def test_oversized_members_are_refused_before_reading(linear_bundle: Path,
                                                      tmp_path: Path) -> None:
    archive = tmp_path / "big.baton"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("baton.json", "w", force_zip64=True) as member:
            member.write(b" " * (17 << 20))
    with pytest.raises(BundleError, match="over the"):
        Session(archive)
    result = cli("inspect", archive)
    assert result.exit_code == 2


def test_zipped_bundle_still_loads(linear_bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ok.baton"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(linear_bundle.rglob("*")):
            if f.is_file():
                zf.write(f, "linear.baton/" + f.relative_to(linear_bundle).as_posix())
    np.testing.assert_array_equal(Session(archive).run({"input": rows()})["prediction"],
                                  Session(linear_bundle).run({"input": rows()})["prediction"])
    assert baton.verify(archive).digest == baton.verify(linear_bundle).digest


# -- malformed manifests --------------------------------------------------------------------

MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "inputs not a list": lambda m: m.update(inputs={"input": 1}),
    "input without dtype": lambda m: m["inputs"][0].pop("dtype"),
    "unknown dtype": lambda m: m["inputs"][0].update(dtype="complex128"),
    "shape a string": lambda m: m["outputs"][0].update(shape="N,1"),
    "negative dimension": lambda m: m["inputs"][0].update(shape=["N", -3]),
    "files a list": lambda m: m.update(files=["model.onnx"]),
    "hash not hex": lambda m: m["files"].update({"model.onnx": 12}),
    "tolerance negative": lambda m: m.update(tolerances={"prediction": {"atol": -1}}),
    "tolerance text": lambda m: m.update(tolerances={"prediction": {"rtol": "tight"}}),
    "optimisation level": lambda m: m.update(runtime={"graph_optimization_level": "turbo"}),
    "name a number": lambda m: m.update(name=7),
    "source a list": lambda m: m.update(source=[1, 2]),
    "outputs repeated": lambda m: m["outputs"].append(dict(m["outputs"][0])),
    "schema_version true": lambda m: m.update(schema_version=True),
    "parity outputs a list": lambda m: m.update(parity={"outputs": [1]}),
    "file outside": lambda m: m["files"].update({"../x": "0" * 64}),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_manifest_is_one_clean_error(linear_bundle: Path, tmp_path: Path,
                                               case: str) -> None:
    bundle = copy(linear_bundle, tmp_path)
    rewrite_manifest(bundle, MALFORMED[case])
    with pytest.raises(BundleError):
        Session(bundle)
    for command in ("verify", "inspect"):
        result = cli(command, bundle)
        assert result.exit_code == 2, (command, result.output)
        assert "internal error" not in result.output


def test_deeply_nested_manifest_is_one_clean_error(linear_bundle: Path, tmp_path: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    text = (bundle / "baton.json").read_text()
    deep = "[" * 100_000 + "]" * 100_000
    (bundle / "baton.json").write_text(text.replace('"name":', f'"deep": {deep}, "name":', 1))
    with pytest.raises(BundleError, match="not valid JSON"):
        Session(bundle)
    assert cli("inspect", bundle).exit_code == 2


def test_nan_in_a_manifest_is_refused(linear_bundle: Path, tmp_path: Path) -> None:
    bundle = copy(linear_bundle, tmp_path)
    text = (bundle / "baton.json").read_text()
    (bundle / "baton.json").write_text(text.replace('"atol": 1e-05', '"atol": NaN', 1))
    with pytest.raises(BundleError, match="NaN"):
        Session(bundle)


# -- the digest -----------------------------------------------------------------------------

def inspect_digest(bundle: Path) -> str:
    result = cli("inspect", "--json", bundle)
    assert result.exit_code == 0
    return str(json.loads(result.output)["digest"])


def test_verify_accepts_the_digest_inspect_prints(linear_bundle: Path) -> None:
    digest = inspect_digest(linear_bundle)
    assert digest.startswith("sha256:") and len(digest) == 71
    result = cli("verify", linear_bundle, "--digest", digest)
    assert result.exit_code == 0, result.output
    assert digest in cli("inspect", linear_bundle).output
    Session(linear_bundle, digest=digest)


@settings(max_examples=25, deadline=None)
@given(other=st.text("0123456789abcdef", min_size=64, max_size=64))
def test_verify_refuses_any_other_digest(linear_bundle: Path, other: str) -> None:
    digest = inspect_digest(linear_bundle)
    if other == digest.removeprefix("sha256:"):
        return
    result = cli("verify", linear_bundle, "--digest", f"sha256:{other}")
    assert result.exit_code == 1 and "not the pinned" in result.output
    with pytest.raises(BundleIntegrityError, match="digest"):
        Session(linear_bundle, digest=f"sha256:{other}")


def test_a_setting_changed_in_the_manifest_changes_the_digest(linear_bundle: Path,
                                                              tmp_path: Path) -> None:
    """baton.json is listed nowhere: plain verify passes an edited setting, the pinned
    digest does not."""
    digest = inspect_digest(linear_bundle)
    bundle = copy(linear_bundle, tmp_path)
    rewrite_manifest(bundle, lambda m: m["runtime"].update(graph_optimization_level="disable"))
    assert cli("verify", bundle).exit_code == 0
    result = cli("verify", bundle, "--digest", digest)
    assert result.exit_code == 1
    with pytest.raises(BundleIntegrityError):
        Session(bundle, digest=digest)


def test_digest_is_sha256sum_of_the_listed_files(linear_bundle: Path) -> None:
    """docs/bundle.md: the digest can be computed without baton."""
    names = sorted(["baton.json", *json.loads((linear_bundle / "baton.json").read_text())[
        "files"]], key=str.encode)
    listing = subprocess.run(["sha256sum", *names], cwd=linear_bundle, capture_output=True,
                             check=True).stdout
    expected = "sha256:" + sha256_bytes(listing)
    assert inspect_digest(linear_bundle) == expected


def test_convert_and_check_print_the_digest(tmp_path: Path, fitted_pipeline: Any,
                                            mixed_frame: Any) -> None:
    import skops.io as sio

    model = tmp_path / "model.skops"
    sio.dump(fitted_pipeline, model)
    data = tmp_path / "rows.csv"
    mixed_frame.to_csv(data, index=False)
    converted = cli("convert", model, "--sample", data, "-o", tmp_path / "m.baton")
    assert converted.exit_code == 0, converted.output
    digest = inspect_digest(tmp_path / "m.baton")
    assert f"digest: {digest}" in converted.output
    checked = cli("check", model, tmp_path / "m.baton", "--data", data, "--no-search",
                  "--json", tmp_path / "r.json")
    assert checked.exit_code == 0 and f"digest: {digest}" in checked.output
    assert json.loads((tmp_path / "r.json").read_text())["digest"] == digest


@pytest.mark.parametrize("text", ["sha256:xyz", "", "md5:" + "0" * 32, "0" * 63])
def test_unreadable_digest_is_a_usage_error(linear_bundle: Path, text: str) -> None:
    result = cli("verify", linear_bundle, "--digest", text)
    assert result.exit_code == 2 and "cannot read the digest" in result.output
    with pytest.raises(UsageError):
        Session(linear_bundle, digest=text)


def test_digest_of_a_saved_bundle_matches_what_is_on_disk(tmp_path: Path,
                                                          linear_bundle: Path) -> None:
    bundle = baton.load(linear_bundle)
    assert bundle.digest == inspect_digest(linear_bundle)
    again = bundle.save(tmp_path / "again.baton")
    assert bundle.digest == inspect_digest(again)
    zipped = bundle.save(tmp_path / "again.zip.baton", archive=True)
    assert bundle.digest == inspect_digest(zipped)
    assert os.path.isfile(zipped)


def test_a_zipped_bundle_holds_no_file_open_between_reads(tmp_path: Path) -> None:
    """BundleFiles opens the archive for each read and closes it with the read."""
    from sklearn.linear_model import LinearRegression

    from baton.runtime import BundleFiles

    X = np.random.default_rng(0).normal(size=(30, 2))
    zipped = baton.convert(LinearRegression().fit(X, X.sum(axis=1)), X, tune=False).save(
        tmp_path / "lr.baton", archive=True)

    def open_on_it() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir()
                   if os.path.realpath(fd) == str(zipped.resolve()))

    files = BundleFiles(zipped)
    files.check_integrity(files.manifest())
    session = Session(zipped, self_check=True)
    assert session.run({session.inputs[0].name: X[:2]})
    assert open_on_it() == 0
