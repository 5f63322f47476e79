"""The shape of ``baton.json``, checked once when a bundle is opened.

A manifest that does not have this shape (a wrong type, a missing key, a value out of its
range) is refused with one :class:`BundleError` naming the key, what was expected and what
was found, before anything reads it. No import beyond the standard library and baton's
leaves (the runtime embeds it).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from baton.errors import BundleError
from baton.runtime.providers import OPTIMIZATION_LEVELS
from baton.schema import DTYPES

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
