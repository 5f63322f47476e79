"""scikit-learn estimators and Pipelines, through skl2onnx.

What baton adds on top of skl2onnx:

* one ONNX input per DataFrame column, named after it, typed from the data;
* a precision chain: float64 first (no narrowing of the user's data), float32 when a part of
  the model has no float64 kernel in onnxruntime; each attempt is loaded and run in
  onnxruntime before it is accepted, and the attempts are recorded;
* ``Imputer`` nodes replaced by standard operators, so a float64 ``SimpleImputer`` loads;
* plain tensor outputs ``label``/``probabilities`` (or ``scores``), ``prediction``,
  ``transformed`` (no ZipMap);
* estimators skl2onnx cannot handle refused up front with a reason, never a traceback.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from baton.contract import ModelFile
from baton.converters._graph import (
    flatten_output,
    normalise_opsets,
    rename_values,
    replace_imputers,
    select_column,
)
from baton.converters._registry import Conversion
from baton.errors import SchemaError, UnsupportedModelError, UsageError, first_line, require
from baton.schema import TensorSpec, from_ort, infer_inputs, is_dataframe
from baton.tolerance import Tolerance

if TYPE_CHECKING:
    import onnx

EXTRA = "sklearn"
DEFAULT_OPSET = 18
ML_OPSET = 3

OTHER_FRAMEWORKS = ("lightgbm", "xgboost", "catboost")
#: estimators that take documents (text), and the opset their graphs need
TEXT = frozenset({"CountVectorizer", "TfidfVectorizer", "HashingVectorizer"})
TEXT_OPSET = 20

#: Estimators skl2onnx 1.20 cannot convert, with the reason shown to the user (bare ones go
#: to baton's own tree converter, baton.converters.sklearn_trees; these are inside Pipelines).
KNOWN_UNSUPPORTED = {
    "HistGradientBoostingClassifier": (
        "skl2onnx 1.20 fails on it (it writes a boolean attribute into the tree nodes that "
        "ONNX rejects)"
    ),
    "HistGradientBoostingRegressor": (
        "skl2onnx 1.20 fails on it (it writes a boolean attribute into the tree nodes that "
        "ONNX rejects)"
    ),
}


def _sklearn() -> Any:
    return require("sklearn", EXTRA, "Converting a scikit-learn model")


def _class_path(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _estimators(model: Any) -> list[Any]:
    """The model and every estimator nested in it (pipeline steps, transformers)."""
    found = [model]
    get_params = getattr(model, "get_params", None)
    if get_params is None:
        return found
    try:
        params = get_params(deep=True)
    except Exception:  # noqa: BLE001 - a custom estimator may not support deep params
        return found
    for v in params.values():
        if hasattr(v, "fit") and v is not model and all(v is not f for f in found):
            found.append(v)
    return found


def _fitted_parts(model: Any) -> list[Any]:
    """The model and the fitted estimators inside it: Pipeline steps and a
    ColumnTransformer's fitted transformers (``get_params`` gives its unfitted templates)."""
    found = [model]
    children = [step for _, step in getattr(model, "steps", None) or []]
    children += [t for _, t, _ in getattr(model, "transformers_", None) or []]
    for child in children:
        if hasattr(child, "fit"):
            found += _fitted_parts(child)
    return found


def _selects_columns(model: Any) -> bool:
    """Whether the model's first step picks DataFrame columns by name (a ColumnTransformer)."""
    steps = getattr(model, "steps", None)
    if steps:
        return _selects_columns(steps[0][1])
    return type(model).__name__ == "ColumnTransformer"


def _takes_documents(model: Any) -> bool:
    """Whether the model's first step is a text vectoriser (it reads a list of documents)."""
    steps = getattr(model, "steps", None)
    if steps:
        return _takes_documents(steps[0][1])
    return type(model).__name__ in TEXT


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    if steps:
        return _final_estimator(steps[-1][1])
    return model


class SklearnConverter:
    name = "sklearn"
    framework = "scikit-learn"
    extra = EXTRA
    #: (the loader is defined below, hence the lambda)
    model_files = (ModelFile(".skops", lambda path, trust: _load_skops(path, trust),
                             framework="scikit-learn", what="scikit-learn, saved with skops",
                             save="skops.io.dump(model, 'model.skops')"),)

    def accepts(self, model: Any) -> bool:
        """scikit-learn's own estimators and Pipelines, and user classes built on them, but
        not other frameworks' scikit-learn-style wrappers (LGBMClassifier, XGBRegressor...),
        which their own converters take."""
        root = type(model).__module__.split(".")[0]
        if root in OTHER_FRAMEWORKS:
            return False
        return any(c.__module__.split(".")[0] == "sklearn" for c in type(model).__mro__[:-1])

    def describe(self, model: Any) -> str:
        return _class_path(model)

    # -- schema -----------------------------------------------------------------------

    def _feature_names(self, model: Any) -> list[str] | None:
        names = getattr(model, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else None

    def prepare(self, model: Any, data: Any) -> Any:
        names = self._feature_names(model)
        if is_dataframe(data) and names is not None:
            missing = [n for n in names if n not in data.columns]
            if missing:
                raise SchemaError(
                    f"the data lacks column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(map(repr, missing))} the model was trained on",
                    expected="columns " + ", ".join(map(repr, names)),
                    found="columns " + ", ".join(map(repr, map(str, data.columns))),
                    hint="pass data with every training column (extra columns are ignored)",
                )
            return data[names]
        if is_dataframe(data) and names is None:
            data = data.to_numpy()
        if _takes_documents(model):
            docs = np.asarray(data, dtype=object)
            if docs.ndim == 1:  # a list of documents: one text column
                return docs.reshape(-1, 1)
        return data

    def infer_inputs(self, model: Any, sample: Any) -> list[TensorSpec]:
        sample = self.prepare(model, sample)
        # one ONNX input per column where the model selects columns by name (a
        # ColumnTransformer first); otherwise one matrix, read from the named columns
        inputs = infer_inputs(sample, one_matrix=not _selects_columns(model))
        n_in = getattr(model, "n_features_in_", None)
        if not is_dataframe(sample) and n_in is not None and inputs[0].shape[1] != n_in:
            raise SchemaError(
                "the sample does not have the number of features the model was trained on",
                expected=f"{n_in} columns",
                found=f"{inputs[0].shape[1]} columns",
                hint="pass rows of the same feature matrix the model was fitted on",
            )
        return inputs

    # -- outputs ----------------------------------------------------------------------

    def _task(self, model: Any) -> str:
        base = _sklearn().base
        if base.is_classifier(model):
            return "classifier"
        if base.is_regressor(model):
            return "regressor"
        if base.is_outlier_detector(model) and hasattr(model, "predict"):
            return "outlier detector"
        if hasattr(model, "predict") and (base.is_clusterer(model)
                                          or hasattr(model, "predict_proba")):
            return "clusterer"  # KMeans and friends; a mixture, with its probabilities
        if hasattr(model, "transform"):
            return "transformer"
        raise UnsupportedModelError(
            f"baton cannot convert {_class_path(model)}: it is neither a classifier, a "
            "regressor, a clusterer or outlier detector that predicts, nor a transformer",
            expected="a model with predict (classifier, regressor, clusterer, outlier "
            "detector) or transform, or a Pipeline ending in one",
            found=_class_path(model) + " (" + ", ".join(
                m for m in ("predict", "transform", "fit_predict") if hasattr(model, m))
            + ")",
            hint="a clusterer with fit_predict only (e.g. DBSCAN, AgglomerativeClustering) "
            "labels the data it was fitted on and cannot score new rows: fit a model that "
            "predicts (e.g. KMeans, or a classifier on its labels) and convert that",
        )

    def _output_kinds(self, model: Any) -> list[str]:
        """The outputs, by kind: a classifier's label and probabilities (or decision scores),
        a clusterer's label and distances to each centre (``transform``) or membership
        probabilities, an outlier detector's label (1 inlier, -1 outlier) and decision
        scores, a regressor's prediction, a transformer's output."""
        task = self._task(model)
        if task == "classifier":
            if hasattr(model, "predict_proba"):
                return ["label", "probabilities"]
            if hasattr(model, "decision_function"):
                return ["label", "scores"]
            return ["label"]
        if task == "clusterer":
            if hasattr(model, "predict_proba"):
                return ["label", "probabilities"]
            return ["label", "distances"] if hasattr(model, "transform") else ["label"]
        if task == "outlier detector":
            return ["label", "scores"]
        return ["prediction"] if task == "regressor" else ["transformed"]

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        X = self.prepare(model, data)
        if _takes_documents(model) and np.ndim(X) == 2 and np.shape(X)[1] == 1:
            X = np.asarray(X)[:, 0]  # the vectoriser reads a list of documents
        out: dict[str, np.ndarray] = {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for kind in self._output_kinds(model):
                    if kind == "label":
                        out[kind] = np.asarray(model.predict(X))
                    elif kind == "probabilities":
                        out[kind] = np.asarray(model.predict_proba(X))
                    elif kind == "scores":
                        out[kind] = np.asarray(model.decision_function(X))
                    elif kind == "prediction":
                        out[kind] = np.asarray(model.predict(X))
                    elif kind == "distances":
                        out[kind] = np.asarray(model.transform(X))
                    else:
                        t = model.transform(X)
                        out[kind] = np.asarray(t.toarray() if hasattr(t, "toarray") else t)
            if len(X) == 1:  # some (SparsePCA) drop the row axis of a one-row batch
                out = {k: v[None] if v.ndim and v.shape[0] != 1 else v
                       for k, v in out.items()}
        except (ValueError, TypeError, KeyError) as exc:
            raise SchemaError(
                f"the original model ({_class_path(model)}) rejected the data",
                expected="data shaped like the model's training data",
                found=first_line(exc, 300, with_type=True),
                hint="pass the same columns and types the model was trained on",
            ) from exc
        return out

    # -- conversion -------------------------------------------------------------------

    def _check_supported(self, model: Any) -> None:
        sk = _sklearn()
        for est in _estimators(model):
            reason = KNOWN_UNSUPPORTED.get(type(est).__name__)
            if reason:
                raise UnsupportedModelError(
                    f"baton cannot convert {type(est).__name__} inside "
                    f"{type(model).__name__}: {reason}. baton converts it exactly when it is "
                    "the model itself or the last step of a Pipeline.",
                    expected=f"{type(est).__name__} alone or as a Pipeline's last step, or "
                    "a model whose parts skl2onnx converts",
                    found=f"{_class_path(model)} containing {_class_path(est)}",
                    hint=f"convert the fitted {type(est).__name__} on its own, or "
                    "restructure the model so that it is the last step of a Pipeline",
                )
        try:
            sk.utils.validation.check_is_fitted(model)
        except sk.exceptions.NotFittedError as exc:
            raise UsageError(
                f"{_class_path(model)} is not fitted",
                expected="a fitted model",
                found="an estimator without fitted attributes",
                hint="call model.fit(X, y) before converting",
            ) from exc

    def convert(
        self, model: Any, sample: Any, inputs: list[TensorSpec], *, opset: int | None
    ) -> Conversion:
        self._check_supported(model)
        kinds = self._output_kinds(model)
        sample = self.prepare(model, sample)
        floats = {s.dtype for s in inputs if s.dtype.startswith("float")}
        # the sample's own precision first; the other one only when that fails
        if not floats:
            precisions = ["native"]
        elif "float64" in floats:
            precisions = ["float64", "float32"]
        else:
            precisions = ["float32", "float64"]
        attempts: list[str] = []
        for precision in precisions:
            specs = [_with_precision(s, precision) for s in inputs]
            try:
                onx, notes = self._convert_once(model, specs, kinds, opset, precision)
                outputs = self._validate_in_ort(model, onx, specs, sample, kinds)
            except _AttemptFailed as exc:
                attempts.append(f"{precision}: {exc}")
                continue
            skl2onnx = require("skl2onnx", EXTRA, "Converting a scikit-learn model")
            sk = _sklearn()
            if precision == "float32" and any(s.dtype == "float64" for s in inputs):
                notes.append(
                    "float64 inputs are narrowed to float32: the float64 conversion failed ("
                    + "; ".join(attempts)[:300] + ")"
                )
            return Conversion(
                model=onx,
                inputs=specs,
                outputs=outputs,
                source={
                    "framework": self.framework,
                    "class": _class_path(model),
                    "final_estimator": _class_path(_final_estimator(model)),
                    "versions": {"scikit-learn": sk.__version__},
                },
                converter={
                    "name": "skl2onnx",
                    "version": skl2onnx.__version__,
                    "strategy": f"skl2onnx.convert_sklearn ({precision})",
                    "attempts": attempts + [f"{precision}: ok"],
                    "notes": notes,
                    "own": _own_parts(model),
                },
                precision="float64" if precision != "float32" else "float32",
                tolerances={o.name: Tolerance() for o in outputs},
            )
        missing = [a for a in attempts if "MissingShapeCalculator" in a]
        if missing and len(missing) == len(attempts):
            what = missing[0].split("type '<class '", 1)[-1].split("'>", 1)[0]
            raise UnsupportedModelError(
                f"neither baton nor skl2onnx has a converter for {what}",
                expected="estimators baton or skl2onnx converts (docs/coverage.md lists "
                "scikit-learn's, one by one)",
                found=f"{_class_path(model)}, containing {what}",
                hint="replace that step by one that converts; for your own estimator class, "
                "register a converter with skl2onnx.update_registered_converter (baton "
                "uses skl2onnx's registry), or add a baton converter (docs/converters.md)",
            )
        raise UnsupportedModelError(
            f"skl2onnx could not produce a model onnxruntime runs for {_class_path(model)}",
            expected="a model skl2onnx converts and onnxruntime loads",
            found="; ".join(attempts)[:1200],
            hint="check that every step of the pipeline is supported by skl2onnx "
            "(https://onnx.ai/sklearn-onnx/supported.html)",
        )

    def _convert_once(
        self, model: Any, specs: list[TensorSpec], kinds: list[str], opset: int | None,
        precision: str,
    ) -> tuple[onnx.ModelProto, list[str]]:
        skl2onnx = require("skl2onnx", EXTRA, "Converting a scikit-learn model")
        from baton.converters._sklearn_own import register

        register()  # baton's own converters, for the estimator itself or any of its steps
        initial_types = [(s.name, _onnx_type(s)) for s in specs]
        target = {"": opset or DEFAULT_OPSET, "ai.onnx.ml": ML_OPSET}
        texts = [type(e).__name__ for e in _fitted_parts(model) if type(e).__name__ in TEXT]
        if texts:  # baton's locale-free text path rebuilds strings with StringConcat
            if opset is not None and opset < TEXT_OPSET:
                raise UsageError(
                    f"{texts[0]} needs ONNX opset {TEXT_OPSET} or later in baton's "
                    "locale-free text path (StringConcat)",
                    expected=f"opset {TEXT_OPSET} or later, or no opset",
                    found=f"opset {opset}",
                    hint=f"drop the opset option or pass {TEXT_OPSET} (onnxruntime 1.17 and "
                    "later run it)",
                )
            target[""] = max(target[""], TEXT_OPSET)
        final = _final_estimator(model)
        # skl2onnx's options differ per estimator and a wrong one is a NameError; the first
        # candidate that the estimator accepts wins (no ZipMap; raw decision scores).
        candidates: list[dict[int, dict[str, Any]] | None] = [None]
        if "probabilities" in kinds:
            candidates = [{id(final): {"zipmap": False}}, None]
        elif "scores" in kinds:
            candidates = [{id(final): {"raw_scores": True, "zipmap": False}},
                          {id(final): {"raw_scores": True}}, {id(final): {"zipmap": False}}, None]
        notes: list[str] = []
        onx = None
        errors = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for options in candidates:
                try:
                    try:
                        onx = skl2onnx.convert_sklearn(
                            model, initial_types=initial_types, options=options,
                            target_opset=target)
                    except TypeError as exc:
                        if "'dict' and 'int'" not in str(exc):
                            raise
                        # some of skl2onnx's converters (GaussianMixture's) compare the
                        # target opset as a number: give them one
                        onx = skl2onnx.convert_sklearn(
                            model, initial_types=initial_types, options=options,
                            target_opset=target[""])
                    break
                except NameError as exc:  # an option this estimator does not take
                    errors.append(first_line(exc, 240, with_type=True))
                except UnsupportedModelError:
                    raise  # baton's own converters refuse precisely, with their own remedy
                except Exception as exc:  # noqa: BLE001 - skl2onnx raises anything on failure
                    raise _AttemptFailed(first_line(exc, 240, with_type=True)) from exc
        if onx is None:
            raise _AttemptFailed("; ".join(errors))
        if any(o.type.HasField("sequence_type") for o in onx.graph.output):
            raise _AttemptFailed("skl2onnx kept a ZipMap output (a list of dicts)")
        normalise_opsets(onx, {})
        fills = [np.asarray(e.statistics_) for e in _fitted_parts(model)
                 if type(e).__name__ == "SimpleImputer"
                 and np.asarray(getattr(e, "statistics_", [])).dtype.kind in "fiu"]
        if precision == "float64" and replace_imputers(onx, np.float64, fills):
            notes.append(
                "Imputer nodes replaced by IsNaN/Where (onnxruntime has no float64 Imputer)"
            )
        outs = [o.name for o in onx.graph.output]
        if len(outs) != len(kinds):
            raise _AttemptFailed(
                f"skl2onnx produced outputs {outs}, baton expected {len(kinds)} ({kinds})"
            )
        rename_values(onx, {old: new for old, new in zip(outs, kinds) if old != new})
        onx.producer_name = "baton"
        onx.graph.name = type(model).__name__  # skl2onnx's is random: same model, same bytes
        return onx, notes


    def _validate_in_ort(self, model: Any, onx: onnx.ModelProto, specs: list[TensorSpec],
                         sample: Any, kinds: list[str]) -> list[TensorSpec]:
        """Load and run the graph in onnxruntime on sample rows; the output specs.

        A binary classifier's decision scores come out of skl2onnx as two columns (``s`` and
        ``-s``, in an order that varies by estimator) where scikit-learn gives one; the
        column that matches ``decision_function`` is kept.
        """
        from baton.runtime.session import make_ort_session
        from baton.schema import take_rows, to_feeds

        rows = take_rows(sample, np.arange(min(len(sample), 32)))
        try:
            sess = make_ort_session(onx.SerializeToString())
            got = dict(zip(kinds, sess.run(None, to_feeds(rows, specs))))
        except SchemaError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
            raise _AttemptFailed(f"onnxruntime: {first_line(exc, 240, with_type=True)}") from exc
        n = len(rows)
        if "label" in got and got["label"].shape in ((1, n), (n, 1)) and n > 1:
            # a [1, N] label (QuadraticDiscriminantAnalysis), [N, 1] (LocalOutlierFactor)
            flatten_output(onx, "label")
            sess = make_ort_session(onx.SerializeToString())
        if "scores" in got and got["scores"].ndim == 2 and got["scores"].shape[1] == 2:
            ref = self.predict(model, rows)["scores"]
            if ref.ndim == 1:
                errs = [np.max(np.abs(got["scores"][:, j] - ref)) for j in (0, 1)]
                select_column(onx, "scores", int(np.argmin(errs)))
                sess = make_ort_session(onx.SerializeToString())
        return [from_ort(o, kind) for o, kind in zip(sess.get_outputs(), kinds)]


def _own_parts(model: Any) -> list[str]:
    """The classes of the model's parts that baton's own converters wrote."""
    from baton.converters._sklearn_own import registered

    own = {o.resolve() for o in registered()}
    return sorted({_class_path(p) for p in _estimators(model) + _fitted_parts(model)
                   if type(p) in own})


class _AttemptFailed(Exception):
    pass


def _with_precision(spec: TensorSpec, precision: str) -> TensorSpec:
    if spec.dtype.startswith("float") and precision in ("float32", "float64"):
        return dataclasses.replace(spec, dtype=precision)
    return spec


def _onnx_type(spec: TensorSpec) -> Any:
    from skl2onnx.common import data_types as t

    shape = [None if not isinstance(d, int) else d for d in spec.shape]
    cls = {
        "float32": t.FloatTensorType,
        "float64": t.DoubleTensorType,
        "int64": t.Int64TensorType,
        "int32": t.Int32TensorType,
        "bool": t.BooleanTensorType,
        "string": t.StringTensorType,
    }[spec.dtype]
    return cls(shape)


#: Module-name parts that mark scikit-learn code a model never holds: test helpers (which
#: re-export subprocess and os functions) and vendored third-party packages.
_UNTRUSTED_PARTS = frozenset({"tests", "test", "testing", "_testing", "conftest", "externals",
                              "_externals", "_build_utils", "__check_build"})


def _safe_type(name: str) -> bool:
    """Whether baton trusts the type ``name`` (``module.attribute``, as skops names it) in a
    .skops file beyond skops' own defaults: a class *defined* in scikit-learn (skops 0.16
    leaves internals such as HistGradientBoosting's TreePredictor off its list), or a numpy
    dtype class. Never a function or other callable, nor a name that scikit-learn merely
    re-exports (``sklearn.utils._testing.check_output`` is ``subprocess.check_output``), nor
    anything in a test or vendored module. Only modules inside the ``sklearn`` and ``numpy``
    packages are imported to decide. Anything else needs --trust-pickle."""
    import importlib

    module, _, attr = name.rpartition(".")
    parts = module.split(".")
    if not attr or not all(p.isidentifier() for p in [*parts, attr]):
        return False
    if (module, attr) == ("numpy", "dtype") or module == "numpy.dtypes":
        want: type = np.dtype
    elif parts[0] == "sklearn" and len(parts) > 1:
        if any(p in _UNTRUSTED_PARTS or p.startswith("test_") for p in parts):
            return False
        want = object
    else:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = getattr(importlib.import_module(module), attr, None)
    except Exception:  # noqa: BLE001 - a module that does not import is not trusted
        return False
    return (isinstance(obj, type) and issubclass(obj, want) and obj.__module__ == module
            and obj.__qualname__ == attr)


def _load_skops(path: Path, trust: bool) -> Any:
    sio = require("skops.io", EXTRA, "Loading a .skops model")
    try:
        listed = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises anything
        raise UsageError(
            f"cannot read {path} as a skops file",
            expected="a file written by skops.io.dump",
            found=first_line(exc, 240, with_type=True),
            hint="re-save the model with skops.io.dump(model, 'model.skops')",
        ) from exc
    untrusted = [t for t in listed if not _safe_type(t)]
    if untrusted and not trust:
        raise UsageError(
            f"refusing to load {path}: it names types that are not scikit-learn's own "
            "classes, numpy dtypes or types skops trusts, and loading it would run them",
            expected="only classes defined in scikit-learn, numpy dtypes and types skops "
            "trusts by default",
            found="untrusted " + ", ".join(untrusted),
            hint="do not load a file from a source you do not trust; if you made it yourself, "
            "pass --trust-pickle, which loads it and runs the code of the types listed above",
        )
    try:
        return sio.load(path, trusted=listed or None)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(
            f"cannot load {path}",
            expected="a file written by skops.io.dump",
            found=first_line(exc, 240, with_type=True),
            hint="re-save the model with the scikit-learn version installed here",
        ) from exc


__all__ = ["SklearnConverter"]
