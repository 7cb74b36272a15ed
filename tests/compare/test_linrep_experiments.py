"""compare.linrep.experiments on tiny settings: the experiments ``linrep.sweep`` and ``linrep.curves``
are pure functions of (settings, seed) whatever the workers; the step-size rule and grids; the seed
streams (curves never on the sweep's trials, the comparison on its own); the recorded heads and
stability limits; settings validation."""

from __future__ import annotations

import numpy as np
import pytest

from compare.engine import runner
from compare.linrep import experiments as ex
from tests.conftest import assert_close

#: a subset of Figure 1's methods (in its order): first order, batch-norm, full second order, KFAC.
TINY_OPTIMIZERS = ("sgd", "amgd_bn", "ngd", "kfac")


@pytest.fixture(scope="module")
def tiny() -> ex.CurveSettings:
    prob = ex.ProblemSettings(d_x=12, d_y=4, k=2, batch=40, kappa_x=20.0, kappa_F=3.0, transfer_samples=10)
    return ex.CurveSettings(problem=prob, optimizers=TINY_OPTIMIZERS, steps=12, trials=3, record_every=4,
                            sweep_trials=2)


@pytest.fixture(scope="module")
def curves(tiny) -> ex.CurvesResult:
    return runner.compute("linrep.curves", tiny, seed=3)


@pytest.fixture(scope="module")
def sweep(tiny) -> ex.SweepResult:
    return runner.compute("linrep.sweep", tiny.sweep, seed=3)


def test_experiments_are_pure_functions_of_settings_and_seed(tiny, curves):
    again = runner.compute("linrep.curves", tiny, seed=3)
    parallel = runner.compute("linrep.curves", tiny, seed=3, workers=2)
    for key in ("subspace_distance", "transfer_loss", "transfer_loss_finite", "train_loss"):
        assert np.array_equal(getattr(curves, key), getattr(parallel, key), equal_nan=True), f"{key}: serial != workers=2"
        assert np.array_equal(getattr(curves, key), getattr(again, key), equal_nan=True), f"{key}: not reproducible"
    other = runner.compute("linrep.curves", tiny, seed=4)
    assert not np.array_equal(curves.subspace_distance, other.subspace_distance)
    assert curves.subspace_distance.shape == (3, 4, 4)
    assert curves.labels == ("SGD", "AMGD+BN", "NGD", "KFAC")
    # the step sizes are the sweep's choice, and the sweep ran on its own stream: the curves' tasks
    # (hence their starting distances) are not the sweep's
    assert dict(zip(curves.labels, curves.lrs.tolist())) == curves.sweep.best_lrs()
    assert not np.array_equal(curves.subspace_distance[:2, 0, 0], curves.sweep.initial_distance)
    with pytest.raises(ValueError, match="'seed'"):
        runner.compute("linrep.curves", tiny, seed=-1)


def test_sweep_rule_grids_and_subsets(tiny, curves, sweep):
    sw = sweep
    assert sw.final_distance.shape == (2, 4, len(ex.STEP_GRID))
    ngd = sw.labels.index("NGD")
    assert sw.ran[ngd].tolist() == [lr in ex.NGD_GRID for lr in ex.STEP_GRID]
    assert np.all(np.isnan(sw.final_distance[:, ngd, ~sw.ran[ngd]]))
    best = sw.best_lrs()
    for i, lb in enumerate(sw.labels):
        ok = sw.ran[i] & ~sw.diverged[:, i].any(axis=0)
        score = np.where(ok, np.log10(np.where(ok, sw.final_distance[:, i], 1.0)).mean(axis=0), np.inf)
        assert best[lb] == sw.lrs[int(np.argmin(score))]
    # the curves read this very sweep (the same experiment: same settings and stream)
    assert np.array_equal(curves.sweep.final_distance, sw.final_distance, equal_nan=True)
    # Figure 2 is a view of Figure 1's runs
    f2 = curves.subset(("KFAC", "SGD"))
    assert np.array_equal(f2.subspace_distance[:, 1], curves.subspace_distance[:, curves.index("SGD")], equal_nan=True)
    assert np.all(np.isfinite(sw.amgd_limit)) and np.all(sw.amgd_limit > 0)


def test_sweep_rule_when_every_step_size_diverges_somewhere(sweep):
    """A method that diverges in some trial at every step size it ran (damped Newton on the paper's task) gets
    the step size with the fewest diverged trials, ties broken by the mean log10 distance with a diverged
    trial counted as distance 1; the rule is reported. Other methods keep the no-divergence rule."""
    from dataclasses import replace

    sw = sweep
    i = sw.labels.index("NGD")
    div = sw.diverged.copy()
    ran = np.flatnonzero(sw.ran[i])
    div[:, i, ran] = False
    div[0, i, ran] = True                      # one diverged trial at every step size it ran ...
    div[1, i, ran[:-1]] = True                 # ... two everywhere but at its largest
    bad = replace(sw, diverged=div)
    assert bad.best_lrs()["NGD"] == sw.lrs[ran[-1]]
    assert bad.lr_rules()["NGD"].startswith("fewest diverged trials (1 of 2)")
    others = {lb: lr for lb, lr in sw.best_lrs().items() if lb != "NGD"}
    assert {lb: bad.best_lrs()[lb] for lb in others} == others
    assert all(bad.lr_rules()[lb] == "no trial diverged" for lb in others)
    # ties in the count: the smaller mean log10 distance (diverged trials at distance 1) wins
    div[1, i, ran] = False                     # one diverged trial (trial 0) everywhere
    fd = sw.final_distance.copy()
    fd[:, i, ran] = 0.5
    fd[:, i, ran[1]] = 1e-3
    tied = replace(sw, diverged=div, final_distance=fd)
    assert tied.best_lrs()["NGD"] == sw.lrs[ran[1]]


def test_settings_reject_bad_values():
    for kwargs, match in ((dict(d_x=0), "'d_x'"), (dict(kappa_F=0.5), "'kappa_F'"), (dict(law="cauchy"), "'law'"),
                          (dict(noise_std=-0.1), "'noise_std'"), (dict(transfer_samples=0), "'transfer_samples'")):
        with pytest.raises(ValueError, match=match):
            ex.ProblemSettings(**kwargs)
    with pytest.raises(ValueError, match="'trials'"):
        ex.CurveSettings(trials=0)
    with pytest.raises(ValueError, match="must not repeat a method"):
        ex.CurveSettings(optimizers=("sgd", "sgd"))
    with pytest.raises(ValueError, match="registered optimizer"):
        ex.CurveSettings(optimizers=("sgd", "lbfgs"))
    with pytest.raises(ValueError, match="'lrs'"):
        ex.SweepSettings(lrs=(0.1, -1.0))
    with pytest.raises(ValueError, match="'stream'"):
        ex.CurveSettings(stream="")
    with pytest.raises(ValueError, match="'size'"):
        ex.CurveSettings.preset("huge")
    with pytest.raises(ValueError, match="'settings'"):  # the curves experiment given a sweep's settings
        runner.compute("linrep.curves", ex.SweepSettings.preset("fast"), seed=0)


# --------------------------------------------------------------------------- stability limits
def test_own_limit_is_r_lr_1_at_the_solution_and_follows_the_head(small_problem):
    from theory import linrep as tl

    p = small_problem
    A = np.array([[2.0, 0.3], [0.0, 0.5]])
    G = A @ p.G_star                      # the row space of G*, another scale
    F = p.F_star @ np.linalg.inv(A)       # the least-squares head of that G
    assert_close(ex.own_limit(F, G, p), tl.amgd_stability_limit(F, p.Sigma_x, p.G_star), rtol=1e-12,
                 what="own limit on G*'s row space")
    assert_close(ex.own_limit(2.0 * F, G, p), ex.own_limit(F, G, p) / 4.0, rtol=1e-12, what="limit ~ 1/sigma_max^2")
    assert np.isnan(ex.own_limit(F * np.nan, G, p)) and np.isnan(ex.own_limit(F, 0.0 * G, p))


def test_sweep_records_heads_and_limits(sweep):
    sw = sweep
    M, L = len(sw.labels), len(sw.lrs)
    assert sw.final_F.shape == (2, M, L, 4, 2) and sw.final_limit.shape == (2, M, L)
    ok = sw.ran[None] & ~sw.diverged
    assert np.all(np.isfinite(sw.final_limit[:, sw.labels.index("SGD")][ok[:, sw.labels.index("SGD")]]))
    assert np.all(np.isnan(sw.final_F[~sw.ran[None].repeat(2, 0)]))
    # the half-way limit is recorded for AMGD only (none in this method set)
    assert np.all(np.isnan(sw.mid_limit))


# --------------------------------------------------------------------------- the claims' comparison runs
def test_comparison_runs_figure1_step_sizes_on_their_own_stream(tiny, curves):
    st = tiny.comparison(trials=3, optimizers=("sgd", "kfac"))
    assert st.stream == "comparison" and st.sweep == tiny.sweep  # the same sweep experiment as Figure 1
    c = runner.compute("linrep.curves", st, seed=3)
    assert c.labels == ("SGD", "KFAC") and c.subspace_distance.shape == (3, 2, 2)  # start and end only
    assert c.lrs.tolist() == [curves.lrs[curves.index("SGD")], curves.lrs[curves.index("KFAC")]]
    assert np.array_equal(c.sweep.final_distance, curves.sweep.final_distance, equal_nan=True)
    # other tasks than Figure 1's: the starting distances differ
    assert not np.array_equal(c.subspace_distance[:, :, 0], curves.subspace_distance[:, [curves.index("SGD"),
                                                                                         curves.index("KFAC")], 0])
    with pytest.raises(ValueError, match="registered optimizer"):
        tiny.comparison(trials=3, optimizers=("nope",))
    with pytest.raises(ValueError, match="'trials'"):
        tiny.comparison(trials=0)
