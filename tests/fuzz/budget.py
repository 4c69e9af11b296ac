"""How long each fuzz target runs: a short budget in `make test`, a long one with `make fuzz`."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Examples per target; `make fuzz` raises it. Read at import: the test session's env cleaning comes later.
EXAMPLES = int(os.environ.get("KINKO_FUZZ_EXAMPLES", "300"))

#: The settings every fuzz target uses: no per-example deadline (a loaded CI box must not flake), no health checks
#: about slow data generation (large inputs are the point).
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
