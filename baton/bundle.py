"""The bundle: the hand-off artefact between converters, parity and runtime.

Layout (see DESIGN.md)::

    model.baton/
      model.onnx            the converted graph
      baton.json            manifest: schema, versions, tolerances, parity summary, sha256s
      test_data_set_0/      golden vectors (ONNX backend-test layout: input_<i>.pb, output_<i>.pb)
      report.json           the parity report that produced the bundle
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import BundleError, UsageError, require
from baton.manifest import SCHEMA_VERSION, Manifest
from baton.profile import Profile
from baton.results.report import Report
from baton.runtime._files import (
    GOLDEN_DIR,
    MANIFEST,
    MODEL,
    REPORT,
    BundleFiles,
    digest_of,
    sha256_bytes,
)
from baton.runtime._golden import read_golden
from baton.schema import TensorSpec, numpy_dtype
from baton.tolerance import Tolerance

GOLDEN_ROWS = 16


@dataclass
class Bundle:
    """A converted model with its manifest, golden vectors and parity report."""

    model_bytes: bytes
    manifest: dict[str, Any]
    golden_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    golden_outputs: dict[str, np.ndarray] = field(default_factory=dict)
    report: Report | None = None
    path: Path | None = None
    #: the digest of the bundle as saved (``sha256:…``; see docs/bundle.md), None before
    digest: str | None = None

    @property
    def typed_manifest(self) -> Manifest:
        """:attr:`manifest` (the JSON form, which may be edited before :meth:`save`), typed
        and checked: a BundleError names what is malformed."""
        return Manifest.parse({"files": {}, **self.manifest},
                              str(self.path or f"<bundle {self.manifest.get('name')}>"))

    @property
    def name(self) -> str:
        return self.typed_manifest.name

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.typed_manifest.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.typed_manifest.outputs

    @property
    def tolerances(self) -> dict[str, Tolerance]:
        return self.typed_manifest.tolerances

    @property
    def profile(self) -> Profile | None:
        """The conversion sample's distribution per column (None in older bundles)."""
        return self.typed_manifest.profile

    @property
    def onnx_model(self) -> Any:
        onnx = require("onnx", "cli", "Bundle.onnx_model")
        return onnx.load_from_string(self.model_bytes)

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}: {s.describe()}" for s in self.inputs)
        outs = ", ".join(f"{s.name}: {s.describe()}" for s in self.outputs)
        verdict = "" if self.report is None else f", parity {'passed' if self.report else 'FAILED'}"
        return f"<Bundle {self.name!r} ({ins}) -> ({outs}){verdict}>"

    # -- writing ----------------------------------------------------------------------

    def files(self) -> dict[str, bytes]:
        """Every file of the bundle but the manifest, by relative name."""
        numpy_helper = require("onnx.numpy_helper", "cli", "Writing a bundle's golden vectors")

        out = {MODEL: self.model_bytes}
        for i, spec in enumerate(self.inputs):
            if spec.name in self.golden_inputs:
                t = numpy_helper.from_array(_for_proto(self.golden_inputs[spec.name]), spec.name)
                out[f"{GOLDEN_DIR}/input_{i}.pb"] = t.SerializeToString()
        for i, spec in enumerate(self.outputs):
            if spec.name in self.golden_outputs:
                t = numpy_helper.from_array(_for_proto(self.golden_outputs[spec.name]), spec.name)
                out[f"{GOLDEN_DIR}/output_{i}.pb"] = t.SerializeToString()
        if self.report is not None:
            out[REPORT] = (self.report.to_json() + "\n").encode()
        return out

    def save(self, path: str | os.PathLike[str], *, force: bool = False,
             archive: bool = False) -> Path:
        """Write the bundle as a directory (or, with ``archive``, one zip file).

        An existing path is replaced only with ``force``; the bundle is written beside it
        first and moved into place at the end, so a failure leaves nothing half-written.
        """
        dest = Path(path)
        if dest.exists() and not force:
            raise UsageError(
                f"{dest} already exists",
                expected="a path that does not exist yet",
                found="an existing " + ("directory" if dest.is_dir() else "file"),
                hint="choose another output path, or pass --force (force=True) to replace it",
            )
        files = self.files()
        manifest = Manifest.parse(
            {**self.manifest,
             "files": {name: sha256_bytes(data) for name, data in sorted(files.items())}},
            str(dest)).to_dict()
        files[MANIFEST] = (json.dumps(manifest, indent=2, allow_nan=False) + "\n").encode()
        digest = digest_of({name: sha256_bytes(data) for name, data in files.items()})
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        try:
            if archive:
                staged = tmp / dest.name
                with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as zf:
                    for name, data in sorted(files.items()):
                        zf.writestr(name, data)
            else:
                staged = tmp / "bundle"
                for name, data in files.items():
                    target = staged / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
            _replace(staged, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.manifest = manifest
        self.path = dest
        self.digest = digest
        return dest


def _replace(staged: Path, dest: Path) -> None:
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    try:
        os.replace(staged, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def _for_proto(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "UO":
        return np.vectorize(lambda v: str(v).encode(), otypes=[object])(a) if a.size else a
    return a


def load(path: str | os.PathLike[str], *, verify: bool = True) -> Bundle:
    """Load a bundle directory or zipped ``*.baton``; checks every file's sha256."""
    files = BundleFiles(path)
    manifest = files.manifest()
    if verify:
        files.check_integrity(manifest)
    golden_in, golden_out = read_golden(files, manifest)
    report = None
    if files.exists(REPORT):
        try:
            report = Report.from_dict(json.loads(files.read(REPORT)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"{REPORT} in {files.path} is not a baton report",
                expected="the report written by 'baton convert'", found=str(exc)[:200],
                hint="re-create the bundle with 'baton convert'",
            ) from exc
    return Bundle(files.read(MODEL), manifest.to_dict(), golden_in, golden_out, report,
                  Path(path), files.digest(manifest))


def golden_rows(n: int, k: int = GOLDEN_ROWS) -> np.ndarray:
    """Evenly spread row indices for the golden vectors."""
    return np.unique(np.linspace(0, n - 1, num=min(n, k)).round().astype(np.int64))


def cast_expected(expected: np.ndarray, spec: TensorSpec, like: np.ndarray) -> np.ndarray:
    """The original's outputs in the ONNX output's dtype and shape (for golden vectors)."""
    exp = np.asarray(expected)
    if exp.shape != like.shape and exp.size == like.size:
        exp = exp.reshape(like.shape)
    if spec.dtype == "string":
        return np.vectorize(str, otypes=[object])(exp) if exp.size else exp.astype(object)
    return exp.astype(numpy_dtype(spec.dtype))


__all__ = ["Bundle", "load", "SCHEMA_VERSION"]
