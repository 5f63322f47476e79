"""The runtime's strictness: arrays of the declared dtype run unchanged, everything else is
validated and converted (widening only) or refused with the input named; concurrent runs;
warm-up; golden self-check on load; explicit providers."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import baton
from baton.errors import InputValidationError, ParityError
from baton.runtime import Session
from baton.schema import to_feeds


@pytest.fixture(scope="module")
def float32_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    path = baton.convert(net.eval(), torch.randn(16, 4), tune=False).save(
        tmp_path_factory.mktemp("f32") / "net.baton")
    return path, net


def test_float64_array_for_a_float32_input_is_refused(float32_bundle: tuple[Path, Any]
                                                      ) -> None:
    path, _ = float32_bundle
    sess = Session(path)
    x = np.random.default_rng(0).normal(size=(3, 4))
    with pytest.raises(InputValidationError,
                       match=r"input 'input': expected float32 \[N, 4\], got float64 \[3, 4\]"
                       ) as err:
        sess.run({"input": x})
    assert "astype(np.float32)" in str(err.value)
    assert sess.run({"input": x.astype(np.float32)})["output"].shape == (3, 2)


def test_wrong_rank_and_width_name_the_input(float32_bundle: tuple[Path, Any]) -> None:
    sess = Session(float32_bundle[0])
    with pytest.raises(InputValidationError, match=r"input 'input'.*float32 \[5\]"):
        sess.run({"input": np.zeros(5, np.float32)})
    with pytest.raises(InputValidationError, match="4 values per row"):
        sess.run({"input": np.zeros((2, 3), np.float32)})
    with pytest.raises(InputValidationError, match="unknown output 'logits'"):
        sess.run({"input": np.zeros((2, 4), np.float32)}, outputs=["logits"])


def test_lists_are_validated_not_truncated(mixed_bundle_dir: Path) -> None:
    sess = Session(mixed_bundle_dir)
    base = {"age": [[30.0]], "tenure_months": [[12]], "monthly_charge": [[50.0]],
            "city": [["Oslo"]], "plan": [["pro"]]}
    with pytest.raises(InputValidationError, match="tenure_months"):
        sess.run({**base, "tenure_months": [[12.5]]})
    with pytest.raises(InputValidationError, match="tenure_months"):
        sess.run({**base, "tenure_months": np.array([[12.5]])})
    # whole numbers as floats, a 1-D column and an int array for a float64 input: widened
    ok = sess.run({**base, "tenure_months": np.array([12.0]), "age": np.array([[30]])})
    ref = sess.run({k: np.asarray(v, dtype=object if k in ("city", "plan") else None)
                    for k, v in base.items()})
    np.testing.assert_array_equal(ok["probabilities"], ref["probabilities"])


def test_bytes_text_is_decoded_like_str(mixed_bundle_dir: Path, mixed_frame: Any) -> None:
    sess = Session(mixed_bundle_dir)
    feeds = to_feeds(mixed_frame.iloc[:20], sess.inputs)
    as_bytes = {**feeds, "city": feeds["city"].astype(str).astype(bytes)}
    np.testing.assert_array_equal(sess.run(as_bytes)["label"], sess.run(feeds)["label"])


def test_inputs_of_different_lengths_are_refused(mixed_bundle_dir: Path, mixed_frame: Any
                                                 ) -> None:
    sess = Session(mixed_bundle_dir)
    feeds = to_feeds(mixed_frame.iloc[:5], sess.inputs)
    feeds["age"] = feeds["age"][:3]
    with pytest.raises(InputValidationError, match="different numbers of rows"):
        sess.run({k: v.tolist() for k, v in feeds.items()})


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.integers(0, 399), min_size=1, max_size=12))
def test_array_and_list_feeds_give_the_same_outputs(mixed_bundle_dir: Path, mixed_frame: Any,
                                                    rows: list[int]) -> None:
    sess = Session(mixed_bundle_dir)
    feeds = to_feeds(mixed_frame.iloc[rows], sess.inputs)
    fast = sess.run(feeds)
    validated = sess.run({k: v.tolist() for k, v in feeds.items()})
    for name in fast:
        np.testing.assert_array_equal(fast[name], validated[name])


def test_concurrent_runs_agree(mixed_bundle_dir: Path, mixed_frame: Any) -> None:
    sess = Session(mixed_bundle_dir)
    chunks = [to_feeds(mixed_frame.iloc[i:i + 7], sess.inputs) for i in range(0, 280, 7)]
    expected = [sess.run(c)["probabilities"] for c in chunks]
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for k in range(len(chunks)):
                i = (k + offset) % len(chunks)
                np.testing.assert_array_equal(sess.run(chunks[i])["probabilities"], expected[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t * 5,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_self_check_and_warmup(mixed_bundle_dir: Path) -> None:
    sess = Session(mixed_bundle_dir, self_check=True)
    sess.warmup(runs=2)


def test_self_check_fails_on_a_wrong_golden_output(mixed_bundle_dir: Path, tmp_path: Path
                                                   ) -> None:
    bundle = baton.load(mixed_bundle_dir)
    bundle.golden_outputs["probabilities"] = bundle.golden_outputs["probabilities"][:, ::-1]
    path = bundle.save(tmp_path / "wrong.baton")  # hashes match: the vectors are wrong
    Session(path)  # loads: self_check is off by default
    with pytest.raises(ParityError, match="golden output 'probabilities'"):
        Session(path, self_check=True)


def test_unavailable_provider_is_dropped_with_a_warning(mixed_bundle_dir: Path) -> None:
    from baton.runtime import available_providers

    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sess = Session(mixed_bundle_dir, providers=["cuda", "cpu"])
    assert any("cuda" in str(w.message) and w.category is RuntimeWarning for w in caught)
    assert sess.providers == ["CPUExecutionProvider"]
