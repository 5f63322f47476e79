"""Ctrl-C in the first moments of a `baton` command (while Python is still importing typer,
rich, numpy...) exits 130 without a traceback, like a Ctrl-C during the command.

The console script is started as a user's shell starts it, and SIGINT is sent at delays
counted from the moment the child has imported the entry point, baton._entry (seen on its
stderr through PYTHONPROFILEIMPORTTIME): before it, Python is starting up (site, .pth files:
~25 ms that no Python program can guard) and importing the ``baton`` package, which is
made to import nothing heavy (~3 ms). Counting from there keeps the verdict the same however
loaded the machine is; everything heavy (typer, rich, numpy, onnx) comes after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

BATON = Path(sys.executable).parent / "baton"
DELAYS = (0.01, 0.03, 0.06, 0.1, 0.2, 0.4)

pytestmark = pytest.mark.skipif(os.name != "posix" or not BATON.exists(),
                                reason="needs the installed console script and POSIX signals")


def _interrupt(args: list[str], delay: float) -> tuple[int, str]:
    """Run ``baton ARGS``, send SIGINT ``delay`` s after its first baton module is imported;
    the exit status and stderr."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.Popen([str(BATON), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    lines: list[str] = []
    started = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            module = line.rsplit("|", 1)[-1].strip()
            if line.startswith("import time:") and module == "baton._entry":
                started.set()
        started.set()  # the child ended without importing the entry point: see below

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    assert started.wait(60), "the child did not import baton._entry within 60 s"
    assert proc.poll() is None or any("baton._entry" in line for line in lines), (
        "the console script does not run baton._entry:main: " + "".join(lines)[-2000:])
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    code = proc.wait(60)
    reader.join(10)
    return code, "".join(line for line in lines if not line.startswith("import time:"))


@pytest.mark.parametrize(("args", "finished"), [(["--help"], 0),
                                                (["inspect", "no-such.baton"], 2)])
def test_ctrl_c_while_starting_exits_130_without_traceback(args: list[str],
                                                           finished: int) -> None:
    codes = []
    for delay in DELAYS:
        code, err = _interrupt(args, delay)
        assert "Traceback" not in err, f"SIGINT after {delay}s printed:\n{err}"
        # 130: interrupted; or the command's own exit code: it finished before the signal
        assert code in (130, finished), f"SIGINT after {delay}s: exit {code}\n{err}"
        codes.append(code)
    # the test proves something only if the signal landed while baton was starting up
    assert 130 in codes, f"no delay interrupted baton: exit codes {codes}"


def test_without_a_signal_the_command_exits_normally() -> None:
    """The entry point passes the command's own exit code through (0 for --help, 2 for a
    missing bundle)."""
    assert subprocess.run([str(BATON), "--help"], capture_output=True).returncode == 0
    missing = subprocess.run([str(BATON), "inspect", "no-such.baton"], capture_output=True,
                             text=True)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
