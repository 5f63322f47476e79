"""Fuzzed manifests and bundle files: loading, verifying and inspecting a damaged bundle
gives one of baton's own errors (exit 1 or 2), never another exception or exit 3."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import baton
from baton.cli import app
from baton.errors import BatonError
from baton.runtime import Session
from baton.runtime._files import sha256_bytes
from tests.fuzz import FUZZ

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier on three float columns: label and probabilities outputs."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    path = tmp_path_factory.mktemp("fuzz") / "clf.baton"
    baton.convert(LogisticRegression().fit(X, y), X, name="clf", tune=False).save(path)
    return path


def exercise(bundle: Path) -> None:
    """Everything a user does with a bundle they were handed; only baton's errors escape."""
    try:
        session = Session(bundle)
        session.run({"input": np.zeros((2, 3))})
        session.self_check()
    except BatonError:
        pass
    try:
        baton.verify(bundle)
    except BatonError:
        pass
    runner = CliRunner()
    for args in (["inspect", str(bundle)], ["inspect", "--json", str(bundle)],
                 ["verify", str(bundle)]):
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 1, 2), (args, result.output, result.exception)
        assert "internal error" not in result.output, result.output


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(data=st.data())
def test_fuzzed_manifest(source: Path, tmp_path_factory: pytest.TempPathFactory,
                         data: st.DataObject) -> None:
    manifest = json.loads((source / "baton.json").read_text())
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(manifest) if p]
        path = data.draw(st.sampled_from(paths), label="path")
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=10), label="key")] = data.draw(JSON)
        else:
            parent[path[-1]] = data.draw(JSON, label="value")
    bundle = tmp_path_factory.mktemp("m") / "b.baton"
    shutil.copytree(source, bundle)
    (bundle / "baton.json").write_text(json.dumps(manifest))
    exercise(bundle)


FILES = ["model.onnx", "baton.json", "report.json", "test_data_set_0/input_0.pb",
         "test_data_set_0/output_0.pb", "test_data_set_0/output_1.pb"]


@FUZZ
@given(data=st.data())
def test_fuzzed_bundle_files(source: Path, tmp_path_factory: pytest.TempPathFactory,
                             data: st.DataObject) -> None:
    bundle = tmp_path_factory.mktemp("f") / "b.baton"
    shutil.copytree(source, bundle)
    name = data.draw(st.sampled_from(FILES), label="file")
    target = bundle / name
    raw = target.read_bytes()
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "delete", "splice"]),
                    label="mutation")
    if how == "delete":
        target.unlink()
    elif how == "truncate":
        target.write_bytes(raw[:data.draw(st.integers(0, len(raw)), label="length")])
    elif how == "flip":
        flipped = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            i = data.draw(st.integers(0, len(raw) - 1), label="at")
            flipped[i] ^= data.draw(st.integers(1, 255), label="xor")
        target.write_bytes(bytes(flipped))
    elif how == "random":
        target.write_bytes(data.draw(st.binary(max_size=512), label="bytes"))
    else:
        at = data.draw(st.integers(0, len(raw)), label="at")
        target.write_bytes(raw[:at] + data.draw(st.binary(max_size=64)) + raw[at:])
    if name != "baton.json" and target.exists() and data.draw(st.booleans(), label="rehash"):
        # the damaged file listed with its new hash, so that it reaches the parsers
        manifest = json.loads((bundle / "baton.json").read_text())
        manifest["files"][name] = sha256_bytes(target.read_bytes())
        (bundle / "baton.json").write_text(json.dumps(manifest))
    if data.draw(st.booleans(), label="zipped"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(bundle.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(bundle).as_posix())
        archive = bundle.with_name("b.zip.baton")
        blob = bytearray(buffer.getvalue())
        if data.draw(st.booleans(), label="damage the zip"):
            i = data.draw(st.integers(0, len(blob) - 1), label="zip byte")
            blob[i] ^= 0xFF
        archive.write_bytes(bytes(blob))
        exercise(archive)
    else:
        exercise(bundle)
