"""The converter contract: what a converter must do, and the capabilities it may add.

A leaf of the package (no baton import beyond the other leaves), so that ``parity`` can be
handed a converter and ask what it can do without importing ``baton.converters``, and a
third-party package can implement a converter without importing baton's own.

Every converter is a :class:`Converter`. The optional capabilities are Protocols of their
own, tested with ``isinstance`` (they are ``runtime_checkable``), never with ``hasattr``:

- :class:`SplitPoints`: numeric split thresholds of the original, for the parity search;
- :class:`RunsOnDevice`: runs the original on a device (the GPU) beside the ONNX side;
- :class:`DynamicDimensions`: converts with dynamic dimensions other than the batch;
- :class:`ParityBatches`: batch sizes parity must also hold at (graphs whose batch path
  differs from one row's).

And what a registration declares (see :mod:`baton.converters._registry` for how the
``baton.converters`` entry-point group is loaded):

- :class:`ReadsModelFiles`: the model files it reads by suffix (:class:`ModelFile`); a
  registration may be model files alone (baton's pickle loader is one);
- :class:`AskedBefore`: the converter it must be asked before (one for some of another's
  models, e.g. scikit-learn's tree ensembles before scikit-learn in general).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from baton.schema import TensorSpec
from baton.tolerance import Tolerance

if TYPE_CHECKING:
    from pathlib import Path

    import onnx

#: The entry-point group converters (and model-file formats) are registered in.
ENTRY_POINT_GROUP = "baton.converters"


@dataclass
class Conversion:
    """What a converter hands over: the graph, its schema, and where it came from."""

    model: onnx.ModelProto
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: dict[str, Any]
    converter: dict[str, Any]
    precision: str
    tolerances: dict[str, Tolerance] = field(default_factory=dict)


@runtime_checkable
class Converter(Protocol):
    """A framework's converter: recognises its models, converts them, runs the original."""

    name: str
    framework: str
    extra: str

    def accepts(self, model: Any) -> bool: ...

    def prepare(self, model: Any, data: Any) -> Any:
        """The data as the original model takes it (e.g. only its training columns)."""
        ...

    def infer_inputs(self, model: Any, sample: Any) -> list[TensorSpec]: ...

    def convert(self, model: Any, sample: Any, inputs: list[TensorSpec], *,
                opset: int | None) -> Conversion: ...

    def predict(self, model: Any, data: Any) -> dict[str, np.ndarray]:
        """The original model's outputs on ``data``, keyed like the ONNX outputs."""
        ...

    def describe(self, model: Any) -> str: ...


@runtime_checkable
class SplitPoints(Protocol):
    """A converter for models that split on thresholds (tree ensembles)."""

    def split_points(self, model: Any) -> dict[int, np.ndarray]:
        """Every numeric split threshold of ``model``, by the position of its feature in
        the prepared data."""
        ...


@runtime_checkable
class RunsOnDevice(Protocol):
    """A converter that can run the original model on a device (PyTorch on CUDA)."""

    def predict_on_device(self, model: Any, data: Any, device: str, *, tf32: bool
                          ) -> dict[str, np.ndarray]: ...


@runtime_checkable
class DynamicDimensions(Protocol):
    """A converter that exports dimensions other than the batch as dynamic, and inputs
    without a batch dimension."""

    def convert(self, model: Any, sample: Any, inputs: list[TensorSpec], *,
                opset: int | None, dynamic: Mapping[str, Mapping[int, str]] | None = None,
                batch_dims: Mapping[str, int | None] | None = None) -> Conversion:
        """``batch_dims``: inputs whose dimension 0 is not the batch (``{"ids": None}``)."""
        ...

    def dynamic_variants(self, prepared: Any, dynamic: Mapping[str, Mapping[int, str]]
                         ) -> list[tuple[str, Any]]:
        """(label, data) pairs at other sizes of the dynamic dimensions, for parity."""
        ...


@runtime_checkable
class ParityBatches(Protocol):
    """A converter whose graphs must also be proven at these batch sizes."""

    parity_batches: Sequence[int]


@dataclass(frozen=True)
class ModelFile:
    """A kind of model file a registration reads, known by its suffix.

    ``load(path, trust_pickle)`` returns the model. ``framework`` names what the file holds
    the way the help text shows it (``"LightGBM"``; formats of one framework are listed
    together); ``what`` says what the file is (``"LightGBM model (booster.save_model)"``);
    ``save`` is how to write one (``"booster.save_model('model.txt')"``), for the hint shown
    when a file cannot be read (empty: a format baton does not recommend saving to);
    ``needs_trust``: loading can run code from the file, so only with ``--trust-pickle``.
    """

    suffix: str
    load: Callable[[Path, bool], Any]
    framework: str
    what: str
    save: str = ""
    needs_trust: bool = False

    def __post_init__(self) -> None:
        s = self.suffix
        if not (len(s) > 1 and s.startswith(".") and s == s.lower() and "/" not in s):
            raise ValueError(f"a model-file suffix is a lower-case '.ext', not {s!r}")


@runtime_checkable
class ReadsModelFiles(Protocol):
    """A registration that reads model files: the file suffixes it loads a model from."""

    @property
    def model_files(self) -> Sequence[ModelFile]: ...


@runtime_checkable
class AskedBefore(Protocol):
    """A converter for some of another converter's models, asked before that one (named)."""

    @property
    def before(self) -> str: ...
