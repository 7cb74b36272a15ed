"""Keep the test-only claim module out of collection (``--doctest-modules`` would import it and
register its fake claims in the test process). The master seed fixture ``seed`` is in tests/conftest.py."""

collect_ignore = ["fake_claims.py"]
