"""Encoders, discretisers, functions and target transforms, computed as scikit-learn 1.9
computes them (each graph in the input's float precision; integer inputs in float64).

* ``FunctionTransformer`` with a numpy ufunc (``np.log``, ``np.log1p``, ``np.exp``...):
  ``FunctionTransformer.transform`` applies ``func`` elementwise (``func=None``, the
  identity, stays skl2onnx's, which keeps text and integer columns as they are);
  ``log1p``/``expm1`` use the exact formulations ``log(u)·x/(u-1)``, ``(u-1)·x/log(u)``.
* ``TransformedTargetRegressor``: the inner regressor (converted by skl2onnx, or baton's
  own converters), then ``transformer_.inverse_transform`` of its prediction
  (``TransformedTargetRegressor.predict``).
* ``MissingIndicator``: ``_get_missing_features_info`` (``IsNaN`` or ``Equal``) on the
  columns ``features_``, as booleans.
* ``SimpleImputer`` (numbers, where skl2onnx's fails): integer columns are cast to the
  float precision first, as scikit-learn does when it imputes floats; then
  ``Where(missing, statistics_, x)``, the columns whose statistic is NaN dropped, the
  indicator appended (``SimpleImputer.transform``). Plain float imputers stay skl2onnx's.
* ``KBinsDiscretizer``: ``np.searchsorted(bin_edges_[j][1:-1], x, side="right")`` as a count
  of edges ``<= x`` (compared in float64), then the one-hot of the bin index.
* ``OneHotEncoder`` (float, int and string categories): an exact match against
  ``categories_`` per feature, mapped to the output columns by a 0/1 matrix read from the
  encoder itself (so ``drop``, infrequent categories and ``handle_unknown`` are the
  encoder's own).
* ``SplineTransformer``: in ``_splines`` (the B-spline basis by Cox-de Boor).
* ``RadiusNeighborsTransformer``: in ``_neighbours_graph`` (the densified radius graph).
* the numpy ufuncs and their exact ``log1p``/``expm1``: in ``_ufuncs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baton.converters._sklearn_own._base import Emit, Own
from baton.converters._sklearn_own._neighbours_graph import CONVERTERS as RADIUS_GRAPH
from baton.converters._sklearn_own._splines import CONVERTERS as SPLINES
from baton.converters._sklearn_own._ufuncs import ufunc_names, ufuncs
from baton.errors import UnsupportedModelError

# -- shared helpers ------------------------------------------------------------------


def _is_float32(operator: Any) -> bool:
    names = {type(v.type).__name__ for v in operator.inputs}
    return "FloatTensorType" in names and "DoubleTensorType" not in names


def _emit(scope: Any, operator: Any, container: Any) -> Emit:
    """An ``Emit`` in the output's float precision (where it is a float tensor), else
    float32 only when every float input is float32."""
    e = Emit(scope, operator, container)
    out = type(operator.outputs[0].type).__name__
    if out in ("FloatTensorType", "DoubleTensorType"):
        e.dtype = np.float32 if out == "FloatTensorType" else np.float64
    else:
        e.dtype = np.float32 if _is_float32(operator) else np.float64
    return e


def _float_type(operator: Any, shape: list[Any]) -> Any:
    """The float type skl2onnx's parser declared for the output (the steps after it were
    parsed for that one), or where it declared none, the inputs' precision (float64 for
    integers)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    declared = operator.outputs[0].type
    if isinstance(declared, (DoubleTensorType, FloatTensorType)):
        return type(declared)(shape)
    return (FloatTensorType if _is_float32(operator) else DoubleTensorType)(shape)


def _width(operator: Any) -> int | None:
    total = 0
    for v in operator.inputs:
        shape = v.type.shape
        if len(shape) < 2 or not isinstance(shape[1], int):
            return None
        total += shape[1]
    return total


def _float_shape(n_out: Any) -> Any:
    """One float output [N, n_out(model, operator)] (float32 only for float32 inputs)."""

    def shape(operator: Any) -> None:
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = _float_type(operator, [n, n_out(operator)])

    return shape


def _matrix(e: Emit, dtype: Any = None) -> str:
    """Every input of the operator as one matrix in ``dtype`` (the float precision)."""
    from onnx import helper

    dtype = np.dtype(dtype or e.dtype)
    to = helper.np_dtype_to_tensor_dtype(dtype)
    names = []
    for v in e.operator.inputs:
        kind = type(v.type).__name__
        same = {"FloatTensorType": np.float32, "DoubleTensorType": np.float64}.get(kind)
        names.append(v.full_name if same == dtype else e.op("Cast", v.full_name, to=to))
    return names[0] if len(names) == 1 else e.op("Concat", *names, axis=1)


def axes_op(e: Emit, op_type: str, x: str, axes: list[int], **attrs: Any) -> str:
    """``op_type`` over ``axes``, as an input (opset 13+; 18+ for ReduceMax) or an
    attribute (earlier opsets), so the graphs also build for an older ``opset=``."""
    since = 18 if op_type == "ReduceMax" else 13
    if int(e.container.target_opset) >= since:
        return e.op(op_type, x, e.const(axes, np.int64), **attrs)
    return e.op(op_type, x, axes=list(axes), **attrs)


def _refuse(what: str, found: str, hint: str, expected: str) -> UnsupportedModelError:
    return UnsupportedModelError(what, expected=expected, found=found, hint=hint)


# -- numpy ufuncs -----------------------------------------------------------------------


def _function_of(func: Any, owner: str, param: str, kw_args: Any) -> Any:
    """The graph builder for ``func`` (None: identity), or a refusal."""
    if func is None:
        return None
    table = ufuncs()
    try:
        builder = table.get(func)
    except TypeError:  # unhashable callable
        builder = None
    if builder is None or kw_args:
        name = getattr(func, "__name__", type(func).__name__)
        extra = f" with kw_args {kw_args!r}" if kw_args else ""
        raise _refuse(
            f"baton cannot convert {owner} with {param}={name}{extra}: only None or a "
            "numpy ufunc baton maps to ONNX (np.log, np.log1p, np.exp, np.sqrt...), "
            "without kw_args",
            expected=f"{param}=None or one of {ufunc_names()}",
            found=f"{param}={name!r}{extra}",
            hint=f"use one of these ufuncs as {param} (e.g. np.log1p rather than "
            "lambda x: np.log(1 + x)), or apply the function to the data before the model "
            "and convert the rest",
        )
    return builder


def _apply(e: Emit, func: Any, x: str, owner: str, param: str, kw_args: Any = None,
           out: str | None = None) -> str:
    builder = _function_of(func, owner, param, kw_args)
    y = x if builder is None else builder(e, x)
    return e.op("Identity", y, out=out) if out is not None else y


def _function_transformer(scope: Any, operator: Any, container: Any) -> None:
    m = operator.raw_operator
    if m.func is None:  # the identity: skl2onnx's (it keeps text and integer types)
        from skl2onnx.operator_converters.function_transformer import (
            convert_sklearn_function_transformer,
        )

        return convert_sklearn_function_transformer(scope, operator, container)
    e = _emit(scope, operator, container)
    ints = any(type(v.type).__name__ not in ("FloatTensorType", "DoubleTensorType")
               for v in operator.inputs)
    if ints and m.func is np.reciprocal:
        raise _refuse(
            "baton does not convert FunctionTransformer(np.reciprocal) on integer columns: "
            "numpy divides integers there (1/2 -> 0); cast the columns to float first",
            expected="float input", found="integer input",
            hint="cast the integer columns to float before the FunctionTransformer")
    _apply(e, m.func, _matrix(e), "FunctionTransformer", "func", m.kw_args, out=e.output())
    return None


def _check_function_transformer(operator: Any) -> None:
    m = operator.raw_operator
    if m.func is None:
        from skl2onnx.shape_calculators.function_transformer import (
            calculate_sklearn_function_transformer_output_shapes as identity_shape,
        )

        return identity_shape(operator)
    _function_of(m.func, "FunctionTransformer", "func", m.kw_args)
    _float_shape(lambda op: _width(op))(operator)
    return None


# -- TransformedTargetRegressor ----------------------------------------------------------


def _inverse(e: Emit, transformer: Any, y: str) -> str:
    """``transformer.inverse_transform`` of the prediction ``y`` [N, targets]."""
    name = type(transformer).__name__
    c = e.const
    if name == "FunctionTransformer":
        return _apply(e, transformer.inverse_func, y, "TransformedTargetRegressor",
                      "inverse_func", transformer.inv_kw_args)
    if name == "StandardScaler":
        if transformer.scale_ is not None:
            y = e.op("Mul", y, c(transformer.scale_))
        if transformer.mean_ is not None and transformer.with_mean:
            y = e.op("Add", y, c(transformer.mean_))
        return y
    if name == "MinMaxScaler":
        return e.op("Div", e.op("Sub", y, c(transformer.min_)), c(transformer.scale_))
    if name == "MaxAbsScaler":
        return e.op("Mul", y, c(transformer.scale_))
    if name == "RobustScaler":
        if transformer.scale_ is not None:
            y = e.op("Mul", y, c(transformer.scale_))
        if transformer.center_ is not None:
            y = e.op("Add", y, c(transformer.center_))
        return y
    raise _refuse_target(name)


def _refuse_target(name: str) -> UnsupportedModelError:
    return _refuse(
        f"baton converts TransformedTargetRegressor with a FunctionTransformer (numpy "
        f"ufuncs), StandardScaler, MinMaxScaler, MaxAbsScaler or RobustScaler as its "
        f"transformer, not {name}",
        expected="transformer= one of FunctionTransformer, StandardScaler, MinMaxScaler, "
        "MaxAbsScaler, RobustScaler (or func=/inverse_func= numpy ufuncs)",
        found=f"transformer={name}",
        hint="use one of these transformers for the target, or convert the regressor_ "
        "alone and apply the inverse transform of the target outside the model",
    )


def _ttr_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """The inner regressor is parsed as skl2onnx parses any model (a Pipeline too); this
    operator takes its prediction."""
    from skl2onnx._parse import _get_sklearn_operator_name, _parse_sklearn

    pred = _parse_sklearn(scope, model.regressor_, inputs, custom_parsers=custom_parsers)[0]
    this = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    this.inputs = [pred]
    this.outputs.append(scope.declare_local_variable("variable", pred.type.__class__()))
    return this.outputs


def _ttr_shape(operator: Any) -> None:
    m = operator.raw_operator
    _inverse_check(m.transformer_)
    pred = operator.inputs[0]
    n = pred.get_first_dimension()
    t = pred.type.__class__()
    t.shape = [n, pred.type.shape[1] if len(pred.type.shape) > 1 else 1]
    operator.outputs[0].type = t


def _inverse_check(transformer: Any) -> None:
    name = type(transformer).__name__
    if name == "FunctionTransformer":
        _function_of(transformer.inverse_func, "TransformedTargetRegressor", "inverse_func",
                     transformer.inv_kw_args)
    elif name not in ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler"):
        raise _refuse_target(name)


def _ttr(scope: Any, operator: Any, container: Any) -> None:
    e = _emit(scope, operator, container)
    pred = operator.inputs[0].full_name
    if type(operator.inputs[0].type).__name__ not in ("FloatTensorType", "DoubleTensorType"):
        pred = e.to_float(pred)
    if len(operator.inputs[0].type.shape) == 1:
        pred = axes_op(e, "Unsqueeze", pred, [1])
    e.op("Identity", _inverse(e, e.model.transformer_, pred), out=e.output())


# -- MissingIndicator and SimpleImputer ---------------------------------------------------


def _missing_mask(e: Emit, x: str, missing: Any) -> str:
    """``_get_mask(X, missing_values)``: IsNaN for NaN, else equality (NaN never equal)."""
    if missing is None or (isinstance(missing, float) and np.isnan(missing)):
        return e.op("IsNaN", x)
    return e.op("Equal", x, e.const(float(missing)))


def _check_numeric_missing(model: Any, owner: str) -> None:
    missing = model.missing_values
    if isinstance(missing, str) or missing is None:
        raise _refuse(
            f"baton converts {owner} on numbers, with missing_values NaN or a number, "
            f"not {missing!r}",
            expected="missing_values=np.nan or a number", found=f"missing_values={missing!r}",
            hint="encode the missing marker as NaN (e.g. df.replace(marker, np.nan)) and "
            "fit on numeric columns")


def _missing_indicator_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import BooleanTensorType

    m = operator.raw_operator
    _check_numeric_missing(m, "MissingIndicator")
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = BooleanTensorType([n, len(m.features_)])


def _missing_indicator(scope: Any, operator: Any, container: Any) -> None:
    e = _emit(scope, operator, container)
    m = e.model
    mask = _missing_mask(e, _matrix(e), m.missing_values)
    e.op("Gather", mask, e.const(np.asarray(m.features_, dtype=np.int64), np.int64),
         out=e.output(), axis=1)


def _imputer_kept(m: Any) -> np.ndarray:
    stats = np.asarray(m.statistics_, dtype=np.float64)
    if m.keep_empty_features:
        return np.arange(len(stats))
    return np.flatnonzero(~np.isnan(stats))


def _numeric_imputer(m: Any) -> bool:
    return np.asarray(m.statistics_).dtype.kind in "fiub" and not isinstance(
        m.missing_values, str)


def _skl2onnx_imputes(operator: Any) -> bool:
    """Whether skl2onnx's own Imputer gets this one right (float inputs of the declared
    output type, every statistic a number, no indicator): then it is kept, and baton's
    float64 pass replaces its node. Not for integer columns (skl2onnx keeps the type the
    parser guessed from the first column, int64, and refuses), an all-missing column
    (scikit-learn drops it, or fills 0 with ``keep_empty_features``) or ``add_indicator``."""
    m = operator.raw_operator
    declared = type(operator.outputs[0].type)
    return (not _numeric_imputer(m)) or (
        all(type(v.type) is declared for v in operator.inputs)
        and declared.__name__ in ("FloatTensorType", "DoubleTensorType")
        and not np.isnan(np.asarray(m.statistics_, dtype=np.float64)).any()
        and not m.add_indicator)


def _imputer_shape(operator: Any) -> None:
    m = operator.raw_operator
    operator.baton_imputes = not _skl2onnx_imputes(operator)
    if not operator.baton_imputes:
        from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes

        return calculate_sklearn_imputer_output_shapes(operator)
    n = operator.inputs[0].get_first_dimension()
    width = len(_imputer_kept(m))
    if m.add_indicator:
        width += len(m.indicator_.features_)
    operator.outputs[0].type = _float_type(operator, [n, width])
    return None


def _imputer(scope: Any, operator: Any, container: Any) -> None:
    m = operator.raw_operator
    if not getattr(operator, "baton_imputes", False):
        from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

        return convert_sklearn_imputer(scope, operator, container)
    e = _emit(scope, operator, container)
    x = _matrix(e)
    mask = _missing_mask(e, x, m.missing_values)
    fill = np.asarray(m.statistics_, dtype=np.float64).astype(e.dtype)
    kept = _imputer_kept(m)
    if m.keep_empty_features:  # an all-missing column is filled with 0
        fill = np.where(np.isnan(fill), 0, fill).astype(e.dtype)
    y = e.op("Where", mask, e.const(fill.reshape(1, -1)), x)
    parts = [e.op("Gather", y, e.const(kept.astype(np.int64), np.int64), axis=1)]
    if m.add_indicator:
        ind = e.op("Gather", mask, e.const(np.asarray(m.indicator_.features_, np.int64),
                                           np.int64), axis=1)
        parts.append(e.to_float(ind))
    e.op("Concat", *parts, out=e.output(), axis=1)
    return None


# -- KBinsDiscretizer ----------------------------------------------------------------------


def _kbins_width(operator: Any) -> int:
    m = operator.raw_operator
    return int(np.sum(m.n_bins_)) if "onehot" in m.encode else len(m.n_bins_)


def _bin_index(e: Emit, x64: str, edges: list[np.ndarray]) -> str:
    """``searchsorted(edges[j][1:-1], x[:, j], side="right")`` for every column j, as the
    count of inner edges ``<= x`` (float64 comparisons; NaN pads never count); [N, F]."""
    inner = [np.asarray(b, dtype=np.float64)[1:-1] for b in edges]
    k = max([len(b) for b in inner] + [1])
    table = np.full((1, len(inner), k), np.nan)
    for j, b in enumerate(inner):
        table[0, j, :len(b)] = b
    x3 = axes_op(e, "Unsqueeze", x64, [2])
    ge = e.op("GreaterOrEqual", x3, e.const(table, np.float64))
    counts = e.op("Cast", ge, to=11)  # DOUBLE
    return axes_op(e, "ReduceSum", counts, [2], keepdims=0)


def _one_hot(e: Emit, index: str, sizes: list[int]) -> str:
    """The one-hot of an integer-valued float matrix [N, F]: column j over ``sizes[j]``."""
    blocks = []
    for j, size in enumerate(sizes):
        col = e.op("Gather", index, e.const([j], np.int64), axis=1)
        blocks.append(e.op("Equal", col, e.const(np.arange(size)[None, :], np.float64)))
    return e.to_float(e.op("Concat", *blocks, axis=1))


def _kbins(scope: Any, operator: Any, container: Any) -> None:
    e = _emit(scope, operator, container)
    m = e.model
    index = _bin_index(e, _matrix(e, np.float64), list(m.bin_edges_))
    if m.encode == "ordinal":
        e.op("Cast", index, out=e.output(), to=1 if e.dtype == np.float32 else 11)
        return
    e.op("Identity", _one_hot(e, index, [int(n) for n in m.n_bins_]), out=e.output())


# -- OneHotEncoder -------------------------------------------------------------------------


def _probe_rows(m: Any, i: int, values: list[Any]) -> Any:
    """Rows where feature ``i`` takes ``values`` and every other feature its first
    category, in the encoder's input form (a DataFrame where it was fitted on one)."""
    cols = []
    for j, cats in enumerate(m.categories_):
        col = np.asarray(values, dtype=object) if j == i else np.asarray(
            [cats[0]] * len(values), dtype=object)
        kind = np.asarray(cats).dtype.kind
        cols.append(col.astype(np.asarray(cats).dtype) if kind in "fiub" else col)
    names = getattr(m, "feature_names_in_", None)
    if names is not None:
        import pandas as pd

        return pd.DataFrame({str(n): c for n, c in zip(names, cols)})
    if all(np.asarray(c).dtype.kind in "fiub" for c in cols):
        return np.column_stack([c.astype(np.float64) for c in cols])
    return np.column_stack(cols).astype(object)


def _unknown_value(cats: np.ndarray) -> Any:
    if cats.dtype.kind in "fiu":
        finite = cats[np.isfinite(cats.astype(np.float64))]
        return float(finite.max()) + 1.0 if finite.size else 0.0
    return "\x00baton-unknown:" + "".join(map(str, cats[:1]))


def _ohe_blocks(m: Any) -> list[np.ndarray]:
    """Per feature, the 0/1 matrix [K+1, out] from each category (and, last, an unknown
    value) to the feature's output columns, read from ``m.transform`` itself; an unknown
    value gives zeros where the encoder raises on it."""
    import warnings

    sizes = list(m._n_features_outs)
    starts = np.cumsum([0] + sizes)
    blocks = []
    for i, cats in enumerate(m.categories_):
        cats = np.asarray(cats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            known = m.transform(_probe_rows(m, i, list(cats)))
            known = np.asarray(known.toarray() if hasattr(known, "toarray") else known)
            try:
                unk = m.transform(_probe_rows(m, i, [_unknown_value(cats)]))
                unk = np.asarray(unk.toarray() if hasattr(unk, "toarray") else unk)
            except ValueError:  # handle_unknown="error"
                unk = np.zeros((1, known.shape[1]))
        rows = np.vstack([known, unk])[:, starts[i]:starts[i + 1]]
        blocks.append(rows.astype(np.float64))
    return blocks


def _ohe_shape(operator: Any) -> None:
    m = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator, [n, int(sum(m._n_features_outs))])


def _ohe_columns(operator: Any) -> list[tuple[Any, int]]:
    """(input variable, column) per encoder feature."""
    out = []
    for v in operator.inputs:
        width = v.type.shape[1] if len(v.type.shape) > 1 else 1
        out += [(v, c) for c in range(int(width or 1))]
    return out


def _ohe_match(e: Emit, v: Any, c: int, cats: np.ndarray) -> str:
    """[N, K] 0/1: which category each row's value equals (NaN matches a NaN category)."""
    col = e.op("Gather", v.full_name, e.const([c], np.int64), axis=1)
    kind = type(v.type).__name__
    if kind == "StringTensorType":
        index = e.op("LabelEncoder", col, domain="ai.onnx.ml", version=2,
                     keys_strings=[str(s) for s in cats],
                     values_int64s=list(range(len(cats))), default_int64=-1)
        eq = e.op("Equal", index, e.const(np.arange(len(cats))[None, :], np.int64))
        return e.to_float(eq)
    if kind == "Int64TensorType" and cats.dtype.kind in "iu":
        eq = e.op("Equal", col, e.const(cats.astype(np.int64)[None, :], np.int64))
        return e.to_float(eq)
    if kind not in ("DoubleTensorType",):
        col = e.op("Cast", col, to=11)
    values = cats.astype(np.float64)
    nan = np.isnan(values)
    eq = e.op("Equal", col, e.const(values[None, :], np.float64))  # NaN equals nothing
    if nan.any():
        eq = e.op("Or", eq, e.op("And", e.op("IsNaN", col), e.const(nan[None, :], np.bool_)))
    return e.to_float(eq)


def _ohe(scope: Any, operator: Any, container: Any) -> None:
    e = _emit(scope, operator, container)
    m = e.model
    columns = _ohe_columns(operator)
    if len(columns) != len(m.categories_):
        raise _refuse(
            "OneHotEncoder's inputs do not have the columns it was fitted on",
            expected=f"{len(m.categories_)} columns", found=f"{len(columns)} columns",
            hint="convert with a sample of the data the encoder was fitted on")
    parts = []
    for (v, c), cats, block in zip(columns, m.categories_, _ohe_blocks(m)):
        if block.shape[1] == 0:
            continue
        match = _ohe_match(e, v, c, np.asarray(cats))
        ones = e.const(np.ones((len(cats), 1)))  # MatMul sums in any opset
        unknown = e.op("Sub", e.const(1.0), e.matmul(match, ones))
        feats = e.op("Concat", match, unknown, axis=1)
        parts.append(e.matmul(feats, block.astype(e.dtype)))
    if not parts:
        e.per_row(np.zeros((1, 0), dtype=e.dtype), out=e.output())
        return
    e.op("Concat", *parts, out=e.output(), axis=1) if len(parts) > 1 else e.op(
        "Identity", parts[0], out=e.output())


CONVERTERS = [
    Own("sklearn.preprocessing.FunctionTransformer", _check_function_transformer,
        _function_transformer,
        note="func=None or a numpy ufunc (np.log, np.log1p, np.exp, np.sqrt...), elementwise"),
    Own("sklearn.compose.TransformedTargetRegressor", _ttr_shape, _ttr, parser=_ttr_parser,
        note="the inner regressor, then the target transformer's inverse_transform"),
    Own("sklearn.impute.MissingIndicator", _missing_indicator_shape, _missing_indicator,
        note="IsNaN (or equality with missing_values) on the columns features_, as bool"),
    Own("sklearn.impute.SimpleImputer", _imputer_shape, _imputer,
        note="Where(missing, statistics_, x), integer columns cast to float first"),
    Own("sklearn.preprocessing.KBinsDiscretizer", _float_shape(_kbins_width), _kbins,
        note="searchsorted on bin_edges_ (float64 comparisons), ordinal or one-hot"),
    Own("sklearn.preprocessing.OneHotEncoder", _ohe_shape, _ohe,
        note="exact match on categories_ (float, int, str), drop/infrequent/unknown as "
        "the encoder maps them"),
    *SPLINES,
    *RADIUS_GRAPH,
]
