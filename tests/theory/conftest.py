"""Hypothesis settings for the theory property tests (test_bad_inputs.py, test_extremes.py).

``DETERMINISTIC`` is the session's property profile of ``tests/conftest.py`` (``PROPERTY``):
derandomised under ``make test`` (``HYPOTHESIS_PROFILE=ci``, the default), random and
``DEEP_FACTOR`` times broader under ``make test-deep``. The modules apply it explicitly with
``@settings(DETERMINISTIC, max_examples=examples(n))``, so it does not change the settings of any
other test in the session.
"""

from __future__ import annotations

from tests.conftest import PROPERTY, examples  # noqa: F401

DETERMINISTIC = PROPERTY
