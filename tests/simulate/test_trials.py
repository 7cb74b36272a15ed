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


def test_a_seed_sequence_is_not_advanced():
    """Child i of a SeedSequence master seed is the one a fresh ``spawn`` gives, however often asked for
    (``SeedSequence.spawn`` advances its counter: the same object passed twice used to give new trials)."""
    sq = np.random.SeedSequence([3, 4])
    first, again = spawn_seeds(sq, 3), spawn_seeds(sq, 3)
    fresh = np.random.SeedSequence([3, 4]).spawn(3)
    for a, b, c in zip(first, again, fresh):
        assert np.array_equal(a.generate_state(4), b.generate_state(4))
        assert np.array_equal(a.generate_state(4), c.generate_state(4))
    assert sq.n_children_spawned == 0
    child = fresh[1]  # a child's children extend its spawn key
    assert [s.spawn_key for s in spawn_seeds(child, 2)] == [(1, 0), (1, 1)]
