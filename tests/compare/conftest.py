"""Keep the test-only claim module out of collection (``--doctest-modules`` would import it and
register its fake claims in the test process). The master seed fixture ``seed`` is in tests/conftest.py."""

import os

import pytest

collect_ignore = ["fake_claims.py"]


# TEMPORARY until the lead adds it to tests/conftest.py: the master seed of seeded tests.
@pytest.fixture
def seed() -> int:
    return int(os.environ.get("CONCURRENCE_TEST_SEED", 0))
