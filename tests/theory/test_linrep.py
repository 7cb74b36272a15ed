"""Unit tests of theory.linrep (Lemma 3.1, Definition 3.2, R-LR-1/2/3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import assert_close
from theory import linrep as tl


def _spd(rng, d, kappa=10.0):
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.geomspace(1.0, 1.0 / kappa, d)
    return (Q * lam) @ Q.T


def _orth_rows(rng, k, d):
    Q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return Q.T


# ----------------------------------------------------------------- Lemma 3.1
def test_least_squares_head_matches_lstsq(rng):
    n, k, dy = 200, 3, 4
    Z = rng.standard_normal((n, k))
    Y = rng.standard_normal((n, dy))
    F = tl.least_squares_head(Z.T @ Z / n, Y.T @ Z / n)
    F_ref = np.linalg.lstsq(Z, Y, rcond=None)[0].T
    assert_close(F, F_ref, rtol=1e-10, atol=1e-12, what="least-squares head")


def test_ema_head_at_eta_one_is_least_squares(rng):
    k, dy = 3, 5
    A = rng.standard_normal((k, k))
    Sz = A @ A.T + np.eye(k)
    Syz = rng.standard_normal((dy, k))
    F = rng.standard_normal((dy, k))
    assert np.array_equal(tl.ema_head(F, Sz, Syz, eta_F=1.0), tl.least_squares_head(Sz, Syz))


def test_ema_representation_at_eta_one_minimises_loss(rng):
    # eta_G = 1, lam_G = 0: G_+ = argmin_G of the batch loss for fixed F (gradient vanishes there)
    d, k, dy, n = 8, 2, 3, 50
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, dy))
    F = rng.standard_normal((dy, k))
    Sx, Syx = X.T @ X / n, Y.T @ X / n
    G = tl.ema_representation(rng.standard_normal((k, d)), F, Sx, Syx, eta_G=1.0)
    grad = F.T @ F @ G @ Sx - F.T @ Syx
    assert np.abs(grad).max() < 1e-12, f"gradient at the least-squares G is {np.abs(grad).max():.2e}"


def test_ema_representation_ridge_fixed_point(rng):
    # with lam_G > 0 the EMA form is a convex combination: at eta_G -> small it moves by O(eta)
    d, k, dy = 6, 2, 3
    F = rng.standard_normal((dy, k))
    G = rng.standard_normal((k, d))
    Sx = _spd(rng, d)
    Syx = rng.standard_normal((dy, d))
    G1 = tl.ema_representation(G, F, Sx, Syx, eta_G=1e-8, lam_G=0.5)
    assert np.abs(G1 - G).max() < 1e-6


# ----------------------------------------------------------------- Definition 3.2
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 4), d=st.integers(5, 12))
def test_subspace_distance_invariant_under_left_multiplication(seed, k, d):
    rng = np.random.default_rng(seed)
    Gs = _orth_rows(rng, k, d)
    G = rng.standard_normal((k, d))
    S = rng.standard_normal((k, k)) + 3 * np.eye(k)
    for norm in ("op", "fro"):
        a = tl.subspace_distance(G, Gs, norm=norm)
        b = tl.subspace_distance(S @ G, Gs, norm=norm)
        assert abs(a - b) < 1e-10, f"{norm}: {a} vs {b}"
        assert 0.0 <= a <= np.sqrt(k) + 1e-12


@pytest.mark.parametrize("delta", [1e-3, 1e-8, 1e-12])
def test_subspace_distance_accurate_at_tiny_distances(rng, delta):
    # one direction tilted by angle theta with tan(theta) = delta: sin(theta) = delta / sqrt(1 + delta^2)
    d, k = 10, 3
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Gs = Q[:, :k].T
    G = Gs.copy()
    G[0] += delta * Q[:, k]
    expected = delta / np.sqrt(1 + delta**2)
    # an orthonormal basis is known to O(eps) = 2.2e-16 per entry, so the error bound is absolute:
    # 1e-15 (about 5 eps); sqrt(1 - cos^2) would only be good to sqrt(eps) ~ 1e-8 here.
    assert_close(tl.subspace_distance(G, Gs), expected, rtol=0, atol=1e-15, what="sin(theta_max)")
    assert_close(tl.subspace_distance(G, Gs, norm="fro"), expected, rtol=0, atol=1e-15, what="Frobenius distance")
    cos = np.linalg.svd(Gs @ G.T / np.linalg.norm(G, axis=1), compute_uv=False).min()
    naive = np.sqrt(max(1 - cos**2, 0.0))
    if delta <= 1e-8:
        assert abs(naive - expected) > 1e-15, "the naive route should not reach this accuracy"


def test_subspace_distance_orthogonal_and_fro(rng):
    d = 6
    I = np.eye(d)
    assert_close(tl.subspace_distance(I[:2], I[2:4]), 1.0, rtol=1e-14)
    assert_close(tl.subspace_distance(I[:2], I[2:4], norm="fro"), np.sqrt(2), rtol=1e-14)
    assert tl.subspace_distance(I[:2], I[:2]) == 0.0


def test_tangent_matrix_singular_values_are_tangents(rng):
    d, k = 9, 2
    Gs = _orth_rows(rng, k, d)
    G = rng.standard_normal((k, d))
    t = np.linalg.svd(tl.tangent_matrix(G, Gs), compute_uv=False)
    s = t / np.sqrt(1 + t**2)
    assert_close(s[0], tl.subspace_distance(G, Gs), rtol=1e-10, what="sin from tangent")


# ----------------------------------------------------------------- R-LR-1
def test_local_rate_kfac_is_one_minus_eta(rng):
    d, k, dy = 15, 3, 5
    Sx = _spd(rng, d, kappa=1e4)
    Gs = _orth_rows(rng, k, d)
    F = rng.standard_normal((dy, k)) @ np.diag([1, 0.1, 0.01])
    for eta in (0.2, 0.7, 1.0, 1.5):
        assert_close(tl.local_rate(F, Sx, Gs, eta=eta, left="FtF", right="Sigma_x"), abs(1 - eta), rtol=0,
                     atol=1e-9, what=f"KFAC rate at eta={eta}")
    assert tl.kfac_rate(0.3) == pytest.approx(0.7)


def test_local_rate_amgd_optimum_and_interlacing(rng):
    d, k, dy = 15, 3, 5
    Sx = _spd(rng, d, kappa=50)
    Gs = _orth_rows(rng, k, d)
    F = rng.standard_normal((dy, k))
    ell, m = tl.local_rate_factors(F, Sx, Gs, left="identity", right="identity")
    lam = np.linalg.eigvalsh(Sx)
    assert lam[0] - 1e-12 <= m.min() and m.max() <= lam[-1] + 1e-12, "interlacing of Sigma_22.1"
    assert_close(ell, np.sort(np.linalg.svd(F, compute_uv=False) ** 2), rtol=1e-12, what="sigma(F)^2")
    eta = tl.amgd_optimal_eta(F, Sx, Gs)
    assert_close(tl.local_rate(F, Sx, Gs, eta=eta, left="identity", right="identity"),
                 tl.amgd_optimal_rate(F, Sx, Gs), rtol=1e-12, what="rate at optimal eta")
    # optimal rate is a lower bound over eta
    etas = np.linspace(0.01, tl.amgd_stability_limit(F, Sx, Gs), 200)
    rates = [tl.local_rate(F, Sx, Gs, eta=e, left="identity", right="identity") for e in etas]
    assert min(rates) >= tl.amgd_optimal_rate(F, Sx, Gs) - 1e-12


def test_local_rate_diag_equals_kfac_when_axis_aligned(rng):
    d, k = 10, 2
    Sx = np.diag(np.geomspace(1, 0.01, d))
    Gs = _orth_rows(rng, k, d)
    F = rng.standard_normal((4, k))
    assert_close(tl.local_rate(F, Sx, Gs, eta=0.4, left="FtF", right="diag"), 0.6, rtol=1e-12)


# ----------------------------------------------------------------- R-LR-2 / R-LR-3
def test_kfac_whitened_step_properties():
    t = np.array([0.0, 1e-3, 0.5, 3.0, 1e6])
    assert np.all(tl.kfac_whitened_step(t, eta=1.0) == 0.0), "eta = 1 solves in one step"
    out = tl.kfac_whitened_step(t, eta=0.3)
    assert np.all(out <= 0.7 * t + 1e-300)
    assert_close(out[1], 0.7e-3 / (1 + 0.3e-6), rtol=1e-15)


def test_kfac_noise_floor_scaling(rng):
    d, k, dy = 10, 2, 4
    Sx = _spd(rng, d)
    Gs = _orth_rows(rng, k, d)
    F = rng.standard_normal((dy, k))
    a = tl.kfac_noise_floor(F, Sx, Gs, eta=0.5, noise_std=0.1, n=100)
    b = tl.kfac_noise_floor(F, Sx, Gs, eta=0.5, noise_std=0.2, n=100)
    c = tl.kfac_noise_floor(2 * F, Sx, Gs, eta=0.5, noise_std=0.1, n=100)
    assert_close(b, 4 * a, rtol=1e-12)
    assert_close(c, a / 4, rtol=1e-12)
    # isotropic check of the trace: tr(G_perp Sigma^-1 G_perp^T) = d - k for Sigma = I
    e = tl.kfac_noise_floor(np.eye(k), np.eye(d), Gs, eta=1.0, noise_std=1.0, n=d + 11)
    assert_close(e, k * (d - k) / 10, rtol=1e-12)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tl.least_squares_head(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones((1, 2))), "Sigma_z.*symmetric"),
        (lambda: tl.least_squares_head(-np.eye(2), np.ones((1, 2))), "Sigma_z.*positive-definite"),
        (lambda: tl.least_squares_head(np.eye(2), np.ones((1, 3))), "Sigma_yz.*shape"),
        (lambda: tl.ema_head(np.ones((1, 2)), np.eye(2), np.ones((1, 2)), eta_F=1.5), "eta_F"),
        (lambda: tl.subspace_distance(np.zeros((2, 5)), np.eye(5)[:2]), "'G'.*rank"),
        (lambda: tl.subspace_distance(np.eye(5)[:2], np.eye(5)[:2], norm="nuc"), "'norm'"),
        (lambda: tl.local_rate(np.eye(2), np.eye(5), np.eye(5)[:2], eta=0.5, left="x", right="diag"), "'left'"),
        (lambda: tl.local_rate(np.eye(2), np.eye(5), np.eye(5)[:2], eta=-1, left="FtF", right="diag"), "'eta'"),
        (lambda: tl.local_rate(np.zeros((3, 2)), np.eye(5), np.eye(5)[:2], eta=0.5, left="FtF", right="diag"),
         "'F'.*full column rank"),
        (lambda: tl.kfac_whitened_step(np.array([-1.0]), eta=0.5), "tangents"),
        (lambda: tl.kfac_whitened_step(np.array([np.nan]), eta=0.5), "tangents.*finite"),
        (lambda: tl.kfac_noise_floor(np.eye(2), np.eye(5), np.eye(5)[:2], eta=0.5, noise_std=0.1, n=5), "'n'"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
