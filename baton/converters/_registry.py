"""The one registry of converters and of the model files they read.

**How a converter is registered.** A distribution declares it in the ``baton.converters``
entry-point group; baton's own are in its ``pyproject.toml``::

    [project.entry-points."baton.converters"]
    sklearn = "baton.converters.sklearn:SklearnConverter"

The entry point names the converter (use the converter's ``name``) and points at a
**converter class**, which baton instantiates with no arguments (a zero-argument factory,
or a ready instance, works too). The object is a :class:`baton.contract.Converter`, and may
also declare, as class attributes:

- ``model_files``: the :class:`baton.contract.ModelFile` formats it reads by suffix (what
  ``baton convert model.txt`` and :func:`load_model_file` use);
- ``before``: the name of a converter it must be asked before (a converter for some of
  another's models).

A registration may be model files alone, with no converter (``baton.converters._pickle``:
pickle and joblib files, which hold any framework's model).

The group is read on first use, with :func:`importlib.metadata.entry_points` (cheap: a
converter module imports its framework only when it converts). The order is deterministic:
baton's own entry points by name, then other distributions' by name, then each converter
with ``before`` moved to just before the one it names; so scikit-learn's tree ensembles,
its Pipelines ending in trees and XGBoost (whose wrappers are scikit-learn estimators) are
asked before the general scikit-learn converter. A model file's suffix belongs to the first
registration that claims it. An entry point that cannot be loaded, or that is neither a
converter nor model files, is skipped with a warning naming it: a broken extension never
breaks baton. Where baton's own distribution metadata is missing (a source tree on
``sys.path``, never installed), baton's own converters come from :data:`_BUILTIN`, which a
test holds equal to ``pyproject.toml``.

:func:`register` (and :func:`register_loader`) add converters and file formats at run time,
after the entry points; they are asked in the order they were added, unless ``before``
says otherwise.

The texts that list what baton can read (:func:`find_converter`'s and
:func:`load_model_file`'s errors, the command line's help, :func:`model_file_help`) are
written from the registrations, never by hand.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from baton.contract import (
    ENTRY_POINT_GROUP,
    AskedBefore,
    Conversion,
    Converter,
    ModelFile,
    ReadsModelFiles,
)
from baton.errors import UnsupportedModelError, UsageError

__all__ = [
    "ENTRY_POINT_GROUP",
    "Conversion",
    "Converter",
    "ModelFile",
    "converters",
    "find_converter",
    "load_model_file",
    "model_file_help",
    "model_files",
    "register",
    "register_loader",
]

#: baton's own entry points, as in ``pyproject.toml``: read only where baton's distribution
#: metadata is missing (tests/converters/test_entry_points.py holds the two equal).
_BUILTIN: tuple[tuple[str, str], ...] = (
    ("catboost", "baton.converters.catboost:CatBoostConverter"),
    ("lightgbm", "baton.converters.lightgbm:LightGBMConverter"),
    ("pickle", "baton.converters._pickle:PickleFiles"),
    ("sklearn", "baton.converters.sklearn:SklearnConverter"),
    ("sklearn-pipeline-trees", "baton.converters.pipeline_trees:PipelineTreesConverter"),
    ("sklearn-trees", "baton.converters.sklearn_trees:SklearnTreesConverter"),
    ("statsmodels", "baton.converters.statsmodels:StatsmodelsConverter"),
    ("torch", "baton.converters.torch:TorchConverter"),
    ("xgboost", "baton.converters.xgboost:XGBoostConverter"),
)

_DISTRIBUTION = "baton"

_CONVERTERS: list[Converter] = []
_LOADERS: dict[str, ModelFile] = {}
_LOADED = False
_LOADING = False
_LOCK = threading.RLock()


# -- run-time registration --------------------------------------------------------------


def register(converter: Converter, *, before: str | None = None) -> Converter:
    """Add a converter at run time, with the model files it declares (``model_files``).

    ``before`` (or the converter's own ``before`` attribute) names one it must be asked
    before; without it, or when that one is not registered, it is asked last. The model
    files it declares replace any registered for the same suffixes."""
    _load()
    with _LOCK:
        if any(c.name == converter.name for c in _CONVERTERS):
            raise ValueError(f"a converter named {converter.name!r} is already registered")
        if before is None and isinstance(converter, AskedBefore):
            before = converter.before
        names = [c.name for c in _CONVERTERS]
        _CONVERTERS.insert(names.index(before) if before in names else len(names), converter)
        if isinstance(converter, ReadsModelFiles):
            for mf in converter.model_files:
                _LOADERS[mf.suffix] = mf
    return converter


def register_loader(suffix: str, loader: Callable[[Path, bool], Any], what: str) -> None:
    """Register ``loader(path, trust_pickle)`` for model files ending in ``suffix``, at run
    time (replacing any loader registered for it). A converter declares its own files in
    ``model_files`` instead."""
    _load()
    with _LOCK:
        mf = ModelFile(suffix.lower(), loader, framework=what, what=what)
        _LOADERS[mf.suffix] = mf


# -- lookup ---------------------------------------------------------------------------


def converters() -> list[Converter]:
    """Every registered converter, in the order they are asked."""
    _load()
    return list(_CONVERTERS)


def model_files() -> list[ModelFile]:
    """Every registered model-file format, in the order they were registered."""
    _load()
    return list(_LOADERS.values())


def find_converter(model: Any) -> Converter:
    for conv in converters():
        if conv.accepts(model):
            return conv
    cls = type(model)
    raise UnsupportedModelError(
        f"baton has no converter for {cls.__module__}.{cls.__qualname__}",
        expected="a model from one of: "
        + ", ".join(sorted({c.framework for c in converters()})),
        found=f"{cls.__module__}.{cls.__qualname__}",
        hint="pass a fitted model of one of those frameworks; a model of another framework "
        "needs a package that registers a converter for it in the "
        f"{ENTRY_POINT_GROUP!r} entry-point group",
    )


def load_model_file(path: str | Path, *, trust_pickle: bool = False) -> Any:
    """Load a model file by its suffix through the registered model files."""
    files = model_files()
    p = Path(path)
    if not p.exists():
        raise UsageError(
            f"no model file at {p}",
            expected="a saved model (" + ", ".join(sorted(mf.suffix for mf in files)) + ")",
            found="nothing at that path",
            hint="check the path",
        )
    suffix = p.suffix.lower()
    found = _LOADERS.get(suffix)
    if found is None:
        raise UsageError(
            f"baton cannot read model files of type {suffix or '(no suffix)'!r}: {p}",
            expected="one of " + ", ".join(f"{mf.suffix} ({_what(mf)})"
                                           for mf in sorted(files, key=lambda m: m.suffix)),
            found=suffix or "no suffix",
            hint=_save_hint(files),
        )
    return found.load(p, trust_pickle)


# -- texts written from the registrations ------------------------------------------------


def model_file_help() -> str:
    """The model files baton reads, for the command line's help: ``Model file: .cbm
    (CatBoost), …, or with --trust-pickle .pkl/.pickle/.joblib (pickle), …``."""
    groups = _groups(model_files())
    safe = [f"{'/'.join(mf.suffix for mf in fs)} ({label})"
            for (label, trust), fs in groups if not trust]
    trusted = [f"{'/'.join(mf.suffix for mf in fs)} ({label})"
               for (label, trust), fs in groups if trust]
    text = "Model file: " + ", ".join(safe)
    if trusted:
        text += (", or " if safe else "") + "with --trust-pickle " + ", ".join(trusted)
    return text + "."


def _what(mf: ModelFile) -> str:
    return f"{mf.what}; needs --trust-pickle" if mf.needs_trust else mf.what


def _groups(files: list[ModelFile]) -> list[tuple[tuple[str, bool], list[ModelFile]]]:
    """The formats by framework (and whether they need trust), in registration order."""
    groups: dict[tuple[str, bool], list[ModelFile]] = {}
    for mf in files:
        groups.setdefault((mf.framework, mf.needs_trust), []).append(mf)
    return list(groups.items())


def _save_hint(files: list[ModelFile]) -> str:
    """``save scikit-learn models with skops.io.dump(...), LightGBM with …``: how to write a
    file of every framework baton reads (formats needing --trust-pickle last)."""
    parts = []
    for trust in (False, True):
        for (label, needs), fs in _groups(files):
            saves = list(dict.fromkeys(mf.save for mf in fs if mf.save))
            if needs is not trust or not saves:
                continue
            note = " (read only with --trust-pickle)" if trust else ""
            parts.append((label, " or ".join(saves) + note))
    if not parts:
        return "save the model in a format a registered converter reads"
    first, *rest = parts
    return ", ".join([f"save {first[0]} models with {first[1]}"]
                     + [f"{label} with {how}" for label, how in rest])


# -- loading the entry points -------------------------------------------------------------


def _load() -> None:
    """Register the ``baton.converters`` entry points, once."""
    global _LOADED, _LOADING
    if _LOADED:
        return
    with _LOCK:  # another thread waits here until the registry is complete
        if _LOADED or _LOADING:  # _LOADING: a module that calls register() as it loads
            return
        _LOADING = True
        try:
            _load_entry_points()
        finally:
            _LOADED, _LOADING = True, False


def _load_entry_points() -> None:
    """Resolve every entry point (:func:`_entry_points`) into converters and model files."""
    loaded: list[tuple[Any, str | None]] = []
    for ep in _entry_points():
        obj = _resolve(ep)
        if obj is None:
            continue
        if isinstance(obj, Converter):
            same = [c for c in [c for c, _ in loaded] + _CONVERTERS if c.name == obj.name]
            if same:
                if type(same[0]) is not type(obj):  # not merely registered twice
                    _warn(ep, f"skipped: a converter named {obj.name!r} is already "
                          "registered")
                continue
            loaded.append((obj, obj.before if isinstance(obj, AskedBefore) else None))
        for mf in obj.model_files if isinstance(obj, ReadsModelFiles) else ():
            if not isinstance(mf, ModelFile):
                _warn(ep, f"skipped {mf!r} in its model_files: not a "
                      "baton.contract.ModelFile")
            elif mf.suffix in _LOADERS:
                if _LOADERS[mf.suffix] != mf:
                    _warn(ep, f"its {mf.suffix} model files skipped: another registration "
                          f"reads them ({_LOADERS[mf.suffix].what})")
            else:
                _LOADERS[mf.suffix] = mf
    # converters that modules registered at run time as they loaded stay after these
    _CONVERTERS[:0] = _ordered(loaded)


def _entry_points() -> list[metadata.EntryPoint]:
    """The group's entry points: baton's own by name (from :data:`_BUILTIN` where baton's
    metadata is missing), then other distributions' by name."""
    own: list[metadata.EntryPoint] = []
    other: list[metadata.EntryPoint] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        name = getattr(dist, "name", None) or ""
        (own if name.lower() == _DISTRIBUTION else other).append(ep)
    if not own:
        own = [metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in _BUILTIN]
    return sorted(own, key=lambda ep: ep.name) + sorted(
        other, key=lambda ep: (ep.name, ep.value))


def _resolve(ep: metadata.EntryPoint) -> Any:
    """The registration an entry point names (a class instantiated, a factory called), or
    None, with a warning, when it cannot be had."""
    try:
        obj = ep.load()
        if isinstance(obj, type):
            obj = obj()
        elif not isinstance(obj, (Converter, ReadsModelFiles)) and callable(obj):
            obj = obj()
    except Exception as exc:  # noqa: BLE001 - a broken extension raises anything
        _warn(ep, f"skipped: {type(exc).__name__}: {exc}")
        return None
    if not isinstance(obj, (Converter, ReadsModelFiles)):
        _warn(ep, f"skipped: a {type(obj).__qualname__} is neither a baton.contract.Converter "
              "nor a registration with model_files")
        return None
    return obj


def _warn(ep: metadata.EntryPoint, message: str) -> None:
    dist = getattr(getattr(ep, "dist", None), "name", None)
    where = f" of {dist}" if dist else ""
    warnings.warn(f"baton: the {ENTRY_POINT_GROUP!r} entry point {ep.name} = {ep.value!r}"
                  f"{where}: {message}", RuntimeWarning, stacklevel=2)


def _ordered(entries: list[tuple[Any, str | None]]) -> list[Converter]:
    """The converters in the order given, each with a ``before`` moved to just before the
    one it names (chains resolved; a name not registered, or a cycle, leaves it in place)."""
    names = {c.name for c, _ in entries}
    out = [c for c, before in entries if before is None or before not in names]
    pending = [(c, before) for c, before in entries if before is not None and before in names]
    while pending:
        waiting = []
        for conv, before in pending:
            placed = [c.name for c in out]
            if before in placed:
                out.insert(placed.index(before), conv)
            else:
                waiting.append((conv, before))
        if len(waiting) == len(pending):  # a cycle of befores: keep them in the given order
            out.extend(c for c, _ in waiting)
            break
        pending = waiting
    return out
