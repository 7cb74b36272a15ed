"""Shared fixtures: explicit generators, small linear-representation problems."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


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
