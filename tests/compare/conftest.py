"""Keep the test-only claim module out of collection (``--doctest-modules`` would import it and
register its fake claims in the test process); the master seed of the claim tests."""

from __future__ import annotations

import os

import pytest

collect_ignore = ["fake_claims.py"]


@pytest.fixture
def seed() -> int:
    """Master seed of the claim tests: ``CONCURRENCE_TEST_SEED`` (default 0). Temporary: the lead moves
    this fixture to tests/conftest.py."""
    return int(os.environ.get("CONCURRENCE_TEST_SEED", 0))
