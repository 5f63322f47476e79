"""The ``baton`` console script.

It imports the command (typer, rich, and through them numpy and onnx) inside its own
``try``, so that a Ctrl-C in the first moments of any command, while Python is still
importing, exits 130 without a traceback, as one during a command does (``baton/__init__``
imports nothing heavy, so this module runs before those imports). Once the command is over
a Ctrl-C is ignored, rather than killing the interpreter as it shuts down; and a closed pipe
found by the last flush of stdout ends it quietly (141).
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


def main() -> None:
    try:
        try:
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
