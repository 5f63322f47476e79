"""The issue's user path, per library: a native model file and a Parquet file that still
holds the target column; `baton convert` then `baton check` exit 0 with zero disagreements."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from baton.cli import app
from tests.converters.tree_data import COLUMNS, class_target, enterprise_matrix, regression_target

pd = pytest.importorskip("pandas")


def _frame() -> Any:
    X = enterprise_matrix(1500, seed=3)
    frame = pd.DataFrame(X, columns=COLUMNS)
    frame["target"] = class_target(X, 2)
    frame["amount"] = regression_target(X)
    return frame


def _lightgbm(frame: Any, path: Path) -> Path:
    lgb = pytest.importorskip("lightgbm")
    model = lgb.LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1).fit(
        frame[COLUMNS], frame["target"])
    model.booster_.save_model(path / "model.txt")
    return path / "model.txt"


def _xgboost(frame: Any, path: Path) -> Path:
    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBRegressor(n_estimators=40, max_depth=5, n_jobs=1).fit(
        frame[COLUMNS], frame["amount"])
    model.save_model(path / "model.json")
    return path / "model.json"


def _catboost(frame: Any, path: Path) -> Path:
    cb = pytest.importorskip("catboost")
    model = cb.CatBoostClassifier(iterations=40, depth=4, verbose=False, thread_count=1,
                                  allow_writing_files=False).fit(frame[COLUMNS],
                                                                 frame["target"])
    model.save_model(str(path / "model.cbm"))
    return path / "model.cbm"


def _sklearn(frame: Any, path: Path) -> Path:
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=40).fit(frame[COLUMNS], frame["amount"])
    sio.dump(model, path / "model.skops")
    return path / "model.skops"


@pytest.mark.parametrize("save", [_lightgbm, _xgboost, _catboost, _sklearn],
                         ids=["lightgbm", "xgboost", "catboost", "scikit-learn"])
def test_convert_and_check_native_file(save: Callable[[Any, Path], Path],
                                       tmp_path: Path) -> None:
    frame = _frame()
    model_file = save(frame, tmp_path)
    data = tmp_path / "data.parquet"
    frame.to_parquet(data)
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(model_file), "--sample", str(data),
                              "-o", str(tmp_path / "m.baton")])
    assert out.exit_code == 0, out.output
    report_file = tmp_path / "report.json"
    out = runner.invoke(app, ["check", str(model_file), str(tmp_path / "m.baton"),
                              "--data", str(data), "--json", str(report_file)])
    assert out.exit_code == 0, out.output
    import json

    report = json.loads(report_file.read_text())
    assert report["passed"] and report["rows"] == len(frame)
    for o in report["outputs"]:
        assert o["mismatched_rows"] == 0
    columns = json.loads((tmp_path / "m.baton" / "baton.json").read_text())["inputs"][0]
    assert columns["columns"] == COLUMNS  # read by name: the target column is left out
    assert np.isfinite(report["outputs"][0]["rows"])
