"""Input and output schemas: what a model takes and gives, and how user data becomes feeds.

Only numpy here; pandas is touched only when the caller passed a DataFrame (so it is
installed), and then imported inside the function.

* :mod:`baton.schema.spec`: the dtypes, the batch dimension, :class:`TensorSpec`, and the
  input schema inferred from a sample;
* :mod:`baton.schema.cast`: one input's values cast to its spec, or refused;
* :mod:`baton.schema.rows`: user data as feeds, rows and JSON-friendly values.

Every name is importable from ``baton.schema`` itself, as it was when this was one module.
"""

from __future__ import annotations

from baton.schema.cast import _UNFIT as _UNFIT
from baton.schema.cast import _as_text as _as_text
from baton.schema.cast import _bad_input as _bad_input
from baton.schema.cast import _beyond as _beyond
from baton.schema.cast import _exact_bits as _exact_bits
from baton.schema.cast import _first_outside as _first_outside
from baton.schema.cast import _inexact as _inexact
from baton.schema.cast import _numbers as _numbers
from baton.schema.cast import _out_of_range as _out_of_range
from baton.schema.cast import _parse as _parse
from baton.schema.cast import _read as _read
from baton.schema.cast import _require_bool as _require_bool
from baton.schema.cast import _require_exact as _require_exact
from baton.schema.cast import _require_exact_objects as _require_exact_objects
from baton.schema.cast import _require_range as _require_range
from baton.schema.cast import _require_whole as _require_whole
from baton.schema.cast import _show as _show
from baton.schema.cast import _text as _text
from baton.schema.cast import cast_to_spec
from baton.schema.rows import _columns_of as _columns_of
from baton.schema.rows import _frame_values as _frame_values
from baton.schema.rows import _scalar as _scalar
from baton.schema.rows import n_rows, row_values, take_rows, to_feeds, to_jsonable, unbatched
from baton.schema.spec import (
    BATCH,
    DTYPES,
    TensorSpec,
    dtype_name,
    dtype_name_or_raw,
    from_ort,
    infer_inputs,
    is_dataframe,
    numpy_dtype,
    require_columns,
)
from baton.schema.spec import _as_array as _as_array
from baton.schema.spec import _column_dtype as _column_dtype
from baton.schema.spec import _common_dtype as _common_dtype

__all__ = [
    "BATCH",
    "DTYPES",
    "TensorSpec",
    "cast_to_spec",
    "dtype_name",
    "dtype_name_or_raw",
    "from_ort",
    "infer_inputs",
    "is_dataframe",
    "n_rows",
    "numpy_dtype",
    "require_columns",
    "row_values",
    "take_rows",
    "to_feeds",
    "to_jsonable",
    "unbatched",
]
