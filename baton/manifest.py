"""``baton.json``, typed: the one place that reads and writes a bundle's manifest.

:meth:`Manifest.parse` checks the JSON's shape first (a wrong type, a missing key, a value
out of its range is refused with one :class:`BundleError` naming the key, what was expected
and what was found) and then gives the typed view every reader uses: the inputs and outputs
as :class:`TensorSpec`, the tolerances as :class:`Tolerance`, the files and their sha256,
the graph optimisation level, the golden vectors, the parity verdict at conversion.
:meth:`Manifest.to_dict` is the JSON written. Informational sections (source, converter,
onnx, parity summaries, the envelope) are kept as they are read, in :attr:`Manifest.info`.

A leaf of the package: no import beyond the standard library and the other leaves (the
runtime embeds it).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from baton.envelope import Envelope
from baton.errors import BundleError
from baton.profile import Profile
from baton.schema import DTYPES, TensorSpec
from baton.tolerance import Tolerance

#: The manifest layout this baton writes and reads.
SCHEMA_VERSION = 1
#: onnxruntime's graph optimisation levels, as a bundle's ``runtime`` section names them.
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")

_SHA256 = re.compile(r"[0-9a-f]{64}")

#: A check takes the value and its dotted path and returns a problem, or None.
Check = Callable[[Any, str], "str | None"]


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false",
            type(None): "null", int: "an integer", float: "a number"}.get(
                type(value), type(value).__name__)


def _is(kind: type | tuple[type, ...], word: str) -> Check:
    def check(value: Any, path: str) -> str | None:
        ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,)))
        return None if ok else f"{path}: expected {word}, found {_type_name(value)}"
    return check


TEXT = _is(str, "a string")
FLAG = _is(bool, "true/false")
ANY: Check = lambda value, path: None  # noqa: E731 - informational keys of any JSON type


def _number(low: float = -math.inf, high: float = math.inf) -> Check:
    def check(value: Any, path: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{path}: expected a number, found {_type_name(value)}"
        if not (math.isfinite(value) and low <= value <= high):
            return f"{path}: expected a number in [{low:g}, {high:g}], found {value!r}"
        return None
    return check


NUMBER = _number()
COUNT = _is(int, "an integer")


def _one_of(values: tuple[str, ...]) -> Check:
    def check(value: Any, path: str) -> str | None:
        if value not in values:
            return f"{path}: expected one of {', '.join(values)}, found {value!r}"
        return None
    return check


def _list(item: Check) -> Check:
    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, list):
            return f"{path}: expected a list, found {_type_name(value)}"
        for i, v in enumerate(value):
            problem = item(v, f"{path}[{i}]")
            if problem:
                return problem
        return None
    return check


def _map(item: Check) -> Check:
    """An object with string keys and values that pass ``item``."""
    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"{path}: expected an object, found {_type_name(value)}"
        for k, v in value.items():
            problem = item(v, f"{path}.{k}")
            if problem:
                return problem
        return None
    return check


def _object(keys: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object whose listed keys, where present, pass their checks (others: any value)."""
    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"{path}: expected an object, found {_type_name(value)}"
        for k in required:
            if k not in value:
                return f"{path}: lacks '{k}'"
        for k, item in keys.items():
            if k in value:
                problem = item(value[k], f"{path}.{k}")
                if problem:
                    return problem
        return None
    return check


def _dimension(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return None
    return f"{path}: expected a size >= 0, a dimension name or null, found {value!r}"


def _unique_names(item: Check) -> Check:
    listed = _list(item)

    def check(value: Any, path: str) -> str | None:
        problem = listed(value, path)
        if problem:
            return problem
        twice = [n for n, k in Counter(t["name"] for t in value).items() if k > 1]
        return f"{path}: the name {twice[0]!r} appears more than once" if twice else None
    return check


def _hash(value: Any, path: str) -> str | None:
    if isinstance(value, str) and _SHA256.fullmatch(value):
        return None
    return f"{path}: expected a sha256 (64 lowercase hex digits), found {value!r}"[:300]


TENSOR = _object({
    "name": TEXT, "dtype": _one_of(DTYPES), "shape": _list(_dimension), "column": TEXT,
    "kind": TEXT, "columns": _list(TEXT),
}, required=("name", "dtype", "shape"))

TOLERANCE = _object({"atol": _number(0), "rtol": _number(0), "agreement": _number(0, 1)})

MANIFEST = _object({
    "schema_version": COUNT,
    "name": TEXT,
    "created": TEXT,
    "baton_version": TEXT,
    "source": _object({"versions": _map(ANY)}),
    "converter": _object({"notes": _list(ANY)}),
    "onnx": _object({"opsets": _map(ANY)}),
    "precision": TEXT,
    "inputs": _unique_names(TENSOR),
    "outputs": _unique_names(TENSOR),
    "tolerances": _map(TOLERANCE),
    "parity": _object({"passed": FLAG, "outputs": _map(_object({}))}),
    "runtime": _object({
        "graph_optimization_level": _one_of(OPTIMIZATION_LEVELS),
        "tuning": _object({"median_ms": _map(NUMBER)}),
    }),
    "parity_settings": _object({"providers": _list(TEXT), "tf32": FLAG}),
    "golden": _object({"dir": TEXT, "rows": COUNT}),
    "files": _map(_hash),
    "envelope": ANY,
    "profile": ANY,
}, required=("schema_version", "inputs", "outputs", "files"))


def check_manifest(data: Any, where: str) -> dict[str, Any]:
    """``data`` if it has a manifest's shape, else a BundleError naming the first problem."""
    problem = MANIFEST(data, "baton.json")
    if problem:
        raise BundleError(
            f"baton.json in {where} is malformed",
            expected="the manifest written by 'baton convert' (docs/bundle.md)",
            found=problem,
            hint="re-create the bundle with 'baton convert'; do not edit baton.json by hand",
        )
    assert isinstance(data, dict)
    return data


#: The keys the typed fields of :class:`Manifest` stand for; the others are informational.
_TYPED = ("schema_version", "name", "inputs", "outputs", "tolerances", "files", "runtime",
          "golden", "envelope", "profile")


@dataclass(frozen=True)
class Golden:
    """Where the golden vectors are and which rows of the sample they are."""

    dir: str = "test_data_set_0"
    rows: int = 0
    row_indices: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dir": self.dir, "rows": self.rows, "row_indices": self.row_indices}


@dataclass(frozen=True)
class Tuning:
    """How onnxruntime sessions of the bundle are made: the graph optimisation level chosen
    at conversion and, when it was measured, the measurements (``tuning``)."""

    graph_optimization_level: str = "all"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"graph_optimization_level": self.graph_optimization_level, **self.details}


@dataclass(frozen=True)
class Manifest:
    """A bundle's ``baton.json``."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    #: every file of the bundle but baton.json, with its sha256
    files: dict[str, str] = field(default_factory=dict)
    name: str = "model"
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    runtime: Tuning = field(default_factory=Tuning)
    golden: Golden | None = None
    #: the region of inputs the proof covers (docs/search.md); None in bundles made before
    envelope: Envelope | None = None
    #: the conversion sample's distribution per column (baton.profile), which ``baton
    #: recheck`` measures drift against; None in bundles made before
    profile: Profile | None = None
    schema_version: int = SCHEMA_VERSION
    #: the informational sections, as read (source, converter, onnx, precision, parity,
    #: parity_settings, created, baton_version, envelope, ...)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def optimization(self) -> str:
        """The graph optimisation level sessions of this bundle are made with."""
        return self.runtime.graph_optimization_level

    @property
    def parity_passed(self) -> bool | None:
        """Whether parity held when the bundle was converted (None: not recorded)."""
        passed = self.info.get("parity", {}).get("passed")
        return None if passed is None else bool(passed)

    @property
    def source_class(self) -> str:
        return str(self.info.get("source", {}).get("class", "?"))

    def tolerance(self, output: str) -> Tolerance:
        """The bundle's tolerance for ``output`` (the default when it records none)."""
        return self.tolerances.get(output, Tolerance())

    @classmethod
    def parse(cls, data: Any, where: str) -> Manifest:
        """The typed manifest of the JSON ``data`` read from ``where``, or a BundleError
        naming the first key that does not have a manifest's shape."""
        checked = check_manifest(data, where)
        runtime = dict(checked.get("runtime", {}))
        level = str(runtime.pop("graph_optimization_level", "all"))
        golden = checked.get("golden")
        return cls(
            inputs=[TensorSpec.from_dict(d) for d in checked["inputs"]],
            outputs=[TensorSpec.from_dict(d) for d in checked["outputs"]],
            files=dict(checked["files"]),
            name=str(checked.get("name", "model")),
            tolerances={k: Tolerance.from_dict(v)
                        for k, v in checked.get("tolerances", {}).items()},
            runtime=Tuning(level, runtime),
            golden=None if golden is None else Golden(
                str(golden.get("dir", "test_data_set_0")), int(golden.get("rows", 0)),
                list(golden.get("row_indices", []))),
            envelope=None if checked.get("envelope") is None else Envelope.from_dict(
                checked["envelope"], f"baton.json in {where}"),
            profile=None if checked.get("profile") is None else Profile.from_dict(
                checked["profile"], f"baton.json in {where}"),
            schema_version=int(checked["schema_version"]),
            info={k: v for k, v in checked.items() if k not in _TYPED},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as ``baton.json``."""
        out: dict[str, Any] = {"schema_version": self.schema_version, "name": self.name}
        out.update(self.info)
        out.update({
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
            "tolerances": {k: t.to_dict() for k, t in self.tolerances.items()},
            "runtime": self.runtime.to_dict(),
            "files": dict(self.files),
        })
        if self.golden is not None:
            out["golden"] = self.golden.to_dict()
        if self.envelope is not None:
            out["envelope"] = self.envelope.to_dict()
        if self.profile is not None:
            out["profile"] = self.profile.to_dict()
        return out
