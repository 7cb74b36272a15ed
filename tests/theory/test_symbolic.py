"""Tests of theory.symbolic: the exact derivations (Lemma 3.1, R-LR-1, R-LR-2, Theorem 3.9 isotropic,
teacher integrals) and the cross-checks that hold the float64 theory (theory.linrep, theory.rmt,
theory.single_index) to the symbolic and 50-digit mpmath routes.

Tolerances. Symbolic identities are exact (``== 0`` after cancellation). Float64 code against a
50-digit reference is held to 1e-12 relative, the accuracy the numeric modules state, except where a
float64 limit is stated next to the check (cancellation in sigma_r^2 = E[y^2] - c^2 s^2, rounding of
finite differences, conditioning of a linear solve). Nothing here is statistical, so no alpha.
"""

from __future__ import annotations

import doctest
import pathlib

import mpmath
import numpy as np
import pytest
import sympy as sp

from tests.conftest import assert_close
from theory import linrep as tl
from theory import rmt
from theory import single_index as si
from theory import symbolic as sym

S = sym.SYMBOLS
EPS = np.finfo(float).eps
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _spd(rng, d, kappa):
    """Rotated SPD matrix with eigenvalues geometric from 1 to 1/kappa."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (Q * np.geomspace(1.0, 1.0 / kappa, d)) @ Q.T


def _full_rank(rng, rows, cols, kappa):
    """rows x cols matrix (rows >= cols) with singular values geometric from 1 to 1/kappa."""
    U, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    W, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
    return (U * np.geomspace(1.0, 1.0 / kappa, cols)) @ W.T


def _is_zero(z) -> bool:
    """A simplified matrix identity: ZeroMatrix (matrix symbols) or an explicit zero matrix."""
    return isinstance(z, sp.ZeroMatrix) or (isinstance(z, sp.MatrixBase) and z.is_zero_matrix) or z == 0


def _mp_to_np(M) -> np.ndarray:
    return np.array([[float(x) for x in row] for row in M.tolist()])


# =============================================================================================
# Lemma 3.1
# =============================================================================================

def test_lemma_3_1_matrix_symbols_simplify_to_zero():
    res = sym.lemma_3_1_residuals()
    assert set(res) == {"F", "G", "G_ridge"}
    for name, r in res.items():
        z = sym.simplify_matrix(r)
        assert _is_zero(z), f"{name}: residual simplifies to {z}, not 0"
    # without the change of variables, F and G already vanish under expand().doit()
    assert _is_zero(res["F"].expand().doit())
    assert _is_zero(res["G"].expand().doit())


def test_lemma_3_1_gradients_are_derived_from_the_loss():
    lem = sym.lemma_3_1()
    F, G, Sx, Syx, Sz, Syz = (lem.symbols[n] for n in ("F", "G", "Sigma_x", "Sigma_yx", "Sigma_z", "Sigma_yz"))
    assert _is_zero(sym.simplify_matrix(lem.gradient_G - (F.T * F * G * Sx - F.T * Syx)))
    assert _is_zero(sym.simplify_matrix(lem.gradient_F - (F * Sz - Syz)))


@pytest.mark.parametrize("d_x, d_y, k", [(2, 1, 1), (2, 2, 1), (3, 2, 1)])
def test_lemma_3_1_explicit_dimensions(d_x, d_y, k):
    lem = sym.lemma_3_1(d_x=d_x, d_y=d_y, k=k)
    for name, r in lem.residuals.items():
        z = sym.simplify_matrix(r)
        assert z.is_zero_matrix, f"{name} at (d_x, d_y, k) = {(d_x, d_y, k)}: residual {z}"


@pytest.mark.slow
@pytest.mark.parametrize("d_x, d_y, k", [(2, 2, 2), (3, 2, 2), (3, 3, 2)])
def test_lemma_3_1_explicit_dimensions_larger(d_x, d_y, k):
    lem = sym.lemma_3_1(d_x=d_x, d_y=d_y, k=k)
    for name, r in lem.residuals.items():
        assert sym.simplify_matrix(r).is_zero_matrix, f"{name} at {(d_x, d_y, k)}"


def test_lemma_3_1_explicit_gradient_matches_batch_loss_finite_differences(rng):
    # The explicit gradient (sympy diff of the moment-form loss) against central differences of the
    # literal batch loss (1/2n) sum ||y_i - F G x_i||^2. The loss is quadratic in G, so central
    # differences are exact up to rounding: |error| <= 2 * c * eps * L_scale / (2h); we allow
    # c = 1e3 roundings, i.e. tol = 1e3 * eps * L_scale / h.
    d_x, d_y, k, n = 3, 2, 2, 40
    lem = sym.lemma_3_1(d_x=d_x, d_y=d_y, k=k)
    grad = sym.to_numpy(lem.gradient_G, [lem.symbols[x] for x in ("F", "G", "Sigma_x", "Sigma_yx")])
    X = rng.standard_normal((n, d_x))
    Y = rng.standard_normal((n, d_y))
    F = rng.standard_normal((d_y, k))
    G = rng.standard_normal((k, d_x))

    def loss(Gm):
        R = Y - X @ Gm.T @ F.T
        return 0.5 * np.sum(R * R) / n

    h = 1e-3
    fd = np.zeros_like(G)
    for i in range(k):
        for j in range(d_x):
            E = np.zeros_like(G)
            E[i, j] = h
            fd[i, j] = (loss(G + E) - loss(G - E)) / (2 * h)
    g = np.asarray(grad(F, G, X.T @ X / n, Y.T @ X / n), dtype=float)
    L_scale = 0.5 * np.sum(Y * Y) / n + loss(G)
    assert_close(g, fd, rtol=0.0, atol=1e3 * EPS * L_scale / h, what="derived gradient vs finite differences")


def _linrep_case(rng, d_x=8, d_y=4, k=3):
    # conditioning: cond(F^T F) = 4, cond(Sigma_x) = 30, so a float64 evaluation is accurate to
    # about cond(F^T F) * cond(Sigma_x) * d * eps ~ 2e-13 relative: the 1e-12 checks below hold.
    F = _full_rank(rng, d_y, k, 2.0)
    G = rng.standard_normal((k, d_x))
    Sx = _spd(rng, d_x, 30.0)
    Syx = rng.standard_normal((d_y, d_x))
    Sz = _spd(rng, k, 30.0)
    Syz = rng.standard_normal((d_y, k))
    return F, G, Sx, Syx, Sz, Syz


@pytest.mark.parametrize("eta, lam", [(0.3, 0.0), (1.0, 0.0), (0.5, 0.05), (0.9, 2.0)])
def test_linrep_ema_representation_matches_symbolic_kfac_step(rng, eta, lam):
    # Independent routes: theory.linrep evaluates the EMA form (solves); here eq. (5)'s KFAC step,
    # derived symbolically, is evaluated by numpy and by mpmath at 50 digits.
    F, G, Sx, Syx, _, _ = _linrep_case(rng)
    lem = sym.lemma_3_1()
    args = [lem.symbols[x] for x in ("F", "G", "Sigma_x", "Sigma_yx", "eta_G", "lam_G")]
    ref = _mp_to_np(sym.to_mpmath(lem.step_G_ridge, args, dps=50)(F, G, Sx, Syx, eta, lam))
    fast = sym.to_numpy(lem.step_G_ridge, args)(F, G, Sx, Syx, eta, lam)
    got = tl.ema_representation(G, F, Sx, Syx, eta_G=eta, lam_G=lam)
    scale = np.abs(ref).max()
    assert_close(got, ref, rtol=0.0, atol=1e-12 * scale, what="linrep.ema_representation vs 50-digit KFAC step")
    assert_close(fast, ref, rtol=0.0, atol=1e-12 * scale, what="numpy bridge vs 50-digit KFAC step")


@pytest.mark.parametrize("eta", [0.2, 0.7, 1.0])
def test_linrep_ema_head_matches_symbolic_kfac_step_tanh_features(rng, eta):
    # Lemma 3.1 for F holds for any features: moments of z = tanh(G x) from a batch.
    d_x, d_y, k, n = 6, 3, 2, 200
    X = rng.standard_normal((n, d_x))
    G = rng.standard_normal((k, d_x)) / np.sqrt(d_x)
    Zf = np.tanh(X @ G.T)
    Y = rng.standard_normal((n, d_y))
    Sz, Syz = Zf.T @ Zf / n, Y.T @ Zf / n
    F = rng.standard_normal((d_y, k))
    lem = sym.lemma_3_1()
    args = [lem.symbols[x] for x in ("F", "Sigma_z", "Sigma_yz", "eta_F")]
    ref = _mp_to_np(sym.to_mpmath(lem.step_F, args, dps=50)(F, Sz, Syz, eta))
    scale = np.abs(ref).max()
    # cond(Sigma_z) is about 10 here: float64 solves are good to ~1e-14 relative
    assert np.linalg.cond(Sz) < 1e3
    assert_close(tl.ema_head(F, Sz, Syz, eta_F=eta), ref, rtol=0.0, atol=1e-12 * scale,
                 what="linrep.ema_head vs 50-digit KFAC head step")
    if eta == 1.0:
        assert_close(tl.least_squares_head(Sz, Syz), ref, rtol=0.0, atol=1e-12 * scale,
                     what="least-squares head vs KFAC step at eta_F = 1")


def test_explicit_lemma_mpmath_route_matches_matrix_symbol_route(rng):
    # The explicit-dimension expressions (entries are elements of the same MatrixSymbols) evaluate
    # to the same numbers as the dimension-free ones: two symbolic routes, 50 digits each.
    F, G, Sx, Syx, _, _ = _linrep_case(rng, d_x=3, d_y=2, k=2)
    names = ("F", "G", "Sigma_x", "Sigma_yx", "eta_G", "lam_G")
    a = sym.lemma_3_1(d_x=3, d_y=2, k=2)
    b = sym.lemma_3_1()
    va = sym.to_mpmath(a.ema_G_ridge, [a.symbols[x] for x in names])(F, G, Sx, Syx, 0.4, 0.1)
    vb = sym.to_mpmath(b.step_G_ridge, [b.symbols[x] for x in names])(F, G, Sx, Syx, 0.4, 0.1)
    with mpmath.workdps(50):
        diff = max(abs(x - y) for x, y in zip(va, vb))
    assert diff < mpmath.mpf(10) ** -45, f"explicit EMA form vs symbolic KFAC step differ by {mpmath.nstr(diff, 3)}"


# =============================================================================================
# R-LR-1
# =============================================================================================

PAIRS = [(left, right) for left in sym.LEFT for right in sym.RIGHT]


@pytest.mark.parametrize("left, right", PAIRS)
@pytest.mark.parametrize("k, d_x, d_y", [(1, 3, 1), (1, 3, 2)])
def test_local_rate_linearisation_recovers_theory(left, right, k, d_x, d_y):
    der = sym.local_rate_derivation(left, right, k=k, d_x=d_x, d_y=d_y)
    assert der.zeroth_order.is_zero_matrix, "G* must be a fixed point of the step"
    assert der.residual.is_zero_matrix, f"{left}/{right}: Jacobian - (I - eta M^T kron L) = {der.residual}"


@pytest.mark.slow
@pytest.mark.parametrize("left, right", PAIRS)
def test_local_rate_linearisation_k2(left, right):
    der = sym.local_rate_derivation(left, right, k=2, d_x=3, d_y=2)
    assert der.zeroth_order.is_zero_matrix
    assert der.residual.is_zero_matrix, f"{left}/{right}: residual {der.residual}"


def test_kfac_local_map_is_one_minus_eta_times_identity():
    der = sym.local_rate_derivation("FtF", "Sigma_x", k=1, d_x=3, d_y=2)
    n = der.jacobian.shape[0]
    assert sym.simplify_matrix(sp.Matrix(der.jacobian) - (1 - S.eta) * sp.eye(n)).is_zero_matrix
    assert sym.contraction_factor("kfac") == sp.Abs(1 - S.eta)
    opt = sym.optimal_contraction_factor("kfac")
    assert (opt.eta_star, opt.rho_star, opt.rho_in_kappa) == (1, 0, 0)


def test_contraction_factors_have_the_right_free_eigenvalues():
    l_, m_ = {S.l_min, S.l_max}, {S.m_min, S.m_max}
    expect = {"amgd": l_ | m_, "left": m_, "right": l_, "diag": m_, "amgd_diag": l_ | m_, "kfac": set()}
    for method, eig in expect.items():
        got = sym.contraction_factor(method).free_symbols - {S.eta}
        assert got == eig, f"{method}: contraction factor depends on {got}, expected {eig}"
    amgd = sym.optimal_contraction_factor("amgd")
    assert sp.simplify(amgd.rho_in_kappa - (S.kappa_eff - 1) / (S.kappa_eff + 1)) == 0
    # the optimum balances the extreme modes: rho(eta*) from the symbolic max equals rho_star
    rho = sym.contraction_factor("amgd").subs(S.eta, amgd.eta_star)
    vals = {S.l_min: sp.Rational(1, 3), S.l_max: 2, S.m_min: sp.Rational(1, 5), S.m_max: 7}
    assert sp.simplify(rho.subs(vals) - amgd.rho_star.subs(vals)) == 0


def _rotated_case(rng, k, d_x, d_y, kappa_x, kappa_F):
    # G* = [I_k, 0]; Sigma_x rotated (not aligned with G*), so "diag" differs from "Sigma_x".
    Sx = _spd(rng, d_x, kappa_x)
    Fs = _full_rank(rng, d_y, k, kappa_F)
    Gs = np.eye(k, d_x)
    return Sx, Fs, Gs


@pytest.mark.parametrize("left, right", PAIRS)
def test_linrep_local_rate_matches_derived_jacobian(rng, left, right):
    # Spectral radius of the derived Jacobian (numpy bridge) vs theory.linrep.local_rate.
    # Float64 limit: entries of the 2x2 Jacobian are rational functions of Sigma_x (cond 1e3)
    # accurate to ~cond * eps ~ 2e-13; eigenvalues of a 2x2 map inherit that: tol 1e-12.
    der = sym.local_rate_derivation(left, right, k=1, d_x=3, d_y=2)
    Sx, Fs, Gs = _rotated_case(rng, 1, 3, 2, 1e3, 1.0)
    Fs = Fs * 1.7
    for eta in (0.1, 0.5, 1.0, 1.9):
        got = tl.local_rate(Fs, Sx, Gs, eta=eta, left=left, right=right)
        ref = der.spectral_radius(Sx, Fs, eta=eta)
        assert_close(got, ref, rtol=1e-12, atol=1e-12, what=f"local_rate {left}/{right} eta={eta}")


@pytest.mark.slow
@pytest.mark.parametrize("left, right", PAIRS)
def test_linrep_local_rate_matches_derived_jacobian_k2(rng, left, right):
    der = sym.local_rate_derivation(left, right, k=2, d_x=3, d_y=2)
    Sx, Fs, Gs = _rotated_case(rng, 2, 3, 2, 1e2, 5.0)
    for eta in (0.3, 1.0):
        got = tl.local_rate(Fs, Sx, Gs, eta=eta, left=left, right=right)
        ref = der.spectral_radius(Sx, Fs, eta=eta)
        assert_close(got, ref, rtol=1e-12, atol=1e-12, what=f"local_rate k=2 {left}/{right} eta={eta}")


def test_linrep_factors_and_amgd_optimum_match_symbolic(rng):
    der = sym.local_rate_derivation("identity", "identity", k=1, d_x=3, d_y=2)
    Sx, Fs, Gs = _rotated_case(rng, 1, 3, 2, 50.0, 1.0)
    Fs = Fs * 2.0
    args = der.args
    L = np.asarray(sym.to_numpy(der.L, args[:2])(Sx, Fs), dtype=float)
    M = np.asarray(sym.to_numpy(der.M, args[:2])(Sx, Fs), dtype=float)
    ell = np.sort(np.linalg.eigvals(L).real)
    m = np.sort(np.linalg.eigvals(M).real)
    ell_ref, m_ref = tl.local_rate_factors(Fs, Sx, Gs, left="identity", right="identity")
    assert_close(ell, ell_ref, rtol=1e-12, what="ell = eig(F*^T F*)")
    assert_close(m, m_ref, rtol=1e-12, what="m = eig(Sigma_22.1)")
    opt = sym.optimal_contraction_factor("amgd")
    vals = {"l_min": ell[0], "l_max": ell[-1], "m_min": m[0], "m_max": m[-1]}
    names = list(vals)
    eta_star = sym.to_numpy(opt.eta_star, names)(*vals.values())
    limit = sym.to_numpy(opt.stability_limit, names)(*vals.values())
    rho = sym.to_numpy(opt.rho_in_kappa, ["kappa_eff"])(ell[-1] * m[-1] / (ell[0] * m[0]))
    assert_close(rho, tl.amgd_optimal_rate(Fs, Sx, Gs), rtol=1e-12, what="AMGD optimal rate")
    assert_close(eta_star, tl.amgd_optimal_eta(Fs, Sx, Gs), rtol=1e-12, what="AMGD optimal eta")
    assert_close(limit, tl.amgd_stability_limit(Fs, Sx, Gs), rtol=1e-12, what="AMGD stability limit")


# =============================================================================================
# R-LR-2
# =============================================================================================

def test_tangent_recursion_derived():
    rec = sym.kfac_tangent_recursion()
    t, eta = S.t, S.eta
    assert sp.simplify(rec.step - (1 - eta) * t / (1 + eta * t ** 2)) == 0
    assert rec.fixed_points == (0,)
    assert sp.simplify(rec.slope_at_zero - (1 - eta)) == 0
    assert rec.at_eta_one == 0
    # the local slope is R-LR-1's KFAC contraction factor
    assert sp.Abs(rec.slope_at_zero) == sym.contraction_factor("kfac")


def test_linrep_whitened_step_matches_derived_recursion():
    # Same rational function, evaluated in a different order: a few roundings, |rel err| <= 8 eps.
    rec = sym.kfac_tangent_recursion()
    f = sym.to_numpy(rec.step, ["t", "eta"])
    g = sym.to_mpmath(rec.step, ["t", "eta"], dps=50)
    tan = np.array([0.0, 1e-8, 1e-3, 0.3, 1.0, 3.0, 50.0])
    for eta in (0.2, 0.5, 0.9, 1.0):
        ref = np.array([float(g(x, eta)) for x in tan])
        assert_close(tl.kfac_whitened_step(tan, eta=eta), ref, rtol=8 * EPS, atol=1e-300,
                     what=f"kfac_whitened_step eta={eta}")
        assert_close(f(tan, eta), ref, rtol=8 * EPS, atol=1e-300, what=f"numpy bridge eta={eta}")


# =============================================================================================
# single-index: teacher coefficients
# =============================================================================================

def test_teacher_closed_forms():
    s, ns = S.s, S.noise_std
    relu = sym.teacher_coefficients("relu", s=s, noise_std=ns)
    assert relu.exact and (relu.c, relu.Ey2, sp.simplify(relu.sigma_r2)) == (
        sp.Rational(1, 2), s ** 2 / 2 + ns ** 2, sp.simplify(s ** 2 / 4 + ns ** 2))
    cubic = sym.teacher_coefficients("cubic", s=s)
    assert (cubic.c, cubic.Ey2) == (3 * s ** 2, 15 * s ** 6)
    he2 = sym.teacher_coefficients("he2")
    assert (he2.c, he2.Ey2, he2.mean) == (0, 2, 0)
    ab = sym.teacher_coefficients("abs", s=s)
    assert (ab.c, ab.Ey2, ab.mean) == (0, s ** 2, sp.sqrt(2) * s / sp.sqrt(sp.pi))
    lin = sym.teacher_coefficients("linear", s=s, noise_std=ns)
    assert (lin.c, lin.sigma_r2) == (1, ns ** 2)
    mixed = sym.teacher_coefficients(sp.Max(0, S.z) - sp.Rational(3, 10) * S.z)  # THEORY 4.2's relu - 0.3 z
    assert mixed.c == sp.Rational(1, 5)
    erf = sym.teacher_coefficients(lambda z: sp.erf(2 * z), s=s)
    assert erf.method == "erf (arcsine kernel)"
    assert sp.simplify(erf.c - 4 / (sp.sqrt(sp.pi) * sp.sqrt(1 + 8 * s ** 2))) == 0


@pytest.mark.parametrize("g, s", [
    (sp.Max(0, S.z), sp.Rational(7, 10)),
    (S.z ** 3 - S.z, 1),
    (sp.Abs(S.z) * S.z ** 2, sp.Rational(3, 2)),
])
def test_exact_gaussian_moments_match_quadrature(g, s):
    for h in (g, S.z * g, g * g):
        exact, ok = sym.gaussian_expectation(h, s=s)
        quad, _ = sym.gaussian_expectation(h, s=s, method="quad")
        assert ok
        err = abs(sp.N(exact, 60) - quad)
        assert err < 1e-45 * max(1, abs(sp.N(exact))), f"E[{h}] exact {exact} vs quadrature: {err}"


@pytest.mark.parametrize("a, s", [(1, 1), (1, sp.Rational(7, 10)), (2, sp.Rational(5, 2))])
def test_erf_arcsine_kernel_matches_quadrature(a, s):
    tc = sym.teacher_coefficients(sp.erf(a * S.z), s=s)
    z = S.z
    Eg2, _ = sym.gaussian_expectation(sp.erf(a * z) ** 2, s=s, method="quad")
    Ezg, _ = sym.gaussian_expectation(z * sp.erf(a * z), s=s, method="quad")
    assert abs(sp.N(tc.Ey2, 60) - Eg2) < 1e-45
    assert abs(sp.N(tc.c * s ** 2, 60) - Ezg) < 1e-45


@pytest.mark.parametrize("name", list(sym.TEACHERS))
@pytest.mark.parametrize("s", [1.0, 0.7])
def test_single_index_teacher_coefficients_match_reference(name, s):
    # theory.single_index states accuracy better than 1e-12. Scales: c against the integrand's rms
    # sqrt(E sigma*^2)/s (c can be 0); sigma_r^2 = E[y^2] - c^2 s^2 cancels, so against E[y^2].
    ref = sym.teacher_coefficients(name, s=s, noise_std=0.1)
    got = si.teacher_coefficients(name, s=s, noise_std=0.1)
    Ey2 = float(ref.Ey2)
    rms = np.sqrt(Ey2 - 0.01) / s
    assert_close(got.c, float(ref.c), rtol=0.0, atol=1e-12 * rms, what=f"{name}: c")
    assert_close(got.Ey2, Ey2, rtol=1e-12, what=f"{name}: E[y^2]")
    assert_close(got.sigma_r2, float(ref.sigma_r2), rtol=0.0, atol=1e-12 * Ey2, what=f"{name}: sigma_r^2")


# =============================================================================================
# single-index: kappa
# =============================================================================================

def test_isotropic_kappa_is_the_admissible_root():
    k = sym.isotropic_kappa()
    q = sym.isotropic_kappa_quadratic()
    assert sp.simplify(q.as_expr().subs(S.kappa, k)) == 0
    gamma = 1 / S.psi
    theory = (-(1 - gamma - S.lam_G) + sp.sqrt((1 - gamma - S.lam_G) ** 2 + 4 * S.lam_G)) / 2
    assert sp.simplify(k - theory) == 0
    u = sp.Symbol("u", positive=True)
    assert sp.simplify(k.subs({S.lam_G: 0, S.psi: 1 + u})) == 0                 # psi > 1: kappa(0) = 0
    assert sp.simplify(k.subs({S.lam_G: 0, S.psi: 1 / (1 + u)}) - u) == 0       # psi < 1: 1/psi - 1


def test_isotropic_kappa_matches_rmt():
    # rmt.kappa_isotropic uses a cancellation-free form: 1e-12 relative (its stated accuracy).
    f = sym.to_mpmath(sym.isotropic_kappa(), ["psi", "lam_G"], dps=50)
    lam = np.concatenate([[0.0], np.logspace(-6, 4, 11)])
    for psi in (0.25, 0.8, 1.25, 4.0):
        ref = np.array([float(f(psi, x)) for x in lam])
        assert_close(rmt.kappa_isotropic(psi=psi, lam=lam), ref, rtol=1e-12, atol=1e-300,
                     what=f"kappa_isotropic psi={psi}")
        d = 16
        n = psi * d
        assert_close(rmt.kappa(np.ones(d), n=n, lam=lam), ref, rtol=1e-12, atol=1e-300,
                     what=f"rmt.kappa(identity) psi={psi}")
        mp = np.array([float(sym.kappa_mp(np.ones(d), n=n, lam=x)) for x in lam])
        assert_close(mp, ref, rtol=1e-40 + 2 * EPS, atol=1e-300, what=f"kappa_mp(identity) psi={psi}")


SPECTRA = [(40, 80, 1e2), (40, 20, 1e6), (120, 240, 1e3), (30, 30, 10.0)]  # (d, n, condition number)


@pytest.mark.parametrize("d, n, cond", SPECTRA)
def test_rmt_kappa_matches_kappa_mp(d, n, cond):
    t = np.geomspace(1.0, 1.0 / cond, d)
    t /= t.mean()
    lam = np.array([0.0, 1e-6, 1e-3, 0.1, 1.0, 10.0, 1e4])
    ref = np.array([float(sym.kappa_mp(t, n=n, lam=x)) for x in lam])
    assert_close(rmt.kappa(t, n=n, lam=lam), ref, rtol=1e-12, atol=1e-300, what=f"rmt.kappa d={d} n={n} cond={cond}")
    # the 50-digit root really is a root: residual of the fixed-point equation at 50 digits
    with mpmath.workdps(60):
        tm = [mpmath.mpf(float(x)) for x in t]
        for x in lam:
            k = sym.kappa_mp(t, n=n, lam=x)
            res = k - mpmath.mpf(float(x)) - k / n * mpmath.fsum(ti / (ti + k) for ti in tm)
            assert abs(res) <= mpmath.mpf(10) ** -48 * max(k, 1), f"residual {mpmath.nstr(res, 3)} at lam={x}"


# =============================================================================================
# single-index: alignments
# =============================================================================================

def test_isotropic_alignment_identities():
    c, sr, psi, lam = S.c, S.sigma_r, S.psi, S.lam_G
    kap = S.kappa
    cos_k = sym.isotropic_kfac_alignment(keep_kappa=True)
    gamma = 1 / psi
    theory_cos2 = c ** 2 / (c ** 2 + gamma * (c ** 2 * kap ** 2 + sr ** 2 * (1 + kap) ** 2) / ((1 + kap) ** 2 - gamma))
    assert sp.simplify(cos_k ** 2 - theory_cos2) == 0
    cos = sym.isotropic_kfac_alignment()
    assert cos.free_symbols == {psi, lam, c, sr}
    # lam_G -> infinity recovers SGD (docs/theory.md Theorem 3.9 'useful facts')
    assert sp.simplify(sp.limit(cos ** 2, lam, sp.oo) - sym.isotropic_sgd_alignment() ** 2) == 0
    # lam_G -> 0 with psi > 1: cos^2 -> c^2 / (c^2 + sigma_r^2 / (psi - 1))
    u = sp.Symbol("u", positive=True)
    ridgeless = sp.simplify((cos ** 2).subs({lam: 0, psi: 1 + u}))
    assert sp.simplify(ridgeless - c ** 2 / (c ** 2 + sr ** 2 / u)) == 0


def test_isotropic_alignment_matches_single_index():
    # Closed form at 50 digits vs theory.single_index (isotropic closed form and the general
    # finite form at Sigma = I, which coincide exactly): 1e-12 relative.
    f = sym.to_mpmath(sym.isotropic_kfac_alignment(), ["psi", "lam_G", "c", "sigma_r"], dps=50)
    fast = sym.to_numpy(sym.isotropic_kfac_alignment(), ["psi", "lam_G", "c", "sigma_r"])
    tc = sym.teacher_coefficients("tanh", noise_std=0.1)
    c, sr = float(tc.c), float(sp.sqrt(tc.sigma_r2))
    lam = np.concatenate([[0.0], np.logspace(-4, 3, 8)])
    d = 10
    for psi in (0.5, 2.0, 8.0):
        ref = np.array([float(f(psi, x, tc.c, sp.sqrt(tc.sigma_r2))) for x in lam])
        got = si.kfac_alignment_isotropic(psi=psi, lam_G=lam, c=c, sigma_r2=sr ** 2)
        assert_close(got, ref, rtol=1e-12, what=f"kfac_alignment_isotropic psi={psi}")
        beta = np.full(d, d ** -0.5)
        got2 = si.kfac_alignment(np.ones(d), beta, n=psi * d, lam_G=lam, teacher="tanh", noise_std=0.1)
        assert_close(got2, ref, rtol=1e-12, what=f"kfac_alignment at Sigma = I, psi={psi}")
        # numpy bridge of the naive closed form: kappa = (b + sqrt(b^2 + 4 lam psi^2)) / (2 psi) cancels
        # when b = lam psi - psi + 1 < 0 and lam is small: relative error up to eps * |b| / (psi kappa),
        # below 1e-12 for lam >= 1e-4 here; at lam = 0 the root is exact.
        assert_close(fast(psi, lam, c, sr), ref, rtol=1e-12, what=f"numpy bridge psi={psi}")
    sgd = sym.to_numpy(sym.isotropic_sgd_alignment(), ["psi", "c", "sigma_r"])
    assert_close(sgd(2.0, c, sr), si.sgd_alignment_isotropic(psi=2.0, c=c, Ey2=float(tc.Ey2)), rtol=1e-14,
                 what="isotropic SGD alignment")


@pytest.mark.parametrize("d, n, cond", SPECTRA[:3])
@pytest.mark.parametrize("teacher", ["relu", "tanh"])
def test_single_index_alignments_match_mp(rng, d, n, cond, teacher):
    t = np.geomspace(1.0, 1.0 / cond, d)
    t /= t.mean()
    beta = rng.standard_normal(d)
    beta /= np.sqrt(t @ beta ** 2)
    lam = np.array([1e-6, 1e-3, 0.1, 1.0, 10.0])
    with mpmath.workdps(60):
        s2 = mpmath.fsum(mpmath.mpf(float(x)) * mpmath.mpf(float(b)) ** 2 for x, b in zip(t, beta))
    tc = sym.teacher_coefficients(teacher, s=sp.Float(mpmath.sqrt(s2), 60), noise_std=0.1, dps=55)
    ref = np.array([float(sym.kfac_alignment_mp(t, beta, n=n, lam_G=x, teacher=tc)) for x in lam])
    got = si.kfac_alignment(t, beta, n=n, lam_G=lam, teacher=teacher, noise_std=0.1)
    assert_close(got, ref, rtol=1e-12, what=f"kfac_alignment d={d} n={n} cond={cond} {teacher}")
    ref_sgd = float(sym.sgd_alignment_mp(t, beta, n=n, teacher=tc))
    got_sgd = si.sgd_alignment(t, beta, n=n, teacher=teacher, noise_std=0.1)
    assert_close(got_sgd, ref_sgd, rtol=1e-12, what=f"sgd_alignment d={d} n={n} {teacher}")


def test_alignment_mp_teacher_routes_agree():
    # passing the teacher by name recomputes its coefficients at s^2 = sum t beta^2 (here 1 exactly)
    a = sym.kfac_alignment_mp(np.ones(4), np.full(4, 0.5), n=8, lam_G="0.1", teacher="relu")
    tc = sym.teacher_coefficients("relu")
    b = sym.kfac_alignment_mp(np.ones(4), np.full(4, 0.5), n=8, lam_G="0.1", teacher=tc)
    f = sym.to_mpmath(sym.isotropic_kfac_alignment(), ["psi", "lam_G", "c", "sigma_r"], dps=50)
    c = f(2, "0.1", tc.c, sp.sqrt(tc.sigma_r2))
    assert abs(a - b) < 1e-48 and abs(a - c) < 1e-45, (a, b, c)


# =============================================================================================
# bridges
# =============================================================================================

def test_bridges():
    cos = sym.isotropic_kfac_alignment()
    tex = sym.to_latex(cos)
    assert r"\lambda_{G}" in tex or r"\lambda_G" in tex
    assert r"\psi" in tex and r"\sigma_r" in tex
    g = sym.to_mpmath(cos, ["psi", "lam_G", "c", "sigma_r"], dps=80)
    v = g(2, "0.1", "0.6", "0.2")
    assert isinstance(v, mpmath.mpf)
    with mpmath.workdps(80):
        w = sym.to_mpmath(cos, ["psi", "lam_G", "c", "sigma_r"], dps=100)(2, "0.1", "0.6", "0.2")
        assert abs(v - w) < mpmath.mpf(10) ** -75, "80-digit and 100-digit evaluations differ"
    f = sym.to_numpy(cos, [S.psi, S.lam_G, S.c, S.sigma_r])
    out = f(2.0, np.array([0.1, 1.0]), 0.6, 0.2)
    assert out.shape == (2,) and abs(out[0] - float(v)) < 1e-13
    # matrix expressions with symbolic dimensions: shapes bound at call time, and checked
    lem = sym.lemma_3_1()
    h = sym.to_numpy(lem.gradient_F, ["F", "Sigma_z", "Sigma_yz"])
    F, Sz, Syz = np.ones((3, 2)), np.eye(2), np.zeros((3, 2))
    assert_close(h(F, Sz, Syz), F, rtol=0, atol=0, what="gradient_F at Sigma_z = I, Sigma_yz = 0")
    with pytest.raises(ValueError, match="Sigma_yz"):
        h(F, Sz, np.zeros((4, 2)))
    assert "\\lambda_G" in sym.to_latex(lem.ema_G_ridge)


# =============================================================================================
# bad input
# =============================================================================================

def _ms(name, r, c):
    return sp.MatrixSymbol(name, r, c)


BAD = [
    (lambda: sym.lemma_3_1(d_x=0, d_y=1, k=1), "d_x"),
    (lambda: sym.lemma_3_1(d_x=2, d_y=None, k=1), "'d_y' must be an integer when d_x and k are given"),
    (lambda: sym.lemma_3_1(d_x=3, d_y=1, k=2), "'k'"),
    (lambda: sym.lemma_3_1(d_x=2.5, d_y=1, k=1), "d_x"),
    (lambda: sym.kfac_step_G(_ms("F", 3, 2), _ms("G", 3, 4), _ms("S", 4, 4), _ms("B", 3, 4)), "'G'"),
    (lambda: sym.kfac_step_G(_ms("F", 3, 2), _ms("G", 2, 4), _ms("S", 5, 5), _ms("B", 3, 4)), "Sigma_x"),
    (lambda: sym.kfac_step_F(_ms("F", 3, 2), _ms("S", 2, 2), _ms("B", 2, 2)), "Sigma_yz"),
    (lambda: sym.ema_representation_form(_ms("F", 3, 2), _ms("G", 2, 4), _ms("S", 4, 4), _ms("B", 2, 4)), "Sigma_yx"),
    (lambda: sym.loss_gradient_F(np.ones((2, 2)), _ms("S", 2, 2), _ms("B", 2, 2)), "'F'"),
    (lambda: sym.local_rate_derivation("FtF", "Sigma_x", k=2, d_x=2), "d_x"),
    (lambda: sym.local_rate_derivation("FtF", "Sigma_x", k=0), "'k'"),
    (lambda: sym.local_rate_derivation("PtP", "Sigma_x"), "left"),
    (lambda: sym.local_rate_derivation("FtF", "full"), "right"),
    (lambda: sym.local_rate_derivation("FtF", "Sigma_x", k=2, d_x=3, d_y=1), "d_y"),
    (lambda: sym.contraction_factor("sgd"), "method"),
    (lambda: sym.teacher_coefficients("swish"), "teacher"),
    (lambda: sym.teacher_coefficients(S.z * S.s), "teacher"),
    (lambda: sym.teacher_coefficients(3.0), "teacher"),
    (lambda: sym.teacher_coefficients("relu", s=-1.0), "'s'"),
    (lambda: sym.teacher_coefficients("relu", noise_std=-0.1), "noise_std"),
    (lambda: sym.teacher_coefficients("tanh", s=S.s), "'s'"),
    (lambda: sym.teacher_coefficients("tanh", dps=5), "dps"),
    (lambda: sym.gaussian_expectation(sp.tanh(S.z), method="exact"), "'g'"),
    (lambda: sym.kappa_mp([1.0, -1.0], n=2, lam=0.1), "eigenvalues"),
    (lambda: sym.kappa_mp([], n=2, lam=0.1), "eigenvalues"),
    (lambda: sym.kappa_mp([1.0], n=0, lam=0.1), "'n'"),
    (lambda: sym.kappa_mp([1.0], n=2, lam=-0.1), "'lam'"),
    (lambda: sym.kappa_mp([1.0], n=2, lam=0.1, dps=10), "dps"),
    (lambda: sym.kfac_alignment_mp([1.0, 1.0], [1.0], n=2, lam_G=0.1, teacher="relu"), "beta_star"),
    (lambda: sym.kfac_alignment_mp([1.0, 1.0], [0.0, 0.0], n=2, lam_G=0.1, teacher="relu"), "beta_star"),
    (lambda: sym.sgd_alignment_mp([1.0, 1.0], [1.0, 0.0], n=2, teacher="nope"), "teacher"),
    (lambda: sym.to_numpy(sym.isotropic_kappa(), ["psi"]), "args"),
    (lambda: sym.to_numpy({"a": 1}, ["psi"]), "expr"),
    (lambda: sym.simplify_matrix(S.psi), "expr"),
]


@pytest.mark.parametrize("call, name", BAD)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# =============================================================================================
# the REPL session (docs/repl.md) runs as a doctest in `make test`
# =============================================================================================

def test_repl_session_doctest():
    path = ROOT / "docs" / "repl.md"
    res = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                           verbose=False, report=True)
    assert res.attempted > 10 and res.failed == 0, f"docs/repl.md: {res.failed} of {res.attempted} examples failed"
