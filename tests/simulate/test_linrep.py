"""simulate.linrep and simulate.data: runs, metrics, reproducibility, divergence."""

from __future__ import annotations

import re

import numpy as np
import pytest

from simulate import data, linrep as sl
from tests.conftest import assert_close


def test_covariance_families(rng):
    S = data.conditioned_covariance(20, kappa=1e3, rng=rng)
    lam = np.linalg.eigvalsh(S)
    assert_close(lam[-1] / lam[0], 1e3, rtol=1e-8, what="condition number")
    assert_close(np.trace(S) / 20, 1.0, rtol=1e-12, what="mean eigenvalue")
    A = data.anisotropic_covariance(10, eps=0.75, rng=rng)
    lam = np.linalg.eigvalsh(A)
    assert_close(lam[-1] / lam[0], 4.0, rtol=1e-10, what="kappa = 1/(1 - eps)")
    G = data.orthonormal_rows(3, 9, rng=rng)
    assert_close(G @ G.T, np.eye(3), rtol=0, atol=1e-14, what="G* G*^T")
    F = data.conditioned_head(5, 3, kappa=7.0, rng=rng)
    s = np.linalg.svd(F, compute_uv=False)
    assert_close(s, [1.0, 7.0**-0.5, 1 / 7.0], rtol=1e-12, what="singular values of F*")


@pytest.mark.parametrize("law", data.LAWS)
def test_input_laws_have_the_covariance(rng, law):
    # 2e5 samples: entrywise s.e. of the empirical covariance <= sqrt(2/n) * max var ~ 3.2e-3 * 2;
    # 6 s.e. keeps the false-failure rate of the whole matrix below 1e-6
    S = data.conditioned_covariance(4, kappa=4.0, rng=rng)
    X = data.sample_inputs(200_000, data.symmetric_sqrt(S), law=law, rng=rng)
    assert_close(X.T @ X / X.shape[0], S, rtol=0, atol=6 * np.sqrt(2 / 2e5) * 2, what=f"{law} covariance")


def test_run_shapes_reproducibility_and_decrease(small_problem):
    tr1 = sl.run(small_problem, "kfac", steps=30, lr=0.5, batch=64, rng=np.random.default_rng(3))
    tr2 = sl.run(small_problem, "kfac", steps=30, lr=0.5, batch=64, rng=np.random.default_rng(3))
    for key in ("train_loss", "subspace_distance", "transfer_loss", "tangent_sq"):
        arr = getattr(tr1, key)
        assert arr.shape == (31,)
        assert np.array_equal(arr, getattr(tr2, key)), f"{key} differs for the same seed"
    assert tr1.subspace_distance[-1] < 0.5 * tr1.subspace_distance[0]
    pop = sl.run(small_problem, "kfac_ls", steps=5, lr=1.0, batch=None, rng=np.random.default_rng(0))
    # eta = 1 with the least-squares head solves the population problem in one step (R-LR-2)
    assert pop.subspace_distance[-1] < 1e-10, pop.subspace_distance


def test_metrics_against_definitions(rng, small_problem):
    G = rng.standard_normal((small_problem.k, small_problem.d_x))
    s, c = sl.principal_angles(G, small_problem.G_star)
    k = small_problem.k
    assert_close(s[:k] ** 2 + c[:k] ** 2, np.ones(k), rtol=0, atol=1e-12, what="sin^2 + cos^2 (paired)")
    t = sl.principal_tangents(G, small_problem.G_star)
    assert_close(t, s[:k] / c[:k], rtol=1e-10, what="tangents")
    # transfer loss: zero on the true subspace (any basis), positive elsewhere
    assert sl.transfer_loss(3.0 * small_problem.G_star, small_problem) < 1e-25
    assert sl.transfer_loss(G, small_problem) > 1e-3


def test_divergence_stops_with_a_clear_error(small_problem):
    with pytest.raises(sl.DivergenceError, match=r"'sgd' diverged at step \d+") as ei:
        sl.run(small_problem, "sgd", steps=500, lr=50.0, batch=None, rng=np.random.default_rng(0))
    assert ei.value.algorithm == "sgd" and ei.value.step >= 1
    assert np.all(np.isfinite(ei.value.partial["subspace_distance"]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=-1, lr=0.1, batch=10), "'steps'"),
        (dict(steps=1, lr=-0.1, batch=10), "'lr'"),
        (dict(steps=1, lr=0.1, batch=0), "'batch'"),
        (dict(steps=1, lr=0.1, batch=5), r"'batch'.*>= d_x"),
    ],
)
def test_run_rejects_bad_arguments(small_problem, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.run(small_problem, "kfac", rng=np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: data.conditioned_covariance(0, kappa=2.0, rng=r), "'d'"),
        (lambda r: data.conditioned_covariance(3, kappa=0.5, rng=r), "'kappa'"),
        (lambda r: data.anisotropic_covariance(3, eps=1.0, rng=r), "'eps'"),
        (lambda r: data.linrep_problem(5, 2, 3, kappa_x=1, kappa_F=1, noise_std=0, rng=r), "'d_y'"),
        (lambda r: data.linrep_problem(5, 4, 3, kappa_x=1, kappa_F=1, noise_std=0, rng=r, law="cauchy"), "'law'"),
        (lambda r: data.orthonormal_rows(2, 3, rng=42), "'rng'"),
    ],
)
def test_data_rejects_bad_arguments(rng, call, match):
    with pytest.raises(ValueError, match=match):
        call(rng)


def test_run_on_batch_unset_is_unchanged_and_set_records_every_batch(small_problem):
    F0, G0 = sl.initial_point(small_problem, rng=np.random.default_rng(1))
    kw = dict(steps=12, lr=0.5, batch=64, F0=F0, G0=G0)   # rng then draws the batches only
    plain = sl.run(small_problem, "kfac", rng=np.random.default_rng(5), **kw)
    seen = []

    def on_batch(t, b):
        seen.append((b.Sigma_x.copy(), b.Sigma_yx.copy()))
        return t, float(np.trace(b.Sigma_x))

    rec = sl.run(small_problem, "kfac", rng=np.random.default_rng(5), on_batch=on_batch, **kw)
    assert plain.batch_records is None
    for key in ("train_loss", "subspace_distance", "tangent_sq", "transfer_loss", "F", "G"):
        assert np.array_equal(getattr(plain, key), getattr(rec, key)), f"{key} changed by on_batch"
    assert len(rec.batch_records) == kw["steps"] + 1, f"{len(rec.batch_records)} records for 12 steps"
    assert [r[0] for r in rec.batch_records] == list(range(13))
    # the records come from the very batches the run drew (same generator, same order)
    direct = sl._batches(small_problem, 64, [sl.make("kfac", lr=0.5)], np.random.default_rng(5))
    for t, (Sx, Syx) in enumerate(seen):
        b = direct()
        assert np.array_equal(Sx, b.Sigma_x) and np.array_equal(Syx, b.Sigma_yx), f"batch {t} differs"
        assert rec.batch_records[t][1] == float(np.trace(b.Sigma_x))


@pytest.mark.parametrize("bad, got", [(3, "3"), ("f", "the string 'f'"), (dict, "the callable dict")])
def test_run_rejects_a_bad_on_batch(small_problem, bad, got):
    with pytest.raises(ValueError, match=r"run: argument 'on_batch' must be None or a callable on_batch\(t, batch\) "
                                         r".*; got " + re.escape(got) + r"\.$"):
        sl.run(small_problem, "kfac", steps=2, lr=0.5, batch=64, rng=np.random.default_rng(0), on_batch=bad)


def test_run_reports_a_raising_on_batch_as_a_bad_argument(small_problem):
    def broken(t, b):
        if t == 2:
            raise KeyError("boom")
        return t

    with pytest.raises(ValueError, match=r"run: argument 'on_batch' must be .*; got a callable \(broken\) that raised "
                                         r"KeyError at step 2"):
        sl.run(small_problem, "kfac", steps=5, lr=0.5, batch=64, rng=np.random.default_rng(0), on_batch=broken)
