"""Which budgets to check: parsed from the command line and from the nearest
``baton.toml`` or ``pyproject.toml``.

:class:`Budget` itself (its parsing and its decision on an interval) lives with the results
in :mod:`baton.results.latency`, since a :class:`BudgetResult` carries one."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baton.errors import UsageError
from baton.results.latency import BUDGET_EXAMPLES, BUDGET_FORMAT, Budget

__all__ = ["BUDGET_EXAMPLES", "BUDGET_FORMAT", "Budget", "find_budget_config", "find_config",
           "read_toml", "resolve_budgets"]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: tomli, a dependency of baton there
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            from baton.errors import MissingDependencyError

            raise MissingDependencyError(
                f"reading budgets from {path} needs tomli on Python 3.10",
                expected="'tomli' importable", found="ModuleNotFoundError",
                hint="pip install tomli (or reinstall baton, which depends on it there)",
            ) from exc
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}", expected="a valid TOML file",
                         found=f"{type(exc).__name__}: {exc}", hint="fix the file") from exc


def find_config(key: str, start: str | os.PathLike[str] | None = None
                ) -> tuple[Any, Path | None]:
    """``key`` of the nearest ``baton.toml`` (at its top level, or under ``[tool.baton]``)
    or ``pyproject.toml`` (under ``[tool.baton]``), looking in ``start`` (default: the
    current directory) and then its parents; in one directory ``baton.toml`` wins.
    ``(None, None)`` when no file has it."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        for name in ("baton.toml", "pyproject.toml"):
            path = d / name
            if not path.is_file():
                continue
            data = read_toml(path)
            tool = data.get("tool", {}).get("baton")
            for table in ((data, tool) if name == "baton.toml" else (tool,)):
                if isinstance(table, dict) and key in table:
                    return table[key], path
    return None, None


def find_budget_config(start: str | os.PathLike[str] | None = None
                       ) -> tuple[list[str], Path | None]:
    """Budgets from the nearest ``baton.toml`` (``budgets = [...]``) or ``pyproject.toml``
    (``[tool.baton] budgets = [...]``), looking in ``start`` (default: the current directory)
    and then its parents; in one directory ``baton.toml`` wins. ``([], None)`` when none."""
    budgets, path = find_config("budgets", start)
    if path is None:
        return [], None
    if not isinstance(budgets, list) or not all(isinstance(b, str) for b in budgets):
        where = "budgets" if path.name == "baton.toml" else "[tool.baton] budgets"
        raise UsageError(f"{where} in {path} is not a list of strings",
                         expected=f'{where} = ["cpu:batch=1:p99<=2ms", ...]',
                         found=repr(budgets)[:200], hint="fix the file")
    return budgets, path


def resolve_budgets(cli: Sequence[str], start: str | os.PathLike[str] | None = None,
                    *, use_config: bool = True) -> tuple[list[Budget], Path | None]:
    """The budgets to check: the config file's, then the command line's. A command-line
    budget for the same provider, batch and metric replaces the file's; others add."""
    specs, path = find_budget_config(start) if use_config else ([], None)
    merged: dict[tuple[str, int, str], Budget] = {}
    for text in specs:
        b = Budget.parse(text, str(path))
        merged[b.key] = b
    for text in cli:
        b = Budget.parse(text, "--budget")
        merged[b.key] = b
    return list(merged.values()), path
