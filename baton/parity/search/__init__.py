"""The parity search: inputs beyond the user's data where the converted model may diverge.

``baton check`` compares the original and the converted model on the user's data, which
proves parity only where that data falls. The search then tries, in this order, within a
budget of examples (rows) and seconds:

1. ``edge``: per column (or tensor input), NaN, ±inf, 0 and -0.0, the largest and smallest
   finite values, subnormals, huge magnitudes, the observed extremes and just beyond them,
   unseen and empty categories, in otherwise typical rows (for an attention mask: one token
   padded on the left and on the right, every token, none); an all-NaN and an all-zero
   row; a typical row alone (a batch of 1);
2. ``thresholds`` (tree models): every split threshold of the original model, and its
   float64 and float32 neighbours both ways, in otherwise typical rows;
3. ``samples``: rows drawn from the input schema, within and somewhat beyond the observed
   ranges and categories (masks padded on either side to random lengths);
4. ``property``: a hypothesis search over rows built from the schema (a typical row with
   some values replaced), which shrinks a divergence to a minimal counterexample: the
   fewest changed values, each as simple as it can be.

Every candidate row is run through both models in batches; a batch the original model
rejects is split until the rejected rows are found. A row the original rejects, or for
which it returns NaN where the converted model does not, is outside the model's *domain*:
counted and shown, never a divergence. NaN on both sides at the same place agrees.

Divergences are grouped by class (stage and what was changed: ``edge: +inf in age``,
``split threshold of x3``, ``samples beyond the observed range``, ...); each class keeps
its first (for ``property``: shrunk) counterexample with both outputs, which output broke
and by how much, and the command that reproduces it. Extreme inputs are not excused: a
float32 graph that overflows where the original does not is reported (its class says
where the input lay), and it is for the user to decide whether such inputs can occur.

The package, along those seams: :mod:`~baton.parity.search.budget` (what the search may
spend), :mod:`~baton.parity.search.tables` (the data as columns, and candidate rows),
:mod:`~baton.parity.search.values` (edge cases, threshold neighbours, random values, the
hypothesis strategies), :mod:`~baton.parity.search.stages` (the four stages, as a chain
of strategy objects), :mod:`~baton.parity.search.engine` (the ``Searcher`` that runs them,
and :func:`search`); the results are data in :mod:`baton.results.search`.

This package imports only numpy at load time; hypothesis and pandas are imported when a
search runs.
"""


from __future__ import annotations

from baton.parity.search.budget import (
    BATCH,
    DEFAULT_BUDGET,
    DOMAIN_EXAMPLES,
    PROPERTY_ROWS,
    TYPICAL_ROWS,
    SearchBudget,
)
from baton.parity.search.engine import Searcher, search
from baton.parity.search.stages import (
    SEARCH_STAGES,
    STAGE_SHARE,
    STAGES,
    EdgeStage,
    PropertyStage,
    SampleStage,
    Stage,
    ThresholdStage,
)
from baton.parity.search.tables import Candidate, Column, Table
from baton.parity.search.values import UNSEEN, edge_values, neighbours
from baton.results.search import (
    BrokenOutput,
    Counterexample,
    DomainExample,
    SearchResult,
    StageResult,
)

__all__ = [
    "BATCH", "DEFAULT_BUDGET", "DOMAIN_EXAMPLES", "PROPERTY_ROWS", "SEARCH_STAGES",
    "STAGES", "STAGE_SHARE", "TYPICAL_ROWS", "UNSEEN",
    "BrokenOutput", "Candidate", "Column", "Counterexample", "DomainExample", "EdgeStage",
    "PropertyStage", "SampleStage", "SearchBudget", "SearchResult", "Searcher", "Stage",
    "StageResult", "Table", "ThresholdStage", "edge_values", "neighbours", "search",
]
