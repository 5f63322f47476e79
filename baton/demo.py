"""``baton demo``: the whole path on a dataset that ships inside scikit-learn (no download).

Trains a Pipeline on scikit-learn's breast-cancer data (569 tumours, 30 measurements),
with a derived text column (``size_band``) and a few blanked values so that the pipeline
has the usual mix of a notebook model: imputation, scaling, one-hot encoding, a classifier.
Then converts it, checks parity on held-out rows, and writes everything to one directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton.errors import UsageError, require
from baton.results.report import Report


@dataclass
class DemoResult:
    directory: Path
    model_file: Path
    data_file: Path
    bundle: Path
    report: Report
    report_json: Path
    junit: Path


def train_demo_model(seed: int = 0) -> tuple[Any, Any, Any]:
    """The demo pipeline and its train/test DataFrames."""
    require("sklearn", "sklearn", "baton demo")
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    rng = np.random.default_rng(seed)
    frame["size_band"] = np.select(
        [frame["mean_radius"] < 12, frame["mean_radius"] < 16], ["small", "medium"], "large"
    ).astype(object)
    blank = rng.random(len(frame)) < 0.05
    frame.loc[blank, "mean_texture"] = np.nan
    numeric = [c for c in frame.columns if c != "size_band"]
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([
            ("numbers", Pipeline([("impute", SimpleImputer(strategy="median")),
                                  ("scale", StandardScaler())]), numeric),
            ("bands", OneHotEncoder(handle_unknown="ignore"), ["size_band"]),
        ])),
        ("classify", LogisticRegression(max_iter=2000)),
    ])
    X_train, X_test, y_train, _ = train_test_split(
        frame, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    pipeline.fit(X_train, y_train)
    return pipeline, X_train, X_test


#: What the demo writes into its directory, and nothing else.
DEMO_FILES = ("model.skops", "holdout.csv", "breast-cancer.baton", "check-report.json",
              "check-junit.xml")


def check_directory(out: Path, force: bool = False) -> None:
    """Refuse a directory the demo may not write into: a file, or a directory holding
    anything but an earlier demo's files, unless ``force`` (which still only overwrites the
    demo's own files)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is not a directory", expected="a directory for the demo's "
                         "files (it need not exist)", found="an existing file",
                         hint="pass another -o/--output")
    if force or not out.exists():
        return
    entries = sorted(p.name for p in out.iterdir())
    others = [n for n in entries if n not in DEMO_FILES]
    earlier_demo = (out / "breast-cancer.baton" / "baton.json").is_file()
    if others or (entries and not earlier_demo):
        shown = others or entries
        raise UsageError(
            f"{out} is not empty, and not an earlier demo's output",
            expected="a new or empty directory, or one holding only the demo's files ("
            + ", ".join(DEMO_FILES) + ")",
            found=", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5
                                          else ""),
            hint="pass another -o/--output (e.g. -o baton-demo), or --force to write the demo's "
            "files there anyway (it replaces only those, and leaves every other file alone)",
        )


def run_demo(directory: str | Path = "baton-demo", *, force: bool = False) -> DemoResult:
    """Train, convert and check the demo model, writing the files of :data:`DEMO_FILES` into
    ``directory``. A new or empty directory, or an earlier demo's output, is written without
    ``force``; anything else needs ``force``. No other file in it is touched either way."""
    import skops.io as sio

    import baton

    out = Path(directory)
    check_directory(out, force)
    model, X_train, X_test = train_demo_model()
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / "model.skops"
    sio.dump(model, model_file)
    data_file = out / "holdout.csv"
    X_test.to_csv(data_file, index=False)
    bundle = baton.convert(model, X_train, name="breast-cancer")
    bundle_path = bundle.save(out / "breast-cancer.baton", force=True)
    report = baton.check(model, bundle_path, baton.io.read_data(data_file))
    report.data = str(data_file)
    report_json = report.write_json(out / "check-report.json")
    junit = report.write_junit(out / "check-junit.xml")
    return DemoResult(out, model_file, data_file, bundle_path, report, report_json, junit)
