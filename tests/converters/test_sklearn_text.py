"""CountVectorizer / TfidfVectorizer / TfidfTransformer without a locale (baton's own
converters, baton/converters/_sklearn_own/text.py): exact against scikit-learn on mixed-case,
accented, Turkish, Greek and emoji text. Nothing here reads or sets the machine's locale; the
graphs must not need one (run with LANG=C LC_ALL=C)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import baton
from baton.errors import UnsupportedModelError

WORDS = ["École", "ÉCOLE", "école", "Straße", "STRASSE", "İstanbul", "istanbul", "İİab",
         "ΣΑΣ", "σας", "ΟΔΟΣ", "οδός", "ΑΣ'Α", "Α.ΣΒ", "Über", "naïve", "café", "CAFÉ",
         "😀ok", "日本語", "data", "Data", "DATA", "ǅemal", "x2", "42", "_id", "ﬁne", "Ⅻ"]
SEPS = [" ", ", ", ". ", "'", ":", "\n", "  ", "-", "\t"]
GREEK = ["ΑΣ'Α", "ΟΔΟΣ.", "ΣΑΣ σας", "Σ1 Α.Σ1", "ʰΣ ΑΣʰ", "ΑΣ'", "ΑΣ.Β", "ΣΣ ΑΣΣ", "Α\u0301Σ"]


def _corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        k = int(rng.integers(0, 9))
        parts = [str(rng.choice(WORDS)) + str(rng.choice(SEPS)) for _ in range(k)]
        docs.append("".join(parts))
    return docs


DOCS = _corpus(120, 0) + GREEK
Y = np.arange(len(DOCS)) % 2


def _frame(docs: list[str]) -> pd.DataFrame:
    n = np.arange(len(docs), dtype=np.float64)
    return pd.DataFrame({"review": docs, "stars": n % 5, "price": np.sqrt(n)})


def _transform(bundle: baton.Bundle, docs: list[str]) -> np.ndarray:
    """The bundle's first output on ``_frame(docs)``, run by plain onnxruntime."""
    sess = ort.InferenceSession(bundle.model_bytes)
    df = _frame(docs)
    feeds = {"review": np.array(docs, dtype=object).reshape(-1, 1),
             "stars": df[["stars"]].to_numpy(), "price": df[["price"]].to_numpy()}
    return sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0]


def _text_only(vec: object) -> ColumnTransformer:
    ct = ColumnTransformer([("text", vec, "review")])
    return ct.fit(_frame(DOCS))


def _dense(x: object) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x)


def test_tfidf_logistic_regression_on_a_dataframe() -> None:
    df = _frame(DOCS)
    model = make_pipeline(ColumnTransformer([("text", TfidfVectorizer(), "review")]),
                          LogisticRegression(max_iter=500)).fit(df, Y)
    bundle = baton.convert(model, df)
    assert bundle.report.passed, bundle.report
    ops = {n.op_type for n in bundle.onnx_model.graph.node}
    assert "StringNormalizer" not in ops  # the locale-bound op is gone
    report = baton.check(model, bundle, df)  # with the default parity search
    assert report.passed, report


def test_count_vectorizer_with_numeric_columns() -> None:
    df = _frame(DOCS)
    ct = ColumnTransformer([("text", CountVectorizer(ngram_range=(1, 2)), "review"),
                            ("num", StandardScaler(), ["stars", "price"])])
    model = make_pipeline(ct, LogisticRegression(max_iter=500)).fit(df, Y)
    bundle = baton.convert(model, df)
    report = baton.check(model, bundle, df, search=False)
    assert report.passed, report
    got = _transform(baton.convert(ct, df), DOCS)
    want = _dense(ct.transform(df))
    np.testing.assert_array_equal(got[:, :-2], want[:, :-2])  # the counts, exactly
    np.testing.assert_allclose(got[:, -2:], want[:, -2:], rtol=1e-12)


OPTIONS = [
    CountVectorizer(),
    CountVectorizer(binary=True, ngram_range=(1, 3), stop_words=["data", "école", "σας"]),
    CountVectorizer(lowercase=False, token_pattern=r"(?u)\b\w+\b", ngram_range=(2, 2)),
    CountVectorizer(strip_accents="ascii", max_features=12, min_df=2),
    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, norm=None),
    TfidfVectorizer(norm="l1", use_idf=False),
    TfidfVectorizer(smooth_idf=False, max_df=0.5, stop_words="english", dtype=np.float32),
    TfidfVectorizer(analyzer="char", ngram_range=(2, 4), strip_accents="ascii"),
    CountVectorizer(analyzer="char", lowercase=False, binary=True),
    make_pipeline(CountVectorizer(ngram_range=(1, 2)), TfidfTransformer(sublinear_tf=True)),
]


@pytest.mark.parametrize("vec", OPTIONS, ids=lambda v: repr(v)[:60])
def test_options_match_scikit_learn(vec: object) -> None:
    ct = _text_only(vec)
    df = _frame(DOCS)
    bundle = baton.convert(ct, df)
    assert bundle.report.passed, bundle.report  # baton's own parity run on the sample
    got = _transform(bundle, DOCS)
    want = _dense(ct.transform(df))
    assert got.shape == want.shape
    tol = 1e-6 if got.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_greek_final_sigma_and_turkish_dotted_i() -> None:
    docs = GREEK + ["İstanbul İİab ıi", "ΣΑΣ", "ΑΣ", "", "   ", "ς σ"]
    ct = ColumnTransformer([("text", CountVectorizer(token_pattern=r"(?u)\b\w+\b"),
                             "review")]).fit(_frame(DOCS + docs))
    vec = ct.named_transformers_["text"]
    got = _transform(baton.convert(ct, _frame(DOCS + docs)), docs)
    np.testing.assert_array_equal(got, _dense(vec.transform(docs)))
    assert "ς" in vec.vocabulary_ and "σ" in vec.vocabulary_


LETTERS = st.characters(codec="utf-8", categories=["L", "N", "Zs", "P", "Mn", "Lm", "So"])
DOC = st.one_of(st.text(LETTERS, max_size=30),
                st.lists(st.sampled_from(WORDS + SEPS + GREEK), max_size=12).map("".join))


@pytest.fixture(scope="module")
def fitted() -> tuple[ColumnTransformer, baton.Bundle]:
    ct = _text_only(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))
    return ct, baton.convert(ct, _frame(DOCS))


@pytest.fixture(scope="module")
def fitted_chars() -> tuple[ColumnTransformer, baton.Bundle]:
    ct = _text_only(CountVectorizer(analyzer="char", ngram_range=(1, 3)))
    return ct, baton.convert(ct, _frame(DOCS))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(docs=st.lists(DOC, min_size=1, max_size=8))
def test_generated_unicode_text(fitted: tuple[ColumnTransformer, baton.Bundle],
                                docs: list[str]) -> None:
    ct, bundle = fitted
    got = _transform(bundle, docs)
    np.testing.assert_allclose(got, _dense(ct.transform(_frame(docs))), rtol=1e-12,
                               atol=1e-12)


WHITE = st.lists(st.sampled_from(WORDS + GREEK + [" ", "  ", "\t\n", "\u3000", "\x85 "]),
                 max_size=10).map("".join)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(docs=st.lists(st.one_of(DOC, WHITE), min_size=1, max_size=6))
def test_generated_text_char_ngrams(fitted_chars: tuple[ColumnTransformer, baton.Bundle],
                                    docs: list[str]) -> None:
    ct, bundle = fitted_chars
    got = _transform(bundle, docs)
    np.testing.assert_array_equal(got, _dense(ct.transform(_frame(docs))))


def test_generated_text_through_check(fitted: tuple[ColumnTransformer, baton.Bundle]) -> None:
    ct, bundle = fitted
    docs = [d + " " + w for d in _corpus(20, 1) for w in ("ΣΑΣ", "İSTANBUL", "😀")]
    report = baton.check(ct, bundle, _frame(docs))
    assert report.passed, report


@pytest.mark.parametrize("sublinear", [False, True])
def test_tfidf_transformer_on_numbers(sublinear: bool) -> None:
    from sklearn.datasets import make_classification

    X = np.abs(make_classification(300, 6, random_state=0)[0])
    model = TfidfTransformer(sublinear_tf=sublinear, norm="l1" if sublinear else "l2").fit(X)
    bundle = baton.convert(model, X)
    # the parity search (with its rows of zeros) once; the sample for the other case
    report = baton.check(model, bundle, X, search=not sublinear)
    assert report.passed, report


def test_bare_pipeline_through_skl2onnx() -> None:
    """Without a ColumnTransformer the vectorizer takes the [N, 1] text input itself."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    from baton.converters._sklearn_own import register

    register()
    model = make_pipeline(CountVectorizer(ngram_range=(1, 2)), TfidfTransformer(),
                          LogisticRegression(max_iter=500)).fit(DOCS, Y)
    final = model.steps[-1][1]
    onx = convert_sklearn(model, initial_types=[("text", StringTensorType([None, 1]))],
                          options={id(final): {"zipmap": False}},
                          target_opset={"": 18, "ai.onnx.ml": 3})
    docs = DOCS + ["\x00ΣΑΣ\r\nİstanbul", "data " * 3000 + "ΣΑΣ"]
    label, proba = ort.InferenceSession(onx.SerializeToString()).run(
        None, {"text": np.array(docs, dtype=object).reshape(-1, 1)})
    np.testing.assert_array_equal(label, model.predict(docs))
    np.testing.assert_allclose(proba, model.predict_proba(docs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("vec", "words"), [
    (CountVectorizer(analyzer="char_wb", ngram_range=(2, 3)), "analyzer='char_wb'"),
    (CountVectorizer(tokenizer=str.split, token_pattern=None), "custom tokenizer"),
    (CountVectorizer(preprocessor=str.strip), "custom preprocessor"),
    (TfidfVectorizer(strip_accents="unicode"), "strip_accents='unicode'"),
    (CountVectorizer(token_pattern=r"[a-z]+"), "token pattern"),
])
def test_refusals(vec: object, words: str) -> None:
    ct = _text_only(vec)
    with pytest.raises(UnsupportedModelError, match="cannot convert this") as info:
        baton.convert(ct, _frame(DOCS))
    assert words.split("=")[0] in str(info.value)


def test_a_bare_vectorizer_on_a_list_of_documents() -> None:
    """A list (or 1-D array) of documents is one text column; the original reads the list."""
    docs = [f"Doc {i} café CAFÉ naïve Straße {'x' * (i % 5)}" for i in range(60)]
    y = np.arange(60) % 2
    for model in (TfidfVectorizer().fit(docs),
                  make_pipeline(CountVectorizer(), LogisticRegression()).fit(docs, y)):
        bundle = baton.convert(model, docs)
        assert [(i.shape, i.dtype) for i in bundle.typed_manifest.inputs] == [
            (("N", 1), "string")]
        assert baton.check(model, bundle, np.asarray(docs[:25], dtype=object)).passed


def test_hashing_vectorizer_is_refused_with_a_remedy() -> None:
    from sklearn.feature_extraction.text import HashingVectorizer

    docs = ["one text", "another text"]
    with pytest.raises(UnsupportedModelError) as info:
        baton.convert(HashingVectorizer().fit(docs), docs)
    assert "HashingVectorizer" in str(info.value)
    assert "CountVectorizer or TfidfVectorizer" in info.value.hint


def test_an_explicit_opset_below_20_is_refused_for_text() -> None:
    from baton.errors import UsageError

    docs = ["one text", "another text"]
    with pytest.raises(UsageError, match="opset 20"):
        baton.convert(CountVectorizer().fit(docs), docs, opset=18)
