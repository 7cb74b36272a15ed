"""Keep the test-only claim module out of collection (``--doctest-modules`` would import it and
register its fake claims in the test process). The master seed fixture ``seed`` is in tests/conftest.py;
``record_trials`` counts and inspects the trials an experiment runs."""

import dataclasses

import pytest

collect_ignore = ["fake_claims.py", "scorecard_bad_plugin.py"]  # plugins loaded by tests, not test modules


@pytest.fixture
def record_trials(monkeypatch):
    """``record_trials(name) -> list``: experiment ``name``'s trial function, wrapped to append the
    settings of every call to the returned list (calls in this process: run with ``workers=1``)."""
    from compare.engine import registry as R

    def install(name: str) -> list:
        calls: list = []
        spec = R.EXPERIMENTS[name]
        trial = spec.trial

        def recorded(st, ss, deps):
            calls.append(st)
            return trial(st, ss, deps)

        monkeypatch.setitem(R.EXPERIMENTS, name, dataclasses.replace(spec, trial=recorded))
        return calls

    return install
