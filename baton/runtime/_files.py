"""Reading a bundle's files, from a directory or a zipped ``*.baton``, safely and with hashes.

Standard library only: this is the part of baton a service embeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from baton.errors import BundleError, BundleIntegrityError, UsageError
from baton.manifest import SCHEMA_VERSION, Manifest
from baton.results.files import FileCheck

MANIFEST = "baton.json"
MODEL = "model.onnx"
REPORT = "report.json"
GOLDEN_DIR = "test_data_set_0"
DIGEST_PREFIX = "sha256:"

#: the largest file of each kind a bundle may hold, checked before it is read (a zip's
#: members by their declared size, which the zip reader then enforces): one protobuf
#: message cannot exceed 2 GiB, and baton writes a manifest and golden files of kilobytes
LIMITS = {MANIFEST: 16 << 20, MODEL: 2 << 30}
DEFAULT_LIMIT = 256 << 20
_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(hashes: dict[str, str]) -> str:
    """A bundle's digest from the sha256 of each of its files (baton.json included): the
    sha256 of the lines ``<sha256>  <name>`` (as ``sha256sum`` prints them) sorted by name
    in byte order, as ``sha256:<hex>``."""
    listing = "".join(f"{hashes[n]}  {n}\n" for n in sorted(hashes, key=str.encode))
    return DIGEST_PREFIX + sha256_bytes(listing.encode())


def parse_digest(text: str) -> str:
    """A digest as ``sha256:<hex>``, from that form or the bare hex; UsageError otherwise."""
    value = text.strip().lower() if isinstance(text, str) else ""
    hexpart = value.removeprefix(DIGEST_PREFIX)
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise UsageError(f"cannot read the digest {text!r}"[:200],
                         expected="sha256: followed by 64 hex digits, as 'baton inspect' "
                         "prints it", found=repr(text)[:200],
                         hint="copy the digest that 'baton convert', 'check' or 'inspect' "
                         "printed for the bundle")
    return DIGEST_PREFIX + hexpart


def _safe_name(name: str, where: str) -> str:
    p = PurePosixPath(name)
    if (not p.parts or p.is_absolute() or ".." in p.parts or "\\" in name or "\x00" in name
            or ":" in p.parts[0]):
        raise BundleError(
            f"the bundle lists a file outside its own directory: {name!r}",
            expected="paths relative to the bundle, without '..'",
            found=repr(name)[:200],
            hint=f"do not load this bundle ({where}); re-create it with 'baton convert'",
        )
    return p.as_posix()


class BundleFiles:
    """The files of one bundle, by their relative POSIX names."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: a zipped bundle: its archive is opened for each read and closed with it (no
        #: file handle stays open between reads)
        self._zipped = False
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._hashes: dict[str, str] = {}
        if self.path.is_dir():
            pass
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            try:
                with zipfile.ZipFile(self.path) as archive:
                    self._members = {i.filename: i for i in archive.infolist()}
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise BundleError(
                    f"{self.path} is not a readable zip archive",
                    expected="a zipped bundle written by 'baton convert' or 'zip -r'",
                    found=str(exc)[:200], hint="re-create or re-download the bundle",
                ) from exc
            self._zipped = True
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
        names = list(self._members)
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
        if self._zipped:
            member = self._members.get(self._prefix + _safe_name(name, str(self.path)))
            return member is not None and not member.is_dir()
        return self._resolve(name).is_file()

    @property
    def directory(self) -> Path | None:
        """The bundle's directory, or None for a zipped bundle."""
        return None if self._zipped else self.path.resolve()

    def size(self, name: str) -> int:
        """A file's size in bytes (a zip member's declared size)."""
        self._require(name)
        if self._zipped:
            return self._members[self._prefix + _safe_name(name, str(self.path))].file_size
        return self._resolve(name).stat().st_size

    def _require(self, name: str) -> None:
        if not self.exists(name):
            raise BundleError(
                f"the bundle {self.path} lacks {name}",
                expected=f"{name} inside the bundle",
                found="no such file",
                hint="the bundle is incomplete; re-create it with 'baton convert'",
            )

    def _open(self, name: str) -> Any:
        """A binary file object for ``name``, after checking its size against its limit."""
        size, limit = self.size(name), LIMITS.get(name, DEFAULT_LIMIT)
        if size > limit:
            raise BundleError(
                f"{name} in {self.path} is {size} bytes, over the {limit} a bundle's "
                f"{name} may have",
                expected=f"at most {limit} bytes", found=f"{size} bytes",
                hint="this is not a bundle baton wrote; re-create it with 'baton convert'",
            )
        try:
            if self._zipped:
                # the member read keeps the archive's file open until it is closed; the
                # ZipInfo read at open time fixes the member's place and size
                info = self._members[self._prefix + _safe_name(name, str(self.path))]
                with zipfile.ZipFile(self.path) as archive:
                    return archive.open(info)
            return open(self._resolve(name), "rb")  # noqa: SIM115 - closed by the caller
        except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
            raise self._unreadable(name, exc) from exc

    def _unreadable(self, name: str, exc: BaseException) -> BundleError:
        return BundleError(f"cannot read {name} in {self.path}", expected="a readable file",
                           found=str(exc)[:200] or type(exc).__name__,
                           hint="re-create or re-download the bundle")

    def _stream(self, name: str, keep: bool) -> tuple[str, bytes]:
        """The file's sha256 (streamed in chunks) and, with ``keep``, its bytes."""
        h = hashlib.sha256()
        kept: list[bytes] = []
        with self._open(name) as f:
            try:
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    h.update(chunk)
                    if keep:
                        kept.append(chunk)
            except (OSError, zipfile.BadZipFile, EOFError, ValueError, zlib.error) as exc:
                raise self._unreadable(name, exc) from exc
        return h.hexdigest(), b"".join(kept)

    def read(self, name: str) -> bytes:
        """A file's bytes; when its hash was computed before (by :meth:`sha256`), the bytes
        read must still have that hash (a file changed in between is refused)."""
        digest, data = self._stream(name, keep=True)
        if self._hashes.setdefault(name, digest) != digest:
            raise BundleIntegrityError(
                f"{name} in {self.path} changed while the bundle was being loaded",
                expected=f"sha256 {self._hashes[name][:16]}…", found=f"sha256 {digest[:16]}…",
                hint="do not modify a bundle while it is in use; load it again")
        return data

    def sha256(self, name: str) -> str:
        """A file's sha256, streamed (never the whole file in memory), computed once."""
        if name not in self._hashes:
            self._hashes[name] = self._stream(name, keep=False)[0]
        return self._hashes[name]

    def manifest(self) -> Manifest:
        """The manifest, typed, once checked to have the shape 'baton convert' writes."""
        try:
            data = json.loads(self.read(MANIFEST), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BundleError(
                f"{MANIFEST} in {self.path} is not valid JSON",
                expected="the manifest written by 'baton convert'",
                found=str(exc)[:300] or type(exc).__name__,
                hint="re-create the bundle with 'baton convert'",
            ) from exc
        version = data.get("schema_version") if isinstance(data, dict) else None
        if isinstance(data, dict) and version != SCHEMA_VERSION:
            raise BundleError(
                f"{MANIFEST} in {self.path} has an unsupported schema version",
                expected=f"schema_version {SCHEMA_VERSION}",
                found=f"schema_version {version!r}"[:200],
                hint="use the baton release that wrote it, or re-create the bundle",
            )
        manifest = Manifest.parse(data, str(self.path))
        for name in manifest.files:
            _safe_name(name, str(self.path))
        return manifest

    def needed(self, manifest: Manifest) -> list[str]:
        """The files baton reads from this bundle: the model, and the golden vectors and
        report where present. Each must be listed in the manifest (and so hashed)."""
        golden = [f"{GOLDEN_DIR}/{prefix}_{i}.pb" for key, prefix in (("inputs", "input"),
                                                                       ("outputs", "output"))
                  for i in range(len(getattr(manifest, key)))]
        return [MODEL] + [n for n in (*golden, REPORT) if self.exists(n)]

    def integrity(self, manifest: Manifest) -> list[FileCheck]:
        """Compare every file the manifest lists against its sha256; a file baton needs
        that the manifest does not list is a failure too (``expected`` None)."""
        checks = []
        listed = manifest.files
        for name, expected in sorted(listed.items()):
            if not self.exists(name):
                checks.append(FileCheck(name, expected, None))
            else:
                checks.append(FileCheck(name, expected, self.sha256(name)))
        for name in self.needed(manifest):
            if name not in listed:
                checks.append(FileCheck(name, None, self.sha256(name) if self.exists(name)
                                        else None))
        return checks

    def digest(self, manifest: Manifest) -> str:
        """The bundle's digest: the sha256 of ``sha256sum``'s output for baton.json and
        every file the manifest lists, by name in byte order, as ``sha256:<hex>``. Computed
        from the files as they are (a changed file changes it), stored nowhere inside."""
        hashes = {MANIFEST: self.sha256(MANIFEST)}
        for name in manifest.files:
            hashes[name] = self.sha256(name) if self.exists(name) else "missing"
        return digest_of(hashes)

    def check_digest(self, manifest: Manifest, expected: str) -> None:
        """Raise BundleIntegrityError unless the bundle's digest is ``expected``."""
        want = parse_digest(expected)
        found = self.digest(manifest)
        if found != want:
            raise BundleIntegrityError(
                f"bundle {self.path} is not the bundle pinned by its digest",
                expected=want, found=found,
                hint="deploy the bundle whose digest CI printed ('baton inspect' shows a "
                "bundle's digest); if this bundle was re-created on purpose, pin its new "
                "digest",
            )

    def check_integrity(self, manifest: Manifest) -> None:
        bad = [c for c in self.integrity(manifest) if not c.ok]
        if bad:
            raise BundleIntegrityError(
                f"bundle {self.path}: {', '.join(c.name for c in bad)} "
                f"{'do' if len(bad) > 1 else 'does'} not match the hash in {MANIFEST}",
                expected="; ".join(f"{c.name} " + ("listed with its sha256" if c.expected is None
                                                   else f"sha256 {c.expected[:16]}…")
                                   for c in bad),
                found="; ".join(f"{c.name} {c.describe()}" for c in bad),
                hint="the files were changed after conversion; re-create the bundle with "
                "'baton convert', or restore the original files",
            )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (baton writes no NaN or Infinity in a manifest)")
