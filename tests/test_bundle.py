"""The bundle: layout, hashes, golden vectors, atomic writes, safe loading."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import baton
from baton.errors import BundleError, BundleIntegrityError, UsageError
from baton.runtime import Session


def test_layout_and_manifest(mixed_bundle_dir: Path) -> None:
    names = sorted(p.relative_to(mixed_bundle_dir).as_posix()
                   for p in mixed_bundle_dir.rglob("*") if p.is_file())
    assert {"baton.json", "model.onnx", "report.json"} <= set(names)
    assert [n for n in names if n.startswith("test_data_set_0/")] == sorted(
        [f"test_data_set_0/input_{i}.pb" for i in range(5)]
        + [f"test_data_set_0/output_{i}.pb" for i in range(2)])
    manifest = json.loads((mixed_bundle_dir / "baton.json").read_text())
    assert manifest["schema_version"] == 1
    assert manifest["source"]["framework"] == "scikit-learn"
    assert manifest["source"]["class"] == "sklearn.pipeline.Pipeline"
    assert manifest["source"]["versions"]["scikit-learn"]
    assert manifest["converter"]["name"] == "skl2onnx"
    assert 9 <= manifest["onnx"]["opsets"]["ai.onnx"] <= 18
    assert manifest["inputs"][1] == {"name": "tenure_months", "dtype": "int64",
                                     "shape": ["N", 1], "column": "tenure_months"}
    assert manifest["parity"]["passed"] is True
    assert set(manifest["tolerances"]) == {"label", "probabilities"}
    # every file but the manifest is hashed, with its real sha256
    import hashlib

    assert sorted(manifest["files"]) == [n for n in names if n != "baton.json"]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((mixed_bundle_dir / name).read_bytes()).hexdigest() == digest


def test_golden_vectors_are_the_original_models_predictions(
        mixed_bundle_dir: Path, fitted_pipeline: Any, mixed_frame: Any) -> None:
    """Read with plain onnx (as any runtime would), compare with sklearn's own predict."""
    manifest = json.loads((mixed_bundle_dir / "baton.json").read_text())
    rows = manifest["golden"]["row_indices"]
    assert len(rows) == 16
    tensors = {}
    for p in sorted((mixed_bundle_dir / "test_data_set_0").glob("*.pb")):
        t = onnx.TensorProto()
        t.ParseFromString(p.read_bytes())
        tensors[p.stem] = (t.name, numpy_helper.to_array(t))
    assert tensors["input_0"][0] == "age"
    np.testing.assert_array_equal(tensors["input_0"][1].ravel(),
                                  mixed_frame["age"].to_numpy()[rows])
    assert [v.decode() if isinstance(v, bytes) else v for v in tensors["input_3"][1].ravel()] \
        == list(mixed_frame["city"].to_numpy()[rows])
    subset = mixed_frame.iloc[rows]
    np.testing.assert_array_equal(tensors["output_0"][1], fitted_pipeline.predict(subset))
    np.testing.assert_array_equal(tensors["output_1"][1], fitted_pipeline.predict_proba(subset))
    # and onnxruntime reproduces them
    import onnxruntime as ort

    sess = ort.InferenceSession(str(mixed_bundle_dir / "model.onnx"),
                                providers=["CPUExecutionProvider"])
    feeds = {name: arr for key, (name, arr) in tensors.items() if key.startswith("input")}
    label, proba = sess.run(None, feeds)
    np.testing.assert_array_equal(label, tensors["output_0"][1])
    np.testing.assert_allclose(proba, tensors["output_1"][1], rtol=1e-4, atol=1e-5)


def test_load_round_trip(mixed_bundle_dir: Path) -> None:
    bundle = baton.load(mixed_bundle_dir)
    assert bundle.name == "churn"
    assert [s.name for s in bundle.inputs][:2] == ["age", "tenure_months"]
    assert bundle.report is not None and bundle.report.passed
    assert set(bundle.golden_outputs) == {"label", "probabilities"}
    assert bundle.golden_inputs["city"].dtype == object


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_tampered_model_is_refused_everywhere(mixed_bundle_dir: Path, tmp_path: Path) -> None:
    bad = _copy(mixed_bundle_dir, tmp_path / "bad.baton")
    data = bytearray((bad / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="model.onnx"):
        baton.load(bad)
    with pytest.raises(BundleIntegrityError, match="model.onnx"):
        Session(bad)
    report = baton.verify(bad)
    assert not report
    assert [f.name for f in report.files if not f.ok] == ["model.onnx"]
    assert any("model.onnx" in f for f in report.failures)


def test_tampered_golden_output_fails_verify(mixed_bundle_dir: Path, tmp_path: Path) -> None:
    bad = _copy(mixed_bundle_dir, tmp_path / "bad.baton")
    (bad / "test_data_set_0" / "output_1.pb").unlink()
    report = baton.verify(bad)
    assert not report
    assert [(f.name, f.found) for f in report.files if not f.ok] == [
        ("test_data_set_0/output_1.pb", None)]


def test_verify_passes_on_intact_bundle(mixed_bundle_dir: Path) -> None:
    report = baton.verify(mixed_bundle_dir)
    assert report, report.failures
    assert report.rows == 16 and [o.name for o in report.outputs] == ["label", "probabilities"]


def test_save_refuses_to_overwrite_and_force_replaces(
        fitted_pipeline: Any, mixed_frame: Any, tmp_path: Path) -> None:
    bundle = baton.convert(fitted_pipeline, mixed_frame.iloc[:50])
    dest = tmp_path / "m.baton"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists"):
        bundle.save(dest)
    assert (dest / "keep.txt").read_text() == "mine"
    bundle.save(dest, force=True)
    assert not (dest / "keep.txt").exists() and (dest / "baton.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.baton"]


def test_failed_save_leaves_nothing(fitted_pipeline: Any, mixed_frame: Any, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import baton.bundle

    bundle = baton.convert(fitted_pipeline, mixed_frame.iloc[:50])

    def boom(staged: Path, dest: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(baton.bundle, "_replace", boom)
    with pytest.raises(OSError, match="disk full"):
        bundle.save(tmp_path / "m.baton")
    assert list(tmp_path.iterdir()) == []


def test_zipped_bundle(fitted_pipeline: Any, mixed_frame: Any, tmp_path: Path) -> None:
    bundle = baton.convert(fitted_pipeline, mixed_frame.iloc[:80])
    path = bundle.save(tmp_path / "m.baton", archive=True)
    assert zipfile.is_zipfile(path)
    assert baton.verify(path)
    outputs = Session(path).predict(mixed_frame.iloc[:5])
    np.testing.assert_array_equal(outputs["label"], fitted_pipeline.predict(mixed_frame.iloc[:5]))
    assert baton.check(fitted_pipeline, path, mixed_frame, search=False)


@pytest.mark.parametrize("evil", ["../outside.onnx", "/etc/passwd", "a/../../b"])
def test_bundle_listing_files_outside_itself_is_refused(
        mixed_bundle_dir: Path, tmp_path: Path, evil: str) -> None:
    bad = _copy(mixed_bundle_dir, tmp_path / "bad.baton")
    manifest = json.loads((bad / "baton.json").read_text())
    manifest["files"][evil] = "0" * 64
    (bad / "baton.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside"):
        Session(bad)


@pytest.mark.parametrize("content, match", [
    (None, "no bundle"),
    ("not json", "not valid JSON"),
    ('{"schema_version": 99}', "schema version"),
])
def test_bad_bundles_are_bundle_errors(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "x.baton"
    if content is not None:
        path.mkdir()
        (path / "baton.json").write_text(content)
    with pytest.raises(BundleError, match=match) as info:
        baton.load(path)
    assert info.value.exit_code == 2


def test_verify_fails_a_bundle_that_failed_parity_at_conversion(
        fitted_pipeline: Any, mixed_frame: Any, tmp_path: Path) -> None:
    bundle = baton.convert(fitted_pipeline, mixed_frame.iloc[:60])
    bundle.manifest["parity"]["passed"] = False  # as written when conversion parity fails
    path = bundle.save(tmp_path / "m.baton")
    report = baton.verify(path)
    assert all(report.outputs) and all(f.ok for f in report.files)
    assert not report
    assert any("failed parity when it was converted" in f for f in report.failures)
