"""Fuzz suites (hypothesis): every input gets baton's own documented errors, never another
exception. ``BATON_FUZZ_EXAMPLES`` sets the examples per fuzz test: 170 by default, so
that the six fuzz tests run about 1,000 cases in ``.ci/run``; ``BATON_FUZZ_EXAMPLES=1700``
runs 10,200 (docs/security.md)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: examples per fuzz test
EXAMPLES = int(os.environ.get("BATON_FUZZ_EXAMPLES", "170"))

#: settings for every fuzz test: derandomised and without a database, so that CI runs the
#: same cases each time; no deadline (the machine may be loaded)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])
