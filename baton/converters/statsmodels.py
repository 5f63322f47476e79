"""statsmodels: fitted results of ``OLS``, ``WLS``, ``GLS``, ``GLSAR``, ``GLM`` and the
binary ``Logit``/``Probit`` models, from arrays or from a formula.

The graph computes ``results.predict(exog)``, the mean response, in float64 as statsmodels
does (``RegressionModel.predict``, ``GLM.predict``, ``BinaryModel.predict``): the linear
predictor ``exog @ params``, then the inverse link (``links.py``):

* identity, ``Power(p)``: ``z`` for ``p == 1``; ``1 / z`` for -1 (what ``np.power(z, -1.0)``
  gives), ``z * z`` for 2 and ``sqrt(z)`` for 0.5 (numpy's own fast paths), ``Pow`` else;
* log: ``exp(z)``; logc: ``1 - exp(z)``; logit: ``1 / (1 + exp(-z))``;
  cloglog: ``1 - exp(-exp(z))``; loglog: ``exp(-exp(-z))``; NegativeBinomial(alpha):
  ``-1 / (alpha * (1 - exp(-z)))``;
* probit: the normal CDF as scipy computes it (``xsf::cephes::ndtr``: its ``erf`` and
  ``erfc`` rational approximations, the same coefficients and order of operations), so the
  far tails keep their relative precision (no ``1 + erf`` cancellation; onnxruntime has no
  float64 ``Erf`` either).

Inputs: the exog as given (a constant from ``sm.add_constant`` is a column of it), one
float64 matrix ``input``; read by name from a DataFrame when the model was fitted on one.
A formula model (``smf.ols("y ~ x1 + x2", df)``, patsy) takes one input per DataFrame
column it reads; the graph builds patsy's design matrix: the intercept, numeric columns,
categorical columns (``C(c)``, text or bool columns) coded with the fitted levels and
contrast matrix, and products of them (``x1:x2``, ``x1*C(c)``). A level the model never
saw gives NaN (patsy refuses it).

Refused: other formula terms (``np.log(x)``, ``I(...)``, ``center(x)``, ...), the
formulaic engine, models fitted with an offset or exposure (their prediction needs the
offset of each new row), other model classes and the cauchy link.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baton.errors import SchemaError, UnsupportedModelError, UsageError, first_line, require

EXTRA = "statsmodels"
DEFAULT_OPSET = 18
KINDS = {"prediction": "prediction"}
#: the model classes whose ``predict`` is ``inverse_link(exog @ params)``
_REGRESSION = ("OLS", "WLS", "GLS", "GLSAR")

# xsf::cephes::ndtr (scipy.special.ndtr): erfc for 1 <= x < 8 (P/Q), x >= 8 (R/S); erf for
# |x| < 1 (T/U); the leading 1.0 of Q, S and U is implicit (p1evl)
_MAXLOG = 7.09782712893383996843e2
_SQRT1_2 = 0.70710678118654752440  # M_SQRT1_2
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2)
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)
_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4)
_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4)


def _sm() -> Any:
    return require("statsmodels", EXTRA, "Converting a statsmodels model")


# -- what the model computes ----------------------------------------------------------


@dataclass
class _Factor:
    """One patsy factor: a DataFrame column, numeric or categorical (its fitted levels)."""

    column: str
    levels: tuple[Any, ...] | None = None


@dataclass
class _Subterm:
    """Columns of the design matrix: products of its factors' columns (patsy's order)."""

    factors: list[tuple[_Factor, np.ndarray | None]]  # with a categorical's contrast matrix
    n_columns: int


@dataclass
class _Plan:
    params: np.ndarray
    link: tuple[str, float]  # ("power", p), ("log", 0), ("nbinom", alpha), ...
    what: str  # "OLS", "GLM(Poisson, Log)", ...
    exog_names: list[str] | None = None  # a DataFrame exog without a formula
    design: list[_Subterm] | None = None  # a formula's design matrix
    columns: list[str] = field(default_factory=list)  # a formula's DataFrame columns


def _model_of(results: Any) -> Any:
    model = getattr(results, "model", None)
    if model is None or getattr(results, "params", None) is None:
        raise UsageError(
            f"{_describe(results)} is not a fitted statsmodels results object",
            expected="the results of .fit(), e.g. sm.OLS(y, X).fit()",
            found=_describe(results),
            hint="convert what .fit() returns: results = sm.OLS(y, X).fit()",
        )
    return model


def _describe(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _read(results: Any) -> _Plan:
    _sm()
    from statsmodels.discrete.discrete_model import Logit, Probit
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.regression.linear_model import RegressionModel

    model = _model_of(results)
    name = type(model).__name__
    params = np.asarray(results.params, dtype=np.float64).reshape(-1)
    if isinstance(model, RegressionModel) and name in _REGRESSION:
        link: tuple[str, float] = ("power", 1.0)
        what = name
    elif isinstance(model, GLM):
        link, what = _glm_link(model), (f"GLM({type(model.family).__name__}, "
                                        f"{type(model.family.link).__name__})")
    elif type(model) is Logit:
        link, what = ("logit", 0.0), "Logit"
    elif type(model) is Probit:
        link, what = ("probit", 0.0), "Probit"
    else:
        raise UnsupportedModelError(
            f"baton does not convert statsmodels {name} models",
            expected="results of OLS, WLS, GLS, GLSAR, GLM, Logit or Probit",
            found=_describe(model),
            hint="fit one of those (e.g. a count model as sm.GLM(y, X, "
            "family=sm.families.Poisson()))",
        )
    exog = getattr(model, "exog", None)  # None in results saved with remove_data=True
    n_exog = exog.shape[1] if exog is not None and np.ndim(exog) == 2 else len(
        getattr(model, "exog_names", None) or params)
    if n_exog != params.size:
        raise UnsupportedModelError(
            f"baton cannot read the parameters of this {name} model",
            expected="one parameter per exog column", found=f"{params.size} parameters",
            hint="convert OLS, WLS, GLS, GLM, Logit or Probit results",
        )
    _refuse_offset(model, name)
    plan = _Plan(params=params, link=link, what=what)
    if getattr(model, "formula", None) is not None:
        plan.design, plan.columns = _read_formula(model)
    elif _is_frame(getattr(model.data, "orig_exog", None)):
        plan.exog_names = [str(n) for n in model.exog_names]
    return plan


def _glm_link(model: Any) -> tuple[str, float]:
    from statsmodels.genmod.families import links

    link = model.family.link
    # subclasses first: the CDF links (probit, cauchy), CLogLog and LogLog are Logits
    if isinstance(link, links.CDFLink):
        if getattr(link.dbn, "name", "") == "norm":
            return ("probit", 0.0)
        return _unknown_link(link)
    if isinstance(link, links.CLogLog):
        return ("cloglog", 0.0)
    if isinstance(link, links.LogLog):
        return ("loglog", 0.0)
    if isinstance(link, links.Logit):
        return ("logit", 0.0)
    if isinstance(link, links.Power):
        return ("power", float(link.power))
    if isinstance(link, links.LogC):
        return ("logc", 0.0)
    if isinstance(link, links.Log):
        return ("log", 0.0)
    if isinstance(link, links.NegativeBinomial):
        return ("nbinom", float(link.alpha))
    return _unknown_link(link)


def _unknown_link(link: Any) -> tuple[str, float]:
    raise UnsupportedModelError(
        f"baton does not convert GLMs with the {type(link).__name__} link",
        expected="identity, log, logit, probit, cloglog, loglog, logc, power (inverse_power, "
        "inverse_squared, sqrt) or negative-binomial links",
        found=type(link).__name__,
        hint="refit with one of those links, e.g. links.Probit() for a CDF link",
    )


def _refuse_offset(model: Any, name: str) -> None:
    for attr in ("offset", "exposure"):
        value = getattr(model, attr, None)
        if value is not None and np.any(np.asarray(value) != 0):
            raise UnsupportedModelError(
                f"baton does not convert {name} models fitted with an {attr}",
                expected="a model fitted without offset= or exposure=",
                found=f"{attr}= given at fit",
                hint="results.predict(X) without an offset treats it as 0, not as the "
                "row's own; refit with it as a column of exog (e.g. np.log(exposure)) to "
                "convert the model",
            )


def _is_frame(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "columns")


def _read_formula(model: Any) -> tuple[list[_Subterm], list[str]]:
    spec: Any = getattr(model, "model_spec", None) or getattr(model.data, "model_spec", None)
    if type(spec).__module__.split(".")[0] != "patsy":
        raise UnsupportedModelError(
            "baton reads statsmodels formulas built by patsy, not by formulaic",
            expected="a model fitted with the patsy formula engine",
            found=_describe(spec),
            hint="set statsmodels.formula.options.formula_engine = 'patsy' before fitting",
        )
    subterms: list[_Subterm] = []
    columns: list[str] = []
    factors: dict[Any, _Factor] = {}
    for term, infos in spec.term_codings.items():
        for sub in infos:
            parts = []
            for f in sub.factors:
                if f not in factors:
                    factors[f] = _factor(f, spec.factor_infos[f], term)
                    if factors[f].column not in columns:
                        columns.append(factors[f].column)
                matrix = sub.contrast_matrices.get(f)
                parts.append((factors[f], None if matrix is None else
                              np.asarray(matrix.matrix, dtype=np.float64)))
            subterms.append(_Subterm(parts, int(sub.num_columns)))
    if not columns:
        raise UnsupportedModelError(
            "the formula reads no column of the data (an intercept only)",
            expected="a formula with at least one column, e.g. 'y ~ x1'",
            found=str(model.formula), hint="add the columns the model should take",
        )
    return subterms, columns


def _factor(factor: Any, info: Any, term: Any) -> _Factor:
    code = str(factor.code)
    categorical = info.type == "categorical"
    column = _column_named(code, categorical)
    if column is None or (not categorical and int(info.num_columns) != 1):
        raise UnsupportedModelError(
            f"baton cannot reproduce the formula term {code!r}",
            expected="columns of the DataFrame by name, C(column), and products of them "
            "(x1:x2)",
            found=f"{code!r} in the term {term.name()!r}",
            hint="compute it as a column of the DataFrame before fitting (e.g. "
            "df['log_x'] = np.log(df['x']), then 'y ~ log_x') so that the converted model "
            "takes it as it comes",
        )
    return _Factor(column, tuple(info.categories) if categorical else None)


def _column_named(code: str, categorical: bool) -> str | None:
    """The DataFrame column ``code`` reads: ``x``, ``Q('x')``, or for a categorical also
    ``C(x, ...)`` (its levels and contrasts are the fitted ones); None for anything else."""
    try:
        node = ast.parse(code.strip(), mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Name):
        return node.id
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id == "Q" and len(node.args) == 1 and not node.keywords and isinstance(
            node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    if categorical and node.func.id == "C" and node.args:
        return _column_named(ast.unparse(node.args[0]), False)
    return None


# -- the graph --------------------------------------------------------------------------


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.n = 0

    def _name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, value: Any, hint: str = "c") -> str:
        from onnx import numpy_helper

        name = self._name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op: str, *ins: str, out: str | None = None, domain: str = "",
           **attrs: Any) -> str:
        from onnx import helper

        name = out or self._name(op.lower())
        self.nodes.append(helper.make_node(op, list(ins), [name], domain=domain, **attrs))
        return name

    def f(self, v: float) -> str:
        return self.const(np.float64(v), "k")

    def polevl(self, x: str, coef: tuple[float, ...], leading_one: bool = False) -> str:
        """cephes ``polevl`` (``p1evl`` with ``leading_one``): Horner, one Mul and Add a
        coefficient, in the same order."""
        ans = self.op("Add", x, self.f(coef[0])) if leading_one else self.f(coef[0])
        for c in coef[1:]:
            ans = self.op("Add", self.op("Mul", ans, x), self.f(c))
        return ans


def _inverse_link(g: _Graph, link: tuple[str, float], z: str, out: str) -> str:
    kind, value = link
    one = g.f(1.0) if kind in ("logc", "logit", "cloglog", "nbinom") or link == (
        "power", -1.0) else ""
    if kind == "power":
        if value == 1.0:
            return g.op("Identity", z, out=out)
        if value == -1.0:
            return g.op("Div", one, z, out=out)
        if value == 0.5:  # 1 / 0.5: np.power(z, 2.0) is z * z
            return g.op("Mul", z, z, out=out)
        if value == 2.0:  # np.power(z, 0.5) is sqrt(z)
            return g.op("Sqrt", z, out=out)
        return g.op("Pow", z, g.f(1.0 / value), out=out)
    if kind == "log":
        return g.op("Exp", z, out=out)
    if kind == "logc":
        return g.op("Sub", one, g.op("Exp", z), out=out)
    if kind == "logit":
        return g.op("Div", one, g.op("Add", one, g.op("Exp", g.op("Neg", z))), out=out)
    if kind == "cloglog":
        return g.op("Sub", one, g.op("Exp", g.op("Neg", g.op("Exp", z))), out=out)
    if kind == "loglog":
        return g.op("Exp", g.op("Neg", g.op("Exp", g.op("Neg", z))), out=out)
    if kind == "nbinom":
        den = g.op("Mul", g.f(value), g.op("Sub", one, g.op("Exp", g.op("Neg", z))))
        return g.op("Div", g.f(-1.0), den, out=out)
    if kind == "probit":
        return _ndtr(g, z, out)
    raise AssertionError(kind)


def _ndtr(g: _Graph, a: str, out: str) -> str:
    """``xsf::cephes::ndtr(a)``: ``0.5 + 0.5 * erf(x)`` for ``|x| < 1`` (``x = a / sqrt 2``),
    else ``0.5 * erfc(|x|)``, subtracted from 1 for ``x > 0``; both branches computed and
    one chosen per value (NaN stays NaN)."""
    x = g.op("Mul", a, g.f(_SQRT1_2))
    z = g.op("Abs", x)
    half = g.f(0.5)
    # erf(x), |x| < 1: x * T(x^2) / U(x^2)
    xx = g.op("Mul", x, x)
    erf = g.op("Div", g.op("Mul", x, g.polevl(xx, _T)), g.polevl(xx, _U, leading_one=True))
    small = g.op("Add", half, g.op("Mul", half, erf))
    # erfc(z), z >= 1: exp(-z^2) * P(z) / Q(z) (z < 8) or R(z) / S(z); 0 past MAXLOG
    mz2 = g.op("Mul", g.op("Neg", z), z)
    ez = g.op("Exp", mz2)
    lt8 = g.op("Less", z, g.f(8.0))
    p = g.op("Where", lt8, g.polevl(z, _P), g.polevl(z, _R))
    q = g.op("Where", lt8, g.polevl(z, _Q, leading_one=True), g.polevl(z, _S, leading_one=True))
    erfc = g.op("Div", g.op("Mul", ez, p), q)
    erfc = g.op("Where", g.op("Less", mz2, g.f(-_MAXLOG)), g.f(0.0), erfc)
    tail = g.op("Mul", half, erfc)
    tail = g.op("Where", g.op("Greater", x, g.f(0.0)), g.op("Sub", g.f(1.0), tail), tail)
    return g.op("Where", g.op("Less", z, g.f(1.0)), small, tail, out=out)


def _design(g: _Graph, plan: _Plan, inputs: dict[str, str], dtypes: dict[str, str]) -> str:
    """patsy's design matrix ``[N, p]`` from the ``[N, 1]`` column inputs."""
    assert plan.design is not None
    blocks: dict[tuple[int, bytes | None], str] = {}  # a factor's coded columns [N, m]
    cols: list[str] = []
    for sub in plan.design:
        if not sub.factors:  # the intercept
            first = inputs[plan.columns[0]]
            cols.append(g.op("ConstantOfShape", g.op("Shape", first),
                             value=_tensor(np.ones(1, dtype=np.float64))))
            continue
        parts = []
        for factor, contrast in sub.factors:
            key = (id(factor), None if contrast is None else contrast.tobytes())
            if key not in blocks:
                blocks[key] = _block(g, factor, contrast, inputs[factor.column],
                                     dtypes[factor.column])
            parts.append((blocks[key], 1 if contrast is None else contrast.shape[1]))
        # the left-most factor's columns vary fastest (patsy's _column_combinations)
        for combo in itertools.product(*[range(m) for _, m in reversed(parts)]):
            col = None
            for (block, m), j in zip(parts, combo[::-1]):
                piece = block if m == 1 else g.op("Gather", block, g.const(
                    np.asarray([j], dtype=np.int64), "j"), axis=1)
                col = piece if col is None else g.op("Mul", col, piece)
            assert col is not None
            cols.append(col)
    return cols[0] if len(cols) == 1 else g.op("Concat", *cols, axis=1)


def _block(g: _Graph, factor: _Factor, contrast: np.ndarray | None, x: str,
           dtype: str) -> str:
    """A numeric column as float64, or a categorical's coded columns ``[N, m]``:
    ``onehot(levels) @ contrast``, NaN in the rows whose value is no level."""
    if factor.levels is None:
        return x if dtype == "float64" else g.op("Cast", x, to=_DOUBLE)
    assert contrast is not None
    levels = factor.levels
    if dtype == "string":
        idx = g.op("LabelEncoder", x, domain="ai.onnx.ml", keys_strings=[str(v) for v in levels],
                   values_int64s=list(range(len(levels))), default_int64=-1)
        onehot = g.op("Equal", idx, g.const(np.arange(len(levels), dtype=np.int64)[None, :]))
    else:
        onehot = g.op("Equal", x, g.const(np.asarray([levels], dtype=_NUMPY[dtype])))
    hot = g.op("Cast", onehot, to=_DOUBLE)
    known = g.op("ReduceSum", hot, g.const(np.asarray([1], dtype=np.int64)), keepdims=1)
    return g.op("Div", g.op("MatMul", hot, g.const(contrast)), known)  # 0 / 0 where unknown


_DOUBLE = 11  # onnx.TensorProto.DOUBLE
_NUMPY = {"int64": np.int64, "bool": np.bool_, "float64": np.float64, "float32": np.float64}


def _tensor(value: np.ndarray) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(value)


# -- the converter ----------------------------------------------------------------------


class StatsmodelsConverter:
    """Fitted statsmodels OLS/WLS/GLS/GLSAR, GLM and Logit/Probit results."""

    name = "statsmodels"
    framework = "statsmodels"
    extra = EXTRA

    def accepts(self, model: Any) -> bool:
        return type(model).__module__.split(".")[0] == "statsmodels"

    def describe(self, model: Any) -> str:
        inner = getattr(model, "model", None)
        return _describe(inner) if inner is not None else _describe(model)

    def versions(self) -> dict[str, str]:
        return {"statsmodels": _sm().__version__}

    def prepare(self, model: Any, data: Any) -> Any:
        plan = _read(model)
        wanted = plan.columns or plan.exog_names
        if wanted and _is_frame(data):
            from baton.schema import require_columns

            require_columns(data, wanted)
            return data[wanted]
        if plan.columns:
            raise SchemaError(
                "a formula model takes a DataFrame",
                expected="a DataFrame with columns " + ", ".join(map(repr, plan.columns)),
                found=type(data).__name__,
                hint="pass the rows as a DataFrame, as for results.predict",
            )
        return data

    def infer_inputs(self, model: Any, sample: Any) -> list[Any]:
        import dataclasses

        from baton.schema import infer_inputs

        plan = _read(model)
        prepared = self.prepare(model, sample)
        if plan.columns:
            specs = infer_inputs(prepared)
            levels = {f.column: f.levels for sub in plan.design or [] for f, _ in sub.factors}
            out = []
            for s in specs:
                if levels.get(s.column or s.name) is None:  # a numeric column: read as float64
                    if s.dtype == "string":
                        raise _not_numeric(s.name)
                    s = dataclasses.replace(s, dtype="float64")
                elif s.dtype == "float32":
                    s = dataclasses.replace(s, dtype="float64")
                out.append(s)
            return out
        (spec,) = infer_inputs(prepared, one_matrix=True)
        if spec.shape[1] != plan.params.size:
            raise SchemaError(
                "the sample does not have the model's exog columns",
                expected=f"{plan.params.size} columns (the exog, constant included)",
                found=f"{spec.shape[1]} columns",
                hint="pass rows of the exog the model was fitted on (with its constant "
                "column, e.g. sm.add_constant(X))",
            )
        if spec.dtype == "string":
            raise _not_numeric("input")
        return [dataclasses.replace(spec, dtype="float64")]

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        import warnings

        prepared = self.prepare(model, data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = model.predict(prepared)
        except Exception as exc:  # noqa: BLE001 - patsy and statsmodels raise anything
            cause = exc.__cause__ or exc  # statsmodels re-raises patsy's error in a preamble
            raise SchemaError(
                f"the original model ({self.describe(model)}) rejected the data",
                expected="data shaped like the model's exog",
                found=first_line(cause, 300, with_type=True),
                hint="pass the same columns and types the model was fitted on",
            ) from cause
        return {"prediction": np.asarray(out, dtype=np.float64).reshape(-1)}

    def convert(self, model: Any, sample: Any, inputs: list[Any], *,
                opset: int | None) -> Any:
        from onnx import TensorProto, helper

        from baton.converters._graph import output_specs
        from baton.converters._registry import Conversion
        from baton.schema import numpy_dtype

        plan = _read(model)
        version = DEFAULT_OPSET if opset is None else int(opset)
        if version < 13:
            raise UsageError("baton writes statsmodels graphs at opset 13 or later",
                             expected="opset >= 13", found=str(opset), hint="pass opset=18")
        g = _Graph()
        if plan.columns:
            x = _design(g, plan, {s.column: s.name for s in inputs},
                        {s.column: s.dtype for s in inputs})
        else:
            x = inputs[0].name
        eta = g.op("MatMul", x, g.const(plan.params, "params"))
        _inverse_link(g, plan.link, eta, "prediction")
        elem = {np.dtype(np.float64): TensorProto.DOUBLE, np.dtype(np.int64): TensorProto.INT64,
                np.dtype(np.bool_): TensorProto.BOOL, np.dtype(object): TensorProto.STRING}
        ins = [helper.make_tensor_value_info(s.name, elem[numpy_dtype(s.dtype)],
                                             [None, *s.shape[1:]]) for s in inputs]
        outs = [helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, [None])]
        graph = helper.make_graph(g.nodes, f"statsmodels_{plan.what.split('(')[0]}", ins, outs,
                                  g.inits)
        opsets = [helper.make_opsetid("", version), helper.make_opsetid("ai.onnx.ml", 2)]
        onx = helper.make_model(graph, opset_imports=opsets, producer_name="baton")
        onx.ir_version = min(onx.ir_version, 9)
        notes = [f"{plan.what}: prediction = results.predict(exog), the mean response"]
        if plan.link[0] == "probit":
            notes.append("normal CDF as scipy.special.ndtr computes it (cephes erf/erfc)")
        if plan.columns:
            notes.append("the formula's design matrix built in the graph from the columns "
                         + ", ".join(plan.columns))
        return Conversion(
            model=onx, inputs=inputs, outputs=output_specs(onx, KINDS),
            source={"framework": self.framework, "class": self.describe(model),
                    "versions": self.versions()},
            converter={"name": "baton.statsmodels", "version": "1",
                       "strategy": "baton graph of the linear predictor and inverse link",
                       "attempts": ["float64: ok"], "notes": notes},
            precision="float64",
        )


def _not_numeric(name: str) -> SchemaError:
    return SchemaError(
        f"input {name!r} holds text, but the model reads it as a number",
        expected="numeric columns", found="text",
        hint="pass the column as numbers, as it was when the model was fitted",
    )


__all__ = ["StatsmodelsConverter"]
