"""The direct call into onnxruntime's C++ session (``_direct_run``): the same results and
errors as onnxruntime's public ``InferenceSession.run``, which every call takes when it is
switched off (``BATON_DIRECT_RUN=0``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import baton
from baton.errors import InputValidationError
from baton.runtime import Session


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    model = LogisticRegression().fit(X, (X[:, 0] + X[:, 2] > 0).astype(np.int64))
    return baton.convert(model, X, tune=False).save(tmp_path_factory.mktemp("d") / "lr.baton")


def _public(path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("BATON_DIRECT_RUN", "0")
    return Session(path)


def test_switched_off_every_call_takes_the_public_path(bundle: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    direct = Session(bundle)
    public = _public(bundle, monkeypatch)
    assert direct._binding == direct._session._sess.run
    assert public._binding != public._session._sess.run
    calls: list[int] = []
    inner = public._session.run
    public._session.run = lambda *a, **k: (calls.append(1), inner(*a, **k))[1]  # type: ignore
    x = np.random.default_rng(1).normal(size=(7, 4))
    name = public.inputs[0].name
    got = public.run({name: x})
    assert calls == [1]  # InferenceSession.run, with its own checks, ran
    want = direct.run({name: x})
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 9), st.just(4)),
                    elements=st.floats(-1e6, 1e6)))
def test_both_paths_give_the_same_outputs(bundle: Path, x: np.ndarray) -> None:
    direct = Session(bundle)
    old = os.environ.get("BATON_DIRECT_RUN")
    os.environ["BATON_DIRECT_RUN"] = "0"
    try:
        public = Session(bundle)
    finally:
        if old is None:
            del os.environ["BATON_DIRECT_RUN"]
        else:
            os.environ["BATON_DIRECT_RUN"] = old
    name = direct.inputs[0].name
    a, b = direct.run({name: x}), public.run({name: x})
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("feeds", [
    {"nope": np.zeros((2, 4))},  # an unknown name
    "x",  # not a dict
])
def test_both_paths_refuse_the_same_bad_feeds(bundle: Path, monkeypatch: pytest.MonkeyPatch,
                                              feeds: object) -> None:
    for sess in (Session(bundle), _public(bundle, monkeypatch)):
        with pytest.raises(InputValidationError):
            sess.run(feeds)  # type: ignore[arg-type]


def test_the_switch_works_in_a_fresh_process(bundle: Path) -> None:
    code = ("import numpy as np\nfrom baton.runtime import Session\n"
            f"s = Session({str(bundle)!r})\nprint(s._binding != s._session._sess.run)\n"
            "print(s.run({s.inputs[0].name: np.zeros((3, 4))})['label'].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "BATON_DIRECT_RUN": "0"})
    assert out.stdout.splitlines() == ["True", str(Session(bundle).run(
        {Session(bundle).inputs[0].name: np.zeros((3, 4))})["label"].tolist())]
