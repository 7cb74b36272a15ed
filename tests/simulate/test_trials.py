"""simulate.trials: per-trial streams (the same numbers from serial, process and dask runs are the engine's
tests: tests/compare/engine)."""

from __future__ import annotations

import numpy as np
import pytest

from compare.engine.cluster import connect
from simulate.trials import spawn_generators, spawn_seeds


def test_streams_depend_only_on_seed_and_index():
    a = [g.standard_normal(3) for g in spawn_generators(7, 4)]
    b = [g.standard_normal(3) for g in spawn_generators(np.random.SeedSequence(7), 4)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[1])
    # a longer run extends the shorter one: trial i is the same whatever the number of trials
    c = [g.standard_normal(3) for g in spawn_generators(7, 6)]
    assert all(np.array_equal(x, y) for x, y in zip(a, c[:4]))
    assert spawn_seeds(7, 0) == []


@pytest.mark.parametrize("n", [-1, 2.5, True, "3"])
def test_spawn_seeds_rejects_bad_n(n):
    with pytest.raises(ValueError, match="argument 'n'"):
        spawn_seeds(0, n)


def test_connect_rejects_bad_scheduler_arguments():
    with pytest.raises(ValueError, match="argument 'scheduler'"):
        connect(42)
    with pytest.raises(ValueError, match="argument 'scheduler'"):
        connect("  ")
