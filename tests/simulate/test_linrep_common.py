"""simulate.linrep (issue 4): finite-sample transfer loss and the common-random-numbers runner
``run_common`` (its final parameters included). The experiments of compare built on it are tested in
tests/compare/test_linrep_experiments.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulate import data, linrep as sl
from tests.conftest import assert_close

S = sl.OptimizerSpec


# --------------------------------------------------------------------------- transfer loss
def test_finite_transfer_loss_is_exact_on_the_true_subspace_and_tends_to_the_population(rng):
    p = data.linrep_problem(12, 4, 2, kappa_x=30.0, kappa_F=3.0, noise_std=0.0, rng=rng)
    td = sl.transfer_data(p, n_t=20, rng=rng)
    # noiseless labels and the true subspace (any basis): the least-squares head is exact
    assert sl.finite_transfer_loss(3.0 * p.G_star, p, td) < 1e-25
    G = rng.standard_normal((2, 12))
    pop = sl.transfer_loss(G, p)
    # n_t -> infinity: the fitted head's excess risk tends to the population transfer loss; its
    # relative excess is O(k / n_t) = 2/20000 ~ 1e-4 (chi-square fluctuations of the same order)
    big = sl.transfer_data(p, n_t=20000, rng=rng)
    assert_close(sl.finite_transfer_loss(G, p, big), pop, rtol=2e-3, what="finite transfer loss, n_t = 20000")
    small = [sl.finite_transfer_loss(G, p, sl.transfer_data(p, n_t=6, rng=rng)) for _ in range(20)]
    assert min(small) >= pop * (1 - 1e-12), "a fitted head cannot beat the best head"


def test_finite_transfer_loss_fresh_samples_agree_with_the_exact_expectation(rng):
    p = data.linrep_problem(10, 3, 2, kappa_x=10.0, kappa_F=2.0, noise_std=0.3, rng=rng)
    G = rng.standard_normal((2, 10))
    td = sl.transfer_data(p, n_t=15, rng=rng, n_eval=200_000)
    exact = sl.finite_transfer_loss(G, p, replace(td, X_eval=None, Y_eval=None))
    mc = sl.finite_transfer_loss(G, p, td)
    # MC error of a mean of n = 2e5 squared residuals: sd(0.5 r^2) / sqrt(n) <= sqrt(2) * (exact + noise) / sqrt(n);
    # 5 s.e. (false-failure rate < 1e-6)
    se = np.sqrt(2.0) * (exact + 0.5 * 3 * 0.3**2) / np.sqrt(2e5)
    assert abs(mc - exact) < 5 * se, (mc, exact, se)


# --------------------------------------------------------------------------- run_common
SPECS = (S("sgd", "sgd", 0.02), S("kfac", "kfac", 0.5), S("adam", "adam", 0.01), S("bn", "amgd_bn", 0.1),
         S("ngd", "ngd", 0.5))


def test_run_common_shapes_records_and_reproducibility(small_problem):
    a = sl.run_common(small_problem, SPECS, steps=23, batch=40, rng=np.random.default_rng(4), record_every=5,
                      transfer_samples=30)
    b = sl.run_common(small_problem, SPECS, steps=23, batch=40, rng=np.random.default_rng(4), record_every=5,
                      transfer_samples=30)
    assert a.labels == tuple(s.label for s in SPECS)
    assert a.steps.tolist() == [0, 5, 10, 15, 20, 23]
    for key in sl.METRICS:
        arr = getattr(a, key)
        assert arr.shape == (len(SPECS), 6) and np.all(np.isfinite(arr)), key
        assert np.array_equal(arr, getattr(b, key)), f"{key} differs for the same seed"
    assert np.all(a.diverged_at == -1)
    # every run starts from the same point: equal distance and transfer at t = 0
    assert np.ptp(a.subspace_distance[:, 0]) == 0 and np.ptp(a.transfer_loss[:, 0]) == 0
    k = a.index("kfac")
    assert a.subspace_distance[k, -1] < 0.5 * a.subspace_distance[k, 0]
    with pytest.raises(ValueError, match="'label'"):
        a.index("lbfgs")


def test_common_random_numbers_and_stacking(small_problem):
    # a run's trajectory does not depend on which other runs share its batches, and stacking the
    # step sizes of one rule gives the run-by-run numbers (round-off aside)
    specs = (S("k1", "kfac", 0.3), S("k2", "kfac", 0.6), S("a", "amgd", 0.1))
    full = sl.run_common(small_problem, specs, steps=15, batch=40, rng=np.random.default_rng(7))
    alone = sl.run_common(small_problem, specs[1:2], steps=15, batch=40, rng=np.random.default_rng(7))
    assert_close(full.subspace_distance[1], alone.subspace_distance[0], rtol=1e-9, what="k2 with and without others")
    unstacked = sl.run_common(small_problem, specs, steps=15, batch=40, rng=np.random.default_rng(7), stack=False)
    for key in sl.METRICS[:4]:
        assert_close(getattr(full, key), getattr(unstacked, key), rtol=1e-9, atol=1e-15, what=f"stacked {key}")


def test_divergence_is_recorded_and_the_others_continue(small_problem):
    specs = (S("sgd-big", "sgd", 50.0), S("kfac", "kfac", 0.5), S("sgd-ok", "sgd", 0.01))
    r = sl.run_common(small_problem, specs, steps=40, batch=None, rng=np.random.default_rng(0), record_every=10)
    t = r.diverged_at[0]
    assert t >= 1, "lr 50 must diverge"
    i = np.searchsorted(r.steps, t)
    assert np.all(np.isnan(r.subspace_distance[0, i:])) and np.all(np.isfinite(r.subspace_distance[0, :i]))
    assert r.diverged_at[1] == -1 and r.diverged_at[2] == -1 and np.all(np.isfinite(r.subspace_distance[1:]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(specs=(S("k", "kfac", 0.1),), batch=5), r"'batch'.*>= d_x"),
        (dict(specs=(S("b", "amgd_bn", 0.1),), batch=None), r"'batch'.*needs samples"),
        (dict(specs=(S("a", "sgd", 0.1), S("a", "adam", 0.1))), "distinct labels"),
        (dict(specs=()), "'specs'"),
        (dict(specs=(("a", "sgd", -0.1),)), "'lr'"),
        (dict(specs=(("a", "nope", 0.1),)), "registered optimizer"),
        (dict(specs=(S("a", "sgd", 0.1),), record_every=0), "'record_every'"),
        (dict(specs=(S("a", "sgd", 0.1),), blowup=1.0), "'blowup'"),
        (dict(specs=(S("a", "sgd", 0.1),), steps=-1), "'steps'"),
    ],
)
def test_run_common_rejects_bad_arguments(small_problem, kwargs, match):
    args = dict(steps=2, batch=40, rng=np.random.default_rng(0))
    args.update(kwargs)
    specs = args.pop("specs")
    with pytest.raises(ValueError, match=match):
        specs = tuple(s if isinstance(s, S) else S(*s) for s in specs)
        sl.run_common(small_problem, specs, **args)


# --------------------------------------------------------------------------- final parameters
def test_run_common_returns_each_runs_final_parameters(small_problem):
    specs = (S("sgd-big", "sgd", 50.0), S("kfac", "kfac", 0.5), S("amgd", "amgd", 0.1))
    r = sl.run_common(small_problem, specs, steps=12, batch=40, rng=np.random.default_rng(3), record_every=4)
    assert r.final_F.shape == (3, 4, 2) and r.final_G.shape == (3, 2, 12)
    assert r.diverged_at[0] >= 0 and np.all(np.isnan(r.final_F[0])) and np.all(np.isnan(r.final_G[0]))
    for j in (1, 2):  # the recorded final distance is that of the returned G
        s, _ = sl.principal_angles(r.final_G[j], small_problem.G_star)
        assert_close(s[0], r.subspace_distance[j, -1], rtol=1e-12, what=f"{r.labels[j]} final distance")
