"""Fuzz suites (hypothesis): every input gets baton's own documented errors, never another
exception. ``BATON_FUZZ_EXAMPLES`` sets the examples per fuzz test (default 250, about
1,000 over the suites in ``.ci/run``); e.g. ``BATON_FUZZ_EXAMPLES=2500`` for a long run."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: examples per fuzz test
EXAMPLES = int(os.environ.get("BATON_FUZZ_EXAMPLES", "250"))

#: settings for every fuzz test: seeded by hypothesis' database-free derandomisation so that
#: CI runs the same cases each time; no deadline (the machine may be loaded)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])
