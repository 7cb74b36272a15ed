"""Hypothesis settings for the theory property tests (test_bad_inputs.py, test_extremes.py).

One deterministic profile, ``theory-deterministic`` (``derandomize=True``: the examples are a
function of the test alone, so a run is reproducible and a failure is re-found on rerun; no
deadline, since the first call of a test pays for caches and imports). It is registered here, not
loaded: the modules apply it explicitly with ``@settings(DETERMINISTIC, max_examples=...)``, so it
does not change the settings of any other test in the session.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

PROFILE = "theory-deterministic"

try:
    settings.get_profile(PROFILE)
except InvalidArgument:
    settings.register_profile(
        PROFILE,
        derandomize=True,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )

DETERMINISTIC = settings.get_profile(PROFILE)
