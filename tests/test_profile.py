"""The profile of the conversion sample: bins and categories observed, PSI against new data,
stored in baton.json and validated when read back."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import baton
from baton.errors import BundleError
from baton.profile import SMOOTHING, Profile, psi
from tests.conftest import make_mixed_frame


def test_observed_columns_bins_and_categories() -> None:
    frame = make_mixed_frame(400, seed=0)
    profile = Profile.observe(frame)
    assert list(profile.columns) == list(frame.columns)  # named as the envelope names them
    assert profile.rows == 400
    age = profile.columns["age"]
    assert age.kind == "numeric" and len(age.edges) == 9  # deciles: 9 edges, 10 bins
    assert list(age.edges) == sorted(age.edges)
    # each decile bin holds about a tenth of the sample
    assert all(abs(s - 0.1) < 0.02 for s in age.shares)
    charge = profile.columns["monthly_charge"]
    nan_share = float(frame["monthly_charge"].isna().mean())
    assert charge.missing == pytest.approx(nan_share) and nan_share > 0
    assert sum(charge.shares) + charge.missing == pytest.approx(1.0)
    city = profile.columns["city"]
    assert city.kind == "categorical" and set(city.categories) == {"Lyon", "Oslo", "Lima", "Pune"}
    counts = frame["city"].value_counts(normalize=True)
    assert all(city.categories[c] == pytest.approx(counts[c]) for c in counts.index)
    assert profile.columns["plan"].kind == "categorical"  # a pandas Categorical


def test_ties_merge_edges_bool_tensors_and_masks() -> None:
    few = np.array([[0.0], [0.0], [0.0], [1.0]] * 25)
    col = Profile.observe(few).columns["x0"]
    assert len(col.edges) == len(set(col.edges)) <= 2  # equal deciles merged
    assert sum(col.shares) == pytest.approx(1.0)
    flags = Profile.observe({"flag": np.array([True, False, True, True])}).columns["flag"]
    assert flags.kind == "categorical" and flags.categories == {"false": 0.25, "true": 0.75}
    rng = np.random.default_rng(0)
    tensors = Profile.observe({"x": rng.normal(size=(50, 3, 4)).astype(np.float32),
                               "attention_mask": np.ones((50, 6), dtype=np.int64)})
    assert tensors.columns["x"].values == 600  # every value of the tensor
    assert tensors.columns["attention_mask"].kind == "skipped"
    assert "mask" in (tensors.columns["attention_mask"].reason or "")


def test_psi_against_itself_is_about_zero_and_against_a_shift_is_large() -> None:
    frame = make_mixed_frame(400, seed=0)
    profile = Profile.observe(frame)
    for name in frame.columns:
        assert profile.psi(name, frame[name]) < 1e-6
    shifted = frame["age"] + 3 * frame["age"].std()
    assert profile.psi("age", shifted) > 1.0
    other_cities = frame["city"].replace({"Lyon": "Oslo", "Lima": "Oslo"})
    assert profile.psi("city", other_cities) > 0.5


def test_psi_with_empty_bins_is_finite_and_counts_are_returned() -> None:
    profile = Profile.observe(np.linspace(0, 1, 200).reshape(-1, 1))
    far = np.full(50, 1e9)  # every value in the open-ended top bin
    detail = profile.compare("x0", far)
    assert math.isfinite(detail.psi) and detail.psi > 2
    assert detail.counts[-2] == 50 and sum(detail.counts) == 50  # top bin; none missing
    assert detail.labels[-1] == "missing" and detail.labels[-2].startswith("> ")
    # the smoothing the docstring states: (p + s) / (1 + k s)
    e, a = np.array(detail.expected), np.array(detail.counts) / 50
    k = len(e)
    es, as_ = (e + SMOOTHING) / (1 + k * SMOOTHING), (a + SMOOTHING) / (1 + k * SMOOTHING)
    assert detail.psi == pytest.approx(float(np.sum((as_ - es) * np.log(as_ / es))))
    nan = profile.compare("x0", np.full(10, np.nan))  # only missing values
    assert math.isfinite(nan.psi) and nan.counts[-1] == 10


@settings(max_examples=40, deadline=None)
@given(e=st.lists(st.floats(0, 1), min_size=2, max_size=12),
       a=st.lists(st.floats(0, 1), min_size=2, max_size=12))
def test_psi_is_finite_and_not_negative(e: list[float], a: list[float]) -> None:
    k = min(len(e), len(a))
    ev, av = np.array(e[:k]) + 1e-12, np.array(a[:k]) + 1e-12
    value = psi(ev / ev.sum(), av / av.sum())
    assert math.isfinite(value) and value >= -1e-12
    assert psi(ev / ev.sum(), ev / ev.sum()) == pytest.approx(0.0, abs=1e-12)


def test_unseen_categories_go_to_other() -> None:
    profile = Profile.observe({"c": np.array(["a", "b"] * 50, dtype=object)})
    detail = profile.compare("c", np.array(["a", "zzz", "zzz", None], dtype=object))
    assert detail.labels == ["a", "b", "other", "missing"]
    assert detail.counts == [1, 0, 2, 1]


def test_round_trip_through_baton_json(mixed_bundle_dir: Path, mixed_frame: Any) -> None:
    manifest = json.loads((mixed_bundle_dir / "baton.json").read_text())
    assert manifest["profile"]["format"] == "baton-profile/1"
    loaded = baton.load(mixed_bundle_dir).profile
    assert loaded == Profile.observe(mixed_frame)
    assert Profile.from_dict(json.loads(json.dumps(loaded.to_dict(), allow_nan=False))) == loaded


MALFORMED = {
    "format": (lambda p: p.update(format="other/9"), "profile.format"),
    "shares": (lambda p: p["columns"]["age"].update(shares=[0.5]), "profile.columns.age.shares"),
    "edges": (lambda p: p["columns"]["age"].update(edges=[3.0, 1.0] + [0.0] * 7),
              "profile.columns.age.edges"),
    "sum": (lambda p: p["columns"]["city"]["categories"].update(Lyon=0.9),
            "profile.columns.city"),
    "kind": (lambda p: p["columns"]["city"].update(kind="histogram"),
             "profile.columns.city.kind"),
    "missing": (lambda p: p["columns"]["age"].update(missing=2), "profile.columns.age.missing"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_profile_is_refused_naming_it(case: str, mixed_bundle_dir: Path,
                                                 tmp_path: Path) -> None:
    bundle = tmp_path / "b.baton"
    shutil.copytree(mixed_bundle_dir, bundle)
    manifest = json.loads((bundle / "baton.json").read_text())
    change, where = MALFORMED[case]
    change(manifest["profile"])
    (bundle / "baton.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as err:
        baton.load(bundle)
    assert "profile" in str(err.value) and where in str(err.value)


def test_a_bundle_without_a_profile_is_still_valid(mixed_bundle_dir: Path,
                                                  tmp_path: Path) -> None:
    bundle = tmp_path / "old.baton"
    shutil.copytree(mixed_bundle_dir, bundle)
    manifest = json.loads((bundle / "baton.json").read_text())
    del manifest["profile"]
    (bundle / "baton.json").write_text(json.dumps(manifest))
    assert baton.load(bundle).profile is None
    assert baton.verify(bundle)
