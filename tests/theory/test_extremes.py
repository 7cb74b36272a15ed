"""Legal extremes of theory's solvers give finite answers that agree with the 50-digit route.

Ranges (issue "Step 10"): ridges :math:`\\lambda_G\\in\\{0\\}\\cup[10^{-300},10^{300}]`, eigenvalues
spanning :math:`10^{-12}..10^{12}` (given as a spectrum; a *matrix* that ill-conditioned is rejected as
numerically singular, see :mod:`theory._validate`), any :math:`\\psi=n/d` (:math:`n<d`, :math:`n=d`,
:math:`n\\gg d`), teachers whose moments converge slowly.

Tolerances are derived, not fitted:

* :func:`theory.rmt.kappa` stops with :math:`|h|\\le8(p+4)\\varepsilon S` where :math:`S` is the sum of
  absolute terms of the split residual and :math:`h_u\\ge S/4` at the root (every ratio in
  :math:`S` is at most 1/2, see the module docstring), so
  :math:`|\\delta\\kappa|/\\kappa\\le|h|/h_u\\le32(p+4)\\varepsilon` (:data:`KAPPA_RTOL`; measured worst over
  3000 random extreme cases: 9e-16).
* the alignment is a ratio of sums of non-negative terms, each depending on :math:`\\kappa` with
  relative sensitivity at most 2 (:math:`\\partial\\log a_i/\\partial\\log\\kappa=b_i`,
  :math:`\\partial\\log b_i/\\partial\\log\\kappa=-a_i`, :math:`\\tilde b_i=b_i/b_{\\max}`), plus
  :math:`1-D_2=h_u` (relative error that of :math:`\\kappa`): at most
  :math:`4\\cdot32(p+4)\\varepsilon` from :math:`\\kappa`, plus :math:`O(p\\varepsilon)` summation
  (:data:`COS_RTOL` :math:`=128(p+4)\\varepsilon+16p\\varepsilon`; measured worst over 561 cases: 6e-16).
  The teacher is ``"linear"`` (c = 1 up to rounding in both routes, :math:`\\sigma_r^2` = noise^2
  computed without cancellation), so the comparison tests the formulas, not the quadratures.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import assert_close
from tests.theory.conftest import DETERMINISTIC, examples
from theory import linrep as tl
from theory import rmt
from theory import single_index as si
from theory import symbolic as sym

EPS = np.finfo(float).eps


def KAPPA_RTOL(p: int) -> float:
    """Relative accuracy of the float kappa (module docstring)."""
    return 32.0 * (p + 4) * EPS


def COS_RTOL(p: int) -> float:
    """Relative accuracy of the float KFAC alignment (module docstring)."""
    return 128.0 * (p + 4) * EPS + 16.0 * p * EPS


def _rel(a: float, b) -> float:
    b = mpmath.mpf(b)
    return float(abs(mpmath.mpf(a) - b) / abs(b)) if b != 0 else abs(a)


@st.composite
def spectra(draw, max_p: int = 6):
    """1..max_p eigenvalues spanning up to 1e-12..1e12."""
    p = draw(st.integers(1, max_p))
    lo = draw(st.floats(-12.0, 12.0))
    hi = draw(st.floats(lo, 12.0))
    e = draw(st.lists(st.floats(lo, hi), min_size=p, max_size=p))
    return 10.0 ** np.asarray(e)


ridges = st.one_of(st.just(0.0), st.floats(-300.0, 300.0).map(lambda e: 10.0 ** e),
                   st.sampled_from([1e-300, 1e-24, 1e160, 1e300]))


def sizes(p: int, low: float = 0.3) -> st.SearchStrategy:
    """n < d, = d, > d, >> d (as floats: the deterministic equivalents are analytic in n)."""
    return st.sampled_from([n for n in (0.3, 1.0, float(p), float(p) * (1 - 1e-9), 2.0 * p, 10.0 * p, 1e6, 1e12)
                            if n >= low])


# --------------------------------------------------------------------------------------------
# kappa
# --------------------------------------------------------------------------------------------

@settings(DETERMINISTIC, max_examples=examples(150))
@given(data=st.data())
def test_kappa_extremes_agree_with_mpmath(data):
    t = data.draw(spectra(7))
    n = data.draw(sizes(t.size))
    lam = data.draw(ridges)
    k = rmt.kappa(t, n=n, lam=lam)
    ref = sym.kappa_mp(t, n=n, lam=lam, dps=30)
    assert math.isfinite(k) and k >= 0.0, (f"kappa = {k} at t in [{t.min():.2e}, {t.max():.2e}], n = {n}, "
                                           f"lam = {lam:.2e}")
    err = _rel(k, ref)
    assert err <= KAPPA_RTOL(t.size), (f"kappa = {k!r} vs 30-digit {mpmath.nstr(ref, 17)}: relative error {err:.2e} > "
                                       f"{KAPPA_RTOL(t.size):.2e} (t in [{t.min():.2e}, {t.max():.2e}], p = {t.size}, "
                                       f"n = {n}, lam = {lam:.3e})")


def test_kappa_reported_extremes():
    """The user's cases: lam = 1e-24 raised ArithmeticError, lam = 1e300 in kappa_mp found no root."""
    t = np.linspace(0.5, 2.0, 6)
    for lam in (1e-300, 1e-24, 1e-8, 1.0, 1e160, 1e300):
        k = rmt.kappa(t, n=100, lam=lam)
        assert _rel(k, sym.kappa_mp(t, n=100, lam=lam)) <= KAPPA_RTOL(6), f"kappa at lam = {lam:g}"
    assert rmt.kappa(t, n=100, lam=1e300) == 1e300          # lam + sum(t)/n rounds to lam
    assert float(sym.kappa_mp(t, n=100, lam=1e300)) == 1e300


@settings(DETERMINISTIC, max_examples=examples(40))
@given(psi=st.sampled_from([0.01, 0.5, 1.0, 2.0, 1e6]), lam=ridges, d=st.integers(1, 8))
def test_isotropic_closed_form_at_extremes(psi, lam, d):
    """kappa_isotropic (hypot form) = the general solver at Sigma = I, over the whole ridge range."""
    a = rmt.kappa_isotropic(psi=psi, lam=lam)
    b = rmt.kappa(np.ones(d), n=psi * d, lam=lam)
    assert math.isfinite(a)
    assert_close(a, b, rtol=KAPPA_RTOL(1) + 8 * EPS, atol=0.0, what=f"kappa_isotropic(psi={psi}, lam={lam:.2e})")


@settings(DETERMINISTIC, max_examples=examples(40))
@given(t=spectra(), z=st.floats(-300.0, 300.0).map(lambda e: -(10.0 ** e)))
def test_companion_stieltjes_real_extremes(t, z):
    m = rmt.companion_stieltjes(t, n=2.0 * t.size, z=z)
    assert math.isfinite(m) and m > 0
    assert_close(m * rmt.kappa(t, n=2.0 * t.size, lam=-z), 1.0, rtol=4 * EPS, what="m(z) kappa(-z)")


# --------------------------------------------------------------------------------------------
# alignments
# --------------------------------------------------------------------------------------------

@settings(DETERMINISTIC, max_examples=examples(60))
@given(data=st.data())
def test_kfac_alignment_extremes_agree_with_mpmath(data):
    t = data.draw(spectra(6))
    n = data.draw(sizes(t.size, low=1.0))                 # a batch size: n >= 1
    lam = data.draw(ridges)
    if lam == 0.0 and n == t.size:
        lam = 1e-300                        # psi = 1, lam = 0 is the documented blow-up (tested below)
    beta = np.asarray(data.draw(st.lists(st.floats(-2.0, 2.0).filter(lambda x: abs(x) > 1e-3),
                                         min_size=t.size, max_size=t.size)))
    cos = si.kfac_alignment(t, beta, n=n, lam_G=lam, teacher="linear", noise_std=0.3)
    ref = sym.kfac_alignment_mp(t, beta, n=n, lam_G=lam, teacher="linear", noise_std=0.3, dps=30)
    assert math.isfinite(cos) and -1.0 <= cos <= 1.0
    err = _rel(cos, ref)
    assert err <= COS_RTOL(t.size), (f"kfac_alignment = {cos!r} vs 30-digit {mpmath.nstr(ref, 17)}: relative error "
                                     f"{err:.2e} > {COS_RTOL(t.size):.2e} (t in [{t.min():.2e}, {t.max():.2e}], "
                                     f"n = {n}, lam = {lam:.3e})")
    spike = si.kfac_spike(t, beta, n=n, lam_G=lam, teacher="linear", noise_std=0.3)
    assert np.isfinite(spike.inner) and np.isfinite(spike.sqnorm) and spike.sqnorm >= 0 and np.isfinite(spike.kappa)


TEACHERS6 = ("tanh", "relu", "erf", "linear", "sigmoid", "softplus")


@settings(DETERMINISTIC, max_examples=examples(30))
@given(t=spectra(), lam=st.floats(150.0, 300.0).map(lambda e: 10.0 ** e), teacher=st.sampled_from(TEACHERS6),
       psi=st.sampled_from([0.5, 1.0, 2.0, 50.0]))
def test_huge_ridge_gives_the_sgd_alignment(t, lam, teacher, psi):
    """lam_G -> infinity: KFAC and the population preconditioner become SGD (documented limit).

    The exact difference is O(sum(t)/lam) <= 1e12 / 1e150: zero in float64; the scaled formulas
    give it to summation rounding (32 p eps).
    """
    beta = np.linspace(1.0, -0.5, t.size) + 0.1
    n = max(psi * t.size, 1.0)
    sgd = si.sgd_alignment(t, beta, n=n, teacher=teacher, noise_std=0.1)
    kfac = si.kfac_alignment(t, beta, n=n, lam_G=lam, teacher=teacher, noise_std=0.1)
    pop = si.population_alignment(t, beta, n=n, lam_G=lam, teacher=teacher, noise_std=0.1)
    assert_close(kfac, sgd, rtol=32 * t.size * EPS + 4 * EPS, what=f"kfac_alignment at lam_G = {lam:.2e}")
    assert_close(pop, sgd, rtol=32 * t.size * EPS + 4 * EPS, what=f"population_alignment at lam_G = {lam:.2e}")


def test_reported_kfac_alignment_at_1e160():
    """The user's case: nan at lam_G = 1e160, where the limit is the SGD value 0.803."""
    t = np.linspace(0.5, 2.0, 6)
    a = si.kfac_alignment(t, np.ones(6), n=20, lam_G=1e160, teacher="tanh", noise_std=0.1)
    b = si.sgd_alignment(t, np.ones(6), n=20, teacher="tanh", noise_std=0.1)
    assert_close(a, b, rtol=8 * EPS, what="kfac_alignment(lam_G = 1e160)")
    assert abs(b - 0.8031449096266844) < 1e-12


@settings(DETERMINISTIC, max_examples=examples(30))
@given(t=spectra(), extra=st.sampled_from([1, 2, 10, 1000]), lam=st.floats(-300.0, -200.0).map(lambda e: 10.0 ** e))
def test_small_ridge_gives_the_ridgeless_limit(t, extra, lam):
    """lam_G = 0 with psi > 1 is the ridgeless limit (documented); lam_G = 1e-200 is its continuation."""
    beta = np.linspace(1.0, -0.5, t.size) + 0.1
    n = t.size + extra
    ridgeless = si.kfac_alignment_ridgeless(t, beta, n=n, teacher="linear", noise_std=0.3)
    at0 = si.kfac_alignment(t, beta, n=n, lam_G=0.0, teacher="linear", noise_std=0.3)
    tiny = si.kfac_alignment(t, beta, n=n, lam_G=lam, teacher="linear", noise_std=0.3)
    assert_close(at0, ridgeless, rtol=COS_RTOL(t.size), what="kfac_alignment(lam_G = 0) vs ridgeless")
    # kappa ~ lam/(1 - d/n) <= 1e-197 moves the cosine by O(kappa / t_min) <= 1e-185 relative
    assert_close(tiny, ridgeless, rtol=COS_RTOL(t.size), what=f"kfac_alignment(lam_G = {lam:.1e}) vs ridgeless")


def test_psi_one_ridgeless_is_the_documented_blow_up():
    t = np.array([0.5, 1.0, 2.0])
    sp_ = si.kfac_spike(t, np.ones(3), n=3, lam_G=0.0, teacher="linear", noise_std=0.3)
    assert sp_.cos == 0.0 and sp_.sqnorm == math.inf and sp_.kappa == 0.0
    assert sym.kfac_alignment_mp(t, np.ones(3), n=3, lam_G=0, teacher="linear", noise_std=0.3) == 0


@settings(DETERMINISTIC, max_examples=examples(40))
@given(psi=st.sampled_from([0.01, 0.5, 1.0, 2.0, 1e6]), lam=ridges, c=st.sampled_from([-2.0, 0.3, 1.0, 1e-100]),
       sr2=st.sampled_from([0.0, 0.04, 1.0, 1e100]))
def test_isotropic_alignment_is_finite_and_matches_the_general_formula(psi, lam, c, sr2):
    if lam == 0.0 and psi == 1.0:
        lam = 1e-300
    a = si.kfac_alignment_isotropic(psi=psi, lam_G=lam, c=c, sigma_r2=sr2)
    assert math.isfinite(a) and -1.0 <= a <= 1.0
    if c == 1.0 and psi * 4 == int(psi * 4):            # the general formula with a linear teacher, Sigma = I
        d = 4
        b = si.kfac_alignment(np.ones(d), np.full(d, 0.5), n=psi * d, lam_G=lam, teacher="linear",
                              noise_std=math.sqrt(sr2))
        assert_close(a, b, rtol=COS_RTOL(1) + 1e-15, what=f"isotropic alignment psi={psi} lam={lam:.1e}")


def test_isotropic_sgd_alignment_extremes():
    assert si.sgd_alignment_isotropic(psi=1e-300, c=1.0, Ey2=1e300) == 0.0
    assert si.sgd_alignment_isotropic(psi=1e300, c=1e-100, Ey2=1.0) == pytest.approx(1.0, abs=1e-15)
    assert si.sgd_alignment_isotropic(psi=2.0, c=-1e200, Ey2=1.0) == -1.0


# --------------------------------------------------------------------------------------------
# teachers: slowly decaying moments are integrated, divergent ones are rejected by name
# --------------------------------------------------------------------------------------------

@settings(DETERMINISTIC, max_examples=examples(20))
@given(a=st.floats(0.0, 0.2))
def test_slowly_decaying_teacher_matches_the_closed_form(a):
    """sigma(z) = exp(a z^2) + z: c = 1, E[sigma^2] = (1 - 4a)^(-1/2) + 1, E[sigma] = (1 - 2a)^(-1/2)."""
    tc = si.teacher_coefficients(lambda z: np.exp(a * z * z) + z)
    assert_close(tc.c, 1.0, rtol=1e-12, what=f"c at a = {a}")
    assert_close(tc.Ey2, 1.0 / math.sqrt(1.0 - 4.0 * a) + 1.0, rtol=1e-12, what=f"E[y^2] at a = {a}")
    assert_close(tc.mean, 1.0 / math.sqrt(1.0 - 2.0 * a), rtol=1e-12, what=f"mean at a = {a}")
    assert_close(tc.sigma_r2, 1.0 / math.sqrt(1.0 - 4.0 * a), rtol=1e-12, what=f"sigma_r^2 at a = {a}")


@settings(DETERMINISTIC, max_examples=examples(20))
@given(a=st.floats(0.25, 50.0))
def test_divergent_teacher_is_rejected_by_name(a):
    """E[exp(2 a z^2)] is infinite for a >= 1/4 (and E[exp(a z^2)] for a >= 1/2): a named ValueError."""
    # (for a > ~4.9 the values themselves overflow within |z| <= 12: reported as a non-finite function)
    with pytest.raises(ValueError, match=r"^teacher_coefficients: argument 'teacher' must be .*finite"):
        si.teacher_coefficients(lambda z: np.exp(a * np.asarray(z) ** 2))
    if a >= 0.5:
        with pytest.raises(ValueError, match=r"^student_coefficients: argument 'student' must be .*finite"):
            si.student_coefficients(lambda z: np.exp(a * np.asarray(z) ** 2))


@settings(DETERMINISTIC, max_examples=examples(8))
@given(a=st.floats(0.25, 4.0))
def test_divergent_symbolic_teacher_is_rejected_by_name(a):
    z = sym.SYMBOLS.z
    with pytest.raises(ValueError, match=r"^teacher_coefficients: argument 'teacher' must be a function with "
                                         r"finite Gaussian moments"):
        sym.teacher_coefficients(sp.exp(sp.Float(a) * z ** 2), dps=20)


def test_teacher_moments_that_overflow_name_the_scale():
    with pytest.raises(ValueError, match=r"^teacher_coefficients: argument 's' must be such that"):
        si.teacher_coefficients("cubic", s=1e120)
    tc = si.teacher_coefficients("tanh", s=1e300)           # bounded teacher: finite at any scale
    assert all(math.isfinite(v) for v in (tc.c, tc.Ey2, tc.sigma_r2, tc.mean, tc.Ey2xi2))
    assert tc.Ey2z2 == math.inf                              # E[y^2 z^2] ~ s^2: beyond the float range (documented)
    t = np.array([1.0, 2.0])
    a = si.sgd_spike(t * 1e150, [1.0, 1.0], n=4, teacher="tanh", noise_std=0.1, finite_n=True)
    assert math.isfinite(a.cos) and math.isfinite(a.sqnorm) and math.isfinite(a.inner)
    b = si.sgd_spike(t * 1e300, [1.0, 1.0], n=4, teacher="tanh", noise_std=0.1, finite_n=True)
    assert math.isfinite(b.cos) and b.sqnorm == math.inf    # ||v||^2 ~ 1e600 overflows; the cosine does not


def test_sigma_r2_without_cancellation_at_large_scale():
    """sigma_r^2 = E[(sigma - c z)^2] + noise^2 is integrated directly: exact for a linear teacher at s = 1e4."""
    tc = si.teacher_coefficients("linear", s=1e4, noise_std=0.3)
    assert_close(tc.sigma_r2, 0.09, rtol=1e-12, what="sigma_r^2 of a linear teacher")


# --------------------------------------------------------------------------------------------
# the positive-definiteness threshold
# --------------------------------------------------------------------------------------------

def test_pd_threshold_accepts_ill_conditioned_and_rejects_numerically_singular():
    d = 4
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    ok = (Q * np.array([1e-12, 1e-6, 1.0, 1.0])) @ Q.T          # condition 1e12 < 1/(d eps) = 1.1e15: accepted
    ok = 0.5 * (ok + ok.T)
    tl.local_rate_factors(np.eye(2), ok, np.eye(d)[:2], left="FtF", right="Sigma_x")
    bad = np.outer([0.7, 0.2], [0.7, 0.2])                      # rank one: eigenvalue ~1e-17 <= 2 eps 0.53
    with pytest.raises(ValueError, match=r"'Sigma_z' must be positive-definite \(smallest eigenvalue > d \* eps"):
        tl.least_squares_head(bad, [[1.0, 0.0]])
