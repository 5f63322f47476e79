"""``baton demo -o DIR`` never deletes a file it did not write: a directory holding other
files is refused without --force, and --force replaces only the demo's own files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from baton.cli import app
from baton.demo import DEMO_FILES, check_directory
from baton.errors import UsageError

runner = CliRunner()


def _plant_user_files(d: Path) -> dict[Path, str]:
    """A notebook, a data file and a nested folder, as in a real working directory."""
    files = {d / "analysis.ipynb": "{}", d / "data" / "train.csv": "a,b\n1,2\n",
             d / ".env": "SECRET=1"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def _intact(files: dict[Path, str]) -> None:
    for path, text in files.items():
        assert path.is_file(), f"{path} was deleted"
        assert path.read_text() == text, f"{path} was changed"


def _demo_written(d: Path) -> None:
    for name in DEMO_FILES:
        assert (d / name).exists(), f"the demo did not write {name}"
    assert (d / "breast-cancer.baton" / "baton.json").is_file()


def test_demo_into_the_working_directory_refuses_and_keeps_every_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _plant_user_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "-o", "."])
    assert result.exit_code == 2, result.output
    assert "--force" in result.output and "not empty" in result.output
    assert "analysis.ipynb" in result.output
    _intact(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "analysis.ipynb", "data"]


def test_demo_force_writes_its_files_and_leaves_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _plant_user_files(tmp_path)
    (tmp_path / "check-report.json").write_text("stale")  # one of the demo's own: replaced
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "-o", ".", "--force"])
    assert result.exit_code == 0, result.output
    _intact(files)
    _demo_written(tmp_path)
    assert (tmp_path / "check-report.json").read_text() != "stale"


def test_demo_into_a_new_directory_then_again_into_its_own_output(tmp_path: Path) -> None:
    out = tmp_path / "never" / "existed"
    first = runner.invoke(app, ["demo", "-o", str(out)])
    assert first.exit_code == 0, first.output
    _demo_written(out)
    # rerunning into an earlier demo's output (what the docs do) needs no --force
    again = runner.invoke(app, ["demo", "-o", str(out)])
    assert again.exit_code == 0, again.output
    _demo_written(out)
    # ... until the directory holds something else
    (out / "mine.txt").write_text("mine")
    refused = runner.invoke(app, ["demo", "-o", str(out)])
    assert refused.exit_code == 2
    assert "mine.txt" in refused.output
    assert (out / "mine.txt").read_text() == "mine"


def test_demo_into_an_empty_directory_needs_no_force(tmp_path: Path) -> None:
    check_directory(tmp_path)  # no error


def test_demo_onto_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "model.txt"
    target.write_text("keep")
    result = runner.invoke(app, ["demo", "-o", str(target), "--force"])
    assert result.exit_code == 2
    assert "not a directory" in result.output
    assert target.read_text() == "keep"


_NAME = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(
    lambda n: n not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(own=st.sets(st.sampled_from(DEMO_FILES)), others=st.sets(_NAME, min_size=1, max_size=4))
def test_any_foreign_file_makes_the_directory_refused(tmp_path_factory: pytest.TempPathFactory,
                                                      own: set[str], others: set[str]) -> None:
    d = tmp_path_factory.mktemp("demo")
    names = own | others
    for name in names:
        (d / name).write_text(name)
    foreign = sorted(names - set(DEMO_FILES))
    if foreign:
        with pytest.raises(UsageError, match="not empty") as err:
            check_directory(d)
        assert foreign[0] in str(err.value)
    check_directory(d, force=True)  # allowed; it only decides, it writes nothing
    assert sorted(p.name for p in d.iterdir()) == sorted(names)
    assert all((d / n).read_text() == n for n in names)


def test_demo_names_alone_without_an_earlier_bundle_are_refused(tmp_path: Path) -> None:
    """A user's own model.skops in an otherwise empty directory is not an earlier demo's."""
    (tmp_path / "model.skops").write_text("a user's model")
    with pytest.raises(UsageError, match="not empty"):
        check_directory(tmp_path)
