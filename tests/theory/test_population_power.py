"""theory.single_index: fixed functions and powers of the population preconditioner
(docs/theory.md, "Population power preconditioner").

Reductions (p = 0 is SGD, p = 1 the population variant of Theorem 3.9) to round-off; the spectral
bookkeeping against a direct matrix evaluation (scipy's ``expm`` and ``eigh``-free matrix powers);
the exact finite-n expectations against a Monte-Carlo (Student t, alpha stated); named bad inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg as sla
from scipy import stats as sst

from tests.conftest import assert_close
from theory import single_index as si

NOISE = 0.1


def _instance(rng, d, *, spread=(2.0, 0.1)):
    t = np.geomspace(*spread, d)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Sigma = (Q * t) @ Q.T
    Sigma = 0.5 * (Sigma + Sigma.T)
    beta = rng.standard_normal(d)
    return t, Q, Sigma, beta


# ------------------------------------------------------------------ reductions
@pytest.mark.parametrize("finite_n", [False, True])
def test_power_zero_is_sgd_and_power_one_is_population(rng, finite_n):
    d, n = 40, 30
    t = np.geomspace(5.0, 0.01, d)
    beta = rng.standard_normal(d)
    kw = dict(n=n, teacher="tanh", noise_std=NOISE, finite_n=finite_n)
    lam = np.array([0.0, 1e-3, 0.1, 1.0, 1e3, 1e300])
    sgd = si.sgd_spike(t, beta, **kw)
    p0 = si.population_power_spike(t, beta, lam_G=lam, p=0.0, **kw)
    for part in ("inner", "sqnorm", "cos"):
        assert_close(getattr(p0, part), np.full(lam.shape, getattr(sgd, part)), rtol=4 * np.finfo(float).eps,
                     what=f"p = 0 vs sgd_spike, {part}")
    pop = si.population_spike(t, beta, lam_G=lam, **kw)
    p1 = si.population_power_spike(t, beta, lam_G=lam, p=1.0, **kw)
    for part in ("inner", "sqnorm", "cos"):
        # inner, sqnorm underflow to 0 together at lam = 1e300 (p = 1): compare with a tiny atol there
        assert_close(getattr(p1, part), getattr(pop, part), rtol=8 * np.finfo(float).eps, atol=1e-300,
                     what=f"p = 1 vs population_spike, {part}")
    # and the general function form with phi(t) = (t + lam)^{-p}
    for lj in (0.0, 0.1):
        for pj in (0.0, 0.25, 0.5, 1.0):
            f = si.population_function_spike(t, beta, phi=lambda x, lj=lj, pj=pj: (x + lj) ** -pj, **kw)
            g = si.population_power_spike(t, beta, lam_G=lj, p=pj, **kw)
            assert isinstance(g.cos, float)
            assert_close([f.inner, f.sqnorm, f.cos], [g.inner, g.sqnorm, g.cos], rtol=1e-14,
                         what=f"population_function_spike vs population_power_spike, lam {lj}, p {pj}")


def test_powers_interpolate_between_sgd_and_population(rng):
    """A grid over (lam, p) broadcasts; p -> 0 and lam -> infinity both approach SGD continuously."""
    d = 30
    t = np.geomspace(3.0, 0.03, d)
    beta = rng.standard_normal(d)
    kw = dict(n=60, teacher="tanh", noise_std=NOISE)
    lam = np.array([1e-3, 1e-1, 1.0])
    grid = si.population_power_spike(t, beta, lam_G=lam[:, None], p=[0.0, 0.25, 0.5, 1.0], **kw)
    assert grid.cos.shape == grid.inner.shape == grid.sqnorm.shape == (3, 4)
    assert grid.kappa is None
    sgd = si.sgd_alignment(t, beta, **kw)
    assert abs(si.population_power_alignment(t, beta, lam_G=0.1, p=1e-12, **kw) - sgd) < 1e-10
    assert abs(si.population_power_alignment(t, beta, lam_G=1e12, p=0.5, **kw) - sgd) < 1e-10
    assert_close(grid.cos, grid.inner / (np.linalg.norm(beta) * np.sqrt(grid.sqnorm)), rtol=1e-14,
                 what="cos from its parts")


def test_matrix_form_against_direct_evaluation(rng):
    """Sigma as a matrix, P built without the code's spectral route: the finite-n formula of
    docs/theory.md, "Population power preconditioner", evaluated with matrices."""
    d, n = 25, 15
    _, _, Sigma, beta = _instance(rng, d)
    s = math.sqrt(float(beta @ Sigma @ beta))
    tc = si.teacher_coefficients("relu", s=s, noise_std=NOISE)
    kw = dict(n=n, teacher="relu", noise_std=NOISE, finite_n=True)

    def direct(P):
        PSb = P @ Sigma @ beta
        m2 = float(PSb @ PSb)
        Ey2Px2 = tc.Ey2z2 * m2 / s ** 4 + tc.Ey2 * (np.trace(P @ Sigma @ P.T) - m2 / s ** 2)
        sq = tc.c ** 2 * m2 * (1 - 1 / n) + Ey2Px2 / n
        inner = tc.c * float(beta @ PSb)
        return inner, sq, inner / (np.linalg.norm(beta) * math.sqrt(sq))

    # P = exp(-Sigma) by scipy's Pade approximant: no eigendecomposition shared with the code
    got = si.population_function_spike(Sigma, beta, phi=lambda x: np.exp(-x), **kw)
    assert_close([got.inner, got.sqnorm, got.cos], direct(sla.expm(-Sigma)), rtol=1e-11, what="phi = exp(-t)")
    # P = (Sigma + lam)^{-1/2} as the inverse of the principal square root (scipy's Schur method)
    for lam in (0.0, 0.3):
        root = sla.sqrtm(Sigma + lam * np.eye(d)).real
        P = np.linalg.solve(root, np.eye(d))
        got = si.population_power_spike(Sigma, beta, lam_G=lam, p=0.5, **kw)
        assert_close([got.inner, got.sqnorm, got.cos], direct(P), rtol=1e-10, what=f"p = 1/2, lam = {lam}")
    # a negative constant phi: the spike flips, its size scales, the cosine changes sign
    sgd = si.sgd_spike(Sigma, beta, **kw)
    neg = si.population_function_spike(Sigma, beta, phi=lambda x: -3.0, **kw)
    assert_close([neg.inner, neg.sqnorm, neg.cos], [-3 * sgd.inner, 9 * sgd.sqnorm, -sgd.cos], rtol=1e-14,
                 what="phi = -3")


# ------------------------------------------------------------------ Monte-Carlo of the exact finite-n means
#: family-wise false-failure rate of the Monte-Carlo check (Bonferroni over its rows)
ALPHA = 1e-3


def test_finite_n_expectations_against_monte_carlo(seed):
    """E<v, beta*> and E||v||^2 at n = 6 < d = 12 (relu teacher: mean, kink and noise) from T = 20000
    independent batches. Each mean is held to the exact finite-n expectation by a two-sided Student t
    test on T - 1 degrees of freedom with the sample standard error; alpha = 1e-3 family-wise (bounds
    false failure), Bonferroni over the 12 rows. The asymptotic form of ||v||^2 must be rejected by the
    same test (it omits (E[y^2 z^2]/s^4 - E[y^2]/s^2 - c^2) ||P Sigma beta*||^2 / n, ~ 9% here): the
    check can fail."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4201]))
    d, n, T = 12, 6, 20000
    t, Q, Sigma, beta = _instance(rng, d, spread=(2.0, 0.5))
    beta /= math.sqrt(float(beta @ Sigma @ beta))                      # s = 1
    lams, ps = np.array([0.0, 0.1]), np.array([0.25, 0.5, 1.0])
    kw = dict(n=n, lam_G=lams[None, :], p=ps[:, None], teacher="relu", noise_std=NOISE)
    exact = si.population_power_spike(Sigma, beta, finite_n=True, **kw)
    asym = si.population_power_spike(Sigma, beta, finite_n=False, **kw)

    X = (rng.standard_normal((T, n, d)) * np.sqrt(t)) @ Q.T          # rows ~ N(0, Sigma)
    y = np.maximum(X @ beta, 0.0) + NOISE * rng.standard_normal((T, n))
    v_sgd = np.einsum("tid,ti->td", X, y) / n
    bt = Q.T @ beta
    m = 2 * ps.size * lams.size
    crit = float(sst.t.ppf(1 - ALPHA / m / 2, T - 1))
    rejected_asym = []
    for i, p in enumerate(ps):
        for j, lam in enumerate(lams):
            v = (v_sgd @ Q) * (t + lam) ** -p                           # P v_sgd in Sigma's eigenbasis
            for part, sample in (("inner", v @ bt), ("sqnorm", np.einsum("td,td->t", v, v))):
                mean, se = float(sample.mean()), float(sample.std(ddof=1)) / math.sqrt(T)
                pred = float(getattr(exact, part)[i, j])
                assert abs(mean - pred) <= crit * se, (
                    f"p = {p}, lam = {lam}, {part}: Monte-Carlo {mean:.6g} +- {se:.3g} vs exact {pred:.6g}: "
                    f"t = {(mean - pred) / se:.2f}, critical {crit:.2f} ({T - 1} df, alpha {ALPHA}/{m})")
                if part == "sqnorm":
                    rejected_asym.append(abs(mean - float(asym.sqnorm[i, j])) > crit * se)
    assert all(rejected_asym), "the asymptotic ||v||^2 was not rejected: the check would not see the finite-n term"


# ------------------------------------------------------------------ bad input
_T = np.array([1.0, 2.0, 3.0])
_B = np.array([1.0, 0.0, 1.0])
_KW = dict(n=4, teacher="tanh", noise_std=0.1)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: si.population_power_spike(_T, _B, lam_G=0.1, p=1.5, **_KW),
         r"^population_power_spike: argument 'p' must be in \[0, 1\]; got maximum 1.5\.$"),
        (lambda: si.population_power_alignment(_T, _B, lam_G=0.1, p=[-0.25, 0.5], **_KW),
         r"^population_power_alignment: argument 'p' must be in \[0, 1\]; got minimum -0.25\.$"),
        (lambda: si.population_power_spike(_T, _B, lam_G=0.1, p=True, **_KW), r"argument 'p' must be a real number"),
        (lambda: si.population_power_spike(_T, _B, lam_G=0.1, p=np.nan, **_KW), r"argument 'p' must be finite"),
        (lambda: si.population_power_spike(_T, _B, lam_G=[0.1, 1.0], p=[0.25, 0.5, 1.0], **_KW),
         r"argument 'p' must be an array that broadcasts with lam_G \(shape \(2,\)\); got shape \(3,\)\."),
        (lambda: si.population_power_spike(_T, _B, lam_G=-0.1, p=0.5, **_KW), r"argument 'lam_G' must be >= 0"),
        (lambda: si.population_power_spike(_T, _B, lam_G=0.1, p=0.5, finite_n=1, **_KW),
         r"argument 'finite_n' must be a bool"),
        (lambda: si.population_function_spike(_T, _B, phi="sqrt", **_KW),
         r"^population_function_spike: argument 'phi' must be a callable"),
        (lambda: si.population_function_alignment(_T, _B, phi=lambda x: np.log(x - 2.0), **_KW),
         r"^population_function_alignment: argument 'phi' must be .*returned NaN"),
        (lambda: si.population_function_spike(_T, _B, phi=lambda x: 0.0 * x, **_KW),
         r"argument 'phi' must be .*not all zero; got a callable that is zero on the whole spectrum\.$"),
        (lambda: si.population_function_spike(_T, _B, phi=lambda x: np.ones(2), **_KW),
         r"argument 'phi' must be .*returned shape \(2,\)"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_extreme_spectrum_and_ridges_stay_finite():
    """Spectrum 1e-12..1e12, ridges 0..1e300: finite cosines, no warnings; lam_G = 1e300 is SGD at every p
    (inner and sqnorm may underflow to 0 there, as documented for population_spike)."""
    t = np.geomspace(1e12, 1e-12, 30)
    beta = np.ones(30)
    kw = dict(n=60, teacher="tanh", noise_std=NOISE)
    with np.errstate(all="raise"):
        for finite_n in (False, True):
            grid = si.population_power_spike(t, beta, lam_G=np.array([0.0, 1e-6, 1.0, 1e300])[:, None],
                                             p=[0.0, 0.25, 0.5, 1.0], finite_n=finite_n, **kw)
            assert np.all(np.isfinite(grid.cos)) and np.all(grid.cos > 0)
            sgd = si.sgd_alignment(t, beta, finite_n=finite_n, **kw)
            assert_close(grid.cos[-1], np.full(4, sgd), rtol=1e-12, what=f"lam = 1e300 vs SGD (finite_n={finite_n})")
            assert_close(grid.cos[:, 0], np.full(4, sgd), rtol=1e-12, what=f"p = 0 vs SGD (finite_n={finite_n})")
