"""``Session``: load a bundle, check its hashes, run it with onnxruntime."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from baton.errors import BundleError, InputValidationError
from baton.runtime._files import MODEL, BundleFiles
from baton.schema import TensorSpec, cast_to_spec, to_feeds

PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def make_ort_session(model: bytes | str, providers: Sequence[str] | None = None) -> Any:
    """An onnxruntime session on the CPU unless providers are named."""
    import onnxruntime as ort

    names = [PROVIDER_NAMES.get(p, p) for p in (providers or ["cpu"])]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=names)


class Session:
    """A bundle loaded for inference.

    >>> sess = Session("model.baton")           # checks every file's sha256
    >>> sess.run({"age": ages, "city": cities})  # doctest: +SKIP
    """

    def __init__(
        self,
        bundle: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        verify: bool = True,
    ) -> None:
        self.files = BundleFiles(bundle)
        self.manifest = self.files.manifest()
        if verify:
            self.files.check_integrity(self.manifest)
        self.inputs = [TensorSpec.from_dict(d) for d in self.manifest["inputs"]]
        self.outputs = [TensorSpec.from_dict(d) for d in self.manifest["outputs"]]
        try:
            self._session = make_ort_session(self.files.read(MODEL), providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(
                f"onnxruntime cannot load {MODEL} from {self.files.path}",
                expected="a model this onnxruntime can run",
                found=str(exc).strip().splitlines()[0][:300],
                hint="run 'baton verify' on the bundle (the file may be damaged); if it is "
                "intact, compare this onnxruntime's version with onnx.onnxruntime_version "
                "in baton.json",
            ) from exc
        self.output_names = [o.name for o in self._session.get_outputs()]

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", "model"))

    def run(
        self, feeds: Mapping[str, Any], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run on named feeds (one array per input); returns the named outputs."""
        unknown = [k for k in feeds if k not in {s.name for s in self.inputs}]
        missing = [s.name for s in self.inputs if s.name not in feeds]
        if unknown or missing:
            raise InputValidationError(
                "the feeds do not match the model's inputs",
                expected="inputs " + ", ".join(repr(s.name) for s in self.inputs),
                found="feeds " + ", ".join(map(repr, feeds)),
                hint=(f"missing {', '.join(missing)}; " if missing else "")
                + (f"unknown {', '.join(unknown)}" if unknown else ""),
            )
        arrays = {s.name: cast_to_spec(feeds[s.name], s) for s in self.inputs}
        names = list(outputs) if outputs is not None else self.output_names
        values = self._session.run(names, arrays)
        return dict(zip(names, values))

    def predict(self, data: Any) -> dict[str, np.ndarray]:
        """Run on a DataFrame, dict of columns, or array, mapped through the bundle's schema."""
        return self.run(to_feeds(data, self.inputs))
