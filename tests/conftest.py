"""Shared fixtures: explicit generators, small linear-representation problems."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

os.environ.setdefault("MPLBACKEND", "Agg")


# --------------------------------------------------------------------------------------------
# hypothesis: the property suites (tests/*/test_bad_inputs.py, tests/*/test_extremes.py)
# --------------------------------------------------------------------------------------------

#: ``HYPOTHESIS_PROFILE`` (read here, by the tests; the library reads no environment variable):
#: ``ci`` (default, ``make test``): derandomised - the examples are a function of the test alone, so
#: every run draws the same ones and a failure is found again on rerun; ``deep`` (``make test-deep``,
#: not in CI): random examples, :data:`DEEP_FACTOR` times as many.
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
#: how many times more examples the deep profile draws
DEEP_FACTOR = 20
_PROFILES = {"ci": "concurrence-ci", "deep": "concurrence-deep"}
if HYPOTHESIS_PROFILE not in _PROFILES:
    raise pytest.UsageError(f"HYPOTHESIS_PROFILE must be one of {sorted(_PROFILES)}; got {HYPOTHESIS_PROFILE!r}")
_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
for _name, _derandomize in (("concurrence-ci", True), ("concurrence-deep", False)):
    try:
        settings.get_profile(_name)
    except InvalidArgument:
        settings.register_profile(_name, derandomize=_derandomize, **_COMMON)

#: the settings of the property suites (applied explicitly, ``@settings(PROPERTY, max_examples=examples(n))``,
#: so that no other test of the session changes): no deadline (a first call pays for imports and caches).
PROPERTY = settings.get_profile(_PROFILES[HYPOTHESIS_PROFILE])


def examples(n: int) -> int:
    """``n`` examples under the ``ci`` profile, ``DEEP_FACTOR * n`` under ``deep``."""
    return n * DEEP_FACTOR if HYPOTHESIS_PROFILE == "deep" else n


#: The suite's master seed: ``CONCURRENCE_TEST_SEED`` (default 0). Claims must hold for any seed, so a
#: run with another seed is a legitimate check of the suite (``CONCURRENCE_TEST_SEED=7 make test``).
TEST_SEED = int(os.environ.get("CONCURRENCE_TEST_SEED", "0"))


@pytest.fixture
def seed() -> int:
    """The master seed every claim test runs with (``CONCURRENCE_TEST_SEED``, default 0)."""
    return TEST_SEED


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20250201)


@pytest.fixture
def small_problem(rng):
    from simulate import data

    return data.linrep_problem(12, 4, 2, kappa_x=30.0, kappa_F=3.0, noise_std=0.05, rng=rng)


def assert_close(actual, expected, *, rtol: float, atol: float = 0.0, what: str = "value") -> None:
    """Assert with a message saying what differed and by how much."""
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    err = np.abs(a - e)
    bound = atol + rtol * np.abs(e)
    if not np.all(err <= bound):
        i = np.unravel_index(np.argmax(err - bound), err.shape) if err.ndim else ()
        raise AssertionError(
            f"{what}: max |actual - expected| = {err.max():.3e} (bound atol={atol:g} + rtol={rtol:g}*|expected|); "
            f"at {i}: actual {a[i] if a.ndim else a:.17g}, expected {e[i] if e.ndim else e:.17g}"
        )
