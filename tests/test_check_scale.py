"""Issue 18's done-when: ``baton check`` over a Parquet file of 1,000,000 rows streams it in
bounded memory: the child process's peak RSS stays under 1.5 GB, and the report says all
1,000,000 rows were compared.

The file is written in chunks (the test's own memory stays low too); the model is a small
logistic regression on six float columns, converted here on a thousand rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROWS = 1_000_000
CHUNK = 100_000
COLUMNS = [f"x{i}" for i in range(6)]
LIMIT_BYTES = 1.5 * 1024**3
WEIGHTS = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])


def _chunk(seed: int, n: int) -> Any:
    import pandas as pd

    x = np.random.default_rng(seed).normal(size=(n, len(COLUMNS)))
    return pd.DataFrame(x, columns=COLUMNS)


def _write_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for i in range(ROWS // CHUNK):
            table = pa.Table.from_pandas(_chunk(100 + i, CHUNK), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _peak_rss(cmd: list[str]) -> tuple[int, int, str]:
    """Run ``cmd``; its exit status, its peak RSS in bytes (this child only: wait4) and
    its output."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        output = proc.stdout.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return proc.returncode, int(usage.ru_maxrss) * scale, output


def test_check_of_a_million_rows_in_bounded_memory(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    import baton

    train = _chunk(0, 1_000)
    model = LogisticRegression().fit(train, (train.to_numpy() @ WEIGHTS > 0).astype(int))
    sio.dump(model, tmp_path / "model.skops")
    baton.convert(model, train, name="scale").save(tmp_path / "scale.baton")
    data = tmp_path / "big.parquet"
    _write_parquet(data)
    out = tmp_path / "report.json"
    code, rss, output = _peak_rss([
        sys.executable, "-m", "baton.cli", "check", str(tmp_path / "model.skops"),
        str(tmp_path / "scale.baton"), "--data", str(data), "--no-search", "--json", str(out)])
    assert code == 0, output
    report = json.loads(out.read_text())
    assert report["rows"] == ROWS and report["passed"]
    assert all(o["rows"] == ROWS for o in report["outputs"])
    print(f"peak RSS of baton check over {ROWS:,} rows: {rss / 2**20:,.0f} MiB")
    assert rss < LIMIT_BYTES, f"peak RSS {rss / 2**20:,.0f} MiB"
