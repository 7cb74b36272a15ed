"""simulate.trials: per-trial streams and the same numbers from serial, joblib and dask runs."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from simulate.trials import connect, imap_unordered, parallel_map, spawn_generators, spawn_seeds


def _trial(ss: np.random.SeedSequence) -> np.ndarray:
    """A trial with some BLAS work: the eigenvalues of a small Wishart matrix."""
    X = np.random.default_rng(ss).standard_normal((200, 30))
    return np.linalg.eigvalsh(X.T @ X / 200)


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


@pytest.mark.parametrize("jobs", [0, 1.5, True])
def test_parallel_map_rejects_bad_jobs(jobs):
    with pytest.raises(ValueError, match="argument 'jobs'"):
        parallel_map(_trial, spawn_seeds(0, 2), jobs=jobs)


def test_parallel_map_rejects_bad_blas_threads():
    with pytest.raises(ValueError, match="argument 'blas_threads'"):
        parallel_map(_trial, spawn_seeds(0, 2), jobs=2, blas_threads=0)


def test_serial_keeps_order_and_closures():
    seeds = spawn_seeds(1, 5)
    offset = 3.0
    out = parallel_map(lambda s: _trial(s) + offset, seeds)
    assert all(np.array_equal(o, _trial(s) + offset) for o, s in zip(out, seeds))
    assert sorted(i for i, _ in imap_unordered(_trial, seeds)) == list(range(5))


def test_joblib_workers_give_identical_numbers():
    seeds = spawn_seeds(2, 6)
    serial = parallel_map(_trial, seeds)
    par = parallel_map(_trial, seeds, jobs=2)
    assert all(np.array_equal(a, b) for a, b in zip(serial, par)), "joblib result differs bitwise from serial"
    assert sorted(i for i, _ in imap_unordered(_trial, seeds, jobs=2)) == list(range(6))


def test_dask_cluster_gives_identical_numbers():
    import distributed  # installed by make test (extra concurrence[distributed]); missing => the test fails
    seeds = spawn_seeds(3, 6)
    serial = parallel_map(_trial, seeds)
    # dask workers pin BLAS to 1 thread for their whole process; with in-process workers that is
    # this process, so restore the caller's setting afterwards
    with threadpool_limits(limits=None):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None, protocol="tcp") as lc:
            by_addr = parallel_map(_trial, seeds, scheduler=lc.scheduler_address)
            with distributed.Client(lc.scheduler_address, set_as_default=False) as client:
                by_client = parallel_map(lambda s: _trial(s), seeds, scheduler=client)
                assert client.status == "running"  # a caller's client is left open
    for a, b, c in zip(serial, by_addr, by_client):
        assert np.array_equal(a, b) and np.array_equal(a, c), "dask result differs bitwise from serial"


def test_connect_rejects_bad_scheduler_arguments():
    with pytest.raises(ValueError, match="argument 'scheduler'"):
        connect(42)
    with pytest.raises(ValueError, match="argument 'scheduler'"):
        connect("  ")
