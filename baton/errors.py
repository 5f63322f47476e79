"""Errors raised by baton.

Every error names what was expected, what was found and what to do, and carries the CLI
exit code it maps to (``0`` pass, ``1`` gate failed, ``2`` usage or input error, ``3``
internal error)::

    BatonError                          (3: internal error unless a subclass says otherwise)
     ├── UsageError                     (2) bad arguments, unknown file types, unsafe files
     ├── MissingDependencyError         (2) an optional framework is not installed
     ├── SchemaError                    (2) data that does not fit the model's input schema
     │    └── InputValidationError      (2) feeds with a wrong name, dtype or shape
     ├── ConversionError                (2) a model could not be turned into ONNX
     │    └── UnsupportedModelError     (2) a model no registered converter can handle
     ├── BundleError                    (2) a bundle that is missing, malformed or unsafe
     │    └── BundleIntegrityError      (1) a bundle whose files differ from their hashes
     └── ParityError                    (1) the converted model does not match the original
"""

from __future__ import annotations


class BatonError(Exception):
    """Base of every error baton raises on purpose."""

    exit_code: int = 3

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        lines = [self.message]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.found is not None:
            lines.append(f"  found:    {self.found}")
        if self.hint is not None:
            lines.append(f"  what to do: {self.hint}")
        return "\n".join(lines)


class UsageError(BatonError):
    exit_code = 2


class MissingDependencyError(BatonError):
    exit_code = 2

    @classmethod
    def for_extra(cls, package: str, extra: str, needed_for: str) -> MissingDependencyError:
        return cls(
            f"{needed_for} needs the Python package '{package}', which is not installed.",
            expected=f"'{package}' importable",
            found="ModuleNotFoundError",
            hint=f"pip install 'baton[{extra}]'",
        )


class SchemaError(BatonError):
    exit_code = 2


class InputValidationError(SchemaError):
    exit_code = 2


class ConversionError(BatonError):
    exit_code = 2


class UnsupportedModelError(ConversionError):
    exit_code = 2


class BundleError(BatonError):
    exit_code = 2


class BundleIntegrityError(BundleError):
    exit_code = 1


class ParityError(BatonError):
    exit_code = 1


def require(module: str, extra: str, needed_for: str):  # type: ignore[no-untyped-def]
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError.for_extra(module.split(".")[0], extra, needed_for) from exc


def first_line(exc: BaseException, limit: int = 300, *, with_type: bool = False) -> str:
    """The first non-empty line of ``exc``'s message, cut to ``limit`` characters (and led
    by the exception's type with ``with_type``): what an error's ``found`` quotes of a
    framework's or onnxruntime's own error, whose later lines are stack dumps."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0].strip()[:limit] if lines else ""
    if with_type:
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text or type(exc).__name__


def ort_error(exc: BaseException, error: type[BatonError], message: str, *,
              expected: str, hint: str) -> BatonError:
    """One of baton's errors for an exception onnxruntime raised (its exceptions are untyped
    ``RuntimeError`` subclasses whose messages run on for lines): raise it ``from exc``;
    ``found`` quotes the first line of onnxruntime's message."""
    return error(message, expected=expected, found=first_line(exc), hint=hint)
