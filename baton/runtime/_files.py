"""Reading a bundle's files, from a directory or a zipped ``*.baton``, safely and with hashes.

Standard library only: this is the part of baton a service embeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from baton.errors import BundleError, BundleIntegrityError

MANIFEST = "baton.json"
MODEL = "model.onnx"
REPORT = "report.json"
GOLDEN_DIR = "test_data_set_0"
SCHEMA_VERSION = 1


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_name(name: str, where: str) -> str:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or ":" in p.parts[0]:
        raise BundleError(
            f"the bundle lists a file outside its own directory: {name!r}",
            expected="paths relative to the bundle, without '..'",
            found=name,
            hint=f"do not load this bundle ({where}); re-create it with 'baton convert'",
        )
    return p.as_posix()


class BundleFiles:
    """The files of one bundle, by their relative POSIX names."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            pass
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self._prefix = self._zip_prefix()
        elif self.path.is_file():
            raise BundleError(
                f"{self.path} is not a baton bundle",
                expected="a bundle directory (with baton.json) or a zipped *.baton file",
                found="a file that is not a zip archive",
                hint="pass the directory written by 'baton convert'",
            )
        else:
            raise BundleError(
                f"no bundle at {self.path}",
                expected="a bundle directory written by 'baton convert'",
                found="nothing at that path",
                hint="check the path, or create the bundle with 'baton convert'",
            )
        if not self.exists(MANIFEST):
            raise BundleError(
                f"{self.path} has no {MANIFEST}",
                expected=f"a bundle directory holding {MANIFEST} and {MODEL}",
                found="a directory without a manifest",
                hint="pass the directory written by 'baton convert' (for a bare ONNX file, "
                "pass the .onnx path itself)",
            )

    def _zip_prefix(self) -> str:
        assert self._zip is not None
        names = self._zip.namelist()
        if MANIFEST in names:
            return ""
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) == 1:
            return tops.pop() + "/"
        return ""

    def _resolve(self, name: str) -> Path:
        rel = _safe_name(name, str(self.path))
        full = (self.path / rel).resolve()
        root = self.path.resolve()
        if root != full and root not in full.parents:
            raise BundleError(
                f"the bundle file {name!r} escapes the bundle directory",
                expected=f"a file inside {root}",
                found=str(full),
                hint="do not load this bundle; re-create it with 'baton convert'",
            )
        return full

    def exists(self, name: str) -> bool:
        if self._zip is not None:
            return (self._prefix + _safe_name(name, str(self.path))) in self._zip.namelist()
        return self._resolve(name).is_file()

    def read(self, name: str) -> bytes:
        if not self.exists(name):
            raise BundleError(
                f"the bundle {self.path} lacks {name}",
                expected=f"{name} inside the bundle",
                found="no such file",
                hint="the bundle is incomplete; re-create it with 'baton convert'",
            )
        if self._zip is not None:
            return self._zip.read(self._prefix + _safe_name(name, str(self.path)))
        return self._resolve(name).read_bytes()

    def sha256(self, name: str) -> str:
        if self._zip is not None:
            return sha256_bytes(self.read(name))
        h = hashlib.sha256()
        with open(self._resolve(name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def manifest(self) -> dict[str, Any]:
        try:
            data = json.loads(self.read(MANIFEST))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(
                f"{MANIFEST} in {self.path} is not valid JSON",
                expected="the manifest written by 'baton convert'",
                found=str(exc),
                hint="re-create the bundle with 'baton convert'",
            ) from exc
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{MANIFEST} in {self.path} has an unsupported schema version",
                expected=f"schema_version {SCHEMA_VERSION}",
                found=f"schema_version {version!r}",
                hint="use the baton release that wrote it, or re-create the bundle",
            )
        for key in ("inputs", "outputs", "files"):
            if key not in data:
                raise BundleError(
                    f"{MANIFEST} in {self.path} lacks '{key}'",
                    expected=f"a manifest with '{key}'",
                    found="keys " + ", ".join(sorted(data)),
                    hint="re-create the bundle with 'baton convert'",
                )
        return data

    def integrity(self, manifest: dict[str, Any]) -> list[FileCheck]:
        """Compare every file the manifest lists against its sha256."""
        checks = []
        for name, expected in sorted(manifest["files"].items()):
            if not self.exists(name):
                checks.append(FileCheck(name, expected, None))
            else:
                checks.append(FileCheck(name, expected, self.sha256(name)))
        return checks

    def check_integrity(self, manifest: dict[str, Any]) -> None:
        bad = [c for c in self.integrity(manifest) if not c.ok]
        if bad:
            raise BundleIntegrityError(
                f"bundle {self.path}: {', '.join(c.name for c in bad)} "
                f"{'do' if len(bad) > 1 else 'does'} not match the hash in {MANIFEST}",
                expected="; ".join(f"{c.name} sha256 {c.expected[:16]}…" for c in bad),
                found="; ".join(
                    f"{c.name} " + ("missing" if c.found is None else f"sha256 {c.found[:16]}…")
                    for c in bad
                ),
                hint="the files were changed after conversion; re-create the bundle with "
                "'baton convert', or restore the original files",
            )


class FileCheck:
    __slots__ = ("name", "expected", "found")

    def __init__(self, name: str, expected: str, found: str | None) -> None:
        self.name = name
        self.expected = expected
        self.found = found

    @property
    def ok(self) -> bool:
        return self.found == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.name, "expected": self.expected, "found": self.found, "ok": self.ok}
