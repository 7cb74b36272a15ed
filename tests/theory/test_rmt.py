"""theory.rmt: the kappa fixed point of Theorem 3.9, its limit form, closed form and Stieltjes transform."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import assert_close
from theory import rmt

LAMS = np.concatenate([[0.0], np.logspace(-8, 4, 37)])
PSIS = (0.5, 1.0, 2.0)


def _mp_kappa(t, n, lam, start):
    """Reference root of kappa - lam = kappa/n sum t/(t+kappa) at 40 digits."""
    mp.mp.dps = 40
    tt = [mp.mpf(float(x)) for x in t]

    def f(k):
        return k - mp.mpf(lam) - k / n * mp.fsum(x / (x + k) for x in tt)

    return float(mp.findroot(f, mp.mpf(start)))


@pytest.mark.parametrize("psi", PSIS)
def test_general_solver_matches_isotropic_closed_form(psi):
    d = 8
    k_general = rmt.kappa(np.ones(d), n=psi * d, lam=LAMS)
    k_closed = rmt.kappa_isotropic(psi=psi, lam=LAMS)
    # both are converged to ~1e-14 relative; 1e-12 relative (and 1e-300 absolute at lam = 0) is the contract
    assert_close(k_general, k_closed, rtol=1e-12, atol=1e-300, what=f"kappa at Sigma = I, psi = {psi}")


@pytest.mark.parametrize("n", [500, 1000, 2000])  # psi < 1, = 1, > 1 for d = 1000
def test_ill_conditioned_spectrum_against_mpmath(n):
    t = np.geomspace(1.0, 1e-6, 1000)  # condition number 1e6
    lam = np.array([1e-8, 1e-4, 1e-1, 1e2, 1e4])
    k = rmt.kappa(t, n=n, lam=lam)
    ref = np.array([_mp_kappa(t, n, lj, kj) for lj, kj in zip(lam, k)])
    assert_close(k, ref, rtol=1e-12, what=f"kappa vs 40-digit reference, n = {n}")


@pytest.mark.parametrize("n", [500, 1000, 2000])
def test_fixed_point_residual_and_bracket(n):
    t = np.geomspace(1.0, 1e-6, 1000)
    k = rmt.kappa(t, n=n, lam=LAMS[1:])
    resid = k - LAMS[1:] - k / n * np.sum(t[:, None] / (t[:, None] + k[None, :]), axis=0)
    assert np.all(np.abs(resid) <= 1e-12 * (LAMS[1:] + k)), f"max relative residual {np.max(np.abs(resid) / k):.2e}"
    assert np.all(k >= LAMS[1:]) and np.all(k <= LAMS[1:] + t.sum() / n), "kappa left its bracket [lam, lam + tr/n]"
    assert np.all(np.diff(k) > 0), "kappa must increase with lam"


def test_lam_zero_branches():
    t = np.array([0.5, 1.0, 2.0, 4.0])
    assert rmt.kappa(t, n=8, lam=0.0) == 0.0          # psi > 1
    assert rmt.kappa(t, n=4, lam=0.0) == 0.0          # psi = 1
    k0 = rmt.kappa(t, n=2, lam=0.0)                    # psi < 1: the positive root of (1/n) sum t/(t+k) = 1
    assert k0 > 0
    assert abs(np.sum(t / (t + k0)) / 2 - 1.0) <= 1e-13, f"(1/n) sum t/(t+k0) - 1 = {np.sum(t / (t + k0)) / 2 - 1:.2e}"
    # continuity from the right at lam = 0
    assert abs(rmt.kappa(t, n=2, lam=1e-12) - k0) <= 1e-10


def test_weights_limit_form_and_shapes():
    a = rmt.kappa([1.0, 2.0], n=5, lam=[0.1, 1.0], weights=[3, 5])
    b = rmt.kappa([1.0] * 3 + [2.0] * 5, n=5, lam=[0.1, 1.0])
    assert_close(a, b, rtol=1e-14, what="multiplicities vs repeated eigenvalues")
    c = rmt.kappa_limit([1.0, 2.0], psi=5 / 8, lam=[0.1, 1.0], weights=[3, 5])
    assert_close(c, b, rtol=1e-14, what="limit form with psi = n/d")
    assert isinstance(rmt.kappa([1.0], n=2, lam=0.3), float)
    assert rmt.kappa([1.0], n=2, lam=np.ones((2, 3))).shape == (2, 3)


def test_companion_stieltjes_real_and_complex():
    t = np.array([0.5, 1.0, 3.0])
    lam = np.array([1e-3, 0.1, 10.0])
    m = rmt.companion_stieltjes(t, n=6, z=-lam)
    assert_close(m * rmt.kappa(t, n=6, lam=lam), np.ones(3), rtol=1e-14, what="m(-lam) kappa(lam) = 1")
    # Sigma = I: z m^2 + (1 + z - gamma) m + 1 = 0, the root with Im m > 0 (Marchenko-Pastur companion)
    gamma = 0.5
    for z in (1.0 + 0.5j, -0.3 + 0.1j, 3.0 + 2.0j):
        mz = rmt.companion_stieltjes([1.0], n=1 / gamma, z=z)
        assert mz.imag > 0
        assert abs(z * mz * mz + (1 + z - gamma) * mz + 1) <= 1e-10, f"quadratic residual at z = {z}"


@settings(max_examples=40, deadline=None)
@given(
    t=st.lists(st.floats(1e-4, 1e3), min_size=1, max_size=12),
    n=st.floats(0.3, 50.0),
    lam=st.floats(1e-8, 1e4),
)
def test_fixed_point_property(t, n, lam):
    t = np.asarray(t)
    k = rmt.kappa(t, n=n, lam=lam)
    resid = k - lam - k / n * np.sum(t / (t + k))
    assert abs(resid) <= 1e-11 * (lam + k), f"residual {resid:.3e} at kappa {k:.3e}"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: rmt.kappa([1.0, -1.0], n=2, lam=0.1), "'eigenvalues' must be positive"),
        (lambda: rmt.kappa([1.0, np.nan], n=2, lam=0.1), "'eigenvalues' must be finite"),
        (lambda: rmt.kappa([1.0], n=0, lam=0.1), "'n' must be in"),
        (lambda: rmt.kappa([1.0], n=2, lam=-0.1), "'lam' must be >= 0"),
        (lambda: rmt.kappa([1.0], n=2, lam=[0.1, np.inf]), "'lam' must be finite"),
        (lambda: rmt.kappa([1.0, 2.0], n=2, lam=0.1, weights=[1.0]), "'weights' must be of shape"),
        (lambda: rmt.kappa_limit([1.0], psi=-1, lam=0.1), "'psi' must be in"),
        (lambda: rmt.companion_stieltjes([1.0], n=2, z=0.5), "'z' must be negative"),
        (lambda: rmt.companion_stieltjes([1.0], n=2, z=1 - 1j), "'z' must be finite with Im z > 0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
