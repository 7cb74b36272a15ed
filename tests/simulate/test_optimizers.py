"""simulate.optimizers: gradients, literal updates, protocol and registry."""

from __future__ import annotations

import numpy as np
import pytest

from simulate import data, optimizers as so
from tests.conftest import assert_close


def _loss_samples(F, G, X, Y):
    R = Y - X @ G.T @ F.T
    return 0.5 * np.sum(R**2) / X.shape[0]


@pytest.fixture
def batch_case(rng, small_problem):
    X, Y = data.draw_batch(small_problem, 40, rng=rng)
    F = rng.standard_normal((small_problem.d_y, small_problem.k))
    G = rng.standard_normal((small_problem.k, small_problem.d_x))
    return F, G, X, Y, so.Batch.from_samples(X, Y)


def test_gradients_match_central_differences(batch_case):
    F, G, X, Y, b = batch_case
    assert_close(so.batch_loss(F, G, b), _loss_samples(F, G, X, Y), rtol=1e-12, what="loss from moments")
    h = 1e-6
    for name, P, grad in (("G", G, so.grad_G(F, G, b)), ("F", F, so.grad_F(F, G, b)[0])):
        num = np.zeros_like(P)
        for idx in np.ndindex(P.shape):
            E = np.zeros_like(P)
            E[idx] = h
            args_p = (F + E, G) if name == "F" else (F, G + E)
            args_m = (F - E, G) if name == "F" else (F, G - E)
            num[idx] = (_loss_samples(*args_p, X, Y) - _loss_samples(*args_m, X, Y)) / (2 * h)
        # central differences: truncation O(h^2) ~ 1e-12 and round-off ~ eps * loss / h ~ 1e-9
        assert_close(grad, num, rtol=1e-6, atol=1e-7, what=f"grad_{name} vs finite differences")


def test_kfac_step_is_eq5_literally(batch_case):
    F, G, X, Y, b = batch_case
    eta = 0.4
    F1, G1, _ = so.make("kfac", lr=eta).step(F, G, b, None)
    gG = F.T @ (F @ G @ b.Sigma_x - b.Sigma_yx)
    G_ref = G - eta * np.linalg.solve(F.T @ F, np.linalg.solve(b.Sigma_x, gG.T).T)
    Sz = G_ref @ b.Sigma_x @ G_ref.T
    F_ref = F - eta * np.linalg.solve(Sz, (F @ Sz - b.Sigma_yx @ G_ref.T).T).T
    assert_close(G1, G_ref, rtol=1e-9, atol=1e-12, what="KFAC G step")
    assert_close(F1, F_ref, rtol=1e-9, atol=1e-12, what="KFAC F step")


def test_amgd_head_is_least_squares_and_sgd_is_simultaneous(batch_case):
    F, G, X, Y, b = batch_case
    F1, G1, _ = so.make("amgd", lr=0.1).step(F, G, b, None)
    assert_close(G1, G - 0.1 * so.grad_G(F, G, b), rtol=1e-13, what="AMGD G step")
    assert np.abs(so.grad_F(F1, G1, b)[0]).max() < 1e-10, "AMGD head must be the least-squares head"
    F2, G2, _ = so.make("sgd", lr=0.05).step(F, G, b, None)
    assert_close(F2, F - 0.05 * so.grad_F(F, G, b)[0], rtol=1e-13, what="SGD F step uses the old G")


def test_population_batch_moments(small_problem):
    b = so.Batch.population(small_problem.Sigma_x, small_problem.M, small_problem.noise_std)
    # at the truth the population loss is the noise floor d_y sigma^2 / 2
    L = so.batch_loss(small_problem.F_star, small_problem.G_star, b)
    assert_close(L, 0.5 * small_problem.d_y * small_problem.noise_std**2, rtol=1e-10, atol=1e-14, what="loss at truth")


def test_registry_and_user_registration(batch_case):
    F, G, X, Y, b = batch_case
    for name in ("sgd", "amgd", "kfac", "kfac_ls", "kfac_left", "kfac_right", "kfac_diag", "amgd_diag"):
        assert name in so.REGISTRY
        opt = so.make(name, lr=0.01)
        F1, G1, st = opt.step(F, G, b, opt.init(F, G))
        assert F1.shape == F.shape and G1.shape == G.shape

    class Frozen:
        name = "frozen"

        def init(self, F, G):
            return 0

        def step(self, F, G, batch, state):
            return F, G, state + 1

    so.register("frozen_test", lambda **o: Frozen())
    try:
        assert so.make("frozen_test", lr=1.0).step(F, G, b, 0)[2] == 1
    finally:
        so.REGISTRY.pop("frozen_test")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: so.make("nope", lr=0.1), r"'name'.*one of \[.*'kfac'"),
        (lambda: so.make("kfac", lr=0.0), "'lr'"),
        (lambda: so.make("kfac", lr=0.1, lam_G=-1.0), "'lam_G'"),
        (lambda: so.make("kfac", lr=0.1, left="diag"), "'left'"),
        (lambda: so.register("", lambda **o: None), "'name'"),
    ],
)
def test_bad_optimizer_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
