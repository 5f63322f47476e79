"""A program loaded from a ``.pt2`` file (``torch.export.load(path).module()``): its
inputs, how it takes them (positionally or by keyword, as it was exported), and the name
of the module it was exported from.

``torch.export.export(m, (x, y))`` records the call's structure in the program
(``module._in_spec``: ``((args...), {kwargs...})``), and the program refuses a call of
another structure ("kwarg keyword mismatch"); ``forward``'s signature names the inputs.
A sample (an ``.npz`` file's arrays, a dict) is matched to them by name, else by position.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgramInputs:
    """A program's inputs in order, and whether it takes them positionally."""

    names: tuple[str, ...]
    positional: bool


def is_program(model: Any) -> bool:
    return "GraphModule" in type(model).__qualname__


def program_inputs(model: Any) -> ProgramInputs | None:
    """What an exported program takes (None for a module that is not one, or one that
    does not record it)."""
    spec = getattr(model, "_in_spec", None)
    if not is_program(model) or spec is None:
        return None
    try:
        # torch 2.13 deprecates children_specs for children()
        args, kwargs = spec.children() if hasattr(spec, "children") else spec.children_specs
        names = tuple(p.name for p in inspect.signature(model.forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    except (AttributeError, TypeError, ValueError):
        return None
    if kwargs.num_children:
        return ProgramInputs(tuple(str(k) for k in kwargs.context), positional=False)
    return ProgramInputs(names[:args.num_children], positional=True)


_BY_POSITION = re.compile(r"arr_\d+")


def match_inputs(model: Any, data: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``data`` keyed by the program's input names, in its order: by name where the keys
    are those names, else by position (``np.savez(path, a, b)`` writes ``arr_0``,
    ``arr_1``), with a note saying so. Anything else: ``data`` as it is."""
    found = program_inputs(model)
    given = {str(k): v for k, v in data.items()}
    if found is None or not found.names or len(given) != len(found.names):
        return given, None
    if set(given) == set(found.names):
        return {n: given[n] for n in found.names}, None
    keys = list(given)
    if all(_BY_POSITION.fullmatch(k) for k in keys):
        keys = sorted(keys, key=lambda k: int(k[4:]))
        why = "numbered"
    else:
        why = "not the program's input names"
    note = (f"the sample's arrays {', '.join(keys)} ({why}) were taken by position as the "
            f"program's inputs {', '.join(found.names)}")
    return {n: given[k] for n, k in zip(found.names, keys)}, note


def call(model: Any, tensors: Any) -> Any:
    """The model on a tensor or a dict of them: keyword arguments, except for a program
    exported with positional arguments (in its order)."""
    if not isinstance(tensors, dict):
        return model(tensors)
    found = program_inputs(model)
    if found is not None and found.positional and set(tensors) == set(found.names):
        return model(*(tensors[n] for n in found.names))
    return model(**tensors)


def positional(model: Any, names: list[str]) -> bool:
    """Whether to export ``model`` with positional arguments for inputs ``names``."""
    found = program_inputs(model)
    return found is not None and found.positional and set(names) == set(found.names)


#: where a loaded program's file stem is kept (the name when its nodes do not record one)
FILE_STEM = "_baton_file_stem"


def program_class(model: Any) -> str | None:
    """The class the program was exported from, as its nodes record it
    (``meta["nn_module_stack"]``: ``{'L__self__': ('', '__main__.Two'), ...}``), else the
    name of the file it was loaded from."""
    graph = getattr(model, "graph", None)
    for node in getattr(graph, "nodes", ()):
        stack = getattr(node, "meta", {}).get("nn_module_stack") or {}
        for path, cls in stack.values():
            if path == "" and isinstance(cls, str) and cls:
                return cls
    stem = getattr(model, FILE_STEM, None)
    return str(stem) if stem else None


def check_one_input(model: Any) -> None:
    """A program exported with several inputs, handed one array, is refused naming them."""
    from baton.errors import SchemaError

    found = program_inputs(model)
    if found is not None and len(found.names) > 1:
        names = ", ".join(found.names)
        raise SchemaError(
            f"the program takes {len(found.names)} inputs ({names}) but the data is one array",
            expected=f"one array per input: {names}",
            found="one array (an .npy file, or an .npz file read as its array named X, x, "
            "data or inputs)",
            hint=f"save one array per input in an .npz file, by position "
            f"(np.savez(path, {names})) or by name",
        )
