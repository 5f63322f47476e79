"""``Session``: load a bundle, check its hashes, run it with onnxruntime."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from baton.errors import (
    BatonError,
    BundleError,
    BundleIntegrityError,
    InputValidationError,
    ParityError,
    ort_error,
)
from baton.manifest import Manifest
from baton.runtime._external import MalformedModel, external_references
from baton.runtime._files import MODEL, BundleFiles, _safe_name
from baton.runtime._golden import read_golden
from baton.runtime._plan import FeedPlan
from baton.runtime.providers import PROVIDER_NAMES, RunSettings, available_providers, full_name
from baton.schema import TensorSpec, cast_to_spec, is_dataframe, to_feeds
from baton.tolerance import disagreement

#: onnxruntime's session option: the folder external data of a model given as bytes is
#: read from
EXTERNAL_FOLDER = "session.model_external_initializers_file_folder_path"


def make_ort_session(model: bytes | str, providers: Sequence[str] | None = None, *,
                     settings: RunSettings | None = None,
                     external_data: str | os.PathLike[str] | None = None) -> Any:
    """An onnxruntime session on the CPU unless providers (or full settings) are given.

    A model given as bytes reads external data only from the folder ``external_data``
    (never from the working directory, which is onnxruntime's default for bytes): without
    it, a model that refers to external data fails to load."""
    import onnxruntime as ort

    if settings is None:
        settings = RunSettings(providers=tuple(providers or ("cpu",)))
    options = settings.session_options()
    if not isinstance(model, str):
        folder = os.fspath(external_data) if external_data is not None else os.path.join(
            tempfile.gettempdir(), f"baton-no-external-data-{uuid.uuid4().hex}")
        options.add_session_config_entry(EXTERNAL_FOLDER, folder)
    sess = ort.InferenceSession(model, sess_options=options, providers=settings.ort_providers())
    if settings.uses_cuda and PROVIDER_NAMES["cuda"] not in sess.get_providers():
        # onnxruntime falls back to the CPU quietly when CUDA fails to start: say so
        from baton.errors import MissingDependencyError

        raise MissingDependencyError(
            "onnxruntime offers the CUDA execution provider but could not start it",
            expected="a session on CUDAExecutionProvider",
            found="providers " + ", ".join(sess.get_providers()),
            hint="the CUDA/cuDNN libraries onnxruntime-gpu needs are missing or of another "
            "major version (with torch installed, onnxruntime.preload_dlls() loads its "
            "copies); or ask for the CPU",
        )
    return sess


class Session:
    """A bundle loaded for inference; thread-safe (``run`` may be called concurrently).

    >>> sess = Session("model.baton")           # checks every file's sha256
    >>> sess.run({"age": ages, "city": cities})  # doctest: +SKIP

    ``providers``: onnxruntime execution providers in order of preference (``"cpu"``,
    ``"cuda"`` or full names); ones this onnxruntime lacks are dropped with a
    ``RuntimeWarning``, and the CPU always comes last as the fallback. ``self_check`` runs
    the bundle's golden vectors once on load and raises :class:`ParityError` when this
    machine's onnxruntime does not reproduce them.
    """

    def __init__(
        self,
        bundle: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        verify: bool = True,
        tf32: bool = False,
        self_check: bool = False,
        digest: str | None = None,
    ) -> None:
        self.files = BundleFiles(bundle)
        self.manifest = self.files.manifest()
        if digest is not None:
            self.files.check_digest(self.manifest, digest)
        if verify:
            self.files.check_integrity(self.manifest)
        model = self.files.read(MODEL)
        external = external_data_folder(self.files, self.manifest, model)
        self.inputs: list[TensorSpec] = self.manifest.inputs
        self.outputs: list[TensorSpec] = self.manifest.outputs
        self._input_names = frozenset(s.name for s in self.inputs)
        self._text_inputs = [s.name for s in self.inputs if s.dtype == "string"]
        #: which column goes to which input, for predict and predict_records
        self._plan = FeedPlan(self.inputs)
        #: how the onnxruntime session is made: the providers (CPU last, as onnxruntime's
        #: fallback) and the graph optimisation level chosen at conversion
        self.settings = RunSettings(
            providers=_usable(providers or ("cpu",)), tf32=tf32,
            optimization=self.manifest.optimization,
        )
        try:
            self._session = make_ort_session(model, settings=self.settings,
                                             external_data=external)
        except BatonError:
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ort_error(
                exc, BundleError, f"onnxruntime cannot load {MODEL} from {self.files.path}",
                expected="a model this onnxruntime can run",
                hint="run 'baton verify' on the bundle (the file may be damaged); if it is "
                "intact, compare this onnxruntime's version with onnx.onnxruntime_version "
                "in baton.json",
            ) from exc
        self.output_names = [o.name for o in self._session.get_outputs()]
        self._n_inputs = len(self._session.get_inputs())
        _check_names(self.files, self._input_names, [i.name for i in self._session.get_inputs()],
                     {s.name for s in self.outputs}, self.output_names)
        #: how feeds that need no conversion are run (:func:`_direct_run`)
        self._binding = _direct_run(self._session)
        if self_check:
            self.self_check()

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def providers(self) -> list[str]:
        """The execution providers onnxruntime actually uses, in order."""
        return list(self._session.get_providers())

    def run(
        self, feeds: Mapping[str, Any], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run on named feeds (one array per input); returns the named outputs.

        Feeds that are arrays of exactly the declared dtype go straight to onnxruntime,
        which checks names, dtypes, ranks and fixed dimensions itself. Anything else (a
        list, an int array for a float64 input, a 1-D column for an ``[N, 1]`` input, text
        with missing values, an array in the other byte order) is validated and converted
        first, value for value: widening only, never a silent float64 -> float32 narrowing;
        values the input's dtype cannot hold (integers out of its range or that its float
        type would round, booleans other than 0/1, complex numbers, dates, structured
        arrays, bytes that are not UTF-8) are refused, with errors like ``input 'age':
        expected float64 [N, 1], got string [3]``.
        """
        names = self.output_names if outputs is None else list(outputs)
        if self._direct(feeds):
            try:
                return dict(zip(names, self._binding(names, feeds, None)))
            except Exception:  # noqa: BLE001 - untyped errors: validated and explained below
                pass
        arrays = self.validate(feeds)
        try:
            values = self._session.run(names, arrays)
        except Exception as exc:  # noqa: BLE001
            unknown = [n for n in names if n not in self.output_names]
            raise ort_error(
                exc, InputValidationError,
                "onnxruntime rejected the inputs" if not unknown else
                f"unknown output {unknown[0]!r}",
                expected="outputs " + ", ".join(map(repr, self.output_names)) if unknown
                else "inputs the model can run on",
                hint="ask for the model's outputs by name" if unknown else
                "check the values (e.g. categories, index ranges) and the batch sizes of "
                "the inputs agree",
            ) from exc
        return dict(zip(names, values))

    def _direct(self, feeds: Any) -> bool:
        """Whether ``feeds`` may go straight to onnxruntime's binding (:func:`_direct_run`):
        a dict of exactly the inputs' count of native-order ndarrays, text as str/object.

        The binding checks names, dtypes, ranks and fixed dimensions in C++. Lists (which
        it would cast, 1.5 -> 1), bytes and structured arrays (which it reads as raw bytes
        for text inputs) and arrays in the other byte order (which it reads as if native:
        it matches dtypes by type number) take the validated path."""
        return (isinstance(feeds, dict) and len(feeds) == self._n_inputs
                and set(map(type, feeds.values())) == _ARRAYS
                and all(a.dtype.isnative for a in feeds.values())
                and all(feeds[n].dtype.kind in "OU" for n in self._text_inputs if n in feeds))

    def validate(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The feeds checked against the schema and converted, or InputValidationError."""
        expected = "inputs " + ", ".join(repr(s.name) for s in self.inputs)
        if not isinstance(feeds, Mapping) or not all(isinstance(k, str) for k in feeds):
            raise InputValidationError(
                "the feeds must be a dict of arrays keyed by input name",
                expected=expected,
                found=("feeds " + ", ".join(map(repr, feeds)))[:300]
                if isinstance(feeds, Mapping) else f"a {type(feeds).__name__}",
                hint=f"pass e.g. {{{(self.inputs[0].name if self.inputs else 'x')!r}: array, "
                "...}, one entry per input (Session.predict takes a DataFrame, a dict of "
                "columns or one array)",
            )
        unknown = [k for k in feeds if k not in self._input_names]
        missing = [s.name for s in self.inputs if s.name not in feeds]
        if unknown or missing:
            raise InputValidationError(
                "the feeds do not match the model's inputs",
                expected=expected,
                found="feeds " + ", ".join(map(repr, feeds)),
                hint=(f"missing {', '.join(missing)}; " if missing else "")
                + (f"unknown {', '.join(unknown)}" if unknown else ""),
            )
        arrays = {s.name: cast_to_spec(feeds[s.name], s, narrow=False) for s in self.inputs}
        batches = {n: a.shape[0] for n, a in arrays.items() if a.ndim}
        if len(set(batches.values())) > 1:
            raise InputValidationError(
                "the inputs hold different numbers of rows",
                expected="the same batch size (first dimension) for every input",
                found=", ".join(f"{n}: {b}" for n, b in batches.items()),
                hint="pass one value per row for every input",
            )
        return arrays

    def predict(self, data: Any) -> dict[str, np.ndarray]:
        """Run on a DataFrame, dict of columns, or array, mapped through the bundle's schema
        (as the parity check mapped it: float columns of a float32 model are narrowed).

        A DataFrame is read a block of same-typed columns at a time, through the plan
        compiled on load (:class:`baton.runtime._plan.FeedPlan`); the feeds, outputs and
        errors are those of ``run(to_feeds(data, session.inputs))``."""
        if is_dataframe(data):
            feeds = self._plan.frame_feeds(data)
            if feeds is not None:
                return self._run_planned(feeds)
        return self.run(to_feeds(data, self.inputs))

    def predict_records(self, records: Mapping[str, Any] | Sequence[Mapping[str, Any]]
                        ) -> dict[str, np.ndarray]:
        """Run on records as ``json.loads`` gives them: one dict (one row) or a list of
        dicts, keyed by column name (by input name for an input not read from a column).

        The outputs are those of :meth:`predict` on the same rows as a DataFrame whose
        columns have the inputs' dtypes. Every record must hold exactly the model's keys
        (a missing or unknown key is refused, as ``run`` refuses feeds). Values must be of
        the input's type: numbers (not text, not booleans) for numeric inputs, where
        ``None`` is NaN for a float input (as predict reads a DataFrame's ``None``) and is
        refused for an integer or bool input; true/false or 0/1 for a bool input; strings
        for a text input, where ``None`` becomes the text ``"None"`` (as predict makes of
        it). Anything else raises InputValidationError naming the input, key and record."""
        return self._run_planned(self._plan.record_feeds(records))

    def _run_planned(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run feeds a plan built (native arrays of the inputs' dtypes, all of one batch):
        straight to onnxruntime; where it refuses them, ``run`` explains why."""
        names = self.output_names
        try:
            return dict(zip(names, self._binding(names, feeds, None)))
        except Exception:  # noqa: BLE001 - untyped errors: validated and explained by run
            return self.run(feeds)

    def warmup(self, runs: int = 3) -> None:
        """Run the golden inputs a few times, so that the first real request does not pay
        for onnxruntime's lazy initialisation."""
        golden_in, _ = self._golden()
        for _ in range(runs):
            self.run(golden_in)

    def self_check(self) -> None:
        """Run the golden vectors; raise ParityError when an output is out of the bundle's
        tolerance (``|actual - golden| <= atol + rtol * |golden|``, labels exactly)."""
        for name, problem in self.golden_problems(*self._golden()).items():
            raise ParityError(
                f"this machine's onnxruntime does not reproduce the golden output "
                f"{name!r} of {self.files.path}",
                expected="the golden outputs within the bundle's tolerances",
                found=problem,
                hint="run 'baton verify' here for the full report; check the "
                "onnxruntime version against onnx.onnxruntime_version in baton.json",
            )

    def golden_problems(self, golden_in: Mapping[str, np.ndarray],
                        golden_out: Mapping[str, np.ndarray]) -> dict[str, str]:
        """Run ``golden_in``; for each output of ``golden_out`` that this machine does not
        reproduce within the bundle's tolerance (:func:`baton.tolerance.disagreement`), why.
        """
        actual = self.run(dict(golden_in))
        problems = {}
        for o in self.outputs:
            if o.name not in golden_out:
                continue
            problem = disagreement(o.kind or "tensor", golden_out[o.name], actual[o.name],
                                   self.manifest.tolerance(o.name))
            if problem:
                problems[o.name] = problem
        return problems

    def _golden(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        golden_in, golden_out = read_golden(self.files, self.manifest)
        if not golden_in:
            raise BundleError(f"{self.files.path} holds no golden vectors",
                              expected="test_data_set_0/input_*.pb", found="none",
                              hint="re-convert the model with baton")
        return golden_in, golden_out


_ARRAYS = {np.ndarray}


def external_data_folder(files: BundleFiles, manifest: Manifest, model: bytes
                         ) -> str | None:
    """The folder onnxruntime may read ``model``'s external data from: the bundle's own
    directory, once every location the model refers to is a file of the bundle that the
    manifest lists (and so hashes); None when the model refers to none."""
    try:
        references = external_references(model)
    except MalformedModel as exc:
        raise BundleError(f"{MODEL} in {files.path} is not an ONNX model",
                          expected="a serialized onnx.ModelProto", found=str(exc),
                          hint="re-create the bundle with 'baton convert'") from exc
    if not references:
        return None
    for tensor, location in references:
        name = _safe_name(location, str(files.path)) if location else ""
        if not name or name not in manifest.files or not files.exists(name):
            raise BundleIntegrityError(
                f"{MODEL} in {files.path} keeps the data of tensor {tensor!r} in "
                f"{location!r}, which is not a file the bundle lists",
                expected="external data in files of the bundle, listed with their sha256 "
                "in baton.json", found=f"location {location!r}"[:200],
                hint="re-create the bundle with 'baton convert' (it lists every file)")
    if files.directory is None:
        tensor, location = references[0]
        raise BundleError(
            f"{files.path} is zipped, but {MODEL} keeps tensor data in other files",
            expected="a bundle directory for a model with external data",
            found=f"tensor {tensor!r} in {location!r}"[:200],
            hint=f"unzip it (python -m zipfile -e {files.path} DIR) and load DIR")
    return str(files.directory)


def _check_names(files: BundleFiles, inputs: frozenset[str], model_inputs: list[str],
                 outputs: set[str], model_outputs: list[str]) -> None:
    """The manifest's inputs are the model's, and its outputs are among the model's."""
    if inputs != set(model_inputs) or not outputs <= set(model_outputs):
        raise BundleError(
            f"baton.json in {files.path} does not describe its {MODEL}",
            expected="inputs " + ", ".join(map(repr, model_inputs)) + "; outputs among "
            + ", ".join(map(repr, model_outputs)),
            found="inputs " + ", ".join(map(repr, sorted(inputs))) + "; outputs "
            + ", ".join(map(repr, sorted(outputs))),
            hint="re-create the bundle with 'baton convert'; do not edit baton.json by hand")


def _usable(providers: Sequence[str]) -> tuple[str, ...]:
    """The providers this onnxruntime has, in the given order; a warning for the others."""
    import warnings

    have = available_providers()
    kept = tuple(p for p in providers if full_name(p) in have)
    dropped = [p for p in providers if full_name(p) not in have]
    if dropped:
        warnings.warn(f"execution provider(s) {', '.join(dropped)} not available in this "
                      f"onnxruntime ({', '.join(have)}); using {', '.join(kept) or 'cpu'}",
                      RuntimeWarning, stacklevel=3)
    return kept or ("cpu",)


def _direct_run(session: Any) -> Any:
    """How feeds that need no conversion run: ``run(names, feeds, run_options)``.

    Normally the ``run`` of onnxruntime's C++ session under the ``InferenceSession``, which
    checks names, dtypes, ranks and fixed dimensions itself. It is not public API, but
    ``InferenceSession.run`` re-checks the input names in Python before it calls it (10 us
    on 31 inputs, a fifth of a small model's run; docs/benchmarks.md). If a release renames
    it, or ``BATON_DIRECT_RUN=0`` is set, the public ``InferenceSession.run`` is used."""
    direct = getattr(getattr(session, "_sess", None), "run", None)
    if direct is None or os.environ.get("BATON_DIRECT_RUN", "1") == "0":
        return lambda names, feeds, options: session.run(names, feeds, options)
    return direct
