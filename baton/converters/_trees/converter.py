"""The converter the tree readers share: schema, emission, tolerances and the notes the
manifest keeps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from baton.converters._trees.emit import _float32_exact, emit, frame_specs, with_frame_inputs
from baton.converters._trees.heads import OUTPUT_KINDS
from baton.converters._trees.ir import Ensemble, FrameColumn, Head

#: How close a tree model's numbers must be: 1e-6 of the range the outputs span on the
#: sample (the splits themselves are exact; what is left is the order of summation).
RANGE_FRACTION = 1e-6
#: ``tree_sum`` choices: ``"exact"`` adds the trees as the library does (XGBoost: one tree
#: after another in float32, bit for bit); ``"fast"`` lets onnxruntime add them in float64
#: in its own order, across threads (XGBoost's margins then differ from the library's by
#: at most its own float32 rounding, :func:`float32_sum_bound`)
TREE_SUMS = ("exact", "fast")


class TreeConverter(ABC):
    """Shared by the tree readers: schema, emission, validation, tolerances.

    A reader subclass sets ``name``, ``framework``, ``extra`` and implements ``accepts``,
    ``read`` (model -> :class:`Ensemble`, :class:`Head`), ``native_predict`` (the
    library's own outputs, keyed like the ONNX outputs), ``feature_names`` and
    ``versions``.
    """

    name = "trees"
    framework = "trees"
    extra = "all"
    #: the model one conversion reads and what it read into: ``infer_inputs`` reads it
    #: afresh, ``convert`` (and the readers' own steps in between) reuse it, and ``convert``
    #: forgets it, so each model is parsed once per conversion (:meth:`read_once`)
    _last: tuple[Any, tuple[Ensemble, Head]] | None = None

    @abstractmethod
    def accepts(self, model: Any) -> bool: ...

    @abstractmethod
    def read(self, model: Any) -> tuple[Ensemble, Head]: ...

    @abstractmethod
    def native_predict(self, model: Any, data: Any) -> dict[str, np.ndarray]: ...

    def feature_names(self, model: Any) -> list[str] | None:
        return None

    def versions(self) -> dict[str, str]:
        return {}

    def describe(self, model: Any) -> str:
        cls = type(model)
        return f"{cls.__module__}.{cls.__qualname__}"

    # -- shared -----------------------------------------------------------------------

    def read_once(self, model: Any, *, fresh: bool = False) -> tuple[Ensemble, Head]:
        """:meth:`read`, reusing what this conversion already read from ``model`` (the
        same object) unless ``fresh``."""
        last = self._last
        if not fresh and last is not None and last[0] is model:
            return last[1]
        result = self.read(model)
        self._last = (model, result)
        return result

    def forget(self) -> None:
        """Drop what :meth:`read_once` kept (the end of a conversion)."""
        self._last = None

    def split_points(self, model: Any) -> dict[int, np.ndarray]:
        """Every numeric split threshold of the original model, by the position of its
        feature in the prepared data (for the parity search, :mod:`baton.parity.search`)."""
        ens, _ = self.read(model)
        return ens.thresholds()

    def prepare(self, model: Any, data: Any) -> Any:
        from baton.schema import is_dataframe

        names = self.feature_names(model)
        if is_dataframe(data) and names is not None:
            from baton.schema import require_columns

            require_columns(data, names)
            return data[names]
        return data

    def infer_inputs(self, model: Any, sample: Any) -> list[Any]:
        import dataclasses

        from baton.errors import SchemaError
        from baton.schema import infer_inputs

        prepared = self.prepare(model, sample)
        (spec,) = infer_inputs(prepared, one_matrix=True)
        ens, _ = self.read_once(model)  # the subclasses' infer_inputs forget() first
        if spec.shape[1] != ens.n_features:
            raise SchemaError(
                "the sample does not have the number of features the model was trained on",
                expected=f"{ens.n_features} features", found=f"{spec.shape[1]} columns",
                hint="pass rows of the same feature matrix the model was fitted on",
            )
        # splits are compared in float64: every numeric input is fed as float64
        return [dataclasses.replace(spec, dtype="float64")]

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        import warnings

        from baton.errors import SchemaError, first_line

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.native_predict(model, self.prepare(model, data))
        except (ValueError, TypeError, KeyError) as exc:
            raise SchemaError(
                f"the original model ({self.describe(model)}) rejected the data",
                expected="data shaped like the model's training data",
                found=first_line(exc, 300, with_type=True),
                hint="pass the same columns and types the model was trained on",
            ) from exc

    #: the ``tree_sum`` choices :meth:`convert` takes (``baton.convert(tree_sum=...)``)
    tree_sums = TREE_SUMS

    def convert(self, model: Any, sample: Any, inputs: list[Any], *,
                opset: int | None, tree_sum: str = "exact") -> Any:
        import dataclasses

        from baton.converters._graph import output_specs
        from baton.converters._registry import Conversion
        from baton.tolerance import Tolerance

        if tree_sum not in TREE_SUMS:
            raise ValueError(f"unknown tree_sum {tree_sum!r}")
        ens, head = self.read_once(model)
        self.forget()
        bound = 0.0  # how far the margins may move from the library's (tree_sum="fast")
        if tree_sum == "fast" and ens.accumulate == "float32":
            bound = float32_sum_bound(ens)
            ens = dataclasses.replace(ens, accumulate="float64")
        onx = emit(ens, head, input_name=inputs[0].name, name=type(model).__name__,
                   opset=opset)
        # the outputs' specs as the emitter wrote them, as onnxruntime would report them
        outputs = output_specs(onx, OUTPUT_KINDS)
        reference = self.predict(model, sample)
        tolerances = {}
        for o in outputs:
            if o.kind == "label":
                tolerances[o.name] = Tolerance()
                continue
            ref = np.asarray(reference[o.name], dtype=np.float64)
            finite = ref[np.isfinite(ref)]
            span = float(finite.max() - finite.min()) if finite.size else 0.0
            atol = RANGE_FRACTION * (span if span > 0 else max(1.0, float(np.abs(finite).max(
                initial=0.0))))
            rtol = 0.0
            if bound:
                # the library's float32 rounding: probabilities (sigmoid, softmax) move by at
                # most the margins' change, exp(margin) by a factor of at most exp(bound)
                if o.name == "prediction" and head.transform == "exp":
                    rtol = float(np.expm1(bound))
                else:
                    atol += bound
            tolerances[o.name] = Tolerance(atol=atol, rtol=rtol)
        notes = _notes(ens, head)
        if bound:
            notes.append(f"tree_sum='fast': the trees added in float64 by onnxruntime, in its "
                         f"own order; the library adds them in float32, so the margins may "
                         f"differ by up to {bound:.3g} (its float32 rounding bound)")
        return Conversion(
            model=onx, inputs=inputs, outputs=outputs,
            source={"framework": self.framework, "class": self.describe(model),
                    "versions": self.versions()},
            converter={"name": "baton.trees", "version": "1",
                       "strategy": f"baton tree emitter from the {self.framework} reader",
                       "attempts": ["float64: ok"], "notes": notes},
            precision="float64",
            tolerances=tolerances,
        )


def float32_sum_bound(ens: Ensemble) -> float:
    """How far a float32 running sum of ``base`` and the trees (XGBoost's margin) can be
    from their exact sum, for any target and any row: ``gamma(n) * (|base| + sum of each
    tree's largest leaf magnitude)``, ``gamma(n) = n u / (1 - n u)``, ``u = 2**-24``, ``n``
    the additions (the standard bound on recursive summation, Higham 2002, eq. 4.4); twice
    that, for the float64 sum's own rounding and the head in float64, is still far
    below any output's use."""
    u = 2.0 ** -24
    worst = 0.0
    base = list(ens.base) or [0.0]
    for target in range(ens.n_targets):
        total = abs(float(base[target] if len(base) > target else base[0]))
        n = 0
        for tree in ens.trees:
            weights = [abs(w) for leaf in _tree_leaves(tree) for t, w in leaf.weights
                       if t == target]
            if weights:
                total += max(weights)
                n += 1
        gamma = n * u / (1 - n * u)
        worst = max(worst, 2.0 * gamma * total)
    return worst


def _tree_leaves(tree: Any) -> list[Any]:
    from baton.converters._trees.emit import _leaves

    return _leaves(tree)


def _notes(ens: Ensemble, head: Head) -> list[str]:
    """What the manifest says about how the graph reads the library (first: the tree count)."""
    notes = [f"{len(ens.trees)} trees, float64 splits (ai.onnx.ml TreeEnsemble opset 5)"
             if ens.accumulate != "float32" or not _float32_exact(ens, ens.trees) else
             f"{len(ens.trees)} trees, float32 splits on the float32-rounded rows, the "
             "library's own values and comparisons (ai.onnx.ml TreeEnsemble opset 5)"]
    if ens.round_to_float32:
        notes.append("inputs rounded to float32 before the splits, as the library does")
    if ens.missing_value is not None and not np.isnan(ens.missing_value):
        notes.append(f"{ens.missing_value!r} read as missing, as the model's missing= says")
    if ens.categorical and ens.category_range is not None:
        low, high = ens.category_range
        notes.append(f"categorical codes outside [{low:.17g}, {high:.17g}) are no category; the "
                     + ("others are read as missing unless they are integers"
                        if ens.categorical_values == "exact" else
                        "others are truncated like int(x)")
                     + (" after the float32 rounding" if ens.round_to_float32 else ""))
    elif ens.categorical and ens.categorical_values == "exact":
        notes.append("categorical values that are not integers are no category and read as "
                     "missing, as the library's exact category match does")
    if ens.accumulate == "float32":
        notes.append("trees added one after another in float32 from the base margin, as "
                     "the library does")
    if head.task == "class_index":
        notes.append("prediction is the index of the largest margin")
    if head.task == "isolation":
        notes.append("scores: the trees' path lengths added in tree order from 0, then "
                     "-(2 ** -(depths / denominator)) - offset; label -1 where "
                     + ("depths / denominator is below the library's exact inlier bound"
                        if head.label_threshold is not None else "scores < 0"))
    if head.task == "samme":
        notes.append("each tree's weighted votes added tree by tree from 0 per class, divided "
                     "by the sum of the weights (SAMME), as the library does")
    if head.task == "weighted_median":
        notes.append("prediction: the weighted median of the trees' predictions, as the "
                     "library picks it")
    if head.task == "leaf_one_hot":
        notes.append(f"transformed: the one-hot of the leaf each tree reaches "
                     f"({len(head.leaf_owner)} columns, dense)")
    if head.task == "classification" and head.label_rule != "argmax":
        notes.append({"raw_argmax": "label: the class of the largest raw score",
                      "raw>=0": "label: class 1 where the raw score is >= 0",
                      "raw>0": "label: class 1 where the raw score is > 0"}[head.label_rule]
                     + ", as the library decides it")
    return notes


class FrameInputs:
    """For a tree reader whose models take pandas DataFrames with category columns (put it
    before :class:`TreeConverter` among the bases): one input per column, the category →
    training code mapping in the graph. The reader defines ``_frame_columns`` (None where the
    sample is no such DataFrame: the plain matrix path) and ``_frame_note`` (the manifest
    note on how categories are read)."""

    def _frame_columns(self, model: Any, sample: Any) -> list[FrameColumn] | None:
        raise NotImplementedError

    def _frame_note(self, categories: str) -> str:
        raise NotImplementedError

    def infer_inputs(self, model: Any, sample: Any) -> list[Any]:
        self.forget()  # type: ignore[attr-defined]  # a new conversion: read the model afresh
        columns = self._frame_columns(model, sample)
        if columns is None:
            return super().infer_inputs(model, sample)  # type: ignore[misc]
        return frame_specs(columns)

    def convert(self, model: Any, sample: Any, inputs: list[Any], *,
                opset: int | None, tree_sum: str = "exact") -> Any:
        columns = self._frame_columns(model, sample)
        if columns is None:
            return super().convert(  # type: ignore[misc]
                model, sample, inputs, opset=opset, tree_sum=tree_sum)
        from baton.schema import TensorSpec

        matrix = TensorSpec("input", "float64", ("N", len(columns)))
        conv = super().convert(  # type: ignore[misc]
            model, sample, [matrix], opset=opset, tree_sum=tree_sum)
        cats = ", ".join(repr(c.name) for c in columns if c.is_category)
        return with_frame_inputs(conv, columns, self._frame_note(cats))

