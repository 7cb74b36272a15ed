"""theory.single_index: teacher coefficients, SGD alignment (4.2), Theorem 3.9, variants and limits."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from tests.conftest import assert_close
from theory import single_index as si
from theory.rmt import kappa

NOISE = 0.1


def _mp_gauss(f, s, kinks=(0,)):
    """E[f(z)], z ~ N(0, s^2), by mpmath quadrature at 30 digits (split at the kinks)."""
    mp.mp.dps = 30
    s = mp.mpf(s)
    pts = [-mp.inf, *[mp.mpf(k) for k in kinks], mp.inf]
    return mp.quad(lambda x: f(x) * mp.exp(-x * x / (2 * s * s)) / (s * mp.sqrt(2 * mp.pi)), pts)


# ------------------------------------------------------------------ teacher coefficients
@pytest.mark.parametrize("s", [0.5, 1.0, 1.7])
def test_teacher_coefficients_closed_forms(s):
    sig2 = NOISE ** 2
    relu = si.teacher_coefficients("relu", s=s, noise_std=NOISE)
    for got, want, what in (
        (relu.c, 0.5, "relu c"), (relu.Ey2, s * s / 2 + sig2, "relu E y^2"),
        (relu.mean, s / math.sqrt(2 * math.pi), "relu mean"), (relu.sigma_r2, s * s / 4 + sig2, "relu sigma_r^2"),
        (relu.Ey2z2, 1.5 * s ** 4 + sig2 * s * s, "relu E y^2 z^2"),
    ):
        assert_close(got, want, rtol=1e-12, what=what)
    erf = si.teacher_coefficients("erf", s=s)
    assert_close(erf.c, 2 / math.sqrt(math.pi * (1 + 2 * s * s)), rtol=1e-12, what="erf c")
    assert_close(erf.Ey2, 2 / math.pi * math.asin(2 * s * s / (1 + 2 * s * s)), rtol=1e-12, what="erf E y^2")
    cub = si.teacher_coefficients("cubic", s=s)
    assert_close([cub.c, cub.Ey2], [3 * s * s, 15 * s ** 6], rtol=1e-12, what="z^3: c = 3 s^2, E z^6 = 15 s^6")
    poly = si.teacher_coefficients(np.polynomial.Polynomial([0.2, 1.0, 0.0, -0.5]), s=s)  # 0.2 + z - z^3/2
    assert_close(poly.c, 1 - 1.5 * s * s, rtol=1e-12, atol=1e-14, what="polynomial c")


@pytest.mark.parametrize("s", [0.6, 1.0, 2.0, 5.0])
def test_tanh_against_mpmath(s):
    tc = si.teacher_coefficients("tanh", s=s, noise_std=NOISE)
    c = _mp_gauss(lambda z: z * mp.tanh(z), s) / s ** 2
    Ef2 = _mp_gauss(lambda z: mp.tanh(z) ** 2, s)
    assert_close([tc.c, tc.Ey2], [float(c), float(Ef2) + NOISE ** 2], rtol=1e-12, what=f"tanh at s = {s}")


def test_callable_teachers_and_kinks():
    f = lambda z: np.maximum(z - 0.5, 0.0)  # noqa: E731 - a kink away from 0
    tc = si.teacher_coefficients(f, breakpoints=(0.5,))
    ref_c = float(_mp_gauss(lambda z: z * max(z - mp.mpf("0.5"), 0), 1.0, kinks=(0, mp.mpf("0.5"))))
    assert abs(tc.c - ref_c) <= 1e-12, f"c = {tc.c!r} vs {ref_c!r}"
    g = si.teacher_coefficients(lambda z: np.maximum(z, 0.0) - 0.3 * z)  # callable: split at 0 by default
    assert_close(g.c, 0.2, rtol=1e-12, what="relu - 0.3 z")
    mu = si.student_coefficients("tanh")
    assert_close(mu.mu1, float(_mp_gauss(lambda z: 1 - mp.tanh(z) ** 2, 1.0)), rtol=1e-12, what="tanh mu_1")
    assert si.student_coefficients("relu", variance=4.0).mu1 == pytest.approx(0.5, abs=1e-13)


def test_theory_md_teacher_numbers():
    # docs/theory.md section 4 quotes the tanh teacher with noise 0.1 to 4 digits.
    tc = si.teacher_coefficients("tanh", noise_std=0.1)
    for got, want, what in ((tc.c, 0.6057, "c"), (tc.Ey2, 0.4043, "E y^2"), (tc.sigma_r2, 0.0374, "sigma_r^2")):
        assert abs(got - want) <= 5e-5, f"{what}: {got:.6f} vs docs/theory.md's {want} (rounding 5e-5)"


# ------------------------------------------------------------------ alignments
def _rotated(d, t, rng):
    O = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return (O * t) @ O.T, O


@pytest.mark.parametrize("psi", [0.5, 1.0, 2.0])
def test_isotropic_closed_forms(psi):
    d = 40
    beta = np.full(d, d ** -0.5)
    tc = si.teacher_coefficients("tanh", noise_std=NOISE)
    lam = np.logspace(-6, 3, 19)
    got = si.kfac_alignment(np.eye(d), beta, n=psi * d, lam_G=lam, teacher="tanh", noise_std=NOISE)
    want = si.kfac_alignment_isotropic(psi=psi, lam_G=lam, c=tc.c, sigma_r2=tc.sigma_r2)
    assert_close(got, want, rtol=1e-12, what=f"Theorem 3.9 at Sigma = I vs the closed form, psi = {psi}")
    sgd = si.sgd_alignment(np.eye(d), beta, n=psi * d, teacher="tanh", noise_std=NOISE)
    assert_close(sgd, si.sgd_alignment_isotropic(psi=psi, c=tc.c, Ey2=tc.Ey2), rtol=1e-13, what="SGD at Sigma = I")


def test_theory_md_isotropic_numbers():
    # docs/theory.md Theorem 3.9 "verified here" (eps = 1 there, i.e. Sigma = I; d = 1000, n = 2000)
    d = 1000
    beta = np.full(d, d ** -0.5)
    sgd = si.sgd_alignment(np.ones(d), beta, n=2 * d, teacher="tanh", noise_std=0.1)
    kf = si.kfac_alignment(np.ones(d), beta, n=2 * d, lam_G=[0.1, 10.0], teacher="tanh", noise_std=0.1)
    assert_close([sgd, *kf], [0.8030, 0.9546, 0.8250], rtol=0, atol=5e-5, what="docs/theory.md's 4-digit values")


def test_rotation_invariance_and_eigen_form(rng):
    d = 30
    t = np.geomspace(3.0, 0.01, d)
    Sigma, O = _rotated(d, t, rng)
    beta = rng.standard_normal(d)
    lam = [0.0, 1e-3, 0.3, 30.0]
    kw = dict(n=2 * d, teacher="relu", noise_std=NOISE)
    assert_close(si.kfac_alignment(Sigma, beta, lam_G=lam, **kw), si.kfac_alignment(t, O.T @ beta, lam_G=lam, **kw),
                 rtol=1e-9, what="matrix vs eigenvalue input")
    assert_close(si.sgd_alignment(Sigma, beta, **kw), si.sgd_alignment(t, O.T @ beta, **kw), rtol=1e-10,
                 what="SGD matrix vs eigenvalue input")


def test_law_form_equals_finite_form_with_blocks():
    t, h = si.two_level_law(0.9)
    g = np.array([0.3, 0.7])
    m = 50
    tt = np.repeat(t, m)
    beta = np.concatenate([np.full(m, math.sqrt(g[0] / m)), np.full(m, math.sqrt(g[1] / m))])
    lam = np.logspace(-3, 1, 7)
    for psi in (0.5, 1.0, 3.0):
        fin = si.kfac_alignment(tt, beta, n=psi * 2 * m, lam_G=lam, teacher="tanh", noise_std=NOISE)
        law = si.kfac_alignment_law(t, h=h, g=g, psi=psi, lam_G=lam, teacher="tanh", noise_std=NOISE)
        assert_close(fin, law, rtol=1e-13, what=f"finite (blocks) vs law, psi = {psi}")
        assert_close(si.sgd_alignment(tt, beta, n=psi * 2 * m, teacher="tanh", noise_std=NOISE),
                     si.sgd_alignment_law(t, h=h, g=g, psi=psi, teacher="tanh", noise_std=NOISE), rtol=1e-13,
                     what="SGD finite vs law")


def test_limits(rng):
    d = 50
    t = np.geomspace(2.0, 0.05, d)
    beta = rng.standard_normal(d)
    kw = dict(teacher="tanh", noise_std=NOISE)
    sgd = si.sgd_alignment(t, beta, n=3 * d, **kw)
    far = si.kfac_alignment(t, beta, n=3 * d, lam_G=1e9, **kw)
    assert abs(far - sgd) <= 1e-7, f"lam_G -> inf: {far:.10f} vs SGD {sgd:.10f}"
    pop_far = si.population_alignment(t, beta, n=3 * d, lam_G=1e9, **kw)
    assert abs(pop_far - sgd) <= 1e-7, f"population variant, lam_G -> inf: {pop_far:.10f} vs {sgd:.10f}"
    ridgeless = si.kfac_alignment_ridgeless(t, beta, n=3 * d, **kw)
    assert_close(si.kfac_alignment(t, beta, n=3 * d, lam_G=0.0, **kw), ridgeless, rtol=1e-12, what="lam_G = 0, psi = 3")
    assert abs(si.kfac_alignment(t, beta, n=3 * d, lam_G=1e-10, **kw) - ridgeless) <= 1e-8
    # psi -> infinity: SGD saturates at cos(Sigma beta, beta) < 1, ridgeless KFAC tends to 1
    cap = si.sgd_alignment_cap(t, beta)
    assert cap < 0.99
    assert abs(si.sgd_alignment(t, beta, n=1e14 * d, **kw) - cap) <= 1e-10
    assert si.kfac_alignment_ridgeless(t, beta, n=1e8 * d, **kw) > 1 - 1e-6
    # psi = 1, lam_G = 0: the ridgeless estimator blows up, the alignment is 0
    assert si.kfac_alignment(t, beta, n=d, lam_G=0.0, **kw) == 0.0
    # finite-n refinement tends to the asymptotic form
    a = si.sgd_spike(t, beta, n=1e9, **kw)
    b = si.sgd_spike(t, beta, n=1e9, finite_n=True, **kw)
    assert abs(a.sqnorm - b.sqnorm) <= 1e-8 and a.inner == b.inner


def _mp_theorem_3_9(t, b, n, lam, c, sr2):
    """Independent 40-digit evaluation of Theorem 3.9's cosine."""
    mp.mp.dps = 40
    t = [mp.mpf(float(x)) for x in t]
    b = [mp.mpf(float(x)) for x in b]
    lam = mp.mpf(lam)
    k = mp.findroot(lambda k: k - lam - k / n * mp.fsum(x / (x + k) for x in t), lam + mp.fsum(t) / n)
    A1 = mp.fsum(bi * x / (x + k) for bi, x in zip(b, t))
    B = mp.fsum(bi * (x / (x + k)) ** 2 for bi, x in zip(b, t))
    E = mp.fsum(bi * x / (x + k) ** 2 for bi, x in zip(b, t))
    T2 = mp.fsum(x / (x + k) ** 2 for x in t) / n
    D2 = mp.fsum((x / (x + k)) ** 2 for x in t) / n
    sq = c * c * B + (c * c * k * k * E + sr2) * T2 / (1 - D2)
    return float(c * A1 / (mp.sqrt(mp.fsum(b)) * mp.sqrt(sq)))


@pytest.mark.parametrize("n", [150, 300, 600])
def test_condition_number_1e6_against_mpmath(rng, n):
    d = 300
    t = np.geomspace(1.0, 1e-6, d)
    beta = rng.standard_normal(d)
    tc = si.teacher_coefficients("tanh", s=math.sqrt(float((t * beta) @ beta)), noise_std=NOISE)
    lam = [1e-8, 1e-3, 1.0, 1e4]
    got = si.kfac_alignment(t, beta, n=n, lam_G=lam, teacher="tanh", noise_std=NOISE)
    ref = [_mp_theorem_3_9(t, beta ** 2, n, lj, mp.mpf(tc.c), mp.mpf(tc.sigma_r2)) for lj in lam]
    assert_close(got, ref, rtol=1e-10, what=f"Theorem 3.9 at condition number 1e6, n = {n}")


def test_components_consistent_and_vectorised():
    t = np.array([2.0, 1.0, 0.5, 0.25])
    beta = np.array([0.3, -0.5, 0.7, 0.1])
    sp = si.kfac_spike(t, beta, n=10, lam_G=np.array([[0.1, 1.0], [2.0, 5.0]]), teacher="erf", noise_std=NOISE)
    assert sp.cos.shape == (2, 2) and sp.kappa.shape == (2, 2)
    assert_close(sp.cos, sp.inner / (np.linalg.norm(beta) * np.sqrt(sp.sqnorm)), rtol=1e-14, what="cos from parts")
    assert_close(sp.kappa, kappa(t, n=10, lam=[[0.1, 1.0], [2.0, 5.0]]), rtol=1e-15, what="kappa")
    assert isinstance(si.kfac_alignment(t, beta, n=10, lam_G=0.3, teacher="erf", noise_std=NOISE), float)
    lam_opt, cos_opt = si.optimal_lam_G(t, beta, n=10, teacher="erf", noise_std=NOISE)
    grid = si.kfac_alignment(t, beta, n=10, lam_G=np.geomspace(1e-8, 1e4, 400), teacher="erf", noise_std=NOISE)
    assert cos_opt >= grid.max() - 1e-9 and 1e-8 <= lam_opt <= 1e4


# ------------------------------------------------------------------ bad input
_T = np.array([1.0, 2.0, 3.0])
_B = np.array([1.0, 0.0, 1.0])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: si.sgd_alignment(np.array([[1.0, 0.5], [0.0, 1.0]]), [1.0, 1.0], n=4, teacher="tanh", noise_std=0.1),
         "'Sigma' must be symmetric"),
        (lambda: si.sgd_alignment(np.diag([1.0, -1.0]), [1.0, 1.0], n=4, teacher="tanh", noise_std=0.1),
         "'Sigma' must be positive-definite"),
        (lambda: si.kfac_alignment(_T, [1.0, 1.0], n=4, lam_G=0.1, teacher="tanh", noise_std=0.1),
         "'beta_star' must be a 1-D array of length d = 3"),
        (lambda: si.kfac_alignment(_T, np.zeros(3), n=4, lam_G=0.1, teacher="tanh", noise_std=0.1),
         "'beta_star' must be nonzero"),
        (lambda: si.kfac_alignment(_T, _B, n=0.5, lam_G=0.1, teacher="tanh", noise_std=0.1), "'n' must be in"),
        (lambda: si.kfac_alignment(_T, _B, n=4, lam_G=[0.1, -1.0], teacher="tanh", noise_std=0.1),
         "'lam_G' must be >= 0"),
        (lambda: si.kfac_alignment(_T, _B, n=4, lam_G=0.1, teacher="abs", noise_std=0.1), "information exponent"),
        (lambda: si.sgd_alignment(_T, _B, n=4, teacher="he2", noise_std=0.1), "one-step spike carries no signal"),
        (lambda: si.sgd_alignment(_T, [1.0, np.nan, 0.0], n=4, teacher="tanh", noise_std=0.1),
         "'beta_star' must be finite"),
        (lambda: si.sgd_alignment(_T, _B, n=4, teacher="softsign", noise_std=0.1), "'teacher' must be one of"),
        (lambda: si.sgd_alignment(_T, _B, n=4, teacher="tanh", noise_std=-0.1), "'noise_std' must be in"),
        (lambda: si.teacher_coefficients(lambda z: np.where(z > 0, 1.0, np.inf)), "'teacher' must be .*finite"),
        (lambda: si.kfac_alignment_ridgeless(_T, _B, n=3, teacher="tanh", noise_std=0.1), "'n' must be > d = 3"),
        (lambda: si.sgd_alignment(_T, _B, n=4, teacher=si.teacher_coefficients("tanh", s=0.3), noise_std=0.0),
         "coefficients computed at s ="),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
