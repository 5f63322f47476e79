"""CountVectorizer, TfidfVectorizer and TfidfTransformer without a locale.

skl2onnx lowercases text with onnxruntime's ``StringNormalizer``, which needs the en_US
locale installed on the machine that runs the model (a slim image has none) and which
lowercases differently from Python anyway. These graphs need no locale: every Unicode table
is built at conversion from Python's own ``str.lower``, ``re``'s ``\\w`` and
``unicodedata``, so the graph reproduces scikit-learn 1.9's ``build_analyzer`` for
``analyzer='word'`` (``_preprocess``, ``token_pattern.findall``, ``_word_ngrams``) and
``analyzer='char'`` (``_char_ngrams``), the counting of ``CountVectorizer._count_vocab`` and
``TfidfTransformer.transform``:

1. lowercase (``str.lower``): the text is split into code points (contrib ``Tokenizer``),
   each mapped through a table of every code point ``str.lower`` changes (``İ`` becomes
   ``i̇``, two code points), and joined back; a capital sigma becomes final ``ς`` by
   Python's own context rule (a cased letter before it and none after it, case-ignorable
   characters skipped), computed over the whole document where the vocabulary holds a
   ``σ`` or ``ς``. ``strip_accents='ascii'`` is the same per-character table composed
   with ``NFKD`` and dropping non-ASCII;
2. tokens: the default ``token_pattern`` (runs of two or more ``\\w`` characters, ``\\w``
   spelt out as the code-point ranges of Python's ``re``, since RE2's ``\\w`` is ASCII);
3. stop words dropped (and the remaining tokens closed up before n-grams), n-grams joined
   by a space; or, for ``analyzer='char'``, runs of two or more white-space characters
   (Python's ``\\s``) made one space and every n-gram of code points inside the text;
   looked up in ``vocabulary_`` and counted (``binary``: 0/1);
4. TF-IDF: ``log(tf) + 1`` on the nonzero counts (``sublinear_tf``), times ``idf_``, and
   rows divided by their l2 or l1 norm unless it is 0 (``normalize``).

Refused with a reason: ``analyzer='char_wb'`` or a callable, a callable
``tokenizer``/``preprocessor``/``strip_accents``, ``strip_accents='unicode'`` (it leaves a
text that is already NFKD untouched, a whole-document rule), ``input`` other than
``'content'`` and a ``token_pattern`` other than ``\\b\\w\\w+\\b`` / ``\\b\\w+\\b``.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit, Own
from baton.errors import UnsupportedModelError

#: token patterns the graph reproduces, by the fewest ``\w`` characters a token holds
_PATTERNS = {r"(?u)\b\w\w+\b": 2, r"\b\w\w+\b": 2, r"(?u)\b\w+\b": 1, r"\b\w+\b": 1}
_MS = "com.microsoft"
_STRING_OPSET = 20  # StringConcat


@functools.cache
def _code_points() -> str:
    """Every code point but the surrogates (which no UTF-8 text holds), in order."""
    return "".join(map(chr, [*range(0xD800), *range(0xE000, sys.maxunicode + 1)]))


@functools.cache
def _chars() -> list[str]:
    """Every code point but the surrogates and NUL (the separator of ``_per_char``)."""
    return [ch for ch in _code_points() if ch != "\0"]


@functools.cache
def _white_space() -> list[str]:
    """The code points Python's ``re`` calls ``\\s``."""
    return [ch for ch in _code_points() if re.match(r"\s", ch)]


@functools.cache
def _word_class() -> str:
    """Python's ``\\w`` (``str.isalnum`` or ``_``) as an RE2 class of code-point ranges."""
    ranges = [(m.start(), m.end() - 1) for m in re.finditer(r"\w+", _code_points())]
    # finditer's offsets skip the surrogates: map them back to code points
    def cp(i: int) -> int:
        return i if i < 0xD800 else i + 0x800

    parts = []
    for a, b in ranges:
        lo, hi = cp(a), cp(b)
        if lo < 0xD800 <= hi:  # a run cannot cross the surrogates (they are not \w)
            raise AssertionError("\\w run across surrogates")
        parts.append(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}")
    return "[" + "".join(parts) + "]"


def _per_char(text: str, chars: list[str]) -> list[str]:
    """What ``text`` (the ``chars`` joined by NUL, itself a plain character) gives per
    character: one string call for the whole range instead of one per code point."""
    parts = text.split("\0")
    assert len(parts) == len(chars)
    return parts


@functools.cache
def _char_table(lower: bool, ascii_only: bool) -> tuple[dict[str, str], bool]:
    """The per-code-point map of ``_preprocess`` (``str.lower`` then ``strip_accents_ascii``)
    and whether a code point missing from it stays itself (else it is dropped)."""
    chars = _chars()
    # NUL is neither cased nor case-ignorable and has combining class 0: joined by it, the
    # characters are lowered and decomposed one by one (a sigma alone is "σ")
    out = _per_char("\0".join(chars).lower(), chars) if lower else chars
    if ascii_only:
        nfkd = _per_char(unicodedata.normalize("NFKD", "\0".join(out)), chars)
        stripped = [s.encode("ASCII", "ignore").decode("ASCII") for s in nfkd]
        table = {ch: s for ch, s in zip(chars, stripped) if s}
        table["\0"] = "\0"
        return table, False
    return {ch: s for ch, s in zip(chars, out) if s != ch}, True


@functools.cache
def _sigma_props() -> dict[str, int]:
    """Python's final-sigma predicates, read off ``str.lower`` itself: 1 for a
    case-ignorable code point (skipped when looking for a neighbour), 2 for a cased one
    that is not case-ignorable; absent: neither (NUL is neither, so it separates probes;
    unassigned and private-use code points have no case properties)."""
    chars = [ch for ch in _chars() if unicodedata.category(ch) not in ("Cn", "Co")]
    alone = _per_char("\0".join(ch + "\u03a3" for ch in chars).lower(), chars)
    after = _per_char("\0".join("A" + ch + "\u03a3" for ch in chars).lower(), chars)
    props: dict[str, int] = {}
    for ch, a, b in zip(chars, alone, after):
        if a[-1] == "\u03c2":
            props[ch] = 2
        elif b[-1] == "\u03c2":
            props[ch] = 1
    return props


# -- refusals ---------------------------------------------------------------------------


def _refuse(model: Any, what: str, found: str, hint: str) -> UnsupportedModelError:
    name = type(model).__name__
    return UnsupportedModelError(
        f"baton cannot convert this {name} exactly: {what}",
        expected=f"a {name} with analyzer='word' (the default token_pattern or "
        r"'(?u)\b\w+\b') or 'char', strip_accents None or 'ascii' and no callables",
        found=found, hint=hint)


def _check(model: Any) -> int:
    """The fewest characters of a token; refuses what the graph cannot reproduce."""
    if model.input != "content":
        raise _refuse(model, "it reads files, not text", f"input={model.input!r}",
                      "fit it with input='content' and pass the texts themselves")
    if callable(model.analyzer) or model.analyzer not in ("word", "char"):
        raise _refuse(
            model, "analyzer='char_wb' (words padded with spaces, a short word counted "
            "once) and callables do not convert", f"analyzer={model.analyzer!r}",
            "use analyzer='char' or 'word' (ngram_range for longer n-grams)")
    for attr in ("tokenizer", "preprocessor"):
        if getattr(model, attr) is not None:
            raise _refuse(model, f"a custom {attr} is arbitrary Python code",
                          f"{attr}={getattr(model, attr)!r}",
                          f"drop the {attr} (token_pattern and lowercase cover most uses), or "
                          "apply it to the text before the model")
    if model.strip_accents not in (None, "ascii"):
        raise _refuse(
            model, "strip_accents='unicode' leaves a document that is already NFKD "
            "untouched (a whole-document rule) and a callable is arbitrary code",
            f"strip_accents={model.strip_accents!r}",
            "use strip_accents='ascii' (or None) and refit")
    if model.analyzer == "char":
        return 0
    if model.token_pattern not in _PATTERNS:
        raise _refuse(model, "the token pattern is a Python regex the graph does not "
                      "translate", f"token_pattern={model.token_pattern!r}",
                      r"use the default token_pattern r'(?u)\b\w\w+\b' or r'(?u)\b\w+\b'")
    return _PATTERNS[model.token_pattern]


# -- graph pieces -----------------------------------------------------------------------


def _need_string_opset(container: Any) -> None:
    """Raise the conversion's target opset to 20 (StringConcat); the ops that other
    converters write mean the same under it."""
    if (container.target_opset or 0) < _STRING_OPSET:
        container.target_opset = _STRING_OPSET
        if isinstance(container.target_opset_all, dict):
            container.target_opset_all[""] = _STRING_OPSET
        else:
            container.target_opset_all = {"": _STRING_OPSET}


def _string_node(e: Emit, op_type: str, *inputs: str, **attrs: Any) -> str:
    """A default-domain node of opset 20 (StringConcat)."""
    _need_string_opset(e.container)
    return e.op(op_type, *inputs, version=_STRING_OPSET, **attrs)


def _i64(e: Emit, value: Any) -> str:
    return e.const(value, np.int64)


def _tokenize(e: Emit, docs: str, **attrs: Any) -> str:
    """[N, 1] documents -> [N, T] strings padded with "" (contrib Tokenizer)."""
    out = e.op("Tokenizer", docs, domain=_MS, version=1, mark=0, pad_value="",
               mincharnum=1, **attrs)
    return e.op("Squeeze", out, _i64(e, [1]))


def _rows(e: Emit, x: str) -> str:
    """The first dimension of ``x`` as a 1-D tensor [N]."""
    return e.op("Shape", x, end=1)


def _empty_column(e: Emit, like: str) -> str:
    shape = e.op("Concat", _rows(e, like), _i64(e, [1]), axis=0)
    return e.op("Expand", e.const(np.array([[""]], dtype=object), dtype=object), shape)


def _join(e: Emit, chars: str) -> str:
    """[N, K] strings -> [N, 1], each row concatenated in order: a Loop that halves the
    width (StringConcat of neighbours) until one column is left."""
    from onnx import TensorProto, helper

    s = e.op("Concat", chars, _empty_column(e, chars), axis=1)  # at least one column
    width = e.op("Gather", e.op("Shape", s), _i64(e, 1), axis=0)
    go = e.op("Greater", width, _i64(e, 1))

    def c(name: str, value: Any) -> Any:
        arr = np.asarray(value)
        if arr.dtype.kind in "UO":
            text: Any = [str(v).encode() for v in arr.flat]
            t = helper.make_tensor(name, TensorProto.STRING, list(arr.shape), text)
        else:
            t = helper.make_tensor(name, TensorProto.INT64, list(arr.shape),
                                   arr.astype(np.int64).ravel().tolist())
        return helper.make_node("Constant", [], [name], value=t)

    n = helper.make_node
    body_nodes = [
        c("two", 2), c("one", 1), c("zero", 0), c("one_1d", [1]), c("w_ix", 1),
        c("pad1", np.array([[""]], dtype=object)), c("shape3", [0, -1, 2]),
        c("end1", [1]), c("start0", [0]),
        n("Shape", ["s_in"], ["shp"]),
        n("Gather", ["shp", "w_ix"], ["w"], axis=0),
        n("Slice", ["shp", "start0", "end1"], ["nrows"]),
        n("Mod", ["w", "two"], ["odd"]),
        n("Reshape", ["odd", "one_1d"], ["odd_1d"]),
        n("Concat", ["nrows", "odd_1d"], ["pad_shape"], axis=0),
        n("Expand", ["pad1", "pad_shape"], ["pad"]),
        n("Concat", ["s_in", "pad"], ["even"], axis=1),
        n("Reshape", ["even", "shape3"], ["pairs"]),
        n("Gather", ["pairs", "zero"], ["left"], axis=2),
        n("Gather", ["pairs", "one"], ["right"], axis=2),
        n("StringConcat", ["left", "right"], ["s_out"]),
        n("Add", ["w", "odd"], ["w_even"]),
        n("Div", ["w_even", "two"], ["half"]),
        n("Greater", ["half", "one"], ["cond_out"]),
    ]
    body = helper.make_graph(
        body_nodes, "baton_join",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_in", TensorProto.STRING, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_out", TensorProto.STRING, None)])
    _need_string_opset(e.container)
    e.container.node_domain_version_pair_sets.add(("", _STRING_OPSET))
    return e.op("Loop", width, go, s, body=body)


def _map_chars(e: Emit, chars: str, table: dict[str, str], identity: bool) -> str:
    """Each code point through ``table``; one missing from it stays itself (``identity``)
    or becomes ""."""
    keys = list(table)
    index = e.op("LabelEncoder", chars, domain="ai.onnx.ml", keys_strings=keys,
                 values_int64s=list(range(len(keys))), default_int64=-1)
    values = e.const(np.array([*table.values(), ""], dtype=object), dtype=object)
    mapped = e.op("Gather", values, index, axis=0)  # -1: the trailing ""
    if not identity:
        return mapped
    return e.op("Where", e.op("Less", index, _i64(e, 0)), chars, mapped)


def _context_of(e: Emit, skip: str, cased: str, reverse: int) -> str:
    """For every position, whether the nearest character before it (``reverse=0``) or
    after it (``reverse=1``) that is not skipped is cased (1) or not / none (0)."""
    rank = e.op("CumSum", skip, _i64(e, 1), reverse=reverse)  # inclusive count of stops
    before = e.op("Sub", rank, skip)  # stops strictly before (after) each position
    slot = e.op("Mul", rank, skip)  # the stop's rank, 0 for skipped ones
    flags = e.op("Mul", cased, skip)
    shape = e.op("Add", e.op("Shape", skip), _i64(e, [0, 1]))
    zeros = e.op("ConstantOfShape", shape, value=_int_tensor(0))
    table = e.op("ScatterElements", zeros, slot, flags, axis=1, reduction="max")
    return e.op("GatherElements", table, before, axis=1)


def _int_tensor(v: int) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor("v", TensorProto.INT64, [1], [v])


def _final_sigma(e: Emit, chars: str, lowered: str) -> str:
    """``lowered`` with each capital sigma that Python lowercases to ``ς`` made ``ς``:
    a cased letter before it and none after it, case-ignorable characters skipped
    (CPython's ``handle_capital_sigma``), over the whole document."""
    props = _sigma_props()
    keys = list(props)
    code = e.op("LabelEncoder", chars, domain="ai.onnx.ml", keys_strings=keys,
                values_int64s=[props[k] for k in keys], default_int64=0)
    two = _i64(e, 2)
    stop = e.op("Sub", _i64(e, 1), e.op("Mod", code, two))  # not case-ignorable
    cased = e.op("Div", code, two)
    prev = _context_of(e, stop, cased, reverse=0)
    nxt = _context_of(e, stop, cased, reverse=1)
    is_sigma = e.op("LabelEncoder", chars, domain="ai.onnx.ml", keys_strings=["\u03a3"],
                    values_int64s=[1], default_int64=0)
    final = e.op("Equal", e.op("Mul", is_sigma, e.op("Mul", prev, e.op("Sub", _i64(e, 1), nxt))),
                 _i64(e, 1))
    sigma = e.const(np.array(["\u03c2"], dtype=object), dtype=object)
    return e.op("Where", final, sigma, lowered)


def _preprocess(e: Emit, docs: str, model: Any, vocab: dict[str, int]) -> str:
    """[N, 1] documents through ``str.lower`` and ``strip_accents_ascii``."""
    ascii_only = model.strip_accents == "ascii"
    if not model.lowercase and not ascii_only:
        return docs
    chars = _tokenize(e, docs, separators=[""])  # code points
    table, identity = _char_table(bool(model.lowercase), ascii_only)
    lowered = _map_chars(e, chars, table, identity)
    if model.lowercase and not ascii_only and any("σ" in w or "ς" in w for w in vocab):
        lowered = _final_sigma(e, chars, lowered)
    return _join(e, lowered)


def _compact(e: Emit, items: str, keep: str) -> str:
    """The ``items`` [N, T] whose int64 ``keep`` flag is 1, closed up to the left in their
    order (padded with "")."""
    width = e.op("Shape", items, start=1, end=2)
    pos = e.op("Range", _i64(e, 0), e.op("Squeeze", width, _i64(e, [0])), _i64(e, 1))
    key = e.op("Mul", keep, e.op("Sub", width, pos))  # kept ones first, in their order
    order = e.scope.get_unique_variable_name("baton_order")
    e.op("TopK", key, width, axis=1, largest=1, sorted=1,
         out=[e.scope.get_unique_variable_name("baton_topk"), order])
    kept = e.op("Cast", e.op("GatherElements", keep, order, axis=1), to=9)
    moved = e.op("GatherElements", items, order, axis=1)
    return e.op("Where", kept, moved, e.const(np.array([""], dtype=object), dtype=object))


def _flag(e: Emit, items: str, keys: list[str], value: int = 1) -> str:
    """int64 ``value`` where an item is one of ``keys``, else ``1 - value``."""
    return e.op("LabelEncoder", items, domain="ai.onnx.ml", keys_strings=keys,
                values_int64s=[value] * len(keys), default_int64=1 - value)


def _drop(e: Emit, tokens: str, stop_words: list[str]) -> str:
    """Tokens without the stop words, closed up to the left (padded with "")."""
    return _compact(e, tokens, _flag(e, tokens, [*stop_words, ""], value=0))


def _char_grams(e: Emit, docs: str, lo: int, hi: int) -> tuple[str, str]:
    """``_char_ngrams``: runs of two or more white-space characters become one space, then
    every n-gram of code points; [N, K] n-grams and whether each lies inside its text."""
    chars = _tokenize(e, docs, separators=[""])
    chars = e.op("Concat", chars, _empty_column(e, chars), axis=1)  # at least one column
    ws = _flag(e, chars, _white_space())
    big = np.iinfo(np.int64).max
    none = e.op("Mul", e.op("Slice", ws, _i64(e, [0]), _i64(e, [1]), _i64(e, [1])), _i64(e, 0))
    prev = e.op("Concat", none, e.op("Slice", ws, _i64(e, [0]), _i64(e, [-1]), _i64(e, [1])),
                axis=1)
    nxt = e.op("Concat", e.op("Slice", ws, _i64(e, [1]), _i64(e, [big]), _i64(e, [1])), none,
               axis=1)
    one = _i64(e, 1)
    keep = e.op("Mul", _flag(e, chars, [""], value=0),
                e.op("Sub", one, e.op("Mul", ws, prev)))  # not the 2nd... of a run
    first = e.op("Mul", e.op("Mul", ws, nxt), e.op("Sub", one, prev))  # first of a long run
    space = e.const(np.array([" "], dtype=object), dtype=object)
    chars = e.op("Where", e.op("Equal", first, one), space, chars)
    chars = _compact(e, chars, keep)
    length = e.op("ReduceSum", keep, _i64(e, [1]), keepdims=1)  # [N, 1]
    grams, inside = [], []
    for n in range(lo, hi + 1):
        gram = _concat_shifted(e, chars, n, None)
        width = e.op("Squeeze", e.op("Shape", gram, start=1, end=2), _i64(e, [0]))
        ends = e.op("Add", e.op("Range", _i64(e, 0), width, one), _i64(e, n))
        grams.append(gram)
        inside.append(e.op("LessOrEqual", e.op("Unsqueeze", ends, _i64(e, [0])), length))
    if len(grams) == 1:
        return grams[0], inside[0]
    return e.op("Concat", *grams, axis=1), e.op("Concat", *inside, axis=1)


def _concat_shifted(e: Emit, items: str, n: int, sep: str | None) -> str:
    """[N, T] -> [N, T - n + 1]: items i..i+n-1 concatenated (``sep`` between them)."""
    big = np.iinfo(np.int64).max
    parts = [e.op("Slice", items, _i64(e, [j]),
                  _i64(e, [j - (n - 1) if j < n - 1 else big]), _i64(e, [1]))
             for j in range(n)]
    out = parts[0]
    for part in parts[1:]:
        if sep is not None:
            out = _string_node(e, "StringConcat", out, sep)
        out = _string_node(e, "StringConcat", out, part)
    return out


def _ngrams(e: Emit, tokens: str, lo: int, hi: int) -> str:
    """[N, T] tokens -> [N, K] every n-gram for lo <= n <= hi, joined by a space (an n-gram
    reaching into the "" padding has an empty part and matches no vocabulary entry)."""
    space = e.const(np.array([" "], dtype=object), dtype=object) if hi > 1 else None
    grams = [_concat_shifted(e, tokens, n, space) for n in range(lo, hi + 1)]
    return grams[0] if len(grams) == 1 else e.op("Concat", *grams, axis=1)


def _counts(e: Emit, model: Any, out_dtype: Any) -> str:
    """[N, V] counts of the vocabulary's terms in each document (float)."""
    from onnx import helper

    min_chars = _check(model)
    vocab = {str(k): int(v) for k, v in model.vocabulary_.items()}
    n_terms = max(vocab.values()) + 1
    x = e.operator.inputs[0]
    dims = x.type.shape
    if len(dims) == 2 and dims[1] not in (1, None):
        raise _refuse(model, "it takes one text column", f"input shape {dims}",
                      "give the vectorizer one text column (a ColumnTransformer with the "
                      "column's name as a string, not a list)")
    docs = e.op("Reshape", x.full_name, _i64(e, [-1, 1]))
    docs = _preprocess(e, docs, model, vocab)
    lo, hi = model.ngram_range
    if model.analyzer == "char":
        grams, inside = _char_grams(e, docs, lo, hi)
        usable = {k: v for k, v in vocab.items() if k}
    else:
        tokens = _tokenize(e, docs, tokenexp=f"{_word_class()}{{{min_chars},}}")
        stop = model.get_stop_words()
        if stop and hi > 1:
            tokens = _drop(e, tokens, sorted({str(w) for w in stop} - {""}))
        grams, inside = _ngrams(e, tokens, lo, hi), None
        # "" and entries with an empty part are never the analyzer's output (and would
        # match n-grams reaching into the padding): they count 0, as in scikit-learn
        usable = {k: v for k, v in vocab.items() if all(k.split(" "))}
    ids = e.op("LabelEncoder", grams, domain="ai.onnx.ml", keys_strings=list(usable),
               values_int64s=list(usable.values()), default_int64=-1)
    missing = e.op("Less", ids, _i64(e, 0))
    if inside is not None:
        missing = e.op("Or", missing, e.op("Not", inside))
    slot = e.op("Where", missing, _i64(e, n_terms), ids)
    proto = helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype))
    shape = e.op("Concat", _rows(e, slot), _i64(e, [n_terms + 1]), axis=0)
    zeros = e.op("ConstantOfShape", shape,
                 value=helper.make_tensor("v", proto, [1], [0]))
    ones = e.op("ConstantOfShape", e.op("Shape", slot),
                value=helper.make_tensor("v", proto, [1], [1]))
    counts = e.op("ScatterElements", zeros, slot, ones, axis=1, reduction="add")
    counts = e.op("Slice", counts, _i64(e, [0]), _i64(e, [n_terms]), _i64(e, [1]))
    if model.binary:
        counts = e.op("Min", counts, e.const([1], out_dtype))
    return counts


def _tfidf(e: Emit, tf: str, model: Any, dtype: Any, out: str) -> str:
    """``TfidfTransformer.transform`` on dense counts ``tf`` (``model`` holds
    ``sublinear_tf``, ``idf_`` when ``use_idf``, ``norm``)."""
    zero = e.const([0], dtype)
    if model.sublinear_tf:  # log(x) + 1 on the stored (nonzero) entries only
        nonzero = e.op("Not", e.op("Equal", tf, zero))
        logged = e.op("Add", e.op("Log", tf), e.const([1], dtype))
        tf = e.op("Where", nonzero, logged, zero)
    if model.use_idf:
        tf = e.op("Mul", tf, e.const(np.asarray(model.idf_, dtype=dtype).reshape(1, -1), dtype))
    if model.norm is None:
        return e.op("Identity", tf, out=out)
    axis = _i64(e, [1])
    if model.norm == "l2":
        norm = e.op("Sqrt", e.op("ReduceSum", e.op("Mul", tf, tf), axis, keepdims=1))
    elif model.norm == "l1":
        norm = e.op("ReduceSum", e.op("Abs", tf), axis, keepdims=1)
    else:
        raise _refuse(model, "its norm is neither 'l1', 'l2' nor None",
                      f"norm={model.norm!r}", "use norm='l2', 'l1' or None")
    safe = e.op("Where", e.op("Equal", norm, zero), e.const([1], dtype), norm)
    return e.op("Div", tf, safe, out=out)


def _out_dtype(model: Any) -> Any:
    return np.float32 if np.dtype(model.dtype) == np.float32 else np.float64


def _text_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    cls = FloatTensorType if _out_dtype(model) == np.float32 else DoubleTensorType
    operator.outputs[0].type = cls([n, max(model.vocabulary_.values()) + 1])


def _text_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """One output declared in the vectorizer's float precision from the start (skl2onnx
    would guess float32 from the text input, and the steps after it would keep that)."""
    from skl2onnx._parse import _get_sklearn_operator_name
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    cls = FloatTensorType if _out_dtype(model) == np.float32 else DoubleTensorType
    operator.outputs.append(scope.declare_local_variable("variable", cls()))
    return operator.outputs


def _tfidf_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import guess_tensor_type

    t = guess_tensor_type(operator.inputs[0].type)
    t.shape = [operator.inputs[0].get_first_dimension(), operator.inputs[0].type.shape[1]]
    operator.outputs[0].type = t


def _count_vectorizer(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    e.op("Identity", _counts(e, e.model, _out_dtype(e.model)), out=e.output())


def _tfidf_vectorizer(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    dtype = _out_dtype(e.model)
    _tfidf(e, _counts(e, e.model, dtype), e.model, dtype, e.output())


def _tfidf_transformer(scope: Any, operator: Any, container: Any) -> None:
    e = Emit(scope, operator, container)
    _tfidf(e, e.x, e.model, e.dtype, e.output())


def _hashing_vectorizer(scope: Any, operator: Any, container: Any) -> None:
    n = operator.raw_operator.n_features
    raise UnsupportedModelError(
        "baton does not convert HashingVectorizer: its output is a sparse matrix of "
        f"n_features={n} columns, which the graph would have to write out dense ({n} values "
        "per row), and baton has no MurmurHash3 token hashing yet",
        expected="CountVectorizer or TfidfVectorizer (a fitted vocabulary)",
        found=f"HashingVectorizer(n_features={n})",
        hint="fit a CountVectorizer or TfidfVectorizer (max_features=... bounds its "
        "vocabulary) in its place: baton converts both exactly, without a locale")


def _hashing_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([n, operator.raw_operator.n_features])


CONVERTERS = [
    Own("sklearn.feature_extraction.text.CountVectorizer", _text_shape, _count_vectorizer,
        parser=_text_parser,
        note="word n-gram counts; lowercasing and tokens from Python's own Unicode tables, "
        "no locale"),
    Own("sklearn.feature_extraction.text.TfidfVectorizer", _text_shape, _tfidf_vectorizer,
        parser=_text_parser,
        note="word n-gram TF-IDF (sublinear_tf, idf_, l1/l2 norm), no locale"),
    Own("sklearn.feature_extraction.text.TfidfTransformer", _tfidf_shape, _tfidf_transformer,
        note="TF-IDF of a count matrix (sublinear_tf, idf_, l1/l2 norm)"),
    Own("sklearn.feature_extraction.text.HashingVectorizer", _hashing_shape,
        _hashing_vectorizer, parser=_text_parser, note="refused: sparse hashed output"),
]
