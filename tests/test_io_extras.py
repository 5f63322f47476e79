"""Reading CSV or Parquet data without pandas names the `pandas` extra: a real import failure
in a fresh interpreter (``sys.modules[...] = None`` makes ``import pandas`` raise
ModuleNotFoundError there), not a mock of pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = """
import sys
for name in sys.argv[2].split(","):
    sys.modules[name] = None            # import NAME now raises ModuleNotFoundError
import baton
from baton.io import read_data
try:
    read_data(sys.argv[1])
except baton.MissingDependencyError as exc:
    print(exc)
    raise SystemExit(exc.exit_code)
print("read without", sys.argv[2])
"""


def read_without(path: Path, hidden: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, str(path), hidden],
                          capture_output=True, text=True, cwd=path.parent)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reading_a_table_without_pandas_names_the_extra(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    path = tmp_path / f"data{suffix}"
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)

    out = read_without(path, "pandas")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "needs the Python package 'pandas'" in out.stdout
    assert "pip install 'baton[pandas]'" in out.stdout
    assert "check the file is complete" not in out.stdout
    assert "Traceback" not in out.stderr


def test_reading_parquet_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "data.parquet"
    pd.DataFrame({"a": [1.0, 2.0]}).to_parquet(path)
    out = read_without(path, "pyarrow")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "'pyarrow'" in out.stdout and "pip install 'baton[pandas]'" in out.stdout


def test_arrays_need_no_pandas(tmp_path: Path) -> None:
    """The check above can pass: .npy files read with pandas unimportable."""
    path = tmp_path / "data.npy"
    np.save(path, np.zeros((2, 3)))
    out = read_without(path, "pandas")
    assert out.returncode == 0 and "read without pandas" in out.stdout, out.stdout + out.stderr


def test_npz_features_beside_labels_or_several_inputs(tmp_path: Path) -> None:
    """``X`` beside its labels is the one array; ``x`` beside another input is one of a
    dict of inputs (a two-input PyTorch program's ``np.savez(f, x=..., y_mask=...)``)."""
    from baton.io import read_data

    X, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    np.testing.assert_array_equal(read_data(tmp_path / "xy.npz"), X)
    np.savez(tmp_path / "two.npz", x=X, mask=y)
    got = read_data(tmp_path / "two.npz")
    assert isinstance(got, dict) and sorted(got) == ["mask", "x"]
    np.testing.assert_array_equal(got["mask"], y)
