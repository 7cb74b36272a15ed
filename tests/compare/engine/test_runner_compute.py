"""compare.engine.runner.compute: one experiment's combined result, the same numbers as in ``run``
(streams, blocks, requirements computed once, cache entries shared), in process or on workers."""

from __future__ import annotations

import numpy as np
import pytest

from compare.engine import runner
from compare.engine.cache import Cache
from compare.engine.seeds import stream, trial_seeds

from .conftest import PLUGIN


@pytest.fixture
def fk(fake, monkeypatch):
    """The fake plugin module (loaded by conftest's ``fake``) and a reader of its trial log."""
    import sys
    from pathlib import Path

    from compare.engine import plugins

    fp = sys.modules[plugins._module_name_for(Path(PLUGIN).resolve())]
    monkeypatch.delenv("FAKE_WAIT", raising=False)

    def lines() -> list[str]:
        return [ln.split(" pid=")[0] for ln in fake.read_text().splitlines()] if fake.exists() else []

    return fp, lines


def _expected(seed: int, s) -> np.ndarray:
    """fake.normal by hand: trial i is child i of stream(seed, "fake.normal")."""
    return np.array([np.random.default_rng(ss).normal(0.0, s.scale, s.draws).mean()
                     for ss in trial_seeds(stream(seed, "fake.normal"), 0, s.trials)])


def test_compute_is_the_experiment_on_its_stream(fk, seed):
    fp, lines = fk
    s = fp.FakeSettings(trials=5)
    x = runner.compute("fake.normal", s, seed=seed, plugins=(PLUGIN,))
    assert np.array_equal(x, _expected(seed, s)), (x, _expected(seed, s))
    assert sorted(lines()) == [f"normal {i}" for i in range(5)]
    assert not np.array_equal(x, runner.compute("fake.normal", s, seed=seed + 1, plugins=(PLUGIN,)))


def test_requirements_are_computed_first_and_once(fk, seed):
    fp, lines = fk
    s = fp.PairSettings(base=fp.FakeSettings(trials=4), shift=0.25)
    y = runner.compute("fake.shifted", s, seed=seed, plugins=(PLUGIN,))
    assert np.array_equal(y, _expected(seed, s.base) + 0.25)
    log = lines()
    assert sorted(log) == sorted([f"normal {i}" for i in range(4)] + [f"shifted {i}" for i in range(4)])
    assert max(i for i, ln in enumerate(log) if ln.startswith("normal")) < log.index("shifted 0")


def test_workers_do_not_change_the_numbers(fk, seed):
    fp, _ = fk
    s = fp.PairSettings(base=fp.FakeSettings(trials=6))
    serial = runner.compute("fake.shifted", s, seed=seed, plugins=(PLUGIN,))
    pooled = runner.compute("fake.shifted", s, seed=seed, workers=2, plugins=(PLUGIN,))
    assert np.array_equal(serial, pooled), (serial, pooled)


def test_compute_shares_cache_entries_with_run(fk, seed, tmp_path):
    fp, lines = fk
    cache = Cache(tmp_path / "cache", version="test-version")
    s = fp.FakeSettings(trials=6)
    x = runner.compute("fake.normal", s, seed=seed, cache=cache, plugins=(PLUGIN,))
    n = len(lines())
    assert n == 6
    again = runner.compute("fake.normal", s, seed=seed, cache=cache, plugins=(PLUGIN,))
    assert np.array_equal(x, again) and len(lines()) == n, "a cached experiment was recomputed"
    # run() reads the blocks compute() stored: nothing computed for claim Z1 on the same experiment
    job = runner.claim_job("Z1", size="fast", seed=seed, overrides={"trials": 6})
    out = runner.run([job], cache=cache, plugins=(PLUGIN,))
    assert out.blocks_computed == 0 and out.blocks_cached > 0 and len(lines()) == n
    assert out.results[job]["verdict"] == "holds"


def test_compute_rejects_bad_arguments(fk):
    fp, _ = fk
    with pytest.raises(ValueError, match="compute: argument 'name' must be a registered experiment"):
        runner.compute("no.such", fp.FakeSettings(), seed=0, plugins=(PLUGIN,))
    with pytest.raises(ValueError, match="compute: argument 'settings' must be a FakeSettings"):
        runner.compute("fake.normal", fp.PairSettings(), seed=0, plugins=(PLUGIN,))
    with pytest.raises(ValueError, match="'seed'"):
        runner.compute("fake.normal", fp.FakeSettings(), seed=-1, plugins=(PLUGIN,))
    with pytest.raises(ValueError, match="'workers'"):
        runner.compute("fake.normal", fp.FakeSettings(), seed=0, workers=0, plugins=(PLUGIN,))
