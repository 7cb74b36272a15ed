r"""Deterministic equivalents of ridge regression: the kappa fixed point of Theorem 3.9.

docs/theory.md, Theorem 3.9 [P: exists; formula R]. For a covariance with eigenvalues
:math:`t_i` (multiplicities :math:`w_i`), a sample size :math:`n` and a ridge :math:`\lambda_G \ge 0`,
:math:`\kappa = \kappa(\lambda_G) \ge 0` solves

.. math::

    \kappa - \lambda_G = \frac{\kappa}{n}\sum_i w_i\,\frac{t_i}{t_i+\kappa}
    \qquad\Big(\text{limit: } \kappa-\lambda_G=\frac{\kappa}{\psi}\int\frac{t}{t+\kappa}\,dH(t),
    \ \psi = n/d\Big),

unique for :math:`\lambda_G>0`; for :math:`\lambda_G=0` it is :math:`0` when
:math:`\sum_i w_i \le n` (:math:`\psi\ge1`) and the positive root otherwise. Equivalently
:math:`\kappa = 1/\tilde m(-\lambda_G)` with :math:`\tilde m` the Stieltjes transform of the
limiting spectrum of :math:`XX^\top/n` (the companion of :math:`\hat\Sigma_x`), which solves
Silverstein's equation

.. math::

    \frac{1}{\tilde m(z)} = -z + \frac1n\sum_i w_i\,\frac{t_i}{1+t_i\,\tilde m(z)}.

Isotropic closed form (:math:`\Sigma = I`, :math:`\gamma = 1/\psi`):
:math:`\kappa = \tfrac12\big[-(1-\gamma-\lambda_G)+\sqrt{(1-\gamma-\lambda_G)^2+4\lambda_G}\big]`.

Solver (valid for every ridge :math:`0\le\lambda_G\le10^{300}` and eigenvalues spanning many decades).
Divide the equation by :math:`\kappa` and write it in the bounded ratios
:math:`a_i=\kappa/(t_i+\kappa)` and :math:`b_i=t_i/(t_i+\kappa)=1-a_i` (each computed directly), with
:math:`q_i=w_i/n` (:math:`w_i` the multiplicities) and :math:`\gamma=\sum_iq_i`:

.. math::

    h(\kappa) = (1-\gamma) + \sum_i q_ia_i - \frac{\lambda_G}{\kappa}
               = 1 - \sum_i q_ib_i - \frac{\lambda_G}{\kappa} = 0 .

Every term is :math:`O(1)`, so nothing overflows or underflows at :math:`\lambda_G=10^{-300}` or
:math:`10^{300}` (the unscaled :math:`\kappa^2\sum q_i/(t_i+\kappa)` overflows beyond
:math:`\kappa\approx10^{154}`). To avoid cancellation the sum is split at :math:`\kappa`: with
:math:`S'=\{i:t_i>\kappa\}` and :math:`c=(n-\sum_{i\in S'}w_i)/n` (exact for integer multiplicities),

.. math::

    h(\kappa) = c + \sum_{i\in S'}q_ia_i - \sum_{i\notin S'}q_ib_i - \frac{\lambda_G}{\kappa},

in which every ratio that appears is at most 1/2, so the rounding error of :math:`h` is
:math:`O(\varepsilon)` relative to its derivative
:math:`h_u=\partial h/\partial\log\kappa=\sum_iq_ia_ib_i+\lambda_G/\kappa>0` (a relative error of
:math:`\kappa` of a few :math:`\varepsilon` even where one eigenvalue carries all of :math:`\gamma`).
:math:`h` is increasing in
:math:`u=\log\kappa`; the root is bracketed by :math:`[\lambda_G,\ \lambda_G+\sum_iq_it_i]`
(for :math:`\lambda_G=0<\gamma-1`: by :math:`[(\gamma-1)/\sum_iq_i/t_i,\ \sum_iq_it_i]`) and found by
safeguarded Newton in :math:`u` (steps :math:`\kappa\leftarrow\kappa e^{-h/h_u}`, geometric bisection
of the bracket whenever a step leaves it or fails to halve), started from one Newton step in
:math:`\kappa` from the upper end. Iterations stop when the step is below :math:`4\varepsilon` relative,
the bracket is that narrow, or :math:`|h|` is at its rounding level; the residual is then checked
against that level (an ``ArithmeticError`` there is a bug, not a bad input). For
:math:`\lambda_G=0` and :math:`\gamma\le1` the answer is exactly 0. Everything is vectorised
over an array of :math:`\lambda_G`.

All results here are reconstructed [R] (docs/theory.md section 0): the paper's notation for
Theorem 3.9 is unknown; this :math:`\kappa`/companion-Stieltjes form is equivalent to the usual
deterministic equivalents of ridge regression.
"""

from __future__ import annotations

import math

import numpy as np

from theory import _validate as V

__all__ = [
    "kappa",
    "kappa_limit",
    "kappa_isotropic",
    "companion_stieltjes",
    "solve_kappa",
]

_MAX_ITER = 400


def _spectrum(func: str, eigenvalues, weights) -> tuple[np.ndarray, np.ndarray]:
    t = V.spectrum(func, "eigenvalues", eigenvalues)
    w = np.ones_like(t) if weights is None else V.masses(func, "weights", weights, size=t.size)
    return t, w


def _out(x: np.ndarray, like: np.ndarray):
    return float(np.asarray(x).reshape(-1)[0]) if like.ndim == 0 else x.reshape(like.shape)


def _terms(t: np.ndarray, w: np.ndarray, n: float, k: np.ndarray, lam: np.ndarray):
    r"""h(kappa), its rounding scale and dh/dlog(kappa) for kappa > 0 (k, lam: (m,); t, w: (p, 1)).

    Split form: with :math:`S'=\{i: t_i>\kappa\}`, :math:`c=(n-\sum_{S'}w_i)/n`,
    :math:`h = c + \sum_{S'}q_ia_i - \sum_{i\notin S'}q_ib_i - \lambda/\kappa` where every ratio
    :math:`a_i=\kappa/(t_i+\kappa)`, :math:`b_i=t_i/(t_i+\kappa)` that appears is at most 1/2.
    """
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        wr = 1.0 / (1.0 + t / k)          # kappa / (t + kappa)
        vr = 1.0 / (1.0 + k / t)          # t / (t + kappa)
        r = lam / k
    big = t > k                           # S': eigenvalues above kappa
    q = w / n
    c = (n - (w * big).sum(axis=0)) / n
    qs = np.where(big, q * wr, -q * vr)
    hu = (q * wr * vr).sum(axis=0) + r
    h = c + qs.sum(axis=0) - r
    scale = np.abs(c) + np.abs(qs).sum(axis=0) + r
    return h, scale, hu


def _solve_kappa(t: np.ndarray, w: np.ndarray, n: float, lam: np.ndarray,
                 one_minus_gamma: float | None = None) -> np.ndarray:
    r"""Unvalidated solver (see the module docstring): kappa for every entry of ``lam`` (any shape).

    t: (p,) positive atoms. w: (p,) non-negative weights (multiplicities, or H-masses), divided by
    ``n`` (the sample size, or psi for normalised masses): :math:`q_i=w_i/n`.
    one_minus_gamma: :math:`1-\sum_iq_i` where the caller knows it exactly (``(psi - 1) / psi`` for
    masses summing to 1); default ``(n - fsum(w)) / n``.
    """
    lam = np.asarray(lam, dtype=float)
    flat = lam.ravel()
    t = np.asarray(t, dtype=float)[:, None]
    w = np.asarray(w, dtype=float)[:, None]
    n = float(n)
    q = w / n
    omg = (n - math.fsum(w.ravel())) / n if one_minus_gamma is None else float(one_minus_gamma)  # 1 - gamma
    eps = V.EPS
    p = t.shape[0]
    k = np.zeros(flat.shape)
    active = ~((flat == 0) & (omg >= 0))          # lam = 0, gamma <= 1: kappa = 0 exactly
    if not active.any():
        return k.reshape(lam.shape)
    mass = float((q * t).sum())
    la = flat[active]
    lo = la.copy()
    hi = la + mass
    ridgeless = la == 0                            # gamma > 1 here
    if ridgeless.any():
        lo[ridgeless] = -omg / float((q / t).sum())
        hi[ridgeless] = mass
    # start: one Newton step on the convex g(kappa) = kappa h(kappa) from the upper end (lands in [root, hi])
    h, _, hu = _terms(t, w, n, hi, la)
    with np.errstate(all="ignore"):
        gprime = h + hu                            # g' = d(kappa h)/dkappa = h + dh/dlog(kappa)
        x = hi * (1.0 - h / gprime)
    x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, hi)
    with np.errstate(all="ignore"):
        dx_old = np.log(hi / np.where(lo > 0, lo, hi)) + 1.0
    done = np.zeros(la.shape, dtype=bool)
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        xa, l_a, lo_a, hi_a = x[idx], la[idx], lo[idx], hi[idx]
        h, scale, hu = _terms(t, w, n, xa, l_a)
        at_noise = np.abs(h) <= 2.0 * eps * scale
        lo_a = np.where(h < 0, xa, lo_a)
        hi_a = np.where(h > 0, xa, hi_a)
        with np.errstate(all="ignore"):
            step = h / hu
            newton = xa * np.exp(-step)
            bisect = np.sqrt(lo_a) * np.sqrt(hi_a)
        use_bisect = ~(newton > lo_a) | ~(newton < hi_a) | (np.abs(2.0 * step) > dx_old[idx])
        new = np.where(use_bisect, bisect, newton)
        with np.errstate(all="ignore"):
            dx = np.where(use_bisect, np.log(hi_a / lo_a) / 2.0, np.abs(step))
        narrow = hi_a <= lo_a * (1.0 + 4.0 * eps)
        conv = at_noise | (h == 0) | narrow | (~use_bisect & (np.abs(step) <= 4.0 * eps))
        x[idx] = np.where(at_noise | (h == 0), xa, new)
        lo[idx], hi[idx], dx_old[idx] = lo_a, hi_a, dx
        done[idx] = conv
    if not done.all():
        raise ArithmeticError(f"solve_kappa: no convergence after {_MAX_ITER} iterations "
                              f"for lam = {la[~done][:3]}")
    h, scale, hu = _terms(t, w, n, x, la)
    level = 8.0 * (p + 4) * eps * scale
    ok = np.abs(h) <= level
    if not ok.all():
        i = int(np.argmax(~ok))
        raise ArithmeticError(f"solve_kappa: residual {h[i]:.3e} above its rounding level "
                              f"{level[i]:.3e} at lam = {la[i]:.3e} (kappa = {x[i]:.3e})")
    k[active] = x
    return k.reshape(lam.shape)


def solve_kappa(t, q, lam) -> np.ndarray:
    r"""Solve :math:`\kappa - \lambda = \kappa\sum_i q_i t_i/(t_i+\kappa)` for every ``lam``.

    t: (p,) positive eigenvalues (atoms of the spectrum).
    q: (p,) non-negative trace weights (multiplicity / n, or H-mass / psi), one with a positive entry.
    lam: ridge(s) >= 0 (float or any-shaped array); returns kappa of the same shape (an array).
    The solver of the module docstring; :func:`kappa` and :func:`kappa_limit` are the usual entry points.
    """
    func = "solve_kappa"
    t = V.spectrum(func, "t", t)
    q = V.masses(func, "q", q, size=t.size)
    lam_a = V.ridge(func, "lam", lam)
    return np.asarray(_solve_kappa(t, q, 1.0, lam_a))


def kappa(eigenvalues, *, n, lam, weights=None):
    r"""The fixed point :math:`\kappa(\lambda_G)` of Theorem 3.9 for a finite spectrum.

    eigenvalues: (p,) positive eigenvalues :math:`t_i` of :math:`\Sigma_x`.
    n: sample size (> 0; the traces are divided by ``n``).
    lam: ridge :math:`\lambda_G \ge 0`, a float or an array (the result has its shape).
    weights: (p,) multiplicities :math:`w_i` of the eigenvalues (default 1 each, so ``d = p``).

    >>> round(kappa([1.0, 1.0], n=4, lam=0.5), 12) == round(kappa_isotropic(psi=2.0, lam=0.5), 12)
    True
    """
    func = "kappa"
    t, w = _spectrum(func, eigenvalues, weights)
    n = V.scalar(func, "n", n, low=0.0, low_open=True)
    lam_a = V.ridge(func, "lam", lam)
    return _out(_solve_kappa(t, w, n, lam_a), lam_a)


def kappa_limit(eigenvalues, *, psi, lam, weights=None):
    r"""The limiting fixed point :math:`\kappa-\lambda_G=\frac{\kappa}{\psi}\int\frac{t}{t+\kappa}dH`.

    eigenvalues: atoms of the limiting spectral law :math:`H` of :math:`\Sigma_x`.
    psi: aspect ratio :math:`\psi = n/d > 0`.
    lam: ridge :math:`\lambda_G \ge 0` (float or array).
    weights: masses of :math:`H` at the atoms (normalised to sum 1; default uniform).
    """
    func = "kappa_limit"
    t, w = _spectrum(func, eigenvalues, weights)
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    lam_a = V.ridge(func, "lam", lam)
    return _out(_solve_kappa(t, w / math.fsum(w), psi, lam_a, (psi - 1.0) / psi), lam_a)


def kappa_isotropic(*, psi, lam):
    r"""Closed form of :math:`\kappa` for :math:`\Sigma=I` (Theorem 3.9, isotropic case).

    psi: aspect ratio :math:`n/d > 0`. lam: ridge :math:`\lambda_G\ge0` (float or array).
    Evaluated without cancellation or overflow: with :math:`b = 1-\gamma-\lambda_G` and
    :math:`r=\sqrt{b^2+4\lambda_G}` (``hypot(b, 2 sqrt(lam))``, finite up to :math:`\lambda_G=10^{300}`),
    :math:`\kappa = 2\lambda_G/(b+r)` when :math:`b>0` and :math:`(r-b)/2` otherwise.

    >>> kappa_isotropic(psi=0.5, lam=0.0)   # psi < 1: kappa(0) = 1/psi - 1
    1.0
    """
    func = "kappa_isotropic"
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    lam_a = V.ridge(func, "lam", lam)
    b = (psi - 1.0) / psi - lam_a
    root = np.hypot(b, 2.0 * np.sqrt(lam_a))
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(b + root > 0, 2.0 * lam_a / (b + root), 0.0)
    k = np.where(b > 0, pos, 0.5 * (root - b))
    return _out(np.asarray(k, dtype=float), lam_a)


def companion_stieltjes(eigenvalues, *, n, z, weights=None, tol: float = 1e-13, max_iter: int = 100000):
    r"""Stieltjes transform :math:`\tilde m(z)` of the limiting spectrum of :math:`XX^\top/n`.

    eigenvalues: (p,) positive eigenvalues of :math:`\Sigma_x`; weights: their multiplicities.
    n: sample size. z: a real negative number / array (then :math:`\tilde m(z)=1/\kappa(-z)`, real),
    or complex with positive imaginary part (then Silverstein's equation is solved by a damped
    fixed-point iteration to relative change ``tol``; the residual is checked).

    >>> round(companion_stieltjes([1.0], n=2, z=-0.5) * kappa([1.0], n=2, lam=0.5), 12)
    1.0
    """
    func = "companion_stieltjes"
    t, w = _spectrum(func, eigenvalues, weights)
    n = V.scalar(func, "n", n, low=0.0, low_open=True)
    tol = V.scalar(func, "tol", tol, low=0.0, high=1.0, low_open=True, high_open=True)
    max_iter = V.integer(func, "max_iter", max_iter, low=1)
    q = w / n
    is_complex = isinstance(z, (complex, np.complexfloating)) or (
        isinstance(z, (np.ndarray, list, tuple)) and np.asarray(z).dtype.kind == "c")
    if not is_complex:
        zr = V.array(func, "z", z, what="real numbers < 0 (or complex numbers with Im z > 0)")
        if zr.size and np.any(zr >= 0):
            raise V.fail(func, "z", "negative when real (or complex with Im z > 0)", f"maximum {zr.max():.3e}")
        return _out(1.0 / _solve_kappa(t, w, n, -zr), zr)
    zc = np.asarray(z).astype(complex)
    if not np.all(np.isfinite(zc)) or np.any(zc.imag <= 0):
        bad = zc[~np.isfinite(zc) | (zc.imag <= 0)].ravel()[0]
        raise V.fail(func, "z", "finite with Im z > 0 when complex", f"{complex(bad)!r}")
    flat = zc.ravel()
    m = -1.0 / flat  # large-|z| start
    tc = t[:, None]
    qc = q[:, None]
    for _ in range(max_iter):
        new = 1.0 / (-flat + (qc * tc / (1.0 + tc * m)).sum(axis=0))
        new = 0.5 * (m + new)
        if np.all(np.abs(new - m) <= tol * np.abs(new)):
            m = new
            break
        m = new
    else:
        raise ArithmeticError(f"companion_stieltjes: no convergence after {max_iter} iterations")
    resid = np.abs(1.0 / m + flat - (qc * tc / (1.0 + tc * m)).sum(axis=0)) * np.abs(m)
    if np.any(resid > 1e-9):
        raise ArithmeticError(f"companion_stieltjes: residual {resid.max():.3e} too large")
    return complex(m[0]) if zc.ndim == 0 else m.reshape(zc.shape)
