"""The ``baton`` console script.

It imports the command (typer, rich, and through them numpy and onnx) inside its own
``try``, so that a Ctrl-C in the first moments of any command, while Python is still
importing, exits 130 without a traceback, as one during a command does (``baton/__init__``
imports nothing heavy, so this module runs before those imports). Once the command is over
a Ctrl-C is ignored, rather than killing the interpreter as it shuts down; and a closed pipe
found by the last flush of stdout ends it quietly (141).

The command needs the ``cli`` extra (typer, rich, onnx, hypothesis); ``pip install baton``
alone brings the runtime only. Without them it says so, names ``pip install 'baton[cli]'``
and exits 2, before importing anything of the command.
"""

from __future__ import annotations

import os
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process Ctrl-C ended
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer a pipe ended


def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


#: What the command imports beyond the runtime (numpy, onnxruntime): the `cli` extra
CLI_PACKAGES = ("typer", "rich", "onnx", "hypothesis")


def missing_cli_packages() -> list[str]:
    """The packages of the ``cli`` extra that cannot be imported (found without importing
    them: the command imports each when it needs it)."""
    from importlib.util import find_spec

    packages = [*CLI_PACKAGES, *(("tomli",) if sys.version_info < (3, 11) else ())]
    missing = []
    for package in packages:
        try:
            if find_spec(package) is None:
                missing.append(package)
        except (ImportError, ValueError):  # a module whose spec is unset or broken
            missing.append(package)
    return missing


def require_cli() -> None:
    """Exit 2 with one error naming the ``cli`` extra when a package of it is missing."""
    missing = missing_cli_packages()
    if not missing:
        return
    from baton.errors import MissingDependencyError

    names = ", ".join(f"'{name}'" for name in missing)
    plural = "s" if len(missing) > 1 else ""
    error = MissingDependencyError(
        f"the baton command needs the Python package{plural} {names}, which "
        f"{'are' if plural else 'is'} not installed (`pip install baton` brings the runtime "
        "only: baton.runtime.Session)",
        expected="the cli extra: " + ", ".join(CLI_PACKAGES),
        found="missing: " + ", ".join(missing),
        hint="pip install 'baton[cli]' (or a framework extra, such as 'baton[sklearn]')",
    )
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code)


def _unraisable_interrupt(previous: object) -> object:
    """An unraisable-exception hook that hands a Ctrl-C caught where Python can only print
    it (a weakref callback in the import system, "Exception ignored in ...", with a
    traceback) back to the main thread, where it ends the command like any other."""
    import _thread

    def hook(unraisable: object) -> None:
        if getattr(unraisable, "exc_type", None) is KeyboardInterrupt:
            try:
                _thread.interrupt_main()
            except KeyboardInterrupt:
                # on the main thread the simulated Ctrl-C can land inside this hook, where
                # Python would only print it: hand it over again from another thread, so
                # that it lands once the hook has returned
                import threading

                threading.Thread(target=_thread.interrupt_main, daemon=True).start()
            return
        previous(unraisable)  # type: ignore[operator]

    return hook


def main() -> None:
    sys.unraisablehook = _unraisable_interrupt(sys.unraisablehook)  # type: ignore[assignment]
    try:
        try:
            require_cli()
            from baton.cli import main as cli_main

            cli_main()
        finally:
            # The command is over. A Ctrl-C from now on changes nothing, and it would find
            # the interpreter shutting down with SIGINT's default action back (death by
            # signal). signal.signal first raises a Ctrl-C that is already pending.
            import signal  # here, not above: it takes a while to import

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            sys.stdout.flush()  # here, where a closed pipe is caught, not at shutdown
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        quiet_stdout()
        raise SystemExit(EXIT_BROKEN_PIPE) from None


if __name__ == "__main__":
    main()
