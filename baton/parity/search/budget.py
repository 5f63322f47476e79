"""What the search may spend: the budget (examples and seconds, defined with the results
that report it, :mod:`baton.results.search`), its default, and the sizes of the batches,
typical rows and examples the stages work in.

How each stage shares the budget (its share of the examples, the share of the time that
may be spent when it ends) is declared with the stage itself, in
:mod:`baton.parity.search.stages`.
"""

from __future__ import annotations

from baton.results.search import SearchBudget

__all__ = ["BATCH", "DEFAULT_BUDGET", "DOMAIN_EXAMPLES", "PROPERTY_ROWS", "TYPICAL_ROWS",
           "SearchBudget"]

#: typical rows (from the user's data) that edge cases and thresholds are put into
TYPICAL_ROWS = 4
#: candidate rows evaluated together
BATCH = 256
#: rows per example of the property search (evaluated as one batch)
PROPERTY_ROWS = 8
#: at most this many examples of domain rejections kept per stage and reason
DOMAIN_EXAMPLES = 3

DEFAULT_BUDGET = SearchBudget()
